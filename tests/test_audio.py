"""Audio input: decoding, dtype/channel handling, resampling quality and the errors users see."""

import numpy as np
import pytest
import soundfile
from scipy import signal

from voxedge.audio import PcmFormat, StreamResampler, load_audio, resample
from voxedge.errors import AudioError, VoxedgeError

RNG = np.random.default_rng(0)


def tone(seconds=1.0, rate=16000, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# -- files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ext, fmt, subtype, tolerance",
    [("wav", "WAV", "PCM_16", 1 / 32768), ("flac", "FLAC", "PCM_16", 1 / 32768), ("wav", "WAV", "FLOAT", 0)],
)
def test_lossless_files_decode_to_the_written_samples(tmp_path, ext, fmt, subtype, tolerance):
    x = tone()
    path = tmp_path / f"t.{ext}"
    soundfile.write(path, x, 16000, format=fmt, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y - x).max() <= tolerance


@pytest.mark.parametrize("ext, fmt, subtype", [("ogg", "OGG", "VORBIS"), ("mp3", "MP3", "MPEG_LAYER_III")])
def test_lossy_files_decode(tmp_path, ext, fmt, subtype):
    if fmt not in soundfile.available_formats():
        pytest.skip(f"this libsndfile cannot handle {fmt}")
    x = tone(2.0)
    path = tmp_path / f"t.{ext}"
    soundfile.write(path, x, 16000, format=fmt, subtype=subtype)
    y = load_audio(path)
    # Codecs add delay and padding; the tone must still be there, at the right length give or take a frame.
    assert abs(len(y) - len(x)) < 2048
    n = min(len(x), len(y)) - 4000
    lag = np.argmax(np.correlate(y[2000 : 2000 + n], x[2000:3000], mode="valid")[:1100])
    assert np.corrcoef(y[2000 + lag : 2000 + lag + 8000], x[2000 : 2000 + 8000])[0, 1] > 0.99


def test_stereo_48k_file_is_downmixed_and_resampled(tmp_path):
    left, right = tone(1.0, 48000, 440), tone(1.0, 48000, 660)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 48000, subtype="FLOAT")
    y = load_audio(path)
    assert len(y) == 16000
    expected = resample((left + right) / 2, 48000)
    assert np.abs(y - expected).max() < 1e-6


def test_missing_and_corrupt_files_raise_audio_errors(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + RNG.bytes(100))
    with pytest.raises(AudioError, match="cannot decode"):
        load_audio(garbage)
    text = tmp_path / "notes.flac"
    text.write_text("not audio at all")
    with pytest.raises(AudioError, match="ffmpeg"):
        load_audio(text)
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="no audio"):
        load_audio(empty)


# -- arrays -----------------------------------------------------------------------------------------


def test_integer_pcm_is_scaled_to_unit_range():
    x = np.array([0, 16384, -32768, 32767], np.int16)
    np.testing.assert_array_equal(load_audio(x), [0.0, 0.5, -1.0, 32767 / 32768])
    x32 = np.array([0, 1 << 30, -(1 << 31)], np.int32)
    np.testing.assert_allclose(load_audio(x32), [0.0, 0.5, -1.0])
    assert load_audio(np.ones(10, np.float64) * 0.25).dtype == np.float32


@pytest.mark.parametrize("channels_first", [False, True])
def test_multichannel_arrays_are_averaged_in_either_layout(channels_first):
    x = RNG.standard_normal((3, 1000)).astype(np.float32)
    arr = x if channels_first else x.T
    np.testing.assert_allclose(load_audio(arr), x.mean(axis=0), atol=1e-7)
    np.testing.assert_allclose(load_audio(arr, channels_first=channels_first), x.mean(axis=0), atol=1e-7)


def test_ambiguous_or_bad_shapes_and_dtypes_are_refused():
    with pytest.raises(AudioError, match="channels_first"):
        load_audio(np.zeros((4, 4), np.float32))
    with pytest.raises(AudioError, match="channels_first"):
        load_audio(np.zeros((100, 200), np.float32))
    with pytest.raises(AudioError, match="1-D"):
        load_audio(np.zeros((2, 3, 100), np.float32))
    for dtype in (np.uint8, np.int64, np.complex64, bool):
        with pytest.raises(AudioError, match="dtype"):
            load_audio(np.zeros(100, dtype))
    with pytest.raises(AudioError, match="numpy array"):
        load_audio([0.0, 0.1])


