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
    return BytePairEncoder.from_bundle(bundle, TokenTable.load(bundle.path(bundle.config["tokenizer"])))


def test_the_bundle_encodes_text_as_mistral_common_does(encoder, tiny_checkpoint):
    tekken = Tekkenizer.from_file(str(tiny_checkpoint / "tekken.json"))
    for text in sample_texts(3000, seed=1):
        assert encoder.encode(text) == tekken.encode(text, bos=False, eos=False), repr(text)


def test_the_processor_never_touches_the_timing_tokens(bundle, encoder):
    tokens = bundle.config["tokens"]
    timing = [tokens["eos"], tokens["streaming_pad"], tokens["streaming_word"]]
    terms = ["Siobhan", "Kubernetes", "Grüße aus Köln"]
    processor = KeytermBoost.for_family("voxtral_realtime", tokens, terms, encoder.encode)
    assert processor.skip == set(timing)
    rng = np.random.default_rng(0)
    vocab = bundle.config["decoder"]["vocab"]
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
        assert total == pytest.approx(2.0 * len(ids), abs=1e-4)  # the whole term's bonus, pads or not
        assert state == COOL  # complete
