"""Peak memory while transcribing a 3-hour 48 kHz stereo file, both families, against a 10-minute one.

    python -m benchmarks memory

Each transcription runs in a fresh process that reports its resident memory after loading the model,
its peak after one 30-second window of silence (the model's own working buffers: onnxruntime's arena
for the encoder's activations), and its peak while transcribing the file (VmHWM, Linux). The target (the
reliability issue): the file adds under 300 MB to the warm model, whatever the file's length. Whisper is tiny.en int8; Voxtral is
the tiny random model (what is measured is the file path's buffers, not the model's size).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

LENGTHS_MINUTES = (10, 180)
RATE, CHANNELS = 48000, 2
BUDGET_MB = 300

_MEASURE = textwrap.dedent("""
    # VmHWM, not ru_maxrss: the latter survives exec and would report the parent's peak
    import json, sys
    import voxedge

    def status_mb(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024

    import numpy as np
    model = voxedge.load(sys.argv[1])
    loaded = status_mb("VmRSS")
    list(model.transcribe(np.zeros(30 * 16000, np.float32), sample_rate=16000))  # the model's working buffers
    warm = status_mb("VmHWM")
    words = sum(len(segment.words) for segment in model.transcribe(sys.argv[2]))
    print(json.dumps({"model_mb": round(loaded), "warm_mb": round(warm), "peak_mb": round(status_mb("VmHWM")),
                      "words": words}))
""")


def run(repeats: int = 1) -> dict:
    """`repeats` is ignored: one 3-hour transcription per family is the measurement."""
    from benchmarks.live import _tiny_voxtral

    with tempfile.TemporaryDirectory() as home:
        os.environ["VOXEDGE_HOME"] = home
        import voxedge

        bundles = {"whisper_tiny_en_int8": voxedge.load("whisper-tiny.en").bundle.root,
                   "voxtral_tiny_int8": _tiny_voxtral(home).bundle.root}
        files = {minutes: write_long_file(Path(home) / f"{minutes}min.flac", minutes) for minutes in LENGTHS_MINUTES}
        result = {}
        for family, bundle in bundles.items():
            for minutes, path in files.items():
                print(f"benchmarks: {family} on {minutes} minutes of 48 kHz stereo ...", file=sys.stderr, flush=True)
                figures = measure(bundle, path)
                figures["growth_mb"] = figures["peak_mb"] - figures["warm_mb"]
                figures["within_budget"] = figures["growth_mb"] <= BUDGET_MB
                result[f"{family}_{minutes}min"] = figures
    return result


def write_long_file(path: Path, minutes: int) -> Path:
    """30 s blocks: beckett.wav (10 s of speech), then 20 s of faint room noise."""
    import soundfile
    import soxr

    from export.whisper.offline import recording

    speech, rate = soundfile.read(recording("beckett.wav"), dtype="float32")
    speech = soxr.resample(speech, rate, RATE)
    rng = np.random.default_rng(0)
    with soundfile.SoundFile(path, "w", RATE, CHANNELS, format="FLAC") as f:
        for _ in range(minutes * 2):
            block = (0.003 * rng.standard_normal((RATE * 30, CHANNELS))).astype(np.float32)
            block[: len(speech)] += speech[:, None]
            f.write(block)
    return path


def measure(bundle, path: Path) -> dict:
    """Resident memory after loading `bundle` and the peak while transcribing `path`, in a fresh process."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(bundle), str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"transcribing {path.name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])
