"""`voxedge listen`: live transcription from a microphone."""

from __future__ import annotations

import argparse
import json
import sys

from .common import engine_options, language_options, load_model, model_kwargs


def register(sub) -> None:
    p = sub.add_parser("listen", help="live transcription from a microphone",
                       description="Transcribe the microphone live, one line per utterance: on a terminal the "
                       "line being spoken is redrawn as it forms. Stop with Ctrl-C.")
    engine_options(p)
    language_options(p)
    p.add_argument("--vad", action=argparse.BooleanOptionalAction, default=None,
                   help="decode only what Silero VAD calls speech (the model starts afresh after 2 s of "
                   "silence). Default: on for Whisper (room noise sends its live windows into loops), off "
                   "for Voxtral")
    p.add_argument("--endpoint-ms", type=int, default=800,
                   help="silence after the last word that ends an utterance (one line), in ms (default 800)")
    p.add_argument("--step-ms", type=int,
                   help="Whisper: audio between two hypotheses, in ms (default 1000). Longer costs less CPU, and "
                   "words become final later (2000: about 0.6x the CPU; docs/whisper.md)")
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
    stream = model.stream(**model_kwargs(args), vad=args.vad, endpoint_ms=args.endpoint_ms)
    device = int(args.device) if args.device and args.device.isdigit() else args.device
    show = Display(json_lines=args.json, redraw=sys.stdout.isatty() and not args.json)
    with Microphone(device=device) as mic:
        print("voxedge: listening (Ctrl-C to stop)", file=sys.stderr)
        try:
            for event in stream.run(mic):
                show(event)
        except KeyboardInterrupt:
            for event in stream.close():
                show(event)
    if stream.stats.samples_dropped:
        print(f"voxedge: warning: {stream.stats.samples_dropped / 16000:.1f} s of audio were dropped because "
              "transcription was slower than real time", file=sys.stderr)
    if mic.device_overflows:
        print(f"voxedge: warning: the sound driver reported {mic.device_overflows} input overflows: audio was lost "
              "before voxedge got it (the machine was too busy to read the device in time)", file=sys.stderr)
    return 0


class Display:
    """Events on stdout: every event as a JSON line, or one line per utterance (on a terminal, the
    utterance in progress is redrawn as its words come)."""

    def __init__(self, json_lines: bool, redraw: bool):
        self.json_lines, self.redraw = json_lines, redraw
        self._final = ""  # final text of the utterance in progress

    def __call__(self, event) -> None:
        if self.json_lines:
            print(json.dumps({"kind": event.kind, "text": event.text, "start": round(event.start, 3),
                              "end": round(event.end, 3), "dropped_samples": event.dropped_samples,
                              "backlog": event.backlog}), flush=True)
        elif event.kind == "utterance":
            self._final = ""
            print(("\r\033[K" if self.redraw else "") + event.text.strip(), flush=True)
        elif self.redraw:
            if event.kind == "final":
                self._final += event.text
            line = self._final + (event.text if event.kind == "partial" else "")
            print("\r\033[K" + line.strip(), end="", flush=True)
