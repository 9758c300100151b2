"""python -m benchmarks SUITE... [--out DIR] [--repeats N] [--presets int4,int8] [--json]

The benchmark suites, run from a checkout with the development install (`make dev`); `voxedge bench
SUITE` runs this. Each suite's figures go to OUT/SUITE.json, and the chart to OUT/performance.png.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

SUITES = {
    "voxtral": "benchmarks.voxtral_real",
    "tiny": "benchmarks.tiny_vs_transformers",
    "whisper": "benchmarks.whisper_vs_faster_whisper",
    "serve": "benchmarks.serve_load",
    "live": "benchmarks.live",
    "peers": "benchmarks.peers",
    "kv": "benchmarks.kv_binding",
    "batch": "benchmarks.batch",
    "memory": "benchmarks.long_file",
    "blocks": "benchmarks.block_sizes",
}
NOT_IN_ALL = {"peers", "memory"}  # about an hour each (peers also a 19 GB cache): asked for by name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("suites", nargs="+", choices=[*SUITES, "all"], metavar="SUITE",
                        help=f"{', '.join(SUITES)} or all")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure; medians are reported")
    parser.add_argument("--presets", default="int4,int8", help="voxtral suite: presets to build at real size")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    suites = [s for s in SUITES if s not in NOT_IN_ALL] if "all" in args.suites else list(dict.fromkeys(args.suites))
    results = {}
    for suite in suites:
        print(f"benchmarks: running {suite} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(SUITES[suite])
        results[suite] = module.run(args.presets.split(","), args.out, args.repeats) if suite == "voxtral" else module.run(args.repeats)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{suite}.json").write_text(json.dumps(results[suite], indent=1) + "\n")
    from .chart import render

    render(args.out)
    if args.json:
        print(json.dumps(results, indent=1))
    for name, result in ([] if args.json else results.items()):
        # a suite with a table prints it; the others print their figures
        print(result["table"] if isinstance(result, dict) and "table" in result else f"{name}: {json.dumps(result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
