"""`voxedge info`: a bundle described for people (and as JSON for scripts)."""

from __future__ import annotations

from .bundle import Bundle

SHOWN_LANGUAGES = 12  # the text shows this many language codes; the JSON has them all


def describe(bundle: Bundle, verified: bool, name: str | None = None) -> dict:
    """`name`: the model name the bundle was found by (voxedge/catalog.py), if any."""
    manifest, cfg = bundle.manifest, bundle.model_section
    source = manifest.get("source", {})
    summary = {
        "name": name,
        "model": source.get("checkpoint"),
        "bundle": str(bundle.root),
        "family": bundle.family,
        "languages": _languages(bundle.family, cfg),
        "quantization": manifest.get("quantization"),
        "target": cfg.get("target", "cpu"),  # npu: fixed shapes, standard ops (docs/hardware.md)
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


def _languages(family: str, cfg: dict) -> list[str] | None:
    """Language codes the model transcribes, where the bundle records them (Whisper); None if it does not."""
    if family != "whisper":
        return None
    languages = cfg.get("languages") or {}
    return sorted(languages, key=languages.get) if languages else ["en"]  # no language tokens: English-only


def _text(s: dict) -> str:
    model = s["model"] if not s["name"] else f"{s['name']} ({s['model']})"
    lines = [f"model         {model}", f"bundle        {s['bundle']}", f"family        {s['family']}"]
    if s["languages"]:
        codes = s["languages"]
        lines.append("languages     " + ("en (English-only model)" if codes == ["en"] else f"{len(codes)}: "
                     + ", ".join(codes[:SHOWN_LANGUAGES]) + (", ..." if len(codes) > SHOWN_LANGUAGES else "")))
    lines += [
        f"quantization  {s['quantization']}" + (f", target {s['target']}" if s["target"] != "cpu" else ""),
        f"source        {s['source'].get('checkpoint')}" + (f" @ {s['source']['revision']}" if s["source"].get("revision") else "")
        + (f", weights from {s['source']['weights']}" if s["source"].get("weights") else ""),
        f"size          {s['size_bytes'] / 1e6:.1f} MB in {len(s['files'])} files, sha256 {s['hashes']}",
    ]
    for name, graph in s["graphs"].items():
        detail = ", ".join(f"{k} {v}" for k, v in graph.items() if k != "file")
        lines.append(f"graph         {name}: {graph['file']} ({detail})")
    if "delays_ms" in s:
        lines.append(f"delays (ms)   {', '.join(map(str, s['delays_ms']))} (default {s['default_delay_ms']})")
    if "validation" in s:
        lines.append("validation    " + _validation(s["validation"]))
    return "\n".join(lines)


def _validation(v: dict) -> str:
    if "reference" in v and v["reference"] is None:
        return f"{v.get('method')}; validated by {v.get('validated_by')}"
    agreement = v.get("token_agreement")
    return ((f"token agreement with transformers {agreement:.1%}" if agreement is not None else "see validation.json")
            + (f", max |logit delta| {v['max_abs_logit_delta_before_divergence']:.2e}"
               if "max_abs_logit_delta_before_divergence" in v else ""))



def describe_placement(bundle: Bundle, runtime) -> dict:
    """Where every graph's nodes run on `runtime`'s providers: {"providers": [...], "placement": {graph:
    {provider: {"nodes", "ops"}}}, "text": one line per graph}."""
    from .runtime import graph_placements

    placement = graph_placements(bundle, runtime)
    lines = [f"providers     {', '.join(runtime.providers)}" + (" (strict)" if runtime.strict else "")]
    for graph, providers in placement.items():
        total = sum(p["nodes"] for p in providers.values()) or 1
        shares = "; ".join(f"{name} {p['nodes']} nodes ({p['nodes'] / total:.0%})"
                           for name, p in sorted(providers.items(), key=lambda item: -item[1]["nodes"]))
        lines.append(f"placement     {graph}: {shares or 'not recorded by this onnxruntime'}")
    return {"providers": list(runtime.providers), "placement": placement, "text": "\n".join(lines)}
