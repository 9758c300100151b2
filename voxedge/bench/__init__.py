"""`voxedge bench`: what this device can run live, and (from a checkout) the benchmark suites.

The device verdict needs only numpy and onnxruntime. The suites build models and compare with
transformers and faster-whisper: they are the repository's `benchmarks` package, run here as
`python -m benchmarks` in the checkout voxedge was installed from (`make dev`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..errors import VoxedgeError


def run(args) -> int:
    if args.repeats < 1:
        raise VoxedgeError(f"--repeats must be at least 1, got {args.repeats}")
    if args.bundle and not args.device:
        raise VoxedgeError("--bundle goes with --device: `voxedge bench --device --bundle BUNDLE`")
    results = _run_suites(args) if args.suites else {}
    if args.device or not args.suites:
        results["device"] = _device(args.out)
        for bundle in args.bundle:
            results["device"].setdefault("bundles", {})[bundle] = _decoder_costs(bundle)
            results["device"]["text"] += "\n" + results["device"]["bundles"][bundle]["text"]
        if not args.json:
            print(results["device"]["text"])
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


def _run_suites(args) -> dict:
    """Run the suites in a subprocess; their figures (with --json) come back as a dict."""
    options = [*args.suites, "--out", str(args.out.resolve()), "--repeats", str(args.repeats), "--presets",
               args.presets] + (["--json"] if args.json else [])
    done = run_in_checkout("benchmarks", options, "the benchmark suites", capture=args.json,
                           elsewhere="`voxedge bench --device` works anywhere")
    return json.loads(done.stdout) if args.json else {}


def run_in_checkout(module: str, options: list[str], what: str, capture: bool = False, elsewhere: str = ""):
    """`python -m module options...` in the checkout voxedge was installed from (the benchmarks package
    is not installed with voxedge); a failure is one VoxedgeError naming `what`."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "__main__.py").is_file():
        raise VoxedgeError(f"{what} run from a voxedge checkout with `make dev`" + (f"; {elsewhere}" if elsewhere else ""))
    done = subprocess.run([sys.executable, "-m", module, *options], cwd=root, text=True,
                          stdout=subprocess.PIPE if capture else None)
    if done.returncode:
        raise VoxedgeError(f"{what} failed (exit status {done.returncode}); see the output above")
    return done


def _decoder_costs(bundle: str) -> dict:
    """Measure and keep what a decoder call over M positions costs here (voxedge/device_profile.py)."""
    from ..device_profile import save_decoder_costs
    from ..engines.draft_policy import DraftPolicy
    from ..model import load
    from .verify_cost import verify_cost

    model = load(bundle)
    if model.family != "voxtral_realtime" or not model.verifies:
        raise VoxedgeError(f"{bundle}: only Voxtral bundles exported by voxedge 0.4 or later verify drafted steps; "
                           "there is no decoder cost to measure")
    measured = verify_cost(model)
    costs = {m: row["ratio"] for m, row in measured.items()}
    saved = save_decoder_costs(model.bundle, costs)
    k = DraftPolicy(costs, max(costs)).steps(previous_is_draft=True)
    shown = " / ".join(f"{costs[m]:.2f}" for m in costs if m > 1)
    text = (f"{bundle}: a decoder call over {' / '.join(str(m) for m in costs if m > 1)} positions costs {shown} "
            f"single steps here; at speech's padding its files verify {k} steps per call after padding, then "
            f"follow what the stream emits (kept in {saved})")
    return {"decoder_call_cost_by_positions": measured, "verify_steps_after_padding": k, "saved_to": str(saved),
            "text": text}


def _device(out: Path) -> dict:
    from .bandwidth import read_bandwidth
    from .device import verdict

    saved = out / "voxtral.json"
    measured = json.loads(saved.read_text()) if saved.is_file() else None
    return verdict(read_bandwidth(), measured)
