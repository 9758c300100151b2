"""The Voxtral Realtime runtime against transformers: tokens, logits, chunking, delays, memory, restarts."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import psutil
import pytest

import voxedge
from export.voxtral.reference import generate
from voxedge.errors import UnsupportedError, VoxedgeError

from .conftest import run_stream


@pytest.fixture(scope="module")
def fp32(bundles):
    return voxedge.load(bundles["fp32"])


@pytest.mark.parametrize("clip", ["short", "long", "tone"])
def test_fp32_tokens_identical_to_transformers_generate(fp32, hf_model, clips, clip):
    expected_tokens, expected_logits = generate(hf_model, clips[clip], 480)
    tokens, logits, stream = run_stream(fp32, clips[clip], 480)
    assert tokens == expected_tokens
    assert np.abs(logits - expected_logits).max() < 1e-3
    assert len(set(tokens)) > 5  # the random model is not stuck on one token: the comparison means something
    if clip == "long":  # both sliding windows (12 encoder frames, 16 tokens) wrapped many times
        assert stream.engine._encoder.cache.compactions > 2 and stream.engine._decoder.cache.compactions > 2


@pytest.mark.parametrize("delay_ms", [80, 480, 2400])
def test_delay_chosen_at_run_time_matches_transformers_at_that_delay(fp32, hf_model, clips, delay_ms):
    expected_tokens, _ = generate(hf_model, clips["short"], delay_ms)
    tokens, _, _ = run_stream(fp32, clips["short"], delay_ms)
    assert tokens == expected_tokens


def test_chunk_size_never_changes_the_tokens(fp32, clips):
    audio = clips["long"]
    runs = {chunk: run_stream(fp32, audio, 480, chunk)[0] for chunk in (160, 592, 1280, 16000, len(audio))}
    for chunk, tokens in runs.items():
        assert tokens == runs[len(audio)], f"feeding {chunk} samples at a time changed the tokens"


def test_encoder_batching_gives_the_same_tokens(fp32, clips):
    one = run_stream(fp32, clips["long"], 480, encoder_batch=1)[0]
    four = run_stream(fp32, clips["long"], 480, encoder_batch=4)[0]
    assert one == four


def test_the_longest_delay_works_with_every_encoder_batch(fp32, clips):
    # at 2400 ms the prompt is 63 tokens (252 encoder positions) and a batch of 3 or more used to overrun
    # the encoder cache, which grew to its cap without making room (onnxruntime's GroupQueryAttention error)
    one = run_stream(fp32, clips["short"], 2400, encoder_batch=1)[0]
    for batch in (3, 4, 8):
        assert run_stream(fp32, clips["short"], 2400, encoder_batch=batch)[0] == one, batch
    segments = list(fp32.transcribe(clips["short"], sample_rate=16000, delay_ms=2400))
    assert segments


def test_unsupported_delay_is_refused(fp32):
    with pytest.raises(UnsupportedError, match="choose one of"):
        fp32.stream(delay_ms=500)


def test_token_timestamps_follow_the_documented_convention(fp32, clips):
    # token k of a session is stamped with the 80 ms frame [k * 0.08, (k + 1) * 0.08) s
    stamps = []
    stream = fp32.stream(delay_ms=480, on_step=lambda tok, lg, start, end: stamps.append((start, end)))
    stream.feed(clips["short"])
    stream.close()
    expected = [(k * 0.08, (k + 1) * 0.08) for k in range(len(stamps))]
    np.testing.assert_allclose(stamps, expected, atol=1e-9)
    # the transcript's words and segments live on the same clock, in order, inside the audio + flush
    segments = list(fp32.transcribe(clips["short"], sample_rate=16000))
    words = [w for s in segments for w in s.words]
    assert words and all(a.end <= b.start + 1e-9 for a, b in zip(words, words[1:]))
    assert words[-1].end <= len(stamps) * 0.08 + 1e-9


def test_events_partial_and_final(fp32, clips):
    stream = fp32.stream(delay_ms=480)
    events = [e for start in range(0, len(clips["long"]), 1600) for e in stream.feed(clips["long"][start : start + 1600])]
    events += stream.close()
    finals = [e for e in events if e.kind == "final"]
    assert finals and all(e.words for e in finals)
    # live words are the file's words: the same tokens, whatever the feed (file mode encodes 4 steps a call)
    file_words = [w for s in fp32.transcribe(clips["long"], sample_rate=16000) for w in s.words]
    assert [w for e in finals for w in e.words] == file_words
    # a partial is the word still growing: the word that later becomes final there starts with it
    for i, partial in enumerate(events):
        if partial.kind == "partial":
            later = next(w for e in events[i:] if e.kind == "final" for w in e.words if w.start == partial.start)
            assert later.text.startswith(partial.text) and later.end >= partial.end
    assert not any(e.kind == "partial" for e in events[-1:])  # close() leaves nothing pending
    assert stream.close() == []
    with pytest.raises(VoxedgeError, match="closed"):
        stream.feed(clips["short"])


def test_restart_after_end_of_sequence_transcribes_the_rest(fp32, clips, monkeypatch):
    # Force an end-of-sequence token at step 20: the stream must start a new session on the audio of
    # the frame after it, i.e. give exactly the tokens of a fresh stream fed that audio.
    from voxedge.engines import voxtral_realtime as engine

    audio = clips["long"]
    original = engine.VoxtralSession._emit
    forced = {"done": False}

    def emit(self, token, start, end):
        if self._step == 21 and not forced["done"]:
            forced["done"] = True
            token = self.cfg.tokens.eos
        return original(self, token, start, end)

    monkeypatch.setattr(engine.VoxtralSession, "_emit", emit)
    tokens, _, stream = run_stream(fp32, audio, 480, chunk=1600)
    monkeypatch.setattr(engine.VoxtralSession, "_emit", original)
    assert stream.stats.resets == 1
    fresh, _, _ = run_stream(fp32, audio[21 * 1280 :], 480)
    assert tokens[21:] == fresh


def test_feed_accepts_any_dtype_layout_and_rate(fp32, clips):
    import soxr

    audio = clips["short"]
    reference = run_stream(fp32, audio, 480)[0]
    as_int16 = run_stream(fp32, (audio * 32767).astype(np.int16), 480)[0]
    stereo = run_stream(fp32, np.stack([audio, audio], axis=1), 480)[0]
    assert stereo == reference and len(as_int16) == len(reference)
    audio48 = soxr.resample(audio, 16000, 48000).astype(np.float32)
    stream = fp32.stream(delay_ms=480)
    for start in range(0, len(audio48), 4800):
        stream.feed(audio48[start : start + 4800], sample_rate=48000)
    stream.close()
    assert abs(stream.stats.samples_in - len(audio)) <= 2


def test_unavailable_execution_provider_falls_back_to_cpu_with_a_warning(bundles):
    with pytest.warns(UserWarning, match="not available.*falling back to CPU"):
        model = voxedge.load(bundles["int8"], providers=["cuda", "cpu"])
    assert model.decoder.get_providers() == ["CPUExecutionProvider"]


def test_transcribe_command_prints_the_json_contract(bundles, clips, tmp_path, capsys):
    import soundfile

    from voxedge.cli import main

    path = tmp_path / "clip.wav"
    soundfile.write(path, clips["short"], 16000)
    assert main(["transcribe", str(path), str(path), "--bundle", str(bundles["int8"]), "--format", "json",
                 "--delay-ms", "960"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    result = json.loads(lines[0])
    assert set(result) == {"text", "language", "language_probability", "duration", "segments"}
    assert abs(result["duration"] - len(clips["short"]) / 16000) < 1e-3
    assert all(set(s) == {"start", "end", "text", "words"} for s in result["segments"])
    assert main(["transcribe", str(path), "--bundle", str(bundles["int8"]), "--delay-ms", "500"]) == 1
    assert "choose one of" in capsys.readouterr().err


def test_endless_stream_memory_is_bounded(bundles):
    # 30 minutes of audio through the tiny model, a second at a time: after a two-minute warm-up the
    # resident memory may not grow by more than 50 MB.
    model = voxedge.load(bundles["int8"])
    stream = model.stream(delay_ms=480)
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    process = psutil.Process()
    for second in range(30 * 60):
        tone = 0.2 * np.sin(2 * np.pi * (200 + 10 * (second % 37)) * t)
        stream.feed((tone + 0.05 * rng.standard_normal(16000)).astype(np.float32))
        if second == 120:
            warm = process.memory_info().rss
    grown = (process.memory_info().rss - warm) / 2**20
    assert stream.stats.steps >= 30 * 60 * 12.5 - 60
    print(f"RSS growth after warm-up over 28 minutes: {grown:.1f} MB")
    assert grown < 50


def test_runtime_works_with_torch_and_transformers_unimportable(bundles, clips, tmp_path):
    np.save(tmp_path / "clip.npy", clips["short"])
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers"):
                    raise ImportError(name + " is blocked for this test")
        sys.meta_path.insert(0, Block())
        import numpy as np
        import voxedge
        model = voxedge.load({str(bundles["int8"])!r})
        audio = np.load({str(tmp_path / "clip.npy")!r})
        segments = list(model.transcribe(audio, sample_rate=16000))
        stream = model.stream(delay_ms=240)
        events = stream.feed(audio) + stream.close()
        assert stream.stats.steps > 50 and segments and events
        assert not any(m.split(".")[0] in ("torch", "transformers") for m in sys.modules)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
