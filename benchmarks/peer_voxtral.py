"""Voxtral Realtime at the real size in CrispASR (GGUF) and in voxedge (bundle): per-token decode and
per-step encode, measured the same way in a fresh process per model.

    python -m benchmarks.peer_voxtral crispasr FILE.gguf | voxedge BUNDLE     (prints one JSON object)

voxedge: `benchmarks.voxtral_real.steady_steps`, the voxtral suite's own measurement (decoder step with
375 tokens of context, encoder calls of 1, 4 and 8 steps with the encoder window full).

CrispASR, through the C API its wheel exports (src/voxtral4b.h; the Python binding has no per-step
entry point): decode = `voxtral4b_run_llm_kv` for one token after a 375-token prefill, the call its
streaming loop makes per token; encode = `voxtral4b_stream_feed` with 80, 320 or 640 ms of audio while
`CRISPASR_VOXTRAL4B_STREAM_CHUNK_MS` is the same (one encoder graph of 1, 4 or 8 steps per feed: log-mel,
encoder with its K/V cache, projector). Its stream holds at most 15 s of encoder positions (one sliding
window, then it stops encoding), so encoder steps are timed over the second half of that window.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from voxedge.bench.verify_cost import CONTEXT  # decoder tokens in context (30 s), as in benchmarks.voxtral_real
STEPS = 24
BATCHES = (1, 4, 8)
SAMPLES_PER_STEP = 1280
WINDOW_SAMPLES = 750 * 2 * 160  # 750 encoder positions = 15 s
LEFT_PAD_SAMPLES = 32 * SAMPLES_PER_STEP  # stream_open feeds 32 steps of silence first


class _Params(ctypes.Structure):
    """struct voxtral4b_context_params (checked against the 0.8.45 wheel: 12 bytes, returned in registers)."""

    _fields_ = [("n_threads", ctypes.c_int), ("verbosity", ctypes.c_int), ("use_gpu", ctypes.c_bool),
                ("flash_attn", ctypes.c_bool)]


class CrispVoxtral:
    def __init__(self, path: Path, threads: int):
        from crispasr._binding import _find_lib

        os.environ["CRISPASR_VOXTRAL4B_BENCH"] = "1"  # per-call stage lines on stderr (read once per process)
        lib = self.lib = ctypes.CDLL(_find_lib())
        self.libc = ctypes.CDLL(None)
        self.libc.free.argtypes = [ctypes.c_void_p]
        signatures = {
            "voxtral4b_context_default_params": ([], _Params),
            "voxtral4b_init_from_file": ([ctypes.c_char_p, _Params], ctypes.c_void_p),
            "voxtral4b_free": ([ctypes.c_void_p], None),
            "voxtral4b_kv_init": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_bool),
            "voxtral4b_kv_reset": ([ctypes.c_void_p], None),
            "voxtral4b_embed_tokens": ([ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32), ctypes.c_int],
                                       ctypes.POINTER(ctypes.c_float)),
            "voxtral4b_run_llm_kv": ([ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int, ctypes.c_int,
                                      ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)],
                                     ctypes.POINTER(ctypes.c_float)),
            "voxtral4b_stream_open": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_int], ctypes.c_void_p),
            "voxtral4b_stream_feed": ([ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int], ctypes.c_int),
            "voxtral4b_stream_flush": ([ctypes.c_void_p], ctypes.c_int),
            "voxtral4b_stream_set_live_decode": ([ctypes.c_void_p, ctypes.c_int], None),
            "voxtral4b_stream_get_text": ([ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p,
                                           ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int),
            "voxtral4b_stream_close": ([ctypes.c_void_p], None),
        }
        for name, (args, result) in signatures.items():
            getattr(lib, name).argtypes, getattr(lib, name).restype = args, result
        params = lib.voxtral4b_context_default_params()
        params.n_threads, params.verbosity, params.use_gpu = threads, 0, False
        self.ctx = lib.voxtral4b_init_from_file(str(path).encode(), params)
        if not self.ctx:
            raise RuntimeError(f"CrispASR could not load {path} as Voxtral Realtime (voxtral4b)")

    def _embed(self, ids) -> ctypes.POINTER(ctypes.c_float):
        ids = np.ascontiguousarray(ids, np.int32)
        return self.lib.voxtral4b_embed_tokens(self.ctx, ids.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), len(ids))

    def _forward(self, ids, n_past: int) -> None:
        embeds = self._embed(ids)
        n_out, vocab = ctypes.c_int(), ctypes.c_int()
        logits = self.lib.voxtral4b_run_llm_kv(self.ctx, embeds, len(ids), n_past, ctypes.byref(n_out), ctypes.byref(vocab))
        self.libc.free(embeds)
        if not logits:
            raise RuntimeError("voxtral4b_run_llm_kv failed")
        self.libc.free(logits)

    def decode_ms(self) -> tuple[float, float]:
        """(prefill of CONTEXT tokens, median single-token step after it) in ms."""
        if not self.lib.voxtral4b_kv_init(self.ctx, CONTEXT + STEPS + 16):
            raise RuntimeError("voxtral4b_kv_init failed")
        self.lib.voxtral4b_kv_reset(self.ctx)
        ids = np.random.default_rng(0).integers(1000, 100_000, CONTEXT + STEPS)
        start = time.perf_counter()
        self._forward(ids[:CONTEXT], 0)
        prefill = time.perf_counter() - start
        times = []
        for i in range(STEPS):
            start = time.perf_counter()
            self._forward(ids[CONTEXT + i : CONTEXT + i + 1], CONTEXT + i)
            times.append(time.perf_counter() - start)
        return prefill * 1e3, float(np.median(times)) * 1e3

    def encode_ms(self, audio: np.ndarray, batch: int) -> float:
        """Median ms per 80 ms step of the streaming encoder, `batch` steps per call, window half to full."""
        os.environ["CRISPASR_VOXTRAL4B_STREAM_CHUNK_MS"] = str(80 * batch)  # read by stream_open
        stream = self.lib.voxtral4b_stream_open(self.ctx, 80 * batch, 15_000)
        if not stream:
            raise RuntimeError("voxtral4b_stream_open failed")
        block, times = SAMPLES_PER_STEP * batch, []
        limit = WINDOW_SAMPLES - LEFT_PAD_SAMPLES - 2 * block
        try:
            for position in range(0, limit, block):
                chunk = np.ascontiguousarray(audio[position : position + block])
                start = time.perf_counter()
                if self.lib.voxtral4b_stream_feed(stream, chunk.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), block):
                    raise RuntimeError("voxtral4b_stream_feed failed")
                if position + LEFT_PAD_SAMPLES >= WINDOW_SAMPLES // 2:
                    times.append((time.perf_counter() - start) / batch)
        finally:
            self.lib.voxtral4b_stream_close(stream)
        return float(np.median(times)) * 1e3

    def steps(self, audio: np.ndarray) -> dict:
        """One live-decode streaming pass over `audio` (under 12 s), fed 80 ms at a time: the encoder
        positions it projected (N_audio, its debug line), its decoder calls (bench lines, the prefill
        included) and the text."""
        os.environ["CRISPASR_VOXTRAL4B_STREAM_CHUNK_MS"] = "80"
        os.environ["CRISPASR_VOXTRAL4B_STREAM_DEBUG"] = "1"
        stream = self.lib.voxtral4b_stream_open(self.ctx, 80, 15_000)
        self.lib.voxtral4b_stream_set_live_decode(stream, 1)
        text = ctypes.create_string_buffer(1 << 16)
        try:
            with _stderr_captured() as log:
                for position in range(0, len(audio), SAMPLES_PER_STEP):
                    chunk = np.ascontiguousarray(audio[position : position + SAMPLES_PER_STEP])
                    if self.lib.voxtral4b_stream_feed(stream, chunk.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                                      len(chunk)):
                        raise RuntimeError("voxtral4b_stream_feed failed")
                if self.lib.voxtral4b_stream_flush(stream) != 1:
                    raise RuntimeError("voxtral4b_stream_flush failed")
            self.lib.voxtral4b_stream_get_text(stream, text, len(text), None, None, None)
        finally:
            self.lib.voxtral4b_stream_close(stream)
            del os.environ["CRISPASR_VOXTRAL4B_STREAM_DEBUG"]
        projected = re.findall(r"N_audio=(\d+)", log["text"])
        return {"decoder_calls": log["text"].count("voxtral4b_bench: llm_kv"),
                "audio_positions": int(projected[-1]) if projected else None,
                "text": text.value.decode(errors="replace")}

    def close(self) -> None:
        self.lib.voxtral4b_free(self.ctx)


@contextlib.contextmanager
def _stderr_captured():
    """File descriptor 2 (where the C library prints) into a temporary file; its text lands in the
    yielded dict's "text" on exit."""
    saved, captured = os.dup(2), {}
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            captured["text"] = f.read().decode(errors="replace")


