"""`voxedge info DIR`: what a bundle holds."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("info", help="show what a bundle holds",
                       description="Show a bundle's model family, quantization, files and sizes, supported "
                       "delays and validation result, after checking every file's sha256.")
    p.add_argument("bundle_dir", type=Path, metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the manifest summary as JSON")
    p.add_argument("--no-verify", action="store_true", help="skip the sha256 check (sizes are still checked)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..bundle import open_bundle
    from ..info import describe

    summary = describe(open_bundle(args.bundle_dir, verify=not args.no_verify), verified=not args.no_verify)
    print(json.dumps(summary, indent=1) if args.json else summary["text"])
    return 0
