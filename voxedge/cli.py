"""The `voxedge` command: transcribe files, listen to a microphone, describe a bundle, benchmark, evaluate.

The spellings of the subcommands (voxedge/commands/) are a contract (docs/cli.md): add options freely,
never change them. Importing this module loads argparse only (a Ctrl-C while the rest loads is caught
by `main`).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from . import __version__
from .commands import bench, evaluate, export, info, listen, models, serve, transcribe
from .errors import VoxedgeError

COMMANDS = (transcribe, listen, info, models, export, serve, bench, evaluate)


def main(argv=None) -> int:
    """Run one command; every failure a user can cause ends in one `voxedge: error:` line."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # drops and provider fallbacks must reach the user
            warnings.showwarning = _show_warning
            return args.handler(args)
    except VoxedgeError as exc:
        print(f"voxedge: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`voxedge transcribe ... | head -1`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # e.g. `> /dev/full`: the output could not be written
        print(f"voxedge: error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _show_warning(message, *_args, **_kwargs) -> None:
    print(f"voxedge: warning: {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxedge",
        description="Speech to text on this device: nothing you say leaves the machine. "
        "Runs voxedge bundles (Voxtral Mini 4B Realtime, Whisper) with onnxruntime.",
        epilog="--bundle takes a bundle directory or a model name (`voxedge models`); it defaults to $VOXEDGE_BUNDLE.",
    )
    parser.add_argument("--version", action="version", version=f"voxedge {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
