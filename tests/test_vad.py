"""Silero VAD (voxedge/vad.py, voxedge/speech_chunks.py, export/vad.py) against faster-whisper.

faster-whisper's `get_speech_timestamps`, `collect_chunks`, `SpeechTimestampsMap` and
`restore_speech_timestamps` are the reference: same audio and options, identical chunks and times.
Speech placed at known offsets checks the chunks against the truth; the decision rules are also run
on random probability sequences (faster-whisper's loop fed the same numbers) to reach the corners
real audio rarely does (splits of overlong speech, hysteresis, dropped short speech).
"""

import os
import subprocess
import sys
import textwrap
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

fw_vad = pytest.importorskip("faster_whisper.vad", reason="faster-whisper is the reference for the VAD")

from export.bundle_writer import write_manifest  # noqa: E402
from export.vad import BUNDLE_FILE, copy_vad  # noqa: E402
from tests.conftest import SENTENCES, asset, synthesize  # noqa: E402
from voxedge.audio import load_audio  # noqa: E402
from voxedge.engines.whisper import WhisperModel  # noqa: E402
from voxedge.bundle import manifest_checksum, open_bundle  # noqa: E402
from voxedge.errors import AudioError, BundleError, UnsupportedError, VoxedgeError  # noqa: E402
from voxedge.options import VadOptions  # noqa: E402
from voxedge.speech_chunks import SpeechChunks  # noqa: E402
from voxedge.transcript import Segment, Word  # noqa: E402
from voxedge.vad import WINDOW, SileroVad, SpeechProbabilities, VadGate, speech_timestamps  # noqa: E402

RATE = 16000
OPTION_SETS = [  # faster-whisper's defaults, live-style settings, overlong-speech splits, hysteresis, short speech
    {},
    {"min_silence_duration_ms": 300, "speech_pad_ms": 100},
    {"min_silence_duration_ms": 100, "speech_pad_ms": 30},
    {"max_speech_duration_s": 3},
    {"max_speech_duration_s": 2, "min_silence_duration_ms": 500, "speech_pad_ms": 100},
    {"min_speech_duration_ms": 250, "min_silence_duration_ms": 50, "speech_pad_ms": 0},
    {"threshold": 0.3, "neg_threshold": 0.2},
    {"threshold": 0.8, "min_silence_duration_ms": 0, "speech_pad_ms": 200, "min_speech_duration_ms": 600},
]


def minimal_bundle(root, with_vad=True):
    """A bundle holding only the VAD, written by the exporter's own functions."""
    root.mkdir()
    entry = copy_vad(root, sys.stderr) if with_vad else None
    write_manifest(root, "whisper", {"checkpoint": "test"}, "fp32", {}, {"vad": entry})
    return root


@pytest.fixture(scope="module")
def vad(tmp_path_factory):
    return SileroVad.from_bundle(open_bundle(minimal_bundle(tmp_path_factory.mktemp("vad") / "bundle")))


@pytest.fixture(scope="module")
def placed(speech_dir):
    """(audio, [(first, last) non-silent sample of each sentence]): espeak-ng sentences placed at
    known offsets in 30 s of silence, and the same with background noise."""
    sentences = [load_audio(synthesize(text, speech_dir / f"vad_{i}.wav")) for i, text in enumerate(SENTENCES[:3])]
    offsets = [3 * RATE, 12 * RATE, 12 * RATE + len(sentences[1]) + RATE // 2]  # the last two 0.5 s apart
    audio = np.zeros(30 * RATE, np.float32)
    truth = []
    for offset, sentence in zip(offsets, sentences):
        audio[offset:offset + len(sentence)] = sentence
        loud = np.flatnonzero(np.abs(sentence) > 1e-3)
        truth.append((offset + loud[0], offset + loud[-1]))
    noisy = audio + (0.005 * np.random.default_rng(3).standard_normal(len(audio))).astype(np.float32)
    return audio, noisy, truth


@pytest.fixture(scope="module")
def clips(placed):
    audio, noisy, _ = placed
    rng = np.random.default_rng(11)
    beckett = load_audio(asset("beckett.wav"))
    return {
        "two_cities": load_audio(asset("two_cities.wav")),
        "beckett": beckett,
        "placed": audio,
        "placed_in_noise": noisy,
        "digital_silence": np.zeros(20 * RATE, np.float32),
        "noise": (0.05 * rng.standard_normal(10 * RATE)).astype(np.float32),
        "whole_windows": beckett[: 100 * WINDOW],  # a length that is a multiple of the window
        "shorter_than_a_window": beckett[RATE : RATE + 300],
        "empty": np.zeros(0, np.float32),
    }


def reference(audio, options: dict):
    return [(c["start"], c["end"]) for c in fw_vad.get_speech_timestamps(audio, fw_vad.VadOptions(**options))]


def gate_events(vad, audio, block: int, options=None):
    gate = VadGate(vad, options)
    events = []
    for begin in range(0, len(audio), block):
        events += gate.feed(audio[begin:begin + block])
    return events + gate.close()


def as_chunks(events):
    assert [kind for kind, _ in events] == ["speech_start", "speech_end"] * (len(events) // 2)
    return [(start, end) for (_, start), (_, end) in zip(events[::2], events[1::2])]


# -- the model ---------------------------------------------------------------------------------------


def test_probabilities_are_faster_whispers(vad, clips):
    for name, audio in clips.items():
        padded = np.pad(audio, (0, WINDOW - len(audio) % WINDOW))
        expected = fw_vad.get_vad_model()(padded)
        probabilities = SpeechProbabilities(vad)
        ours = np.concatenate([probabilities.feed(audio), probabilities.flush()])
        np.testing.assert_array_equal(ours, expected, err_msg=name)


def test_one_model_serves_threads_at_once(vad, clips):
    names = ["two_cities", "placed", "placed_in_noise", "beckett"]
    expected = {name: speech_timestamps(vad, clips[name]) for name in names}
    results = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, [
        speech_timestamps(vad, clips[n]) for _ in range(3)])) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {name: [chunks] * 3 for name, chunks in expected.items()}
    assert expected["two_cities"] and expected["placed"]


