"""The four Whisper runtimes behind one call, each in a worker process of its own.

    transcribe(audio) -> text

Every system decodes the same way: language forced to English, temperature 0 without fallback,
conditioned on the previous window's text, timestamps on, no VAD; greedy or beam 5 with patience 1.
A worker process per system keeps their thread pools, OpenMP runtimes and two builds of ggml apart,
so that alternating runs measure each alone; the parent talks to it in JSON lines on stdin/stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# the system's formats as compared: voxedge/faster-whisper presets, ggml types
FORMATS = {"voxedge": ("int8", "fp32"), "faster-whisper": ("int8", "fp32"),
           "whisper.cpp": ("q8_0", "q5_1", "f16"), "crispasr": ("q8_0", "q5_1", "f16")}
# faster-whisper's / whisper.cpp's default thresholds (whisper.cpp's entropy threshold stands in for the
# compression ratio); with no temperature fallback they only decide what is silence
LOGPROB_THRESHOLD, NO_SPEECH_THRESHOLD, ENTROPY_THRESHOLD = -1.0, 0.6, 2.4


class Unsupported(Exception):
    """The system cannot run this configuration (reported in the table, not timed)."""


def _voxedge(model_file: str, threads: int, beam: int):
    import voxedge
    from voxedge.errors import UnsupportedError

    model = voxedge.load(model_file, threads=threads)
    options = {"language": "en"} | ({} if beam == 1 else {"beam_size": beam})

    def transcribe(audio):
        # a field this voxedge's family lacks is reported, not timed
        try:
            return "".join(s.text for s in model.transcribe(audio, sample_rate=16000, **options))
        except UnsupportedError as e:
            raise Unsupported(f"voxedge {voxedge.__version__} has no {', '.join(options)} ({e})") from None

    return transcribe


def _faster_whisper(model_file: str, threads: int, beam: int, compute_type: str):
    from faster_whisper import WhisperModel

    model = WhisperModel(model_file, device="cpu", compute_type=compute_type, cpu_threads=threads)
    return lambda audio: "".join(s.text for s in model.transcribe(
        audio, language="en", beam_size=beam, temperature=0.0, vad_filter=False)[0])


def _whisper_cpp(model_file: str, threads: int, beam: int):
    from pywhispercpp.model import Model

    model = Model(model_file, n_threads=threads, params_sampling_strategy=int(beam > 1), redirect_whispercpp_logs_to=None,
                  beam_search={"beam_size": beam, "patience": -1.0}, language="en", temperature=0.0,
                  temperature_inc=0.0, no_context=False, print_progress=False, print_realtime=False)
    return lambda audio: "".join(s.text for s in model.transcribe(audio))


def _crispasr(model_file: str, threads: int, beam: int):
    import crispasr

    session = crispasr.Session(model_file, n_threads=threads)
    if session.backend != "whisper":
        raise RuntimeError(f"CrispASR opened {model_file} as {session.backend!r}, not whisper")
    session.set_fallback_thresholds(ENTROPY_THRESHOLD, LOGPROB_THRESHOLD, NO_SPEECH_THRESHOLD, 0.0)
    if beam > 1:
        session.set_beam_size(beam)
    return lambda audio: "".join(s.text for s in session.transcribe(audio, language="en"))


def open_system(system: str, model_file: str, fmt: str, threads: int, beam: int):
    if system == "voxedge":
        return _voxedge(model_file, threads, beam)
    if system == "faster-whisper":
        return _faster_whisper(model_file, threads, beam, {"fp32": "float32"}.get(fmt, fmt))
    if system == "whisper.cpp":
        return _whisper_cpp(model_file, threads, beam)
    if system == "crispasr":
        return _crispasr(model_file, threads, beam)
    raise ValueError(f"unknown system {system!r}")


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("voxedge", "onnxruntime", "faster-whisper", "ctranslate2", "pywhispercpp", "crispasr", "gguf"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


class Worker:
    """One system in its own process: `run()` transcribes every clip once and returns (texts, seconds)."""

    def __init__(self, clips_file: Path, system: str, model_file: str, fmt: str, threads: int, beam: int):
        self.name = f"{system} {fmt}"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        self.process = subprocess.Popen([sys.executable, "-m", "benchmarks.peer_systems"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                        cwd=Path(__file__).parents[1])
        self.ready = self._ask({"clips": str(clips_file), "system": system, "model": model_file, "format": fmt,
                                "threads": threads, "beam": beam})

    def _ask(self, message: dict) -> dict:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            return {"error": f"{self.name}: the worker exited (code {self.process.wait()})"}
        return json.loads(line)

    def run(self) -> dict:
        return self._ask({"run": True})

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)


def _serve() -> None:
    """Worker side: the first line opens the system (and warms it up on the first clip), each next one runs."""
    setup = json.loads(sys.stdin.readline())
    with np.load(setup["clips"]) as data:
        clips = [data[k] for k in sorted(data.files, key=int)]
    try:
        start = time.perf_counter()
        transcribe = open_system(setup["system"], setup["model"], setup["format"], setup["threads"], setup["beam"])
        transcribe(clips[-1])
        reply = {"load_and_warmup_s": round(time.perf_counter() - start, 2)}
    except Unsupported as e:
        reply = {"unsupported": str(e)}
    except Exception as e:  # the parent reports what failed, with the exception
        reply = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(reply), flush=True)
    if "load_and_warmup_s" not in reply:
        return
    for _ in sys.stdin:
        start = time.perf_counter()
        texts = [transcribe(audio) for audio in clips]
        print(json.dumps({"texts": texts, "seconds": time.perf_counter() - start}), flush=True)


if __name__ == "__main__":
    _serve()
