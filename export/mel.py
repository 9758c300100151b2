"""The Slaney-style mel filter bank of Whisper and Voxtral, in numpy (librosa's `filters.mel(norm="slaney")`,
transformers' `mel_filter_bank(norm="slaney", mel_scale="slaney")`), so that building a bundle needs no
audio library. The operations follow transformers' order, so the float32 table is bit-identical to its
feature extractors' (tests/test_mel.py)."""

from __future__ import annotations

import numpy as np

# Slaney's scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above (27 mels per factor 6.4).
LOG_START_HZ = 1000.0
LOG_START_MEL = 15.0  # 3 * 1000 / 200
MELS_PER_LOG_STEP = 27.0


def hz_to_mel(hz: float) -> float:
    if hz < LOG_START_HZ:
        return 3.0 * hz / 200.0
    return LOG_START_MEL + np.log(hz / LOG_START_HZ) * (MELS_PER_LOG_STEP / np.log(6.4))


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    hz = 200.0 * mels / 3.0
    log_region = mels >= LOG_START_MEL
    hz[log_region] = LOG_START_HZ * np.exp((np.log(6.4) / MELS_PER_LOG_STEP) * (mels[log_region] - LOG_START_MEL))
    return hz


def slaney_mel_filters(n_mels: int, n_fft: int = 400, sample_rate: int = 16000, f_max: float = 8000.0) -> np.ndarray:
    """[n_fft // 2 + 1, n_mels] float32: triangles between mel-spaced edges over the FFT bins, each
    scaled to unit area (2 / bandwidth in Hz), from 0 Hz to `f_max`."""
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(f_max), n_mels + 2))
    bins = np.linspace(0, sample_rate // 2, n_fft // 2 + 1)
    slopes = edges[None, :] - bins[:, None]
    widths = np.diff(edges)
    falling = -slopes[:, :-2] / widths[:-1]
    rising = slopes[:, 2:] / widths[1:]
    filters = np.maximum(np.zeros(1), np.minimum(falling, rising))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[None, :]
    return filters.astype(np.float32)
