"""Shared test fixtures: real recordings from installed packages and speech synthesized by espeak-ng.

Tests own their reference transcripts: espeak-ng speaks texts written here, and the recordings
shipped by moonshine-voice have known texts. Nothing is downloaded.
"""

import shutil
import subprocess

import numpy as np
import pytest

from voxedge.audio import load_audio

from benchmarks.corpus import SENTENCES  # noqa: F401  (re-exported for the tests)


def asset(name: str) -> str:
    """Path of a recording shipped in moonshine-voice (installed with --no-deps by `make test`)."""
    from export.whisper.offline import recording

    path = recording(name)
    assert path, f"{name} is missing: `make test` installs moonshine-voice"
    return path


def synthesize(text: str, path, voice: str = "en-us", speed: int = 160) -> str:
    """Speak `text` with espeak-ng into a wav file (22.05 kHz) and return its path."""
    exe = shutil.which("espeak-ng")
    assert exe, "espeak-ng is missing: `make test` installs it with apt-get"
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    return str(path)


# Pieces of text for tokenizer comparisons: words with accents, CJK, emoji (with joiners and flags),
# digits, punctuation, contractions; runs of characters from many scripts; every kind of white space.
_WORDS = ["the", "Siobhan", "Kubernetes", "naïve", "café", "Köln", "Grüße", "東京", "日本語", "한국어", "Ελληνικά",
          "Москва", "العربية", "हिन्दी", "🎙️", "👩\u200d💻", "🇫🇷", "3.14", "1,000", "42", "don't", "I'll", "we've",
          "O'Brien", "McDonald's", "HTTPServer", "e-mail", "C++", "—", "...", "?!", "«ok»", "ﬁ", "Ａ"]
_RANGES = [(0x21, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
           (0x900, 0x97F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x3000, 0x30FF), (0x4E00, 0x9FFF),
           (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF), (0x0, 0x1F)]
_SPACES = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2009", "\x0b", "\x0c", "\x1c", "\u0085", "\u2028"]


def sample_texts(n: int, seed: int = 0) -> list[str]:
    """`n` seeded strings for tokenizer comparisons. Only characters assigned in Python's Unicode
    version: a character assigned later may belong to different classes in the regex tables of the
    libraries compared (docs/keyterms.md)."""
    import unicodedata

    rng = np.random.default_rng(seed)

    def run_of_characters():
        low, high = _RANGES[int(rng.integers(len(_RANGES)))]
        chars = (chr(int(c)) for c in rng.integers(low, high + 1, int(rng.integers(1, 6))))
        return "".join(c for c in chars if unicodedata.category(c) != "Cn")

    makers = [lambda: str(rng.choice(_WORDS)), run_of_characters, lambda: str(rng.choice(_SPACES)),
              lambda: str(rng.integers(0, 10 ** int(rng.integers(1, 9))))]
    texts = []
    for _ in range(n):
        parts = [makers[int(rng.integers(len(makers)))]() for _ in range(int(rng.integers(1, 9)))]
        texts.append(("" if rng.random() < 0.5 else " ").join(parts))
    return texts


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def espeak_clip(speech_dir):
    """About 6 s of synthetic English speech at 16 kHz."""
    return load_audio(synthesize(" ".join(SENTENCES[:2]), speech_dir / "two_sentences.wav"))


@pytest.fixture(scope="session")
def noise_clip():
    return (0.1 * np.random.default_rng(7).standard_normal(16000 * 3)).astype(np.float32)


# -- bundles shared by the family tests and the hardening tests (built once per session) -------------


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A seeded tiny random Voxtral Realtime checkpoint with 12/16-position windows (transformers is the oracle)."""
    pytest.importorskip("torch", reason="building the tiny Voxtral model needs torch")
    from export.voxtral import tiny

    return tiny.build(tmp_path_factory.mktemp("voxtral-tiny"), seed=0)


@pytest.fixture(scope="session")
def bundles(tiny_checkpoint, tmp_path_factory):
    """Voxtral preset -> bundle directory, built through the exporter's command line."""
    from export.__main__ import main as export_main

    root = tmp_path_factory.mktemp("voxtral-bundles")
    built = {}
    for preset in ("fp32", "fp16", "int8", "int4"):
        out = root / preset
        assert export_main([str(tiny_checkpoint), "--out", str(out), "--quant", preset]) == 0
        built[preset] = out
    return built


@pytest.fixture(scope="session")
def ct2_dir():
    from export.whisper.offline import shipped_model_dir

    return shipped_model_dir()


@pytest.fixture(scope="session")
def whisper_checkpoint(tmp_path_factory, ct2_dir):
    pytest.importorskip("torch", reason="the Whisper export needs torch")
    from export.whisper.ct2 import convert_ct2_whisper

    return convert_ct2_whisper(ct2_dir, tmp_path_factory.mktemp("whisper-hf"))


@pytest.fixture(scope="session")
def whisper_bundles(whisper_checkpoint, tmp_path_factory):
    """Real Whisper tiny.en weights, exported in int8 and fp32."""
    from export.__main__ import main as export_main

    root = tmp_path_factory.mktemp("whisper-bundles")
    built = {}
    for preset in ("int8", "fp32"):
        out = root / preset
        assert export_main([str(whisper_checkpoint), "--out", str(out), "--quant", preset,
                            "--sample-audio", asset("beckett.wav")]) == 0
        built[preset] = out
    return built