# -- file mode: chunks -------------------------------------------------------------------------------


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults")
def test_speech_timestamps_are_faster_whispers(vad, clips, options):
    for name, audio in clips.items():
        assert speech_timestamps(vad, audio, VadOptions(**options)) == reference(audio, options), name


def test_chunks_cover_speech_placed_at_known_offsets(vad, placed):
    audio, noisy, truth = placed
    pad = VadOptions().speech_pad_ms * RATE // 1000
    for signal in (audio, noisy):
        chunks = speech_timestamps(vad, signal)
        # the last two sentences are 0.5 s apart, less than the 2 s minimum silence: one chunk
        spans = [truth[0], (truth[1][0], truth[2][1])]
        assert len(chunks) == 2
        for (start, end), (first, last) in zip(chunks, spans):
            assert first - pad - 3 * WINDOW <= start <= first
            assert last <= end <= last + pad + 3 * WINDOW
        live = speech_timestamps(vad, signal, VadOptions(min_silence_duration_ms=300, speech_pad_ms=100))
        assert len(live) == 3
        for (start, end), (first, last) in zip(live, truth):
            assert first - 100 * 16 - 3 * WINDOW <= start <= first and last <= end <= last + 100 * 16 + 3 * WINDOW


def test_silence_and_noise_have_no_speech(vad, clips):
    for name in ("digital_silence", "noise", "empty"):
        assert speech_timestamps(vad, clips[name]) == [], name


# -- live gate ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"min_silence_duration_ms": 300, "speech_pad_ms": 100},
                                     {"max_speech_duration_s": 2, "min_silence_duration_ms": 500, "speech_pad_ms": 100}])
def test_gate_does_not_depend_on_feed_sizes(vad, clips, options):
    options = VadOptions(**options)
    for name in ("two_cities", "placed", "placed_in_noise"):
        audio = clips[name]
        whole = gate_events(vad, audio, len(audio), options)
        assert as_chunks(whole) == speech_timestamps(vad, audio, options) != []
        for block in (160, 511, 512, 4800, 44100):  # 10 ms ... 2.8 s
            assert gate_events(vad, audio, block, options) == whole, (name, block)
        rng = np.random.default_rng(len(audio))
        gate, events, position = VadGate(vad, options), [], 0
        while position < len(audio):  # irregular blocks, as a microphone callback delivers them
            size = int(rng.integers(1, 8000))
            events += gate.feed(audio[position:position + size])
            position += size
        assert events + gate.close() == whole, name


def test_settled_tells_how_much_audio_to_keep(vad, clips):
    options = VadOptions(min_silence_duration_ms=300, speech_pad_ms=100)
    pad = 100 * RATE // 1000
    audio = clips["placed"]
    gate, promised = VadGate(vad, options), []
    for begin in range(0, len(audio), 160):
        for _, index in gate.feed(audio[begin:begin + 160]):
            assert not promised or index >= promised[-1]
        promised.append(gate.settled)
        if not gate.in_speech:
            assert gate.samples - gate.settled < pad + 2 * WINDOW
    assert promised == sorted(promised)


