"""The validation step that ends every Voxtral export: the bundle, run by voxedge's own runtime, against
transformers on the same clip, step by step. Its report is stored in the bundle (validation.json)."""

from __future__ import annotations

import numpy as np


def sample_clip(seconds: float = 6.0, rate: int = 16000) -> np.ndarray:
    """A deterministic speech-like test signal (voiced harmonics with gliding pitch, pauses and noise
    bursts), used when no --sample-audio is given; real speech is better for real weights."""
    rng = np.random.default_rng(1234)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = (np.sin(2 * np.pi * 1.3 * t) > -0.3).astype(float)
    noise = rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 0.4 * t) > 0.8)
    return (0.1 * voiced * envelope + 0.03 * noise).astype(np.float32)


def run_bundle(bundle_dir, audio: np.ndarray, delay_ms: int):
    """voxedge's runtime on the bundle: (tokens, per-step logits)."""
    import voxedge

    tokens, logits = [], []
    stream = voxedge.load(bundle_dir).stream(delay_ms=delay_ms, on_step=lambda tok, lg, *_: (tokens.append(tok), logits.append(lg)))
    stream.feed(audio)
    stream.close()
    return tokens, np.stack(logits)
