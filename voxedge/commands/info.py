"""`voxedge info NAME_OR_DIR`: what a bundle holds."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("info", help="show what a bundle holds",
                       description="Show a bundle's model, languages, source, quantization, files and sizes, "
                       "supported delays and validation, after checking every file's sha256. A model name "
                       "must be prepared first (`voxedge models`).")
    p.add_argument("bundle_dir", metavar="NAME_OR_DIR", help="a model name (`voxedge models`) or a bundle directory")
    p.add_argument("--json", action="store_true", help="print the manifest summary as JSON")
    p.add_argument("--no-verify", action="store_true", help="skip the sha256 check (sizes are still checked)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..bundle import open_bundle
    from ..catalog import locate, name_of
    from ..info import describe

    root = locate(args.bundle_dir, prepare=False)
    summary = describe(open_bundle(root, verify=not args.no_verify), verified=not args.no_verify, name=name_of(root))
    print(json.dumps(summary, indent=1) if args.json else summary["text"])
    return 0