def live_bytes() -> int:
    """Bytes that live Python objects hold (tracemalloc running). A full collection first empties
    CPython's free lists, whose fill (up to 2000 freed tuples of each small size: 96 KB of pairs)
    depends on what ran before, not on what the code keeps."""
    import gc
    import tracemalloc

    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_gate_memory_is_bounded_on_endless_input(vad):
    import tracemalloc

    gate = VadGate(vad)
    block = (0.01 * np.random.default_rng(5).standard_normal(RATE)).astype(np.float32)
    tracemalloc.start()
    for _ in range(500):  # onnxruntime's Python binding settles over its first few hundred runs (7 KB)
        gate.feed(block)
    warm = live_bytes()
    for _ in range(600):  # 10 more minutes of noise, one second at a time
        assert gate.feed(block) == []
    grown = live_bytes() - warm
    tracemalloc.stop()
    assert grown < 4096 and gate.samples == 1100 * RATE


def test_gate_input_errors(vad):
    gate = VadGate(vad)
    with pytest.raises(AudioError, match="1-D"):
        gate.feed(np.zeros((2, 800), np.float32))
    with pytest.raises(AudioError, match="NaN"):
        gate.feed(np.array([0.0, np.nan], np.float32))
    assert gate.feed(np.zeros(800, np.int16)) == [] and gate.samples == 800
    gate.close()
    assert gate.close() == []
    with pytest.raises(VoxedgeError, match="closed"):
        gate.feed(np.zeros(10, np.float32))


# -- the decision rules on random probability sequences ------------------------------------------------


class ScriptedVad:
    """Stands in for SileroVad: hands out the given probabilities, window by window."""

    def __init__(self, probabilities):
        self.probabilities, self.used = np.asarray(probabilities, np.float32), 0
        self.initial_state = SileroVad.initial_state

    def run(self, windows, state):
        self.used += len(windows)
        return self.probabilities[self.used - len(windows):self.used], state


