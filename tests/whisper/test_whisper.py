"""Whisper tiny.en: voxedge scored against faster-whisper on the same weights and the same audio."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile
import soxr
from faster_whisper import WhisperModel as FasterWhisper

import voxedge
from benchmarks.wer import corpus_wer, normalize
from voxedge.bundle import open_bundle
from tests.conftest import asset


@pytest.fixture(scope="module")
def models(whisper_bundles):
    return {preset: voxedge.load(path) for preset, path in whisper_bundles.items()}


def faster_whisper_text(ct2_dir, compute_type, audio) -> list:
    # greedy and deterministic, as voxedge decodes: no temperature fallback, no VAD
    model = FasterWhisper(str(ct2_dir), device="cpu", compute_type=compute_type)
    segments, _ = model.transcribe(audio, beam_size=1, temperature=0.0, vad_filter=False)
    return list(segments)


def stream_text(model, audio, block: int) -> str:
    stream = model.stream()
    events = [e for start in range(0, len(audio), block) for e in stream.feed(audio[start : start + block])]
    events += stream.close()
    return "".join(e.text for e in events if e.kind == "final")


def test_export_reproduces_transformers(whisper_bundles):
    report = open_bundle(whisper_bundles["fp32"]).json("validation.json")
    assert report["tokens_identical"] and report["max_abs_logit_delta_before_divergence"] < 1e-3
    assert report["steps_reference"] > 10  # a real sentence was decoded, not just end-of-text


def test_int8_corpus_wer_is_no_worse_than_faster_whisper_int8(models, corpus, ct2_dir):
    references = [text for _, _, text in corpus]
    ours = ["".join(s.text for s in models["int8"].transcribe(audio, sample_rate=16000)) for _, audio, _ in corpus]
    theirs = ["".join(s.text for s in faster_whisper_text(ct2_dir, "int8", audio)) for _, audio, _ in corpus]
    ours_wer, theirs_wer = corpus_wer(references, ours), corpus_wer(references, theirs)
    print(f"corpus WER over {len(corpus)} clips: voxedge int8 {ours_wer:.4f}, faster-whisper int8 {theirs_wer:.4f}")
    assert ours_wer <= theirs_wer + 0.01
    assert ours_wer < 0.15  # and it is actually transcribing


def test_fp32_long_form_matches_faster_whisper_fp32_segment_by_segment(models, corpus, ct2_dir):
    # Same weights, same algorithm (30 s windows, seek by the last timestamp, conditioned on the
    # previous text): the same segments, to the timestamp, on the two real recordings.
    for name, audio, _ in corpus[:2]:
        ours = list(models["fp32"].transcribe(audio, sample_rate=16000))
        theirs = faster_whisper_text(ct2_dir, "float32", audio)
        assert [normalize(s.text) for s in ours] == [normalize(s.text) for s in theirs], name
        np.testing.assert_allclose([(s.start, s.end) for s in ours], [(s.start, s.end) for s in theirs], atol=0.021)


def test_live_streaming_wer_is_close_to_file_wer(models, corpus):
    references = [text for _, _, text in corpus]
    files = ["".join(s.text for s in models["int8"].transcribe(audio, sample_rate=16000)) for _, audio, _ in corpus]
    live = [stream_text(models["int8"], audio, 1600) for _, audio, _ in corpus]
    file_wer, live_wer = corpus_wer(references, files), corpus_wer(references, live)
    print(f"corpus WER: file {file_wer:.4f}, live (LocalAgreement-2, 1 s steps) {live_wer:.4f}")
    assert live_wer <= file_wer + 0.03


def test_streaming_output_does_not_depend_on_the_feed_size(models, corpus):
    audio = corpus[1][1]
    texts = {block: stream_text(models["int8"], audio, block) for block in (160, 7001, len(audio))}
    assert len(set(texts.values())) == 1, texts


def test_committed_words_come_once_and_in_order(models, corpus):
    stream = models["int8"].stream()
    audio = corpus[0][1]
    finals = []
    for start in range(0, len(audio), 3200):
        for event in stream.feed(audio[start : start + 3200]):
            assert event.kind in ("partial", "final", "utterance")
            finals += [w for w in event.words] if event.kind == "final" else []
    finals += [w for e in stream.close() for w in e.words]
    starts = [w.start for w in finals]
    assert starts == sorted(starts) and len(finals) > 100
    assert corpus_wer([corpus[0][2]], ["".join(w.text for w in finals)]) < 0.1


def test_silence_gives_no_words(models):
    silence = np.zeros(16000 * 10, np.float32)
    noise = (0.001 * np.random.default_rng(0).standard_normal(16000 * 10)).astype(np.float32)
    for audio in (silence, noise):
        assert list(models["int8"].transcribe(audio, sample_rate=16000)) == []
        assert stream_text(models["int8"], audio, 16000).strip() == ""


def test_cli_writes_subtitles(whisper_bundles, corpus, tmp_path, capsys):
    import soundfile

    from voxedge.cli import main

    path = tmp_path / "beckett.wav"
    soundfile.write(path, corpus[1][1], 16000)
    assert main(["transcribe", str(path), "--bundle", str(whisper_bundles["int8"]), "--format", "vtt"]) == 0
    vtt = capsys.readouterr().out
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ") and "fail better" in vtt.lower()
    assert main(["transcribe", str(path), "--bundle", str(whisper_bundles["int8"]), "--delay-ms", "480"]) == 1
    assert "'delay_ms' does not apply to whisper models" in capsys.readouterr().err


def test_long_file_memory_is_flat(whisper_bundles, tmp_path):
    # Whisper files are read, resampled and turned into features window by window: the peak memory of a
    # 48 kHz stereo file does not grow with its length (it used to: 1.7 GB for 30 minutes).
    script = textwrap.dedent("""
        import resource, sys, voxedge
        model = voxedge.load(sys.argv[1])
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        segments = list(model.transcribe(sys.argv[2]))
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
    """)
    speech, rate = soundfile.read(asset("beckett.wav"), dtype="float32")
    speech = soxr.resample(speech, rate, 48000)
    growth = {}
    for minutes in (2, 20):
        path = tmp_path / f"{minutes}.flac"
        with soundfile.SoundFile(path, "w", 48000, 2, format="FLAC") as f:
            for _ in range(minutes * 2):  # 30 s blocks: 10 s of speech, 20 s of silence
                block = np.zeros((48000 * 30, 2), np.float32)
                block[: len(speech)] = speech[:, None]
                f.write(block)
        done = subprocess.run([sys.executable, "-c", script, str(whisper_bundles["int8"]), str(path)],
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        growth[minutes] = float(done.stdout)
    print(f"peak RSS growth while transcribing: {growth} MB")
    assert growth[20] < growth[2] + 40


@pytest.fixture(scope="module")
def silence_and_speech(corpus):
    """20 s of digital silence, beckett.wav, 15 s of silence, an espeak sentence, 5 s of silence."""
    parts = [np.zeros(20 * 16000, np.float32), corpus[1][1], np.zeros(15 * 16000, np.float32), corpus[8][1],
             np.zeros(5 * 16000, np.float32)]
    starts = np.cumsum([0] + [len(p) for p in parts])[:-1] / 16000
    return np.concatenate(parts), (starts[1], starts[3]), corpus[1][2] + " " + corpus[8][2]


def test_vad_filter_gives_faster_whispers_segments(models, ct2_dir, silence_and_speech):
    audio, (first, _), text = silence_and_speech
    ours = list(models["fp32"].transcribe(audio, sample_rate=16000, vad_filter=True))
    theirs, _ = FasterWhisper(str(ct2_dir), device="cpu", compute_type="float32").transcribe(
        audio, beam_size=1, temperature=0.0, vad_filter=True)
    theirs = list(theirs)
    assert [normalize(s.text) for s in ours] == [normalize(s.text) for s in theirs]
    np.testing.assert_allclose([(s.start, s.end) for s in ours], [(s.start, s.end) for s in theirs], atol=0.021)
    assert abs(ours[0].start - first) < 0.5  # the first subtitle starts with the speech, not at 0:00
    assert corpus_wer([text], ["".join(s.text for s in ours)]) < 0.15


def test_live_vad_utterances_follow_the_speech(models, silence_and_speech):
    audio, starts, text = silence_and_speech
    stream = models["int8"].stream(vad=True)
    events = [e for i in range(0, len(audio), 3200) for e in stream.feed(audio[i : i + 3200])] + stream.close()
    utterances = [e for e in events if e.kind == "utterance"]
    assert len(utterances) >= 2 and all(e.text.strip() for e in utterances)
    with_vad = corpus_wer([text], [" ".join(e.text for e in utterances)])
    without_vad = corpus_wer([text], [stream_text(models["int8"], audio, 3200)])
    print(f"live WER on speech between long silences: {with_vad:.3f} with VAD, {without_vad:.3f} without")
    assert with_vad < 0.2 and with_vad <= without_vad
    # utterances start where the speech starts, and nothing comes from the silence between
    assert abs(utterances[0].start - starts[0]) < 0.5
    assert any(abs(u.start - starts[1]) < 0.5 for u in utterances)
    assert all(w.start >= starts[0] - 0.3 for u in utterances for w in u.words)
    assert stream.stats.samples_skipped > 30 * 16000


def test_silence_gives_no_utterance(models):
    stream = models["int8"].stream(vad=True)
    assert [e for e in stream.feed(np.zeros(16000 * 20, np.float32)) + stream.close()] == []
