"""Audio in: files, numpy arrays and raw PCM bytes -> validated mono float32 at 16 kHz.

Decoding is libsndfile (soundfile): wav, flac, ogg/vorbis, opus and mp3 where the installed libsndfile
has it. Resampling is soxr, a band-limited polyphase resampler (docs/audio.md explains the choice).
"""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import AudioError

SAMPLE_RATE = 16000
RATE_RANGE = (1000, 384000)  # Hz; anything else is a corrupt header or a mistake, not audio
MAX_CHANNELS = 16  # a 2-D array axis this short is taken for channels
MAX_FILE_CHANNELS = 256  # files say how many channels they have; more than this is a corrupt header
FILE_BLOCK = 1 << 16  # frames decoded at a time from a file
INT16_SCALE_PEAK = 64.0  # float audio peaking above this (+36 dB over full scale) is int16-scale samples

_INT_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


@dataclass(frozen=True)
class PcmFormat:
    """How raw PCM bytes are laid out: little-endian, interleaved channels."""

    sample_rate: int
    dtype: str = "int16"  # int16, int32 or float32
    channels: int = 1

    def __post_init__(self):
        if self.dtype not in ("int16", "int32", "float32"):
            raise AudioError(f"PCM dtype {self.dtype!r} is not supported: use int16, int32 or float32")
        for name in ("sample_rate", "channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise AudioError(f"PcmFormat.{name} must be a positive whole number, got {value!r}")


class AudioSource:
    """Audio to transcribe, checked when opened and read block by block as mono float32 at 16 kHz.

    Files are decoded and resampled window by window, so memory does not grow with their length;
    `blocks()` can be iterated more than once (a file is read again from the start).
    """

    def __init__(self, name: str, duration: float, read):
        self.name = name
        self.duration = duration  # seconds, from the file header or the array's length
        self._read = read

    def blocks(self, size: int = 30 * SAMPLE_RATE):
        """Consecutive blocks of `size` samples at 16 kHz (the last may be shorter)."""
        pending, have = [], 0
        for block in self._read():
            pending.append(block)
            have += block.size
            while have >= size:
                joined = np.concatenate(pending)
                yield joined[:size]
                pending, have = [joined[size:]], have - size
        if have:
            yield np.concatenate(pending)


def open_audio(source, sample_rate: int | None = None, *, pcm_format: PcmFormat | None = None,
               channels_first: bool | None = None, default_rate: int | None = None) -> AudioSource:
    """Check `source` now (a missing file, an empty array, a wrong dtype raise AudioError here) and
    return it as an AudioSource (an AudioSource is returned as it is). Arrays need `sample_rate` unless
    `default_rate` is given."""
    if isinstance(source, AudioSource):
        return source
    if isinstance(source, (str, os.PathLike)):
        if sample_rate is not None:
            raise AudioError("sample_rate is read from the file itself; pass it only with arrays")
        return _file_source(os.fspath(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        if pcm_format is None:
            raise AudioError(
                "raw bytes need a declared layout: pass pcm_format=PcmFormat(sample_rate=..., dtype=..., "
                "channels=...), or pass a file path or a numpy array instead"
            )
        samples, rate = decode_pcm(source, pcm_format), pcm_format.sample_rate
    elif isinstance(source, np.ndarray):
        rate = sample_rate if sample_rate is not None else default_rate
        if rate is None:
            raise AudioError("a numpy array needs its sample rate: pass sample_rate= (e.g. 16000 or 48000); "
                             "voxedge cannot tell 48 kHz audio from 16 kHz audio by looking at it")
        samples = source
    else:
        raise AudioError(
            f"cannot read audio from a {type(source).__name__}: pass a file path, a numpy array or PCM bytes"
        )
    mono = to_mono(validate(fix_int16_scale(to_float32(samples), "the array")), channels_first=channels_first)
    out = resample(mono, rate, SAMPLE_RATE)
    if out.size == 0:
        raise AudioError(f"the audio is too short: {mono.size} samples at {rate} Hz is less than one at 16 kHz")
    return AudioSource("<array>", out.size / SAMPLE_RATE, lambda: iter((out,)))


def load_audio(source, sample_rate: int | None = None, *, pcm_format: PcmFormat | None = None,
               channels_first: bool | None = None) -> np.ndarray:
    """`source` as mono float32 samples at 16 kHz, all in memory.

    `source` is a path (str or os.PathLike), a numpy array (`sample_rate` defaults to 16000;
    int16/int32 are scaled to [-1, 1); 2-D arrays are downmixed, see `to_mono`), or raw PCM bytes
    described by `pcm_format`. For long files, `open_audio(...).blocks()` keeps memory bounded.
    """
    opened = open_audio(source, sample_rate, pcm_format=pcm_format, channels_first=channels_first,
                        default_rate=SAMPLE_RATE)
    return np.concatenate(list(opened.blocks()))


def _file_source(path: str) -> AudioSource:
    with _open_sound_file(path) as f:
        rate, frames, channels = f.samplerate, f.frames, f.channels
    _check_rate(rate)
    if channels > MAX_FILE_CHANNELS:
        raise AudioError(f"{path}: {channels} channels; voxedge reads files of 1 to {MAX_FILE_CHANNELS} channels")

    def read():
        warned = [False]
        resampler = None if rate == SAMPLE_RATE else StreamResampler(rate)
        got = 0
        with _open_sound_file(path) as f:
            for block in f.blocks(blocksize=FILE_BLOCK, dtype="float32", always_2d=True):
                got += len(block)
                mono = block.mean(axis=1, dtype=np.float32) if channels > 1 else block[:, 0]
                mono = check_finite(fix_int16_scale(mono, path, warned), where=f"{path}: ")
                yield resampler.process(mono) if resampler else mono
        if resampler:
            yield resampler.process(np.zeros(0, np.float32), last=True)
        if got == 0:
            raise AudioError(f"{path}: the file holds no audio samples")

    if frames == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    return AudioSource(path, frames / rate, read)


def _open_sound_file(path: str):
    """soundfile.SoundFile, with every way of failing turned into an AudioError that says what it is."""
    import soundfile

    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except PermissionError:
        raise AudioError(f"{path}: permission denied") from None
    except OSError as exc:  # ELOOP (a symlink loop), ENAMETOOLONG, ...
        raise AudioError(f"{path}: cannot open it ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO (pipe)" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
        raise AudioError(f"{path}: is {kind}, not an audio file; to transcribe a stream, pipe it to "
                         "`voxedge transcribe -` or use model.stream()")
    try:
        return soundfile.SoundFile(path)
    except PermissionError:
        raise AudioError(f"{path}: permission denied") from None
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as exc:
        raise AudioError(
            f"{path}: cannot decode it ({exc}). It is corrupt or in a format libsndfile does not read here; "
            "convert it first, e.g. `ffmpeg -i INPUT -ar 16000 -ac 1 out.wav`"
        ) from None


def decode_pcm(data, fmt: PcmFormat) -> np.ndarray:
    """Interpret little-endian interleaved PCM bytes as [frames, channels]."""
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


def fix_int16_scale(samples: np.ndarray, what: str, warned: list | None = None) -> np.ndarray:
    """Float audio on the int16 scale (peaks in the hundreds or thousands, not near 1.0) is scaled down
    to [-1, 1) with a warning: left as it is, it gives confident nonsense."""
    if samples.dtype != np.float32 or samples.size == 0:
        return samples
    with np.errstate(invalid="ignore"):
        peak = float(np.nanmax(np.abs(samples), initial=0.0))
    if not INT16_SCALE_PEAK < peak <= 32768.0 * 1.01:
        return samples
    if not (warned and warned[0]):
        warnings.warn(f"{what}: float samples peak at {peak:.0f}, not near 1.0: they look like int16 values stored "
                      "as floats, and were divided by 32768. Pass int16 arrays, or floats in [-1, 1].", stacklevel=4)
        if warned is not None:
            warned[0] = True
    return samples / np.float32(32768.0)


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
    return check_finite(samples)


def check_finite(samples: np.ndarray, where: str = "") -> np.ndarray:
    """Refuse NaN, infinite and out-of-float32-range samples, naming the first."""
    finite = np.isfinite(samples)
    if not finite.all():
        first = int(np.argmin(finite))
        raise AudioError(
            f"{where}the audio holds {samples.size - int(finite.sum())} NaN, infinite or out-of-range samples "
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