@st.composite
def scripts(draw):
    """Probabilities in runs (speech, silence, values between the thresholds) and options."""
    runs = draw(st.lists(st.tuples(st.sampled_from([0.02, 0.2, 0.3, 0.36, 0.45, 0.5, 0.6, 0.95]),
                                   st.integers(1, 90)), min_size=1, max_size=14))
    probabilities = np.concatenate([np.full(n, p) for p, n in runs])
    length = (len(probabilities) - 1) * WINDOW + draw(st.integers(0, WINDOW - 1))
    options = dict(threshold=draw(st.sampled_from([0.5, 0.35])),
                   neg_threshold=draw(st.sampled_from([None, 0.25])),
                   min_speech_duration_ms=draw(st.sampled_from([0, 100, 250])),
                   max_speech_duration_s=draw(st.sampled_from([float("inf"), 1.0, 2.5])),
                   min_silence_duration_ms=draw(st.sampled_from([0, 100, 300, 2000])),
                   speech_pad_ms=draw(st.sampled_from([0, 30, 100, 400])))
    return probabilities, length, options, draw(st.sampled_from([160, 511, 512, 1000, 4096, 10**6]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=scripts())
def test_decision_rules_match_faster_whisper(script):
    probabilities, length, options, block = script
    audio = np.zeros(length, np.float32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fw_vad, "get_vad_model", lambda: lambda padded: probabilities[:len(padded) // WINDOW])
        expected = reference(audio, options)
    vad_options = VadOptions(**options)
    gate, events, promised = VadGate(ScriptedVad(probabilities), vad_options), [], []
    lookback = options["speech_pad_ms"] * 16 + 2 * WINDOW
    for begin in range(0, length, block):
        new = gate.feed(audio[begin:begin + block])
        assert not promised or all(index >= promised[-1] for _, index in new)
        events += new
        promised.append(gate.settled)
        if not gate.in_speech and not options["min_speech_duration_ms"]:  # else a start can wait (docs/vad.md)
            assert gate.samples - gate.settled < lookback
    events += gate.close()
    assert as_chunks(events) == expected
    assert speech_timestamps(ScriptedVad(probabilities), audio, vad_options) == expected


# -- file mode: cutting and restoring times ----------------------------------------------------------


def test_joined_speech_is_faster_whispers(vad, clips):
    for name in ("two_cities", "placed", "placed_in_noise", "digital_silence"):
        audio = clips[name]
        chunks = SpeechChunks(speech_timestamps(vad, audio))
        expected, _ = fw_vad.collect_chunks(audio, fw_vad.get_speech_timestamps(audio))
        np.testing.assert_array_equal(chunks.join(audio), np.concatenate(expected))
        assert chunks.speech_samples == sum(len(a) for a in expected)


def test_times_map_back_like_faster_whisper(vad, placed):
    from faster_whisper.transcribe import Segment as FwSegment, Word as FwWord, restore_speech_timestamps

    audio, _, _ = placed
    options = VadOptions(min_silence_duration_ms=300, speech_pad_ms=100)
    found = speech_timestamps(vad, audio, options)
    assert len(found) == 3
    chunks = SpeechChunks(found)
    theirs = fw_vad.SpeechTimestampsMap([{"start": s, "end": e} for s, e in found], RATE)
    joined = chunks.speech_samples / RATE
    ends = [t / RATE for t in theirs.chunk_end_sample]
    times = sorted(set(np.round(np.linspace(0, joined, 157), 2)) | set(ends) | {e - 0.01 for e in ends})
    for t in times:
        for is_end in (False, True):
            assert chunks.chunk_index(t, is_end) == theirs.get_chunk_index(t, is_end)
            assert chunks.original_time(t, is_end=is_end) == theirs.get_original_time(t, is_end=is_end)
    # segments as Whisper makes them (20 ms steps), with words straddling the joins and without words
    rng = np.random.default_rng(1)
    ours, fw = [], []
    bounds = np.sort(rng.choice(np.arange(0, joined, 0.02).round(2), 24, replace=False)).reshape(-1, 4)
    for i, (a, b, c, d) in enumerate(bounds):
        words = () if i % 3 == 0 else (Word(a, b, " one"), Word(b, c, " two"), Word(c, d, " three"))
        ours.append(Segment(a, d, "text", words))
        fw.append(FwSegment(i, 0, a, d, "text", [], 0.0, 0.0, 0.0,
                            [FwWord(w.start, w.end, w.text, 0.9) for w in words] or None, 0.0))
    restored = [chunks.restore(s) for s in ours]
    for mine, expected in zip(restored, restore_speech_timestamps(fw, [{"start": s, "end": e} for s, e in found], RATE)):
        assert (mine.start, mine.end) == (expected.start, expected.end)
        assert [(w.start, w.end) for w in mine.words] == [(w.start, w.end) for w in expected.words or []]
    assert max(s.end for s in restored) > joined + 1  # times moved past the silence that was cut out


# -- bundles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["bundles", "whisper_bundles"])
def test_exported_bundles_carry_the_vad(request, family, vad, clips):
    bundle = open_bundle(request.getfixturevalue(family)["int8"])
    entry = bundle.model_section["vad"]
    assert entry["file"] == BUNDLE_FILE and BUNDLE_FILE in bundle.manifest["files"] and entry["license"] == "MIT"
    audio = clips["two_cities"]
    assert speech_timestamps(SileroVad.from_bundle(bundle), audio) == reference(audio, {})


def test_bundle_without_vad(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("export.vad.DISTRIBUTION", "not-an-installed-distribution")
    bundle = open_bundle(minimal_bundle(tmp_path / "b"))  # exported where faster-whisper is missing
    assert "no Silero VAD found" in capsys.readouterr().err and bundle.model_section["vad"] is None
    assert not (tmp_path / "b" / BUNDLE_FILE).exists()
    with pytest.raises(UnsupportedError, match="no voice activity detector.*python -m export.*faster-whisper"):
        SileroVad.from_bundle(bundle)
    # Whisper's live streams are gated by default only where the bundle has a VAD
    whisper = SimpleNamespace(vad_by_default=WhisperModel.vad_by_default, bundle=bundle)
    assert WhisperModel.vad_by_default and WhisperModel.live_vad(whisper, None) is False


def test_bundle_with_a_foreign_vad(tmp_path):
    import json

    import onnx
    from onnx import TensorProto, helper

    root = minimal_bundle(tmp_path / "b")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["model"]["vad"]["sample_rate"] = 8000
    manifest["checksum"] = manifest_checksum(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="'sample_rate': 8000.*not the 16 kHz Silero VAD"):
        SileroVad.from_bundle(open_bundle(root))
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 512])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 512])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "other", [x], [y])
    onnx.save(helper.make_model(graph), tmp_path / "other.onnx")
    with pytest.raises(BundleError, match="not the Silero VAD v6 sequence graph"):
        SileroVad(tmp_path / "other.onnx")


def test_vad_runs_with_torch_and_faster_whisper_unimportable(tmp_path, clips):
    bundle = minimal_bundle(tmp_path / "b")
    np.save(tmp_path / "clip.npy", clips["placed"])
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers", "faster_whisper"):
                    raise ImportError(name + " is blocked for this test")
        sys.meta_path.insert(0, Block())
        import numpy as np
        from voxedge.bundle import open_bundle
        from voxedge.vad import SileroVad, speech_timestamps
        chunks = speech_timestamps(SileroVad.from_bundle(open_bundle({str(bundle)!r})), np.load({str(tmp_path / "clip.npy")!r}))
        print(chunks)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(reference(clips["placed"], {}))


def test_benchmark_runs():
    from benchmarks.vad import run

    result = run(minutes=0.5, repeats=1)  # it checks its chunks against faster-whisper's itself
    assert result["vad_chunks"] >= 1 and 0 < result["voxedge_live_10ms"]["fraction_of_real_time"] < 0.1
    assert 0.3 < result["live_engine_audio_fraction_defaults"] <= 1
