"""`voxedge bench`: measured figures, and what this device can run live."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure speed on this machine",
                       description="Benchmarks: real-size Voxtral step cost against the memory-bandwidth floor, "
                       "the tiny-model path against transformers, Whisper against faster-whisper, live cost and "
                       "what VAD saves, the server under load, voxedge side by side with faster-whisper, "
                       "whisper.cpp and CrispASR on the same weights, and a plain-words verdict on what this "
                       "device can run live (docs/performance.md).")
    p.add_argument("suites", nargs="*", metavar="SUITE",
                   help="voxtral (real-size graphs, random weights), tiny (vs transformers), whisper "
                   "(vs faster-whisper), live (live vs file, VAD), serve (voxedge serve with 1, 4 and 8 live "
                   "clients, and a soak), peers (vs faster-whisper, whisper.cpp, CrispASR; about an hour and a "
                   "19 GB cache, so not part of all), kv (KV-cache binding: one shared buffer against two in "
                   "turn), batch (files per hour with --workers, vs faster-whisper batched), memory (peak "
                   "memory on a 3-hour 48 kHz stereo file, both families; about an hour, not part of all), blocks "
                   "(what 4-bit blocks of 32, 64 and 128 values cost in accuracy, on Whisper base's decoder), "
                   "all; default: the device verdict only")
    p.add_argument("--device", action="store_true", help="measure this machine and say what it can run live")
    p.add_argument("--bundle", action="append", default=[], metavar="BUNDLE",
                   help="with --device: also measure this Voxtral bundle's decoder calls over 1, 2, 4 and 8 "
                   "positions and keep the figures, from which its sessions choose how many drafted steps to "
                   "verify per call (docs/voxtral.md); may be repeated")
    p.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                   help="where to write JSON results and the chart (default: benchmarks/results)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per figure; medians are reported")
    p.add_argument("--presets", default="int4,int8", help="voxtral suite: presets to build at real size")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..bench import run as run_bench

    return run_bench(args)
