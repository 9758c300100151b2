"""Whisper tiny.en: voxedge against faster-whisper on the same weights and the same clips, int8 and
fp32: real-time factor (compute seconds per audio second) and corpus WER, measured in one run.

    python -m benchmarks.whisper_vs_faster_whisper
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).parent / ".cache"


def corpus() -> list:
    """[(audio, reference text)]: the two real recordings, and espeak-ng sentences when it is installed."""
    from export.whisper.offline import recording
    from voxedge.audio import load_audio
    from benchmarks.corpus import RECORDINGS, SENTENCES

    items = [(load_audio(recording(name)), text) for name, text in RECORDINGS.items()]
    if shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as tmp:
            for i, text in enumerate(SENTENCES):
                path = f"{tmp}/{i}.wav"
                subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", path, text], check=True)
                items.append((load_audio(path), text))
    return items


def cached_bundle(preset: str) -> Path:
    """A tiny.en bundle built from the shipped weights (once, then kept in benchmarks/.cache)."""
    from export.whisper.offline import main as build_offline

    bundle = CACHE / f"whisper-tiny.en-{preset}"
    if not (bundle / "manifest.json").exists():
        assert build_offline([str(bundle), "--quant", preset, "--force"]) == 0
    return bundle


def run(repeats: int = 3) -> dict:
    from faster_whisper import WhisperModel as FasterWhisper

    import voxedge
    from export.whisper.offline import shipped_model_dir
    from benchmarks.wer import corpus_wer

    clips = corpus()
    audio_seconds = sum(len(a) for a, _ in clips) / 16000
    references = [t for _, t in clips]
    threads = os.cpu_count()
    result = {"clips": len(clips), "audio_seconds": round(audio_seconds, 1), "threads": threads}
    for preset, compute_type in (("int8", "int8"), ("fp32", "float32")):
        ours = voxedge.load(cached_bundle(preset), threads=threads)
        theirs = FasterWhisper(str(shipped_model_dir()), device="cpu", compute_type=compute_type, cpu_threads=threads)
        systems = {
            "voxedge": lambda audio: "".join(s.text for s in ours.transcribe(audio, sample_rate=16000)),
            "faster_whisper": lambda audio: "".join(s.text for s in theirs.transcribe(
                audio, beam_size=1, temperature=0.0, vad_filter=False)[0]),
        }
        times = {name: [] for name in systems}
        texts = {}
        for _ in range(repeats):
            for name, transcribe in systems.items():  # alternating, so machine noise hits both alike
                start = time.perf_counter()
                texts[name] = [transcribe(audio) for audio, _ in clips]
                times[name].append(time.perf_counter() - start)
        row = {name: {"rtf": round(float(np.median(t)) / audio_seconds, 4), "wer": round(corpus_wer(references, texts[name]), 4)}
               for name, t in times.items()}
        row["rtf_ratio_voxedge_over_faster_whisper"] = round(row["voxedge"]["rtf"] / row["faster_whisper"]["rtf"], 2)
        result[preset] = row
    result["int8"]["voxedge_live"] = _live(CACHE / "whisper-tiny.en-int8", clips, references, audio_seconds)
    return result


def _live(bundle, clips, references, audio_seconds) -> dict:
    import voxedge
    from benchmarks.wer import corpus_wer

    model = voxedge.load(bundle)
    start, texts = time.perf_counter(), []
    for audio, _ in clips:
        stream = model.stream()
        events = [e for i in range(0, len(audio), 1600) for e in stream.feed(audio[i : i + 1600])] + stream.close()
        texts.append("".join(e.text for e in events if e.kind == "final"))
    return {"rtf": round((time.perf_counter() - start) / audio_seconds, 4), "wer": round(corpus_wer(references, texts), 4)}


if __name__ == "__main__":
    print(run())
