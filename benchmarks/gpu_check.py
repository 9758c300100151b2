"""`make gpu-check`: voxedge on an NVIDIA GPU through onnxruntime-gpu's CUDA provider (docs/hardware.md).

    python -m benchmarks.gpu_check build DIR [--real]       (the dev virtualenv: needs torch)
    python -m benchmarks.gpu_check run DIR [--providers cuda] (the GPU virtualenv: onnxruntime-gpu)

`build` writes the bundles: Whisper tiny.en fp32 and int8 (real weights, torch-free), the tiny random
Voxtral fp32 and int8 (exported and validated against transformers), and with --real the real-size
Voxtral fp16 (random weights, benchmarks/voxtral_real.py's bundle; fp16 is the GPU preset,
docs/export.md). `run` checks, on the provider:
  parity     every tiny bundle against the CPU provider in the same process (tests/npu/ep_check.py):
             fp32 logits within 1e-3, quantized the same argmax at every step;
  real size  Voxtral fp16: load time, first-token latency, steady 80 ms steps (encoder, decoder, the
             rest), medians; the KV binding must be `device` (caches in GPU memory, bound through IO
             binding: no step copies KV between host and device).
It prints the figures (JSON on stdout with --json) and exits 1 when a parity check fails.
`make gpu-check-dry-run` runs the same code with the CPU provider, timing the tiny Voxtral in place of
the real-size one: it shows the script works on a machine without a GPU, and measures nothing about GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TINY = {"whisper-fp32": "fp32", "whisper-int8": "int8", "voxtral-fp32": "fp32", "voxtral-int8": "int8"}
REAL = "voxtral-real-fp16"
STEADY_STEPS = 50


def build(out: Path, real: bool) -> None:
    from export.__main__ import main as export_main
    from export.stages import Stages
    from export.voxtral import tiny
    from export.whisper.offline import build as build_whisper, shipped_model_dir

    out.mkdir(parents=True, exist_ok=True)
    for name, quant in TINY.items():
        if (out / name / "manifest.json").exists():
            continue
        if name.startswith("whisper"):
            (out / name).mkdir(exist_ok=True)
            build_whisper(shipped_model_dir(), out / name, quant, Stages(stream=None))
        else:
            checkpoint = out / "voxtral-tiny-checkpoint"
            if not checkpoint.exists():
                tiny.build(checkpoint, seed=0)
            assert export_main([str(checkpoint), "--out", str(out / name), "--quant", quant, "--force"]) == 0
    _inputs(out)
    if real:
        from .voxtral_real import build as build_real

        target = out / REAL
        if not target.exists():
            target.symlink_to(build_real("fp16").resolve())


def run(out: Path, providers: str, real: bool, real_bundle: Path | None = None) -> dict:
    import onnxruntime

    figures = {"onnxruntime": onnxruntime.__version__, "providers_available": onnxruntime.get_available_providers(),
               "requested": providers, "gpu": _gpu_name(), "parity": _parity(out, providers)}
    real_bundle = real_bundle or out / REAL
    if real and real_bundle.exists():
        figures["steady_steps"] = {"bundle": str(real_bundle), **_real_size(real_bundle, providers)}
    return figures


def _gpu_name() -> str | None:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def _inputs(out: Path) -> None:
    """Beckett's recording as Whisper's mel window and 1.5 s of samples, saved for `run` (whose
    virtualenv has neither the recordings nor the exporter)."""
    import voxedge
    from export.whisper.offline import recording
    from voxedge.audio import load_audio

    audio = load_audio(recording("beckett.wav"))
    np.save(out / "beckett_mel.npy", voxedge.load(out / "whisper-fp32").features(audio))
    np.save(out / "beckett_1500ms.npy", audio[:24000])


def _parity(out: Path, providers: str) -> dict:
    """tests/npu/ep_check.py on the tiny bundles, with this interpreter; verdicts added."""
    checks = [{"kind": "whisper_greedy", "bundle": str(out / n), "mel": str(out / "beckett_mel.npy")}
              for n in ("whisper-fp32", "whisper-int8")]
    checks += [{"kind": "voxtral_stream", "bundle": str(out / n), "audio": str(out / "beckett_1500ms.npy"),
                "delay_ms": 480} for n in ("voxtral-fp32", "voxtral-int8")]
    request = out / "parity_request.json"
    request.write_text(json.dumps({"providers": providers, "work": str(out), "checks": checks}))
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "npu" / "ep_check.py"), str(request)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        return {"error": done.stderr[-2000:]}
    results = json.loads(done.stdout.strip().splitlines()[-1])["results"]
    parity = {}
    for name, result in zip(["whisper-fp32", "whisper-int8", "voxtral-fp32", "voxtral-int8"], results):
        if "error" in result:
            parity[name] = {"ok": False, "error": result["error"]}
            continue
        same = result["argmax_ep"] == result["argmax_cpu"]
        ok = same and (TINY[name] != "fp32" or result["max_abs_logit_delta"] < 1e-3)
        parity[name] = {"ok": ok, "steps": result["steps"], "same_argmax": same,
                        "max_abs_logit_delta": result["max_abs_logit_delta"],
                        "kv_binding": result["ep"].get("binding")}
    return parity


def _real_size(bundle: Path, providers: str) -> dict:
    """Load, first token, then steady steps with the prompt done; times from the engine's own counters."""
    import voxedge

    start = time.perf_counter()
    model = voxedge.load(bundle, providers=providers, verify=False)
    figures = {"load_s": round(time.perf_counter() - start, 1)}
    audio = (0.1 * np.random.default_rng(0).standard_normal(16000 * 30)).astype(np.float32)
    stamps = []
    stream = model.stream(delay_ms=480, on_step=lambda *_: stamps.append(time.perf_counter()))
    first = model.padding.first_chunk(6)
    start = time.perf_counter()
    stream.feed(audio[:first])
    figures["first_token_ms"] = round((stamps[0] - start) * 1e3, 1)
    engine = stream.engine
    figures["kv_binding"] = {"encoder": engine._encoder.binding, "decoder": engine._decoder.binding}
    walls, encs, decs = [], [], []
    position = first
    for _ in range(STEADY_STEPS):
        e0, d0, t0 = engine._encoder.seconds, engine._decoder.seconds, time.perf_counter()
        stream.feed(audio[position : position + 1280])
        walls.append(time.perf_counter() - t0)
        encs.append(engine._encoder.seconds - e0)
        decs.append(engine._decoder.seconds - d0)
        position += 1280
    figures.update({f"{k}_ms": round(1e3 * statistics.median(v), 2)
                    for k, v in (("step", walls), ("encoder", encs), ("decoder", decs))})
    figures["realtime_factor"] = round(figures["step_ms"] / 80, 3)
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("build", "run"))
    parser.add_argument("dir", type=Path)
    parser.add_argument("--real", action="store_true", help="the real-size Voxtral fp16 too (8.9 GB)")
    parser.add_argument("--providers", default="cuda")
    parser.add_argument("--real-bundle", type=Path,
                        help="time this bundle instead of the real-size one (the dry run times the tiny Voxtral)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.action == "build":
        build(args.dir, args.real)
        return 0
    figures = run(args.dir, args.providers, args.real, args.real_bundle)
    print(json.dumps(figures, indent=None if args.json else 1))
    return 0 if passed(figures, args.providers) else 1


def passed(figures: dict, providers: str) -> bool:
    """Parity everywhere, and on CUDA every KV cache on the device."""
    parity = figures["parity"]
    ok = "error" not in parity and all(p["ok"] for p in parity.values())
    if "cuda" in providers.lower():
        bindings = [p.get("kv_binding") for p in parity.values()]
        bindings += list(figures.get("steady_steps", {}).get("kv_binding", {}).values())
        ok = ok and set(bindings) == {"device"}
    return ok


if __name__ == "__main__":
    sys.exit(main())
