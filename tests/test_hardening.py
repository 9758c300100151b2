"""Hardening: fuzzed input, tampered bundles, overload, the offline guarantee, threads.

Only `VoxedgeError`s may escape voxedge; accepted audio is never dropped without a count; no socket is
ever opened; a live stream shuts down cleanly whatever happens in the threads around it.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxedge
from voxedge.bundle import MANIFEST, manifest_checksum, open_bundle, sha256_file
from voxedge.errors import BundleError, InferenceError, VoxedgeError

@pytest.fixture(scope="module")
def voxtral(bundles):
    return voxedge.load(bundles["int8"])


@pytest.fixture(scope="module")
def whisper(whisper_bundles):
    return voxedge.load(whisper_bundles["int8"])


def only_voxedge_errors(action) -> None:
    try:
        action()
    except VoxedgeError:
        pass


# -- fuzzed audio -----------------------------------------------------------------------------------

DTYPES = [np.int8, np.uint8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64, np.complex64, bool]


@st.composite
def arrays(draw):
    dtype = draw(st.sampled_from(DTYPES))
    ndim = draw(st.integers(0, 3))
    shape = tuple(draw(st.lists(st.integers(0, 2400), min_size=ndim, max_size=ndim)))
    if np.prod(shape) > 40000:
        shape = (40000,)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.0, 1e-42, 1e-5, 0.5, 1.0, 1e4, 1e30]))  # denormals .. huge
    with np.errstate(all="ignore"):  # huge values cast to integers: whatever comes out is fine input
        x = np.asarray((rng.standard_normal(shape) * scale).astype(dtype) if dtype is not bool else rng.random(shape) > 0.5)
    if x.size and np.issubdtype(x.dtype, np.floating) and draw(st.booleans()):
        x.flat[draw(st.integers(0, x.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return x


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(audio=arrays(), rate=st.sampled_from([None, 8000, 16000, 44100, 0, -5, 10**7]),
       chunks=st.lists(st.integers(1, 5000), min_size=1, max_size=5))
def test_fuzzed_arrays_only_raise_voxedge_errors(voxtral, audio, rate, chunks):
    only_voxedge_errors(lambda: list(voxtral.transcribe(audio, sample_rate=rate)))

    def stream():
        s = voxtral.stream(delay_ms=80)
        if audio.ndim == 0:
            s.feed(audio)
        position = 0
        for size in chunks * 3:
            s.feed(audio[position : position + size], sample_rate=rate or 16000)
            position += size
        s.close()

    only_voxedge_errors(stream)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4000), header=st.sampled_from([b"", b"RIFF", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC",
                                                             b"OggS", b"ID3\x03"]))
def test_fuzzed_files_only_raise_voxedge_errors(voxtral, tmp_path, data, header):
    path = tmp_path / "fuzz.wav"
    path.write_bytes(header + data)
    only_voxedge_errors(lambda: list(voxtral.transcribe(path)))


def test_onnxruntime_failures_become_inference_errors(whisper, monkeypatch):
    """onnxruntime failing inside a graph (here the encoder given the wrong length, as a graph at odds with
    its inputs, or memory running out, would) reaches the caller as an InferenceError saying what failed,
    onnxruntime's exception its cause; the stream it hit is closed. Other exceptions pass unchanged."""
    noise = (0.1 * np.random.default_rng(0).standard_normal(2 * 16000)).astype(np.float32)
    monkeypatch.setattr(whisper, "encode", lambda *_: whisper.encoder.run(None, {"mel": np.zeros((1, 80, 7), np.float32)}))
    with pytest.raises(InferenceError, match="^transcription failed: onnxruntime failed: ") as failed:
        list(whisper.transcribe(noise, sample_rate=16000))
    assert type(failed.value.__cause__).__module__.startswith("onnxruntime")
    stream = whisper.stream(vad=False)
    with pytest.raises(InferenceError, match="^the stream cannot go on .*onnxruntime failed: "):
        stream.feed(noise)
    with pytest.raises(VoxedgeError, match="closed"):
        stream.feed(noise)

    def not_onnxruntime(*_):
        raise ZeroDivisionError("a bug of voxedge's own")

    monkeypatch.setattr(whisper, "encode", not_onnxruntime)
    with pytest.raises(ZeroDivisionError):
        whisper.stream(vad=False).feed(noise)