def test_empty_and_non_finite_input_is_refused():
    with pytest.raises(AudioError, match="empty"):
        load_audio(np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="empty"):
        load_audio(np.zeros((0, 2), np.float32))
    x = np.zeros(100, np.float32)
    x[42] = np.nan
    with pytest.raises(AudioError, match="first at index 42"):
        load_audio(x)
    with pytest.raises(AudioError, match="infinite"):
        load_audio(np.array([0.0, np.inf], np.float32))
    with pytest.raises(AudioError, match="out-of-range"):
        load_audio(np.array([0.0, 1e300]))
    with pytest.raises(AudioError, match="too short"):
        load_audio(np.zeros(1, np.float32), sample_rate=48000)
    assert issubclass(AudioError, VoxedgeError)


# -- raw PCM ----------------------------------------------------------------------------------------


def test_pcm_bytes_with_a_declared_format():
    stereo = (RNG.standard_normal((800, 2)) * 8000).astype("<i2")
    y = load_audio(stereo.tobytes(), pcm_format=PcmFormat(sample_rate=16000, dtype="int16", channels=2))
    np.testing.assert_allclose(y, stereo.astype(np.float32).mean(axis=1) / 32768, atol=1e-7)
    mono = tone(0.1).astype("<f4")
    np.testing.assert_array_equal(load_audio(mono.tobytes(), pcm_format=PcmFormat(16000, "float32")), mono)


def test_pcm_bytes_errors():
    with pytest.raises(AudioError, match="pcm_format"):
        load_audio(b"\x00\x00")
    with pytest.raises(AudioError, match="cut mid-sample"):
        load_audio(b"\x00\x00\x00", pcm_format=PcmFormat(16000))
    with pytest.raises(AudioError, match="not supported"):
        load_audio(b"\x00\x00", pcm_format=PcmFormat(16000, dtype="int24"))


# -- resampling -------------------------------------------------------------------------------------


def chirp(rate, f0, f1, seconds=2.0):
    t = np.arange(int(seconds * rate)) / rate
    return signal.chirp(t, f0, seconds, f1).astype(np.float32) * 0.5


@pytest.mark.parametrize("rate", [44100, 48000, 22050])
def test_resampling_rejects_aliases_at_least_as_well_as_scipy(rate):
    # Everything in this chirp lies above the 8 kHz Nyquist limit of 16 kHz audio: whatever survives
    # resampling is alias. Reference: scipy's Kaiser-windowed polyphase resampler.
    x = chirp(rate, 8800, rate / 2 - 200)
    ours = resample(x, rate)
    g = np.gcd(rate, 16000)
    ref = signal.resample_poly(x, 16000 // g, rate // g)
    inner = slice(1000, -1000)  # filter edges ring in both
    alias_db = 10 * np.log10(np.mean(ours[inner] ** 2) / np.mean(x**2))
    ref_db = 10 * np.log10(np.mean(ref[inner] ** 2) / np.mean(x**2))
    assert alias_db < -80 and alias_db <= ref_db + 1, (alias_db, ref_db)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_keeps_the_passband_and_the_length(rate):
    x = chirp(rate, 50, min(rate / 2, 16000 / 2) * 0.85)
    ours = resample(x, rate)
    g = np.gcd(rate, 16000)
    ref = signal.resample_poly(x, 16000 // g, rate // g)
    assert len(ours) == round(len(x) * 16000 / rate) == len(ref)
    inner = slice(500, -500)
    assert np.abs(ours[inner] - ref[inner]).max() < 0.01


def test_stream_resampler_matches_whole_signal_resampling():
    x = chirp(48000, 50, 7000)
    whole = resample(x, 48000)
    stream = StreamResampler(48000)
    blocks = np.array_split(x, [480 * k for k in (1, 7, 30, 31, 100)])
    pieces = [stream.process(b) for b in blocks] + [stream.process(np.zeros(0, np.float32), last=True)]
    streamed = np.concatenate(pieces)
    assert abs(len(streamed) - len(whole)) <= 1
    n = min(len(streamed), len(whole))
    assert np.abs(streamed[200 : n - 200] - whole[200 : n - 200]).max() < 1e-3