def step_clip() -> np.ndarray:
    """10 s of noise: both runtimes step through it, 80 ms per decoder step."""
    return (0.1 * np.random.default_rng(1).standard_normal(160_000)).astype(np.float32)


def measure_crispasr(path: Path, threads: int) -> dict:
    audio = (0.1 * np.random.default_rng(0).standard_normal(WINDOW_SAMPLES)).astype(np.float32)
    start = time.perf_counter()
    model = CrispVoxtral(path, threads)
    result = {"file_gb": round(path.stat().st_size / 1e9, 2), "load_s": round(time.perf_counter() - start, 1)}
    prefill, step = model.decode_ms()
    result.update(decoder_ms=round(step, 1), prefill_375_ms=round(prefill, 1))
    result["encoder_ms_per_step_by_batch"] = {b: round(model.encode_ms(audio, b), 1) for b in BATCHES}
    result["steps_10s"] = model.steps(step_clip())
    del result["steps_10s"]["text"]  # random weights: no words to read
    result["peak_rss_gb"] = _peak_rss_gb()
    model.close()
    return result


def measure_voxedge(bundle: Path, threads: int) -> dict:
    import voxedge

    from .voxtral_real import steady_steps

    audio = (0.1 * np.random.default_rng(0).standard_normal(16000 * 60)).astype(np.float32)
    start = time.perf_counter()
    model = voxedge.load(bundle, threads=threads, verify=False)
    result = {"bundle_gb": round(model.bundle.size_bytes() / 1e9, 2), "load_s": round(time.perf_counter() - start, 1)}
    steps = {b: steady_steps(model, audio, b) for b in BATCHES}
    result.update(decoder_ms=round(steps[1]["decoder_ms"], 1))
    result["encoder_ms_per_step_by_batch"] = {b: round(steps[b]["encoder_ms"], 1) for b in BATCHES}
    result["steps_10s"] = voxedge_steps(model, step_clip())
    result["peak_rss_gb"] = _peak_rss_gb()
    return result


def voxedge_steps(model, audio: np.ndarray) -> dict:
    """The same pass through voxedge's stream (delay 480 ms, as CrispASR's prompt): decoder calls and
    encoder positions (4 per 80 ms step)."""
    calls = []
    stream = model.stream(delay_ms=480, on_step=lambda *_: calls.append(1))
    for position in range(0, len(audio), SAMPLES_PER_STEP):
        stream.feed(audio[position : position + SAMPLES_PER_STEP])
    stream.close()
    return {"decoder_calls": len(calls), "audio_positions": stream.engine._enc_pos // 4}


def _peak_rss_gb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    system, path = argv[0], Path(argv[1])
    threads = int(argv[2]) if len(argv) > 2 else os.cpu_count()
    measure = measure_crispasr if system == "crispasr" else measure_voxedge
    print(json.dumps(measure(path, threads)))


if __name__ == "__main__":
    main()
