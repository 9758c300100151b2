"""`voxedge export MODEL --out DIR --quant ...`: `python -m export`, installed with the `[export]` extra."""

from __future__ import annotations

import importlib.util

from ..errors import DependencyError, VoxedgeError

# What the export imports beyond voxedge's run time (setup.cfg's `export` extra)
NEEDS = ("torch", "transformers", "mistral_common", "onnx", "safetensors")


def register(sub) -> None:
    from voxedge_export.arguments import DESCRIPTION, EPILOG, add_arguments

    p = sub.add_parser("export", help="build a bundle from a checkpoint (pip install 'voxedge-asr[export]')",
                       description=DESCRIPTION, epilog=EPILOG)
    add_arguments(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise DependencyError(f"voxedge export needs {', '.join(missing)}: pip install 'voxedge-asr[export]'")
    from voxedge_export.__main__ import run as export
    from voxedge_export.checkpoint import ExportError

    try:
        export(args)
    except ExportError as exc:
        raise VoxedgeError(str(exc)) from None
    return 0
