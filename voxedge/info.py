"""`voxedge info`: a bundle described for people (and as JSON for scripts)."""

from __future__ import annotations

from .bundle import Bundle


def describe(bundle: Bundle, verified: bool) -> dict:
    manifest, cfg = bundle.manifest, bundle.model_section
    source = manifest.get("source", {})
    summary = {
        "bundle": str(bundle.root),
        "family": bundle.family,
        "quantization": manifest.get("quantization"),
        "graphs": {name: {k: v for k, v in g.items() if k != "file"} | {"file": g["file"]}
                   for name, g in manifest["graphs"].items()},
        "source": source,
        "exporter": manifest.get("exporter"),
        "size_bytes": bundle.size_bytes(),
        "files": {name: entry["bytes"] for name, entry in manifest["files"].items()},
        "hashes": "verified" if verified else "not checked (--no-verify); sizes ok",
    }
    if "delays_ms" in cfg:
        summary["delays_ms"] = cfg["delays_ms"]
        summary["default_delay_ms"] = cfg["default_delay_ms"]
    if "validation" in cfg:
        summary["validation"] = bundle.json(cfg["validation"])
    summary["text"] = _text(summary)
    return summary


def _text(s: dict) -> str:
    lines = [
        f"bundle        {s['bundle']}",
        f"family        {s['family']}",
        f"quantization  {s['quantization']}",
        f"source        {s['source'].get('checkpoint')}" + (f" @ {s['source']['revision']}" if s["source"].get("revision") else ""),
        f"size          {s['size_bytes'] / 1e6:.1f} MB in {len(s['files'])} files, sha256 {s['hashes']}",
    ]
    for name, graph in s["graphs"].items():
        detail = ", ".join(f"{k} {v}" for k, v in graph.items() if k != "file")
        lines.append(f"graph         {name}: {graph['file']} ({detail})")
    if "delays_ms" in s:
        lines.append(f"delays (ms)   {', '.join(map(str, s['delays_ms']))} (default {s['default_delay_ms']})")
    if "validation" in s:
        v = s["validation"]
        agreement = v.get("token_agreement")
        lines.append(
            "validation    "
            + (f"token agreement with transformers {agreement:.1%}" if agreement is not None else "see validation.json")
            + (f", max |logit delta| {v['max_abs_logit_delta_before_divergence']:.2e}"
               if "max_abs_logit_delta_before_divergence" in v else "")
        )
    return "\n".join(lines)
