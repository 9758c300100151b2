"""`voxedge bench`: measured figures, and what this device can run live (docs/performance.md).

The device verdict needs only numpy and onnxruntime. The suites build models and compare with
transformers and faster-whisper: they live in the repository's `benchmarks/` package and need the
development install (`make dev`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import VoxedgeError

SUITES = {
    "voxtral": "benchmarks.voxtral_real",
    "tiny": "benchmarks.tiny_vs_transformers",
    "whisper": "benchmarks.whisper_vs_faster_whisper",
    "peers": "benchmarks.peers",
}


def run(args) -> int:
    suites = list(SUITES) if "all" in args.suites else args.suites
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise VoxedgeError(f"unknown benchmark suite {unknown[0]!r}: choose from {', '.join(SUITES)} or all")
    results = {}
    if suites:
        _import_benchmarks()
    for suite in suites:
        print(f"voxedge bench: running {suite} ...", file=sys.stderr, flush=True)
        results[suite] = _run_suite(suite, args)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{suite}.json").write_text(json.dumps(results[suite], indent=1) + "\n")
    if args.device or not suites:
        results["device"] = _device(args.out, results.get("voxtral"))
    if suites:
        from benchmarks.chart import render

        render(args.out)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for name, result in results.items():
            if name == "device":
                print(result["text"])
            elif isinstance(result, dict) and "table" in result:  # a suite that prints its own table
                print(result["table"])
            else:
                print(f"{name}: {json.dumps(result)}")
    return 0


def _run_suite(suite: str, args):
    import importlib

    module = importlib.import_module(SUITES[suite])
    if suite == "voxtral":
        return module.run(args.presets.split(","), args.out)
    return module.run(args.repeats)


def _device(out: Path, measured) -> dict:
    from .bandwidth import read_bandwidth
    from .device import verdict

    saved = out / "voxtral.json"
    if measured is None and saved.is_file():
        measured = json.loads(saved.read_text())
    return verdict(read_bandwidth(), measured)


def _import_benchmarks() -> None:
    """The suites are in the checkout voxedge was installed from (pip install -e)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "__init__.py").is_file():
        raise VoxedgeError("the benchmark suites run from a voxedge checkout with `make dev`; "
                           "`voxedge bench --device` works anywhere")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
