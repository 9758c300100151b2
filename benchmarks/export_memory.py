"""Peak memory of `python -m export` against the checkpoint's own fp32 size, on a tiny and a mid-size
random Voxtral Realtime config (the real weights are not available offline).

    python -m benchmarks.export_memory [--out benchmarks/results/export_memory.json]

Each export runs in its own process; its peak RSS comes from the kernel (ru_maxrss of the child).
The claim checked: the checkpoint is never held twice (peak ~ one fp32 copy + a fixed baseline).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {
    "tiny": {},
    "mid": {
        "layers": 8,
        # initializer_range 0.02: with the tiny model's 0.2, hidden states of this width reach 5e4 and
        # float32 rounding alone moves logits by 1e-2
        "text": dict(hidden_size=1024, intermediate_size=3072, num_attention_heads=8, num_key_value_heads=4,
                     head_dim=128, sliding_window=8192, initializer_range=0.02),
        "audio": dict(hidden_size=512, intermediate_size=2048, num_attention_heads=8, head_dim=64, sliding_window=750,
                      initializer_range=0.02),
    },
}


REAL_FP32_MB = 4.43e9 * 4 / 2**20


def checkpoint_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.safetensors"))


def run_export(checkpoint: Path, out: Path, preset: str) -> dict:
    """Runs in a fresh process per measurement, so the children's ru_maxrss is this export's peak."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "export", str(checkpoint), "--out", str(out), "--quant", preset, "--force"],
                   check=True, capture_output=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"preset": preset, "seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(peak / 1024), "bundle_mb": round(
                sum(f.stat().st_size for f in out.iterdir()) / 2**20, 1)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/export_memory.json"))
    args = parser.parse_args(argv)
    from export.voxtral import tiny

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, sizes in CONFIGS.items():
            ckpt = tiny.build(Path(tmp) / name, **sizes)
            size_mb = checkpoint_bytes(ckpt) / 2**20
            for preset in ("fp32", "int4"):
                row = json.loads(subprocess.run(
                    [sys.executable, "-m", "benchmarks.export_memory", "--one", str(ckpt), preset], check=True,
                    capture_output=True, text=True
                ).stdout)
                row.update(config=name, checkpoint_fp32_mb=round(size_mb, 1))
                results.append(row)
                print(json.dumps(row))
    summary = {"runs": results, "fit": fit(results)}
    print(json.dumps(summary["fit"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")


def fit(results) -> dict:
    """peak = baseline + slope x checkpoint size, per preset, from the two configs; extrapolated to
    the real checkpoint (4.43 B parameters, 17.7 GB in fp32)."""
    out = {}
    for preset in ("fp32", "int4"):
        (small, large) = sorted((r for r in results if r["preset"] == preset), key=lambda r: r["checkpoint_fp32_mb"])
        slope = (large["peak_rss_mb"] - small["peak_rss_mb"]) / (large["checkpoint_fp32_mb"] - small["checkpoint_fp32_mb"])
        baseline = small["peak_rss_mb"] - slope * small["checkpoint_fp32_mb"]
        out[preset] = {"baseline_mb": round(baseline), "slope": round(slope, 2),
                       "real_4b_estimate_gb": round((baseline + slope * REAL_FP32_MB) / 1024, 1)}
    return out


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        with tempfile.TemporaryDirectory() as out:
            print(json.dumps(run_export(Path(sys.argv[2]), Path(out) / "bundle", sys.argv[3])))
    else:
        main()
