"""The `voxedge` command: transcribe files, listen to a microphone, describe a bundle, benchmark.

The spellings of the subcommands (voxedge/commands/) are a contract (docs/cli.md): add options freely,
never change them.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from . import __version__
from .bundle import BUNDLE_ENV
from .commands import bench, info, listen, serve, transcribe
from .errors import VoxedgeError

COMMANDS = (transcribe, listen, info, bench, serve)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    warnings.simplefilter("default")  # drops and provider fallbacks must reach the user
    warnings.formatwarning = lambda message, *_a, **_k: f"voxedge: warning: {message}\n"
    try:
        return args.handler(args)
    except VoxedgeError as exc:
        print(f"voxedge: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxedge",
        description="Speech to text on this device: nothing you say leaves the machine. "
        "Runs voxedge bundles (Voxtral Mini 4B Realtime, Whisper) with onnxruntime.",
        epilog=f"The bundle defaults to ${BUNDLE_ENV}; `make demo` builds one at bundles/default.",
    )
    parser.add_argument("--version", action="version", version=f"voxedge {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
