"""Audio in: files, numpy arrays and raw PCM bytes -> validated mono float32 at 16 kHz.

Decoding is libsndfile (soundfile): wav, flac, ogg/vorbis, opus and mp3 where the installed libsndfile
has it. Resampling is soxr, a band-limited polyphase resampler (docs/audio.md explains the choice).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import AudioError

SAMPLE_RATE = 16000
RATE_RANGE = (1000, 384000)  # Hz; anything else is a corrupt header or a mistake, not audio
MAX_CHANNELS = 16  # a 2-D axis this short is taken for channels

_INT_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


@dataclass(frozen=True)
class PcmFormat:
    """How raw PCM bytes are laid out: little-endian, interleaved channels."""

    sample_rate: int
    dtype: str = "int16"  # int16, int32 or float32
    channels: int = 1


def load_audio(
    source,
    sample_rate: int | None = None,
    *,
    pcm_format: PcmFormat | None = None,
    channels_first: bool | None = None,
) -> np.ndarray:
    """Return `source` as mono float32 samples at 16 kHz.

    `source` is a path (str or os.PathLike), a numpy array (`sample_rate` defaults to 16000;
    int16/int32 are scaled to [-1, 1); 2-D arrays are downmixed, see `to_mono`), or raw PCM bytes
    described by `pcm_format`.
    """
    if isinstance(source, (str, os.PathLike)):
        if sample_rate is not None:
            raise AudioError("sample_rate is read from the file itself; pass it only with arrays")
        samples, rate = read_file(source)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if pcm_format is None:
            raise AudioError(
                "raw bytes need a declared layout: pass pcm_format=PcmFormat(sample_rate=..., dtype=..., "
                "channels=...), or pass a file path or a numpy array instead"
            )
        samples, rate = decode_pcm(source, pcm_format), pcm_format.sample_rate
    elif isinstance(source, np.ndarray):
        samples, rate = source, SAMPLE_RATE if sample_rate is None else sample_rate
    else:
        raise AudioError(
            f"cannot read audio from a {type(source).__name__}: pass a file path, a numpy array or PCM bytes"
        )
    mono = to_mono(validate(to_float32(samples)), channels_first=channels_first)
    out = resample(mono, rate, SAMPLE_RATE)
    if out.size == 0:
        raise AudioError(f"the audio is too short: {mono.size} samples at {rate} Hz is less than one at 16 kHz")
    return out


def read_file(path) -> tuple[np.ndarray, int]:
    """Decode a sound file to float32 [frames, channels] and its sample rate."""
    import soundfile

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioError(f"{path}: no such file")
    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(
            f"{path}: cannot decode it ({exc}). It is corrupt or in a format libsndfile does not read here; "
            "convert it first, e.g. `ffmpeg -i INPUT -ar 16000 -ac 1 out.wav`"
        ) from None
    if samples.size == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    return samples, rate


def decode_pcm(data, fmt: PcmFormat) -> np.ndarray:
    """Interpret little-endian interleaved PCM bytes as [frames, channels]."""
    if fmt.dtype not in ("int16", "int32", "float32"):
        raise AudioError(f"PCM dtype {fmt.dtype!r} is not supported: use int16, int32 or float32")
    if fmt.channels < 1 or fmt.sample_rate <= 0:
        raise AudioError(f"invalid PCM format {fmt}: channels and sample_rate must be positive")
    dtype = np.dtype(fmt.dtype).newbyteorder("<")
    frame_bytes = dtype.itemsize * fmt.channels
    if len(data) % frame_bytes:
        raise AudioError(
            f"{len(data)} bytes is not a whole number of {fmt.channels}-channel {fmt.dtype} frames "
            f"({frame_bytes} bytes each): the stream was cut mid-sample"
        )
    return np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("=")).reshape(-1, fmt.channels)


def to_float32(samples: np.ndarray) -> np.ndarray:
    """Scale integer PCM to [-1, 1) and cast floats to float32."""
    samples = np.asarray(samples)
    if samples.dtype in _INT_SCALE:
        return (samples / np.float32(_INT_SCALE[samples.dtype])).astype(np.float32)
    if samples.dtype in (np.float32, np.float64):
        with np.errstate(over="ignore"):  # out-of-range float64 becomes inf, which `validate` reports
            return samples.astype(np.float32, copy=False)
    raise AudioError(
        f"audio arrays of dtype {samples.dtype} are not supported: use int16, int32, float32 or float64"
    )


def to_mono(samples: np.ndarray, channels_first: bool | None = None) -> np.ndarray:
    """Downmix a 1-D or 2-D float array to 1-D by averaging the channels.

    For 2-D input the channel axis is the one with at most MAX_CHANNELS entries; when both or neither
    axis qualifies, `channels_first` must say which layout it is (True: [channels, frames]).
    """
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise AudioError(f"audio must be 1-D (mono) or 2-D (multi-channel), got shape {samples.shape}")
    if channels_first is None:
        short = [n <= MAX_CHANNELS for n in samples.shape]
        if short[0] == short[1]:
            raise AudioError(
                f"cannot tell which axis of shape {samples.shape} holds the channels: pass channels_first=True "
                "for [channels, frames] or channels_first=False for [frames, channels]"
            )
        channels_first = short[0]
    channel_axis = 0 if channels_first else 1
    if samples.shape[channel_axis] == 1:
        return samples[0] if channels_first else samples[:, 0]
    return samples.mean(axis=channel_axis, dtype=np.float64).astype(np.float32)


def validate(samples: np.ndarray) -> np.ndarray:
    """Refuse empty input and non-finite samples: both would silently produce garbage downstream."""
    if samples.size == 0:
        raise AudioError("the audio is empty: there is nothing to transcribe")
    finite = np.isfinite(samples)
    if not finite.all():
        first = int(np.argmin(finite))
        raise AudioError(
            f"the audio holds {samples.size - int(finite.sum())} NaN, infinite or out-of-range samples "
            f"(first at index {first}); "
            "clean the signal (e.g. np.nan_to_num) before passing it"
        )
    return samples


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling of mono float32 audio."""
    _check_rate(rate)
    if rate == target:
        return np.ascontiguousarray(samples, dtype=np.float32)
    import soxr

    return soxr.resample(samples, rate, target, quality="HQ").astype(np.float32, copy=False)


def _check_rate(rate) -> None:
    if not isinstance(rate, (int, float, np.integer, np.floating)) or not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise AudioError(f"a sample rate of {rate} Hz is outside {RATE_RANGE[0]}..{RATE_RANGE[1]} Hz: the file "
                         "header is corrupt or the rate was given wrongly")


class StreamResampler:
    """Resample a live stream block by block with the same filter as `resample` (soxr keeps the state)."""

    def __init__(self, rate: int, target: int = SAMPLE_RATE):
        import soxr

        _check_rate(rate)
        self.rate = rate
        self._stream = soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ")

    def process(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        return self._stream.resample_chunk(np.ascontiguousarray(samples, dtype=np.float32), last=last)
