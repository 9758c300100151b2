"""Keyterms on Voxtral: text -> ids from the bundle (against mistral_common's Tekkenizer), and a
processor that never touches the timing tokens."""

import numpy as np
import pytest
from mistral_common.tokens.tokenizers.tekken import Tekkenizer

from tests.conftest import sample_texts
from voxedge.bpe import BytePairEncoder
from voxedge.bundle import open_bundle
from voxedge.keyterms import COOL, KeytermBoost
from voxedge.tokenizer import TokenTable


@pytest.fixture(scope="module")
def bundle(bundles):
    return open_bundle(bundles["int8"])


@pytest.fixture(scope="module")
def encoder(bundle):
    return BytePairEncoder.from_bundle(bundle, TokenTable.load(bundle.path(bundle.model_section["tokenizer"])))


def test_the_bundle_encodes_text_as_mistral_common_does(encoder, tiny_checkpoint):
    tekken = Tekkenizer.from_file(str(tiny_checkpoint / "tekken.json"))
    for text in sample_texts(3000, seed=1):
        assert encoder.encode(text) == tekken.encode(text, bos=False, eos=False), repr(text)


def test_the_processor_never_touches_the_timing_tokens(bundle, encoder):
    tokens = bundle.model_section["tokens"]
    timing = [tokens["eos"], tokens["streaming_pad"], tokens["streaming_word"]]
    terms = ["Siobhan", "Kubernetes", "Grüße aus Köln"]
    processor = KeytermBoost.for_family("voxtral_realtime", tokens, terms, encoder.encode)
    assert processor.skip == set(timing)
    rng = np.random.default_rng(0)
    vocab = bundle.model_section["decoder"]["vocab"]
    for term in terms:
        ids = encoder.encode(" " + term)
        # the term as a stream decodes it: timing tokens anywhere between its pieces
        stream = [t for token in ids for t in [*rng.choice(timing, int(rng.integers(0, 3))), token]]
        state, total = processor.start(), 0.0
        for token in stream:
            logits = rng.standard_normal(vocab).astype(np.float32)
            before = logits.copy()
            processor.apply(state, logits)
            assert logits[timing].tobytes() == before[timing].tobytes()
            state, correction = processor.advance(state, int(token))
            total += float(logits[token] - before[token]) + correction
        assert total == pytest.approx(4.0 * len(ids), abs=1e-4)  # the whole term's bonus, pads or not
        assert state == COOL  # complete


def tokens_of(model, audio, **options):
    """(tokens, events) of a stream fed 100 ms at a time."""
    tokens = []
    stream = model.stream(delay_ms=480, on_step=lambda token, *_: tokens.append(token), **options)
    events = [e for start in range(0, len(audio), 1600) for e in stream.feed(audio[start : start + 1600])]
    return tokens, events + stream.close()


def contains(tokens, term_ids, skip) -> bool:
    text = [t for t in tokens if t not in skip]
    return any(text[i : i + len(term_ids)] == term_ids for i in range(len(text)))


def test_keyterms_in_the_decode_loop(bundles, clips, encoder, bundle):
    import voxedge

    model = voxedge.load(bundles["fp32"])
    tokens = bundle.model_section["tokens"]
    timing = {tokens["eos"], tokens["streaming_pad"], tokens["streaming_word"]}
    plain, _ = tokens_of(model, clips["short"])
    # a weight too small to change any choice changes no token: the processor's path is exact
    assert tokens_of(model, clips["short"], keyterms=[voxedge.Keyterm("Kubernetes", 1e-6)])[0] == plain
    # a large weight forces the term, and every step still makes exactly one token (time is untouched)
    forced, _ = tokens_of(model, clips["short"], keyterms=[voxedge.Keyterm("Kubernetes", 30.0)])
    assert len(forced) == len(plain)
    assert contains(forced, encoder.encode(" Kubernetes"), timing) or contains(forced, encoder.encode("Kubernetes"), timing)
    assert not contains(plain, encoder.encode(" Kubernetes"), timing)
    # file transcription (4 steps encoded per call) gives the stream's words, keyterms included
    stream_words = [w.text for e in tokens_of(model, clips["short"], keyterms=["Kubernetes"])[1] for w in e.words
                    if e.kind == "final"]
    file_words = [w.text for s in model.transcribe(clips["short"], sample_rate=16000, keyterms=["Kubernetes"])
                  for w in s.words]
    assert stream_words and file_words == stream_words
