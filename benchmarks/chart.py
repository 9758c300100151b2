"""benchmarks/results/performance.png from the suites' JSON results."""

from __future__ import annotations

import json
from pathlib import Path


def render(out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if (out / "peers.json").is_file():
        render_peers(out)
    results = {name: json.loads((out / f"{name}.json").read_text())
               for name in ("voxtral", "whisper", "tiny") if (out / f"{name}.json").is_file()}
    if not results:
        return None
    panels = [name for name in ("voxtral", "whisper") if name in results]
    fig, axes = plt.subplots(1, len(panels) + ("voxtral" in results), figsize=(5 * (len(panels) + 1), 4))
    axes = list(axes) if hasattr(axes, "__len__") else [axes]
    if "voxtral" in results:
        _voxtral(axes.pop(0), axes.pop(0), results["voxtral"])
    if "whisper" in results:
        _whisper(axes.pop(0), results["whisper"])
    fig.tight_layout()
    path = out / "performance.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _voxtral(steps_ax, encoder_ax, rows) -> None:
    presets = [r["preset"] for r in rows]
    x = range(len(rows))
    steps_ax.bar(x, [r["decoder_ms"] for r in rows], label="decoder (measured)", color="#4c72b0")
    steps_ax.bar(x, [r["encoder_ms"] for r in rows], bottom=[r["decoder_ms"] for r in rows],
                 label="encoder, 1 step per call", color="#86a5d6")
    steps_ax.scatter(x, [r["floor_ms"]["total"] for r in rows], marker="_", s=900, color="k", label="bandwidth floor")
    steps_ax.axhline(80, color="#c44e52", linestyle="--", label="real time (80 ms)")
    steps_ax.set_xticks(list(x), presets)
    steps_ax.set_ylabel("ms per 80 ms step")
    steps_ax.set_title("Voxtral 4B (real size, random weights)")
    steps_ax.legend(fontsize=7)
    for i, r in enumerate(rows):
        batches = r["encoder_ms_per_step_by_batch"]
        labels = ["concat KV"] + [f"shared, {b}/call" for b in sorted(batches, key=int)]
        values = [r["concat_encoder_ms"]] + [batches[b] for b in sorted(batches, key=int)]
        encoder_ax.bar([i * (len(values) + 1) + j for j in range(len(values))], values,
                       color=["#c44e52"] + ["#55a868"] * (len(values) - 1))
        for j, label in enumerate(labels):
            encoder_ax.text(i * (len(values) + 1) + j, values[j], f"{label}\n{values[j]:.0f}", ha="center",
                            va="bottom", fontsize=6)
    encoder_ax.set_xticks([])
    encoder_ax.set_ylabel("encoder ms per 80 ms step")
    encoder_ax.set_title("Encoder: shared KV buffers + chunking vs concat KV (" + ", ".join(presets) + ")")


def _whisper(ax, result) -> None:
    presets = [p for p in ("int8", "fp32") if p in result]
    width = 0.35
    for k, system in enumerate(("voxedge", "faster_whisper")):
        ax.bar([i + k * width for i in range(len(presets))], [result[p][system]["rtf"] for p in presets], width,
               label=system.replace("_", "-"))
    ax.set_xticks([i + width / 2 for i in range(len(presets))], presets)
    ax.set_ylabel("real-time factor (lower is faster)")
    ax.set_title(f"Whisper tiny.en, {result['audio_seconds']:.0f} s of audio")
    ax.legend(fontsize=7)


def render_peers(out: Path) -> Path:
    """benchmarks/results/peers.png: real-time factor per Whisper model and decoding, Voxtral ms per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = json.loads((out / "peers.json").read_text())
    blocks = result["whisper"]
    panels = len(blocks) + ("voxtral" in result)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.2), squeeze=False)
    colors = {"voxedge": "#4c72b0", "faster-whisper": "#55a868", "whisper.cpp": "#c44e52", "crispasr": "#8172b2"}
    for ax, (name, block) in zip(axes[0], blocks.items()):
        rows = {k: v for k, v in block["rows"].items() if "rtf" in v}
        ax.barh(list(rows), [r["rtf"] for r in rows.values()], color=[colors[k.rsplit(" ", 1)[0]] for k in rows])
        ax.invert_yaxis()
        ax.set_xlabel("real-time factor (lower is faster)")
        ax.set_title(f"Whisper {name}", fontsize=9)
        ax.tick_params(labelsize=7)
    if "voxtral" in result:
        ax, rows = axes[0][-1], result["voxtral"]["rows"]
        names = list(rows)
        ax.barh([n + " decode" for n in names], [r["decoder_ms"] for r in rows.values()],
                color=[colors[n.split()[0]] for n in names])
        ax.barh([n + " encode" for n in names], [r["encoder_ms_per_step_by_batch"]["1"] for r in rows.values()],
                color=[colors[n.split()[0]] for n in names], alpha=0.5)
        ax.invert_yaxis()
        ax.set_xlabel("ms per token / per 80 ms step (1 step per call)")
        ax.set_title("Voxtral Realtime 4B, real size", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    path = out / "peers.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
