"""The `voxedge` command: transcribe files, listen to a microphone, describe a bundle, benchmark.

The spellings below are a contract (docs/cli.md): add options freely, never change these.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from . import __version__
from .bundle import BUNDLE_ENV
from .errors import VoxedgeError

FORMATS = ("txt", "srt", "vtt", "json")


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

    p = sub.add_parser("transcribe", help="transcribe audio files",
                       description="Transcribe audio files (wav, flac, ogg, mp3 where libsndfile reads it) "
                       "and print the text, subtitles or JSON on stdout.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    _engine_options(p)
    p.add_argument("--format", choices=FORMATS, default="txt",
                   help="txt (default), srt or vtt subtitles, or json: one object per file and line "
                   '{"text", "duration", "segments": [{"start", "end", "text", "words"}]}')
    p.add_argument("--output-dir", type=Path, help="write FILE.<format> there instead of printing")
    p.set_defaults(handler=_transcribe)

    p = sub.add_parser("listen", help="live transcription from a microphone",
                       description="Transcribe the microphone live: partial text is shown as it forms, "
                       "final text is printed line by line. Stop with Ctrl-C.")
    _engine_options(p)
    p.add_argument("--device", help="input device number or name substring (see --list-devices)")
    p.add_argument("--list-devices", action="store_true", help="list the sound devices and exit")
    p.add_argument("--json", action="store_true", help="print every event as a JSON line")
    p.set_defaults(handler=_listen)

    p = sub.add_parser("info", help="show what a bundle holds",
                       description="Show a bundle's model family, quantization, files and sizes, supported "
                       "delays and validation result, after checking every file's sha256.")
    p.add_argument("bundle_dir", type=Path, metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the manifest summary as JSON")
    p.add_argument("--no-verify", action="store_true", help="skip the sha256 check (sizes are still checked)")
    p.set_defaults(handler=_info)

    p = sub.add_parser("bench", help="measure speed on this machine",
                       description="Benchmarks: real-size Voxtral step cost against the memory-bandwidth floor, "
                       "the tiny-model path against transformers, Whisper against faster-whisper, and a "
                       "plain-words verdict on what this device can run live (docs/performance.md).")
    p.add_argument("suites", nargs="*", metavar="SUITE",
                   help="voxtral (real-size graphs, random weights), tiny (vs transformers), whisper "
                   "(vs faster-whisper), all; default: the device verdict only")
    p.add_argument("--device", action="store_true", help="measure this machine and say what it can run live")
    p.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                   help="where to write JSON results and the chart (default: benchmarks/results)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per figure; medians are reported")
    p.add_argument("--presets", default="int4,int8", help="voxtral suite: presets to build at real size")
    p.set_defaults(handler=_bench)
    return parser


def _engine_options(p) -> None:
    p.add_argument("--bundle", type=Path, help=f"bundle directory (default: ${BUNDLE_ENV})")
    p.add_argument("--delay-ms", type=int, help="Voxtral: transcription delay, a multiple of 80 from 80 to 1200, "
                   "or 2400 (default: the bundle's, usually 480). Longer is more accurate.")
    p.add_argument("--providers", default="cpu",
                   help="onnxruntime execution providers in priority order, comma-separated: cpu, cuda, coreml, "
                   "qnn, openvino, directml (default: cpu; unavailable ones fall back to cpu with a warning)")
    p.add_argument("--threads", type=int, help="CPU threads (default: one per core)")


def _load(args):
    from .model import load

    return load(args.bundle, providers=args.providers.split(","), threads=args.threads)


def _model_kwargs(model, args) -> dict:
    if args.delay_ms is None:
        return {}
    if model.family != "voxtral_realtime":
        raise VoxedgeError(f"--delay-ms applies to Voxtral Realtime bundles; this is a {model.family} bundle")
    return {"delay_ms": args.delay_ms}


def _transcribe(args) -> int:
    from .transcript import Transcript, render

    if len(args.files) > 1 and args.format in ("srt", "vtt") and not args.output_dir:
        raise VoxedgeError(f"{args.format} holds one file's subtitles: pass --output-dir for several files")
    model = _load(args)
    kwargs = _model_kwargs(model, args)
    from .audio import load_audio

    for path in args.files:
        samples = load_audio(path)
        transcript = Transcript(tuple(model.transcribe(samples, **kwargs)), duration=len(samples) / 16000)
        text = render(transcript, args.format)
        if args.output_dir:
            args.output_dir.mkdir(parents=True, exist_ok=True)
            (args.output_dir / f"{path.stem}.{args.format}").write_text(text, encoding="utf-8")
        elif len(args.files) > 1 and args.format == "txt":
            print(f"==> {path} <==\n{text}", end="")
        else:
            print(text, end="", flush=True)
    return 0


def _listen(args) -> int:
    from .microphone import Microphone, list_devices

    if args.list_devices:
        print(list_devices())
        return 0
    model = _load(args)
    stream = model.stream(**_model_kwargs(model, args))
    device = int(args.device) if args.device and args.device.isdigit() else args.device
    live = sys.stdout.isatty() and not args.json
    print("voxedge: listening (Ctrl-C to stop)", file=sys.stderr)
    with Microphone(device=device) as mic:
        try:
            for event in stream.run(mic):
                _show(event, args.json, live)
        except KeyboardInterrupt:
            for event in stream.close():
                _show(event, args.json, live)
    if stream.stats.samples_dropped:
        print(f"voxedge: warning: {stream.stats.samples_dropped / 16000:.1f} s of audio were dropped because "
              "transcription was slower than real time", file=sys.stderr)
    return 0


def _show(event, as_json: bool, live: bool) -> None:
    if as_json:
        print(json.dumps({"kind": event.kind, "text": event.text, "start": round(event.start, 3),
                          "end": round(event.end, 3), "dropped_samples": event.dropped_samples}), flush=True)
    elif event.kind == "final":
        print(("\r\033[K" if live else "") + event.text.strip(), flush=True)
    elif live:
        print("\r\033[K" + event.text.strip(), end="", flush=True)


def _info(args) -> int:
    from .bundle import open_bundle
    from .info import describe

    summary = describe(open_bundle(args.bundle_dir, verify=not args.no_verify), verified=not args.no_verify)
    print(json.dumps(summary, indent=1) if args.json else summary["text"])
    return 0


def _bench(args) -> int:
    from .bench import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