def test_whisper_survives_the_same_inputs(whisper, tmp_path):
    rng = np.random.default_rng(0)
    cases = [np.zeros(0, np.float32), np.full(1000, np.nan, np.float32), rng.standard_normal(3000) * 1e30,
             np.full(20000, 1e-42, np.float32), rng.integers(-128, 127, 5000).astype(np.int8), rng.bytes(100)]
    for audio in cases:
        only_voxedge_errors(lambda: list(whisper.transcribe(audio, sample_rate=16000)))
        only_voxedge_errors(lambda: whisper.stream().feed(audio))
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + rng.bytes(3000))
    only_voxedge_errors(lambda: list(whisper.transcribe(bad)))


# -- bundles ----------------------------------------------------------------------------------------


def rewrite_manifest(bundle, change) -> None:
    """Edit the manifest as someone who knows the format would: its checksum made to agree."""
    manifest = json.loads((bundle / MANIFEST).read_text())
    change(manifest)
    manifest["checksum"] = manifest_checksum(manifest)
    (bundle / MANIFEST).write_text(json.dumps(manifest))


def rehash(bundle, name) -> None:
    """What a careless or malicious edit does: make the manifest agree with the modified file."""
    def update(m):
        m["files"][name] = {"bytes": (bundle / name).stat().st_size, "sha256": sha256_file(bundle / name)}
    rewrite_manifest(bundle, update)


@pytest.fixture
def bundle_copy(bundles, tmp_path):
    return shutil.copytree(bundles["int8"], tmp_path / "bundle")


def test_missing_file(bundle_copy):
    (bundle_copy / "tokenizer.npz").unlink()
    with pytest.raises(BundleError, match="tokenizer.npz is missing"):
        voxedge.load(bundle_copy)


def test_truncated_graph(bundle_copy):
    graph = bundle_copy / "decoder_step.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    with pytest.raises(BundleError, match="truncated or modified"):
        voxedge.load(bundle_copy)
    rehash(bundle_copy, "decoder_step.onnx")  # even when the manifest was made to agree
    with pytest.raises(BundleError, match="onnxruntime cannot load this graph"):
        voxedge.load(bundle_copy)


def test_hash_mismatch(bundle_copy):
    table = bundle_copy / "ada_scales.npy"
    raw = bytearray(table.read_bytes())
    raw[-1] ^= 1
    table.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="sha256"):
        voxedge.load(bundle_copy)


def test_unknown_format_version(bundle_copy):
    rewrite_manifest(bundle_copy, lambda m: m.update(format_version=99))
    with pytest.raises(BundleError, match="format version 99"):
        voxedge.load(bundle_copy)
    (bundle_copy / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        voxedge.load(bundle_copy)


@pytest.mark.parametrize("escape", ["../outside.npy", "/etc/hostname", "link.npy"])
def test_paths_outside_the_bundle_are_refused(bundle_copy, tmp_path, escape):
    outside = tmp_path / "outside.npy"
    shutil.copy(bundle_copy / "ada_scales.npy", outside)
    if escape == "link.npy":
        os.symlink(outside, bundle_copy / "link.npy")
    target = escape if escape != "../outside.npy" else "../outside.npy"

    def point_at_it(m):
        m["files"][target] = {"bytes": outside.stat().st_size, "sha256": sha256_file(outside)}
        m["model"]["ada_scales"] = target

    rewrite_manifest(bundle_copy, point_at_it)
    with pytest.raises(BundleError, match="outside the bundle|refusing"):
        voxedge.load(bundle_copy)


def test_a_graph_reaching_for_weights_outside_the_bundle_is_refused(bundle_copy, tmp_path):
    # The .onnx itself names its external data file: point it outside (and fix the manifest, as an
    # attacker would). onnxruntime refuses it, and voxedge reports a BundleError.
    import onnx

    graph = bundle_copy / "decoder_step.onnx"
    model = onnx.load(graph, load_external_data=False)
    shutil.move(bundle_copy / "decoder_step.onnx.data", tmp_path / "decoder_step.onnx.data")
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../decoder_step.onnx.data"
    onnx.save_model(model, graph)
    rehash(bundle_copy, "decoder_step.onnx")
    rewrite_manifest(bundle_copy, lambda m: m["files"].pop("decoder_step.onnx.data"))
    rewrite_manifest(bundle_copy, lambda m: m["model"]["embedding"].update(file="decoder_step.onnx"))
    with pytest.raises(BundleError, match="re-export the bundle"):
        voxedge.load(bundle_copy)


def test_no_file_outside_the_bundle_is_opened_by_python(bundles, tmp_path):
    opened = []
    root = os.path.realpath(bundles["int8"])

    def audit(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.path.realpath(os.fsdecode(args[0])))

    sys.addaudithook(audit)  # hooks cannot be removed: the list is only read right below
    start = len(opened)
    voxedge.load(bundles["int8"])
    python = (os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix))
    reads = [p for p in opened[start:] if not p.startswith(python) and not p.endswith(".py") and "__pycache__" not in p]
    assert reads and all(p.startswith(root) for p in reads), reads


