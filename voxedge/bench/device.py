"""`voxedge bench --device`: can this machine run Voxtral 4B live, at which preset, or what instead?

The answer scales measured step times. If the voxtral suite has run on this machine (same CPU, cores
and memory), its figures are used as they are. Otherwise the figures of the reference machine
(docs/performance.md) are scaled by whichever resource this machine has relatively less of, memory
bandwidth (measured now) or cores: a conservative estimate, since the decoder is bandwidth-bound and
the batched encoder compute-bound.
"""

from __future__ import annotations

import os
import platform

STEP_MS = 80.0
HEADROOM = 0.9  # a live stream must keep up with some margin for everything else on the machine
BATCHES = (1, 4, 8)  # encoder steps per call; each adds (n - 1) x 80 ms of latency
# voxtral suite on the reference machine (2 vCPU AMD EPYC Zen 4, 24 GB), benchmarks/results/voxtral.json
REFERENCE = {"cores": 2, "bandwidth_gb_s": 34.5, "decoder_ms": {"int4": 92.4, "int8": 137.9},
             "encoder_ms": {1: 82.0, 4: 32.6, 8: 27.1}}
BUNDLE_GB = {"int4": 3.4, "int8": 4.9}
RUNTIME_GB = 3.3  # onnxruntime's transient copy while loading, caches at a 30 s context, Python


def machine() -> dict:
    """What identifies a machine's figures: CPU model, cores, memory."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": round(ram_gb())}


def ram_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return float("nan")


def verdict(bandwidth_gb_s: float, measured: list | None = None) -> dict:
    """Per preset: predicted ms per 80 ms step for each encoder batch, the smallest batch that keeps up."""
    here = machine()
    own = {m["preset"]: m for m in measured or [] if m.get("machine") == here}
    scale = max(REFERENCE["bandwidth_gb_s"] / bandwidth_gb_s, REFERENCE["cores"] / here["cores"])
    presets = {}
    for preset in ("int4", "int8"):
        if preset in own:
            decoder, encoder = own[preset]["decoder_ms"], {int(n): ms for n, ms in own[preset]["encoder_ms_per_step_by_batch"].items()}
            factor = 1.0
        else:
            decoder, encoder, factor = REFERENCE["decoder_ms"][preset], REFERENCE["encoder_ms"], scale
        steps = {n: round((decoder + encoder[n]) * factor, 1) for n in BATCHES}
        fits = BUNDLE_GB[preset] + RUNTIME_GB <= here["ram_gb"]
        live = [n for n in BATCHES if steps[n] <= STEP_MS * HEADROOM]
        presets[preset] = {"ms_per_step": steps, "live_encoder_batch": live[0] if live and fits else None,
                           "fits_in_ram": fits, "speedup_needed": round(steps[8] / (STEP_MS * HEADROOM), 2)}
    return {"machine": here, "bandwidth_gb_s": round(bandwidth_gb_s, 1),
            "figures_from": "this machine" if own else "the reference machine, scaled", "voxtral": presets,
            "text": _text(here, bandwidth_gb_s, presets)}


def _text(here, bandwidth, presets) -> str:
    lines = [f"This machine: {here['cores']} cores, {here['ram_gb']} GB RAM, {bandwidth:.0f} GB/s memory read bandwidth."]
    live = {p: v for p, v in presets.items() if v["live_encoder_batch"]}
    if live:
        preset = "int4" if "int4" in live else "int8"
        batch = live[preset]["live_encoder_batch"]
        added = (batch - 1) * 80
        lines.append(
            f"Voxtral 4B runs live here with the {preset} bundle ({presets[preset]['ms_per_step'][batch]:.0f} ms per "
            f"80 ms step" + (f", encoding {batch} steps per call, which adds {added} ms" if batch > 1 else "")
            + f"). At delay 480 ms text follows speech by about {0.48 + added / 1000 + 0.1:.1f} s; longer delays "
            "are more accurate and cost nothing more."
        )
    else:
        best = presets["int4"]
        need = best["speedup_needed"]
        reason = (f"int4 needs about {best['ms_per_step'][8]:.0f} ms per 80 ms step ({need:.1f}x too slow even encoding "
                  f"8 steps per call): it takes about {need:.1f}x this machine's memory bandwidth "
                  f"(~{bandwidth * need:.0f} GB/s) and cores")
        if not best["fits_in_ram"]:
            reason += f", and {BUNDLE_GB['int4'] + RUNTIME_GB:.0f} GB of RAM"
        lines.append(f"Voxtral 4B cannot run live here: {reason}. Files still work, slower than real time.")
        lines.append("For live transcription on this machine use a Whisper bundle (tiny.en: `--bundle "
                     "whisper-tiny.en`), or run Voxtral on a GPU/NPU execution provider.")
    return "\n".join(lines)
