"""Shared test fixtures: real recordings from installed packages and speech synthesized by espeak-ng.

Tests own their reference transcripts: espeak-ng speaks texts written here, and the recordings
shipped by moonshine-voice have known texts. Nothing is downloaded.
"""

import importlib.util
import shutil
from pathlib import Path
import subprocess

import numpy as np
import pytest

from voxedge.audio import load_audio

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "She sells sea shells by the sea shore on a sunny morning.",
    "A large language model runs on the device without sending any audio to the cloud.",
    "Seven hundred and twelve people attended the meeting on Tuesday afternoon.",
    "Turn left at the next corner and then walk straight ahead for two blocks.",
    "The weather today is cold and windy with a chance of rain in the evening.",
    "Open the window, the room is much too warm for a good night of sleep.",
]


def asset(name: str) -> str:
    """Path of a recording shipped in moonshine-voice (installed with --no-deps by `make test`; found
    without importing the package, whose own dependencies are not installed)."""
    spec = importlib.util.find_spec("moonshine_voice")
    assert spec, "moonshine-voice is missing: `make test` installs it"
    path = Path(spec.submodule_search_locations[0]) / "assets" / name
    assert path.is_file(), f"{path} is missing"
    return str(path)


def synthesize(text: str, path, voice: str = "en-us", speed: int = 160) -> str:
    """Speak `text` with espeak-ng into a wav file (22.05 kHz) and return its path."""
    exe = shutil.which("espeak-ng")
    assert exe, "espeak-ng is missing: `make test` installs it with apt-get"
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    return str(path)


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
