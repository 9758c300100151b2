"""python -m export MODEL_ID_OR_DIR --out DIR --quant int4|int4-b64|int4-b128|int8|fp16|fp32"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import time
from pathlib import Path

from .arguments import DESCRIPTION, EPILOG, add_arguments
from .checkpoint import ExportError, open_checkpoint
from .stages import Stages, peak_rss_mb

FAMILIES = {"voxtral_realtime": ".voxtral", "whisper": ".whisper"}  # relative to this package
PRESETS_BY_FAMILY = {"voxtral_realtime": ("int4", "int4-b64", "int4-b128", "int8", "fp16", "fp32"),
                     "whisper": ("int8", "fp32")}
# --target npu: float weights, or int8 as standard QDQ (Whisper: export/npu_quantize.py); never the
# com.microsoft MatMulNBits/DynamicQuantizeMatMul of the cpu target, which no NPU provider documents
NPU_PRESETS = {"voxtral_realtime": ("fp16", "fp32"), "whisper": ("int8", "fp32")}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m export", description=DESCRIPTION, epilog=EPILOG)
    add_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    try:
        run(parse_args(argv))
    except ExportError as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 1
    return 0


def run(args) -> None:
    """Export as the parsed command line says (`python -m export` in a checkout, `voxedge export` once
    installed); ExportError says why it cannot."""
    stages = Stages()
    args.quant = args.quant or default_preset(args.target)
    ckpt = open_checkpoint(args.model, args.revision)
    family = check_preset(ckpt, args.quant, args.target)
    sample = _read_sample(args.sample_audio)
    prepare_out(args.out, args.force)
    start = time.perf_counter()
    manifest = export(ckpt, args.out, args.quant, stages, sample, args.target)
    size = sum(entry["bytes"] for entry in manifest["files"].values()) / 1e6
    print(
        f"export: wrote {args.out} ({family}, {args.quant}, target {args.target}, {size:.1f} MB) in {time.perf_counter() - start:.0f} s, "
        f"peak RSS {peak_rss_mb():.0f} MB",
        file=sys.stderr,
    )


def check_preset(ckpt, quant: str, target: str = "cpu") -> str:
    """The checkpoint's family, once it is known to come in preset `quant` for `target`."""
    family = ckpt.config.get("model_type")
    if family not in FAMILIES:
        raise ExportError(f"{ckpt.source}: model type {family!r} is not supported (supported: {', '.join(FAMILIES)})")
    presets = presets_for(family, target)
    if quant not in presets:
        raise ExportError(f"{family} bundles for target {target} come in {', '.join(presets)}, not {quant}")
    return family


def default_preset(target: str) -> str:
    return "int8" if target == "cpu" else "fp32"


def presets_for(family: str, target: str) -> tuple[str, ...]:
    return PRESETS_BY_FAMILY[family] if target == "cpu" else NPU_PRESETS[family]


def export(ckpt, out: Path, quant: str, stages, sample=None, target: str = "cpu") -> dict:
    """Build and validate the bundle of `ckpt` in the existing directory `out`; returns its manifest."""
    family = check_preset(ckpt, quant, target)
    return importlib.import_module(FAMILIES[family], __package__).export(ckpt, out, quant, stages, sample, target)


def _read_sample(path):
    if path is None:
        return None
    from voxedge.audio import load_audio
    from voxedge.errors import AudioError

    try:
        return load_audio(path)
    except AudioError as exc:
        raise ExportError(f"--sample-audio: {exc}") from None


def prepare_out(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ExportError(f"{out} exists and is not empty; choose another --out or pass --force")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


if __name__ == "__main__":
    sys.exit(main())
