"""`voxedge info NAME_OR_DIR [--providers ...]`: what a bundle holds, and where its nodes would run."""

from __future__ import annotations

import json

from .common import provider_arguments


def register(sub) -> None:
    p = sub.add_parser("info", help="show what a bundle holds",
                       description="Show a bundle's model, languages, source, quantization, files and sizes, "
                       "supported delays and validation, after checking every file's sha256. A model name "
                       "must be prepared first (`voxedge models`). With --providers, open every graph on those "
                       "execution providers and report how many nodes each provider took.")
    p.add_argument("bundle_dir", metavar="NAME_OR_DIR", help="a model name (`voxedge models`) or a bundle directory")
    p.add_argument("--json", action="store_true", help="print the manifest summary as JSON")
    p.add_argument("--no-verify", action="store_true", help="skip the sha256 check (sizes are still checked)")
    provider_arguments(p)
    p.set_defaults(handler=run, providers=None)


def run(args) -> int:
    from ..bundle import open_bundle
    from ..catalog import locate, name_of
    from ..info import describe, describe_placement
    from ..options import RuntimeOptions

    root = locate(args.bundle_dir, prepare=False)
    bundle = open_bundle(root, verify=not args.no_verify)
    summary = describe(bundle, verified=not args.no_verify, name=name_of(root))
    if args.providers is not None or args.strict:
        placed = describe_placement(bundle, RuntimeOptions(args.providers or "cpu", strict=args.strict))
        summary.update(placed, text=summary["text"] + "\n" + placed["text"])
    print(json.dumps(summary, indent=1) if args.json else summary["text"])
    return 0