# -- overload ---------------------------------------------------------------------------------------


def slow_down(monkeypatch, seconds):
    from voxedge.engines import kv_cache

    original = kv_cache.CachedGraph.run

    def slow(self, feeds, n_new):
        time.sleep(seconds)
        return original(self, feeds, n_new)

    monkeypatch.setattr(kv_cache.CachedGraph, "run", slow)


def test_overload_drops_are_counted_reported_and_warned(voxtral, monkeypatch):
    # The engine takes 2 x 100 ms per 80 ms step: 2.5x slower than real time. A producer pushes 4 s
    # of audio in real time into a 1 s ring: the oldest audio must be dropped, counted and reported.
    slow_down(monkeypatch, 0.1)
    audio = (0.1 * np.random.default_rng(0).standard_normal(16000 * 4)).astype(np.float32)
    live = voxedge.LiveStream(voxtral.stream(delay_ms=480), buffer_seconds=1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for start in range(0, len(audio), 1600):
            live.push(audio[start : start + 1600])
            time.sleep(0.1)
        live.close()
        events = list(live.events())
    stats = live.stream.stats
    assert live.ring.dropped > 0
    assert stats.samples_dropped == live.ring.dropped == sum(e.dropped_samples for e in events)
    assert stats.samples_in + stats.samples_dropped == len(audio)  # every sample: used or counted
    assert any("dropped" in str(w.message) for w in caught)


def test_file_transcription_never_drops(voxtral, monkeypatch, bundles):
    slow_down(monkeypatch, 0.01)
    audio = (0.1 * np.random.default_rng(1).standard_normal(16000 * 3)).astype(np.float32)
    steps = []
    model = voxedge.load(bundles["int8"])
    stream = model.stream(delay_ms=480, on_step=lambda *a: steps.append(a))
    stream.feed(audio)
    stream.close()
    assert stream.stats.samples_dropped == 0 and stream.stats.samples_in == len(audio)
    assert len(steps) == -(-len(audio) // 1280) + 10  # every 80 ms of audio, plus the flush (docs/voxtral.md, "The schedule")


def test_listen_command_warns_when_audio_is_dropped(bundles, monkeypatch, capsys):
    # A fake sound device delivers 4 s of audio in 0.4 s (10x real time) from its own thread.
    import types

    from voxedge.cli import main

    class FakeStream:
        def __init__(self, samplerate, callback, blocksize, **_):
            self.callback, self.blocksize, self.thread = callback, blocksize, None

        def start(self):
            def run():
                block = np.zeros((self.blocksize, 1), np.float32)
                for _ in range(4 * 16000 // self.blocksize):
                    self.callback(block, self.blocksize, None, None)
                    time.sleep(0.002)
            self.thread = threading.Thread(target=run)
            self.thread.start()

        @property
        def active(self):
            return self.thread.is_alive()

        def stop(self):
            self.thread.join()

        def close(self):
            pass

    fake = types.SimpleNamespace(InputStream=FakeStream, check_input_settings=lambda **_: None,
                                 query_devices=lambda *_: {"default_samplerate": 16000})
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    from voxedge import microphone

    monkeypatch.setattr(microphone.Microphone, "__init__", _small_buffer(microphone.Microphone.__init__))
    slow_down(monkeypatch, 0.03)
    assert main(["listen", "--bundle", str(bundles["int8"]), "--json"]) == 0
    err = capsys.readouterr().err
    assert "dropped" in err and "slower than real time" in err


def _small_buffer(init):
    def small(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "buffer_seconds": 0.5})
    return small


def test_missing_sounddevice_gives_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(VoxedgeError, match="pip install 'voxedge-asr\\[mic\\]'"):
        voxedge.Microphone().open()


# -- the offline guarantee ---------------------------------------------------------------------------


def test_no_socket_is_opened(bundles, whisper_bundles, tmp_path):
    """File and live transcription with both families, with every socket constructor raising."""
    audio = tmp_path / "clip.wav"
    soundfile.write(audio, (0.1 * np.sin(np.arange(16000 * 4) / 5)).astype(np.float32), 16000)
    script = textwrap.dedent(f"""
        import socket
        def refuse(*args, **kwargs):
            raise AssertionError("voxedge tried to open a socket")
        socket.socket = socket.create_connection = socket.socketpair = refuse
        import numpy as np, voxedge
        for bundle in ({str(bundles["int8"])!r}, {str(whisper_bundles["int8"])!r}):
            model = voxedge.load(bundle)
            list(model.transcribe({str(audio)!r}))
            stream = model.stream()
            for block in np.array_split(voxedge.load_audio({str(audio)!r}), 20):
                stream.feed(block)
            stream.close()
            live = voxedge.LiveStream(model.stream())
            live.push(np.zeros(16000, np.float32))
            live.close()
            list(live.events())
        print("offline")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "offline"


# -- threads ----------------------------------------------------------------------------------------


def test_audio_callback_thread_and_consumer_thread(voxtral):
    # An "audio callback" thread pushes 10 ms blocks in real-time order; the main thread consumes
    # events. Nothing is lost or reordered: the tokens equal those of feeding the same audio directly.
    rng = np.random.default_rng(5)
    audio = (0.2 * np.sin(np.arange(16000 * 5) / 7) + 0.05 * rng.standard_normal(16000 * 5)).astype(np.float32)
    direct = []
    stream = voxtral.stream(delay_ms=480, on_step=lambda tok, *_: direct.append(tok))
    stream.feed(audio)
    stream.close()

    threaded = []
    live = voxedge.LiveStream(voxtral.stream(delay_ms=480, on_step=lambda tok, *_: threaded.append(tok)), buffer_seconds=60)

    def callback_thread():
        for start in range(0, len(audio), 160):
            live.push(audio[start : start + 160])
        live.close()

    producer = threading.Thread(target=callback_thread)
    producer.start()
    events = list(live.events(timeout=60))
    producer.join(10)
    assert not producer.is_alive() and not live.running
    assert threaded == direct and live.ring.dropped == 0
    assert all(e.kind in ("partial", "final", "utterance") for e in events)


def test_keyboard_interrupt_in_the_consumer_shuts_down_cleanly(voxtral):
    live = voxedge.LiveStream(voxtral.stream(delay_ms=480))
    live.push(np.zeros(16000 * 2, np.float32))
    with pytest.raises(KeyboardInterrupt):
        with live:
            for _ in live.events(timeout=10):
                raise KeyboardInterrupt
    assert not live.running  # the worker flushed and stopped: no thread left behind
    with pytest.raises(VoxedgeError, match="closed"):
        live.push(np.zeros(160, np.float32))


def test_engine_errors_reach_the_consumer(voxtral, monkeypatch):
    from voxedge.engines import kv_cache

    def broken(self, feeds, n_new):
        raise RuntimeError("simulated engine failure")

    monkeypatch.setattr(kv_cache.CachedGraph, "run", broken)
    live = voxedge.LiveStream(voxtral.stream(delay_ms=480))
    live.push(np.zeros(16000 * 2, np.float32))
    live.close()
    with pytest.raises(RuntimeError, match="simulated"):
        list(live.events(timeout=10))
    assert not live.running


ANY = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(), st.text(max_size=5),
                st.lists(st.text(max_size=3), max_size=3), st.sampled_from([480, 80, 1000, "en", "translate"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=st.dictionaries(st.sampled_from(["delay_ms", "encoder_batch", "step_ms", "language", "task", "keyterms",
                                               "beam_size", "temperature", "vad", "endpoint_ms", "bogus"]), ANY,
                              max_size=3),
       positional=st.one_of(st.none(), ANY), rate=st.one_of(st.sampled_from([8000, 16000, 48000]), ANY),
       ops=st.lists(st.sampled_from(["feed", "close", "feed_int16", "feed_2d"]), max_size=5))
def test_fuzzed_stream_api_only_raises_voxedge_errors(voxtral, whisper, fields, positional, rate, ops):
    audio = (0.1 * np.random.default_rng(0).standard_normal(4000)).astype(np.float32)
    for model in (voxtral, whisper):
        def run():
            stream = model.stream(positional, **fields) if positional is not None else model.stream(**fields)
            for op in ops:
                if op == "close":
                    stream.close()
                else:
                    block = {"feed": audio, "feed_int16": (audio * 3e4).astype(np.int16),
                             "feed_2d": np.stack([audio, audio])}[op]
                    stream.feed(block, sample_rate=rate)
        only_voxedge_errors(run)
        only_voxedge_errors(lambda: list(model.transcribe(audio, sample_rate=rate, **fields)))
