"""What word alignment costs (Whisper tiny.en, voxedge/engines/whisper_alignment.py), measured in one run:

- the decoder step, with and without the `alignment_scores` output in the graph (greedy decoding does
  not bind it; onnxruntime computes it all the same);
- per window, on each clip's first window: the whole window (encoder, decoding, alignment) and the
  alignment within it (the teacher-forced decoder pass, then softmax, standardization, median filter,
  DTW and the word rules in numpy), as a share of the rest;
- a file's and a live stream's real-time factor with aligned and with interpolated word times, and
  faster-whisper's file real-time factor with and without `word_timestamps` on the same weights.

    python -m benchmarks.alignment [--preset int8|fp32] [--repeats 5] [--out benchmarks/results/alignment.json]

Both bundles are built torch-free from the same weights; the "before" one withholds the checkpoint's
alignment heads, so its decoder has no alignment output and its word times are interpolated.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.figures import emit


def build(out: Path, preset: str, alignment: bool) -> Path:
    from export.stages import Stages
    from export.whisper import write_bundle
    from export.whisper.ct2_checkpoint import Ct2Checkpoint
    from export.whisper.offline import shipped_model_dir

    ckpt = Ct2Checkpoint(shipped_model_dir())
    generation = dict(ckpt.generation)
    if not alignment:
        generation.pop("alignment_heads")
    out.mkdir()
    write_bundle(ckpt, out, preset, Stages(None), generation)
    return out


def step_ms(model, mel, decodes: int = 3) -> float:
    """Milliseconds inside onnxruntime per decoder step, greedy decoding of one window."""
    from voxedge.engines.whisper_decoding import WindowDecoder

    decoder, cross = WindowDecoder(model), model.encode(mel)
    decoder.decode(cross, model.prompt([]))  # warm-up, and the cache at its size
    decoder.graph.seconds, steps = 0.0, 0
    for _ in range(decodes):
        steps += len(decoder.decode(cross, model.prompt([])).tokens) + 1
    return 1000 * decoder.graph.seconds / steps


def window_costs(model, mel) -> dict:
    """Seconds of one window through WindowTranscriber, and of its alignment within (the decoder pass
    inside onnxruntime, and everything: that pass, the numpy after it, the word rules)."""
    from voxedge.engines.whisper_window import WindowTranscriber

    window, spent = WindowTranscriber(model), [0.0]

    def timed(method):
        def call(*args):
            start = time.perf_counter()
            try:
                return method(*args)
            finally:
                spent[0] += time.perf_counter() - start
        return call

    window.aligner.token_times = timed(window.aligner.token_times)
    window.aligned_segments = timed(window.aligned_segments)
    start = time.perf_counter()
    hypothesis = window(mel, [], 0.0)
    total = time.perf_counter() - start
    return {"window": total, "alignment": spent[0], "alignment_graph": window.aligner.graph.seconds,
            "words": len(hypothesis.words), "seconds": mel.shape[1] / 100}


def rtf(action, clips, audio_seconds) -> float:
    start = time.perf_counter()
    for audio in clips:
        action(audio)
    return (time.perf_counter() - start) / audio_seconds


def transcribe(model):
    return lambda audio: list(model.transcribe(audio, sample_rate=16000))


def live(model):
    def run(audio):
        stream = model.stream()
        for i in range(0, len(audio), 1600):
            stream.feed(audio[i : i + 1600])
        stream.close()
    return run


def run(preset: str, repeats: int) -> dict:
    from faster_whisper import WhisperModel as FasterWhisper

    import voxedge
    from benchmarks.whisper_vs_faster_whisper import corpus
    from export.whisper.offline import shipped_model_dir

    clips = [audio for audio, _ in corpus()]
    audio_seconds = sum(len(a) for a in clips) / 16000
    threads = os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "before" bundle's warning that its word times are interpolated
        before = voxedge.load(build(Path(tmp) / "before", preset, False), threads=threads)
        after = voxedge.load(build(Path(tmp) / "after", preset, True), threads=threads)
        windows = [after.features(audio)[:, :3000] for audio in clips]
        longest = max(windows, key=lambda w: w.shape[1])
        steps = {"before": [], "after": []}
        costs = [[] for _ in windows]
        files = {"before": [], "after": [], "faster_whisper": [], "faster_whisper_word_timestamps": []}
        lives = {"before": [], "after": []}
        theirs = FasterWhisper(str(shipped_model_dir()), device="cpu", cpu_threads=threads,
                               compute_type={"int8": "int8", "fp32": "float32"}[preset])
        for _ in range(repeats):  # alternating, so machine noise hits both alike
            for name, model in (("before", before), ("after", after)):
                steps[name].append(step_ms(model, longest))
                files[name].append(rtf(transcribe(model), clips, audio_seconds))
            for name, words in (("faster_whisper", False), ("faster_whisper_word_timestamps", True)):
                files[name].append(rtf(lambda audio: list(theirs.transcribe(
                    audio, beam_size=1, temperature=0.0, vad_filter=False, word_timestamps=words)[0]), clips, audio_seconds))
            for i, mel in enumerate(windows):
                costs[i].append(window_costs(after, mel))
        for name, model in (("before", before), ("after", after)):  # live once: it takes a while
            lives[name].append(rtf(live(model), clips, audio_seconds))

    def median(rows, key):
        return float(np.median([r[key] for r in rows]))

    per_window = []
    for rows in costs:
        row = {f"{k}_ms": round(1000 * median(rows, k), 2) for k in ("window", "alignment", "alignment_graph")}
        row.update(seconds=rows[0]["seconds"], words=rows[0]["words"])
        row["alignment_share"] = round(row["alignment_ms"] / (row["window_ms"] - row["alignment_ms"]), 4)
        per_window.append(row)
    shares = [w["alignment_share"] for w in per_window]
    return {
        "preset": preset, "threads": threads, "clips": len(clips), "audio_seconds": round(audio_seconds, 1),
        "decoder_step_ms": {k: round(float(np.median(v)), 3) for k, v in steps.items()},
        "decoder_step_ratio_after_over_before": round(float(np.median(steps["after"]) / np.median(steps["before"])), 3),
        "windows_ms": per_window,
        "alignment_share_of_window_median": round(float(np.median(shares)), 4),
        "alignment_share_of_window_max": round(max(shares), 4),
        "file_rtf": {k: round(float(np.median(v)), 4) for k, v in files.items()},
        "live_rtf": {k: round(float(np.median(v)), 4) for k, v in lives.items()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.alignment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=["int8", "fp32"], default="int8")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    return emit(run(args.preset, args.repeats), args.out)


if __name__ == "__main__":
    raise SystemExit(main())
