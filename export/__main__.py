"""python -m export MODEL_ID_OR_DIR --out DIR --quant int4|int8|fp16|fp32"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import resource
import shutil
import sys
import time
from pathlib import Path

from .checkpoint import ExportError, open_checkpoint

FAMILIES = {"voxtral_realtime": "export.voxtral", "whisper": "export.whisper"}
PRESETS_BY_FAMILY = {"voxtral_realtime": ("int4", "int8", "fp16", "fp32"), "whisper": ("int8", "fp32")}


class Stages:
    """Prints each stage with its duration; `bar` shows a progress bar over a long loop."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, label: str):
        print(f"export: {label} ...", file=self.stream, flush=True)
        start = time.perf_counter()
        yield
        self.timings[label] = time.perf_counter() - start
        print(f"export: {label} done in {self.timings[label]:.1f} s (resident {current_rss_mb():.0f} MB, "
              f"peak {peak_rss_mb():.0f} MB)", file=self.stream, flush=True)

    def bar(self, items, label: str):
        from tqdm import tqdm

        return tqdm(items, desc=f"  {label}", file=self.stream, leave=False)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:  # Linux; elsewhere the peak figure still works
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description=(
            "Turn a Hugging Face checkpoint (Voxtral Mini 4B Realtime, or Whisper) into a voxedge bundle: "
            "ONNX graphs in the chosen precision, the tokenizer and feature tables, and a manifest with "
            "sha256 hashes. Every export ends by running the bundle with voxedge's runtime against "
            "transformers on a sample clip; the report is stored as validation.json and an fp32 bundle "
            "that does not reproduce transformers fails the export."
        ),
        epilog="Presets: Voxtral int4 (4-bit decoder linears, 8-bit encoder/adapter/LM head), int8, fp16, fp32; "
        "Whisper int8, fp32. docs/export.md explains them and the memory the real 4B export needs.",
    )
    parser.add_argument("model", help="checkpoint directory (works offline), or a hub id such as "
                        "mistralai/Voxtral-Mini-4B-Realtime-2602 (needs network access)")
    parser.add_argument("--out", required=True, type=Path, help="bundle directory to create")
    parser.add_argument("--quant", default="int8", choices=("int4", "int8", "fp16", "fp32"),
                        help="weight precision preset (default: int8)")
    parser.add_argument("--revision", help="hub revision (branch, tag or commit) when MODEL is a hub id")
    parser.add_argument("--sample-audio", type=Path,
                        help="speech clip for the validation step (default: a built-in synthetic signal)")
    parser.add_argument("--force", action="store_true", help="replace --out if it already exists")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    stages = Stages()
    try:
        ckpt = open_checkpoint(args.model, args.revision)
        family = ckpt.config.get("model_type")
        if family not in FAMILIES:
            raise ExportError(f"{args.model}: model type {family!r} is not supported (supported: {', '.join(FAMILIES)})")
        if args.quant not in PRESETS_BY_FAMILY[family]:
            raise ExportError(f"{family} bundles come in {', '.join(PRESETS_BY_FAMILY[family])}, not {args.quant}")
        sample = _read_sample(args.sample_audio)
        _prepare_out(args.out, args.force)
        start = time.perf_counter()
        manifest = importlib.import_module(FAMILIES[family]).export(ckpt, args.out, args.quant, stages, sample)
    except ExportError as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 1
    size = sum(entry["bytes"] for entry in manifest["files"].values()) / 1e6
    print(
        f"export: wrote {args.out} ({family}, {args.quant}, {size:.1f} MB) in {time.perf_counter() - start:.0f} s, "
        f"peak RSS {peak_rss_mb():.0f} MB",
        file=sys.stderr,
    )
    return 0


def _read_sample(path):
    if path is None:
        return None
    from voxedge.audio import load_audio
    from voxedge.errors import AudioError

    try:
        return load_audio(path)
    except AudioError as exc:
        raise ExportError(f"--sample-audio: {exc}") from None


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ExportError(f"{out} exists and is not empty; choose another --out or pass --force")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


if __name__ == "__main__":
    sys.exit(main())
