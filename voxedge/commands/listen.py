"""`voxedge listen`: live transcription from a microphone."""

from __future__ import annotations

import json
import sys

from .common import engine_options, language_options, load_model, option_fields


def register(sub) -> None:
    p = sub.add_parser("listen", help="live transcription from a microphone",
                       description="Transcribe the microphone live: partial text is shown as it forms, "
                       "final text is printed line by line. Stop with Ctrl-C.")
    engine_options(p)
    language_options(p)
    p.add_argument("--device", help="input device number or name substring (see --list-devices)")
    p.add_argument("--list-devices", action="store_true", help="list the sound devices and exit")
    p.add_argument("--json", action="store_true", help="print every event as a JSON line")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..microphone import Microphone, list_devices

    if args.list_devices:
        devices = list_devices()
        print("\n".join(devices) if devices else "no input devices")
        return 0 if devices else 1
    model = load_model(args)
    stream = model.stream(**option_fields(args))
    device = int(args.device) if args.device and args.device.isdigit() else args.device
    live = sys.stdout.isatty() and not args.json
    with Microphone(device=device) as mic:
        print("voxedge: listening (Ctrl-C to stop)", file=sys.stderr)
        try:
            for event in stream.run(mic):
                show(event, args.json, live)
        except KeyboardInterrupt:
            for event in stream.close():
                show(event, args.json, live)
    if stream.stats.samples_dropped:
        print(f"voxedge: warning: {stream.stats.samples_dropped / 16000:.1f} s of audio were dropped because "
              "transcription was slower than real time", file=sys.stderr)
    if mic.device_overflows:
        print(f"voxedge: warning: the sound driver reported {mic.device_overflows} input overflows: audio was lost "
              "before voxedge got it (the machine was too busy to read the device in time)", file=sys.stderr)
    return 0


def show(event, as_json: bool, live: bool) -> None:
    if as_json:
        print(json.dumps({"kind": event.kind, "text": event.text, "start": round(event.start, 3),
                          "end": round(event.end, 3), "dropped_samples": event.dropped_samples}), flush=True)
    elif event.kind == "final":
        print(("\r\033[K" if live else "") + event.text.strip(), flush=True)
    elif live:
        print("\r\033[K" + event.text.strip(), end="", flush=True)
