"""Log-mel front end against transformers' feature extractors, padding against mistral-common."""

import numpy as np
import pytest

pytest.importorskip("transformers", reason="the reference feature extractors come from transformers")

from transformers import WhisperFeatureExtractor  # noqa: E402
from transformers.models.voxtral_realtime.feature_extraction_voxtral_realtime import (  # noqa: E402
    VoxtralRealtimeFeatureExtractor,
)

from export.voxtral.reference import padded_audio  # noqa: E402
from voxedge.features import BufferLogMel, LogMelSpectrogram, StreamingLogMel, StreamingPadding  # noqa: E402

HF_VOXTRAL = VoxtralRealtimeFeatureExtractor()
PADDING = StreamingPadding()


def hf_voxtral_offline_frames(audio, delay_ms):
    padded = padded_audio(audio, delay_ms)  # mistral-common's own padder
    return HF_VOXTRAL(padded, sampling_rate=16000, return_tensors="np")["input_features"][0]


def voxtral_streamed_frames(audio, delay_ms, chunk):
    """Our streaming front end: real audio in chunks of `chunk` samples, then the flush pad."""
    n_d = delay_ms // 80
    mel = StreamingLogMel(LogMelSpectrogram(HF_VOXTRAL.mel_filters, log_mel_max=1.5), left_pad=PADDING.left_pad)
    frames = [mel.feed(audio[i : i + chunk]) for i in range(0, len(audio), chunk)]
    frames.append(mel.feed(np.zeros(PADDING.flush_pad(len(audio), n_d), np.float32)))
    return np.concatenate(frames, axis=1)


@pytest.mark.parametrize("delay_ms", [80, 480, 2400])
@pytest.mark.parametrize("clip", ["espeak_clip", "noise_clip"])
def test_streaming_voxtral_features_equal_transformers_offline(request, clip, delay_ms):
    audio = request.getfixturevalue(clip)[: 16000 * 3 + 777]  # a length that is no multiple of anything
    ours = voxtral_streamed_frames(audio, delay_ms, chunk=1280)
    ref = hf_voxtral_offline_frames(audio, delay_ms)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-4
    # frames 0..254 see only the 2.56 s left pad, digital silence: -0.625 in every bin. (Frame 255's
    # window already reaches real samples 0..39, so it is not constant, whatever the spec's 1.2 says.)
    np.testing.assert_array_equal(ours[:, :255], np.full((128, 255), -0.625, np.float32))


def test_chunk_size_never_changes_a_frame(espeak_clip):
    audio = espeak_clip[:40000]
    frames = {chunk: voxtral_streamed_frames(audio, 480, chunk) for chunk in (1, 37, 160, 1280, 16000)}
    for chunk, f in frames.items():
        np.testing.assert_array_equal(f, frames[16000], err_msg=f"chunk {chunk}")


def test_frames_are_emitted_as_soon_as_their_window_is_complete():
    mel = StreamingLogMel(LogMelSpectrogram(HF_VOXTRAL.mel_filters, log_mel_max=1.5), left_pad=PADDING.left_pad)
    # padded sample index = real index + 40960; frame g needs padded samples up to 160 g + 199
    assert mel.feed(np.zeros(0, np.float32)).shape[1] == 255  # frames 0..254 see only the left pad
    emitted = [mel.feed(np.zeros(1, np.float32)).shape[1] for _ in range(400)]
    assert sum(emitted[:39]) == 0 and emitted[39] == 1  # frame 255 completes with real sample 39
    assert sum(emitted[40:199]) == 0 and emitted[199] == 1  # frame 256 with sample 199
    assert emitted[359] == 1 and sum(emitted) == 3  # frame 257 with sample 359


def test_first_chunk_and_flush_pad_follow_the_spec_tables():
    assert PADDING.left_pad == 40960
    assert [PADDING.first_chunk(n) for n in (1, 3, 6, 12, 30)] == [2600, 5160, 9000, 16680, 39720]
    assert PADDING.flush_pad(16000 * 4, 6) == 21760 + 40  # 4 s is a whole number of 80 ms tokens
    assert PADDING.flush_pad(16000 * 4 + 1, 6) == 1279 + 21760 + 40
    # the first chunk yields exactly the prompt's frames: 8 per token for 33 + n_d tokens
    mel = StreamingLogMel(LogMelSpectrogram(HF_VOXTRAL.mel_filters, log_mel_max=1.5), left_pad=PADDING.left_pad)
    assert mel.feed(np.zeros(PADDING.first_chunk(6), np.float32)).shape[1] == 8 * 39


@pytest.mark.parametrize("clip", ["espeak_clip", "noise_clip"])
def test_whisper_features_equal_transformers(request, clip):
    hf = WhisperFeatureExtractor(feature_size=80)
    audio = request.getfixturevalue(clip)
    window = np.pad(audio, (0, 480000 - len(audio)))  # Whisper always sees 30 s windows
    ours = LogMelSpectrogram(hf.mel_filters)(window)
    ref = hf(audio, sampling_rate=16000, return_tensors="np")["input_features"][0]
    assert ours.shape == ref.shape == (80, 3000)
    assert np.abs(ours - ref).max() < 1e-4


def test_live_buffer_features_are_those_of_the_whole_buffer(espeak_clip):
    """A live buffer grows by steps and is cut at its front, on the 160-sample grid or off it; its
    features, computed frame by frame as they become known, equal the whole buffer's bit for bit."""
    whole = LogMelSpectrogram(WhisperFeatureExtractor(feature_size=80).mel_filters)
    buffer_mel = BufferLogMel(whole)
    audio = np.concatenate([espeak_clip, espeak_clip[::-1]])
    rng = np.random.default_rng(0)
    start = end = 0
    for _ in range(120):
        end = min(end + int(rng.choice([0, 1, 150, 1600, 16000])), len(audio))
        if rng.random() < 0.2:
            start = min(start + int(rng.integers(0, 200)) * int(rng.choice([1, 160])), end)
        buffer = audio[start:end]
        np.testing.assert_array_equal(buffer_mel(buffer, start), whole(np.pad(buffer, (0, 160)))[:, :-1])


def test_streaming_needs_a_fixed_ceiling():
    with pytest.raises(ValueError, match="not causal"):
        StreamingLogMel(LogMelSpectrogram(HF_VOXTRAL.mel_filters))
