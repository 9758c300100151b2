"""Voxtral Realtime tests: the tiny random checkpoint and its bundles (tests/conftest.py), transformers
as the oracle, and clips. Windows are small (12 encoder frames, 16 tokens) so both caches wrap."""

import numpy as np
import pytest

pytest.importorskip("torch", reason="the Voxtral oracle is transformers on torch")

from export.voxtral import reference  # noqa: E402
from tests.conftest import SENTENCES, synthesize  # noqa: E402
from voxedge.audio import load_audio  # noqa: E402

PRESETS = ("fp32", "fp16", "int8", "int4")


@pytest.fixture(scope="session")
def hf_model(tiny_checkpoint):
    return reference.load_model(tiny_checkpoint)


@pytest.fixture(scope="session")
def clips(speech_dir):
    """Three clips: short speech, speech longer than the real model's 15 s encoder window, tone + noise."""
    short = load_audio(synthesize(SENTENCES[0], speech_dir / "vox_short.wav"))
    long = load_audio(synthesize(" ".join(SENTENCES[1:6]), speech_dir / "vox_long.wav", speed=150))
    t = np.arange(16000 * 4) / 16000
    tone = (0.2 * np.sin(2 * np.pi * 300 * t) + 0.05 * np.random.default_rng(3).standard_normal(len(t)))
    assert len(long) > 16000 * 15
    return {"short": short, "long": long, "tone": tone.astype(np.float32)}


def run_stream(bundle_model, audio, delay_ms=None, chunk=None, **stream_kwargs):
    """(tokens, logits, stream) of a voxedge stream fed `audio` in `chunk`-sample pieces."""
    tokens, logits = [], []
    stream = bundle_model.stream(delay_ms=delay_ms, on_step=lambda tok, lg, *_: (tokens.append(tok), logits.append(lg)),
                                 **stream_kwargs)
    chunk = chunk or len(audio)
    for start in range(0, len(audio), chunk):
        stream.feed(audio[start : start + chunk])
    stream.close()
    return tokens, np.stack(logits), stream
