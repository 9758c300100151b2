"""Runs inside an execution provider's own virtualenv (.venv-openvino, .venv-qnn; tests/npu/Makefile):
the same bundle on the requested provider and on the CPU provider, figures printed as one JSON object.
The tests in this folder start it and judge the figures: the assertions live there.

    python tests/npu/ep_check.py REQUEST.json

REQUEST: {"providers": "qnn:...", "strict": bool, "work": DIR, "checks": [{"kind": ..., ...}]}
kinds:
  whisper_greedy  {"bundle", "mel"}: a whole greedy window on both providers (encoder included)
  whisper_forced  {"bundle", "mel", "steps"}: cross-attention from the CPU encoder (a simulated NPU
                  encoder takes minutes), then `steps` decoder steps on both providers over the CPU's tokens
  voxtral_stream  {"bundle", "audio", "delay_ms"}: a live stream on both providers, every step's logits
  context_binary  {"bundle", "graph"}: compile one graph with ep.context_enable and run the saved model
  read_audio      {"path"}: decode a WAV after the sessions above exist (the libsndfile crash)
  placement       {"bundle"}: nodes per provider of every graph
  refused         {"bundle"}: whether loading the bundle fails, and with what message
  warnings        {"graph"}: the warnings creating a session of one ONNX file gives
A check may set "strict" for itself.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import numpy as np

import voxedge
from voxedge.engines.kv_cache import CachedGraph, SlidingKVCache
from voxedge.engines.whisper_decoding import WindowDecoder
from voxedge.options import RuntimeOptions


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    runtime = dict(providers=request["providers"], strict=request.get("strict", False))
    results = []
    for check in request["checks"]:
        try:
            settings = {**runtime, "strict": check.get("strict", runtime["strict"])}
            results.append({"kind": check["kind"], **CHECKS[check["kind"]](check, settings, Path(request["work"]))})
        except Exception as exc:  # reported, and judged by the test
            results.append({"kind": check["kind"], "error": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc()[-2000:]})
    print(json.dumps({"onnxruntime": _ort_version(), "results": results}))
    return 0


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def whisper_greedy(check, runtime, work):
    mel = np.load(check["mel"])
    out = {}
    for label, model in (("cpu", voxedge.load(check["bundle"])), ("ep", voxedge.load(check["bundle"], **runtime))):
        tokens, logits = [], []
        decoder = WindowDecoder(model, on_step=lambda t, lg: (tokens.append(t), logits.append(lg)))
        decoder.decode(model.encode(mel), _prompt(model), timestamps=False)
        out[label] = {"tokens": tokens, "text": model.tokens.decode(tokens), "binding": decoder.graph.binding}
        out[label + "_logits"] = np.stack(logits)
    return _logit_figures(out)


def whisper_forced(check, runtime, work):
    mel = np.load(check["mel"])
    cpu = voxedge.load(check["bundle"])
    cross = cpu.encode(mel)
    tokens = []
    WindowDecoder(cpu, on_step=lambda t, lg: tokens.append(t)).decode(cross, _prompt(cpu), timestamps=False)
    forced = tokens[: check["steps"] - 1]
    out = {"cpu": {"tokens": forced}}
    ep = voxedge.load(check["bundle"], **runtime)
    for label, model in (("cpu", cpu), ("ep", ep)):
        graph = CachedGraph(model.decoder, SlidingKVCache.of(model.config.decoder, model.config.max_positions,
                                                             initial=64), ["logits"])
        prompt = _prompt(model)
        logits = [_step(model, graph, prompt, 0, cross)]
        for i, token in enumerate(forced):
            logits.append(_step(model, graph, [token], len(prompt) + i, cross))
        out[label + "_logits"] = np.stack(logits)
        out.setdefault(label, {})["binding"] = graph.binding
    return _logit_figures(out)


def _step(model, graph, ids, position, cross):
    feeds = {"inputs_embeds": model.embed(ids)[None],
             "position_ids": np.arange(position, position + len(ids), dtype=np.int64)[None], **cross}
    return graph.run(feeds, len(ids))[0][0]


def voxtral_stream(check, runtime, work):
    audio = np.load(check["audio"])
    out = {}
    for label, model in (("cpu", voxedge.load(check["bundle"])), ("ep", voxedge.load(check["bundle"], **runtime))):
        tokens, logits = [], []
        stream = model.stream(delay_ms=check["delay_ms"],
                              on_step=lambda t, lg, *_: (tokens.append(t), logits.append(lg)))
        stream.feed(audio)
        stream.close()
        out[label] = {"tokens": tokens, "binding": stream.engine._decoder.binding}
        out[label + "_logits"] = np.stack(logits)
    return _logit_figures(out)


def context_binary(check, runtime, work):
    from voxedge.bundle import open_bundle
    from voxedge.runtime import create_session, placement

    bundle = open_bundle(check["bundle"])
    path = work / f"{check['graph']}_ctx.onnx"
    options = RuntimeOptions(**runtime, session_config={"ep.context_enable": "1", "ep.context_file_path": str(path),
                                                        "ep.context_embed_mode": "1"})
    create_session(bundle.graph_bytes(check["graph"]), options, data_dir=bundle.root, label=check["graph"])
    data = path.read_bytes() if path.is_file() else b""
    session = create_session(path, RuntimeOptions(**runtime)) if data else None
    return {"bytes": len(data), "has_ep_context_node": b"EPContext" in data,
            "reloaded_placement": {k: sum(v.values()) for k, v in (placement(session) or {}).items()} if session else None}


def read_audio(check, runtime, work):
    audio = voxedge.load_audio(check["path"])
    return {"samples": int(len(audio)), "rms": float(np.sqrt(np.mean(audio**2)))}


def placement_of(check, runtime, work):
    from voxedge.bundle import open_bundle
    from voxedge.runtime import graph_placements

    placed = graph_placements(open_bundle(check["bundle"]), RuntimeOptions(**runtime))
    return {"placement": {graph: {p: v["nodes"] for p, v in providers.items()} for graph, providers in placed.items()}}


def refused(check, runtime, work):
    try:
        voxedge.load(check["bundle"], **runtime)
    except voxedge.VoxedgeError as exc:
        return {"refused": True, "type": type(exc).__name__, "message": str(exc)}
    return {"refused": False}


def warnings_of(check, runtime, work):
    import warnings

    from voxedge.runtime import create_session

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        create_session(check["graph"], RuntimeOptions(**runtime))
    return {"warnings": [str(w.message) for w in caught]}


def _prompt(model) -> list:
    return [*model.config.sot_sequence, model.config.tokens.no_timestamps]


def _logit_figures(out: dict) -> dict:
    """Tokens of both providers and how far their logits are apart, step by step."""
    cpu, ep = out.pop("cpu_logits"), out.pop("ep_logits")
    n = min(len(cpu), len(ep))
    delta = np.abs(cpu[:n].astype(np.float64) - ep[:n].astype(np.float64)).max(axis=-1)
    scale = np.abs(cpu[:n]).max(axis=-1)
    return {**out, "steps": n, "argmax_cpu": cpu[:n].argmax(-1).tolist(), "argmax_ep": ep[:n].argmax(-1).tolist(),
            "max_abs_logit_delta": float(delta.max()), "max_relative_logit_delta": float((delta / scale).max())}


CHECKS = {"whisper_greedy": whisper_greedy, "whisper_forced": whisper_forced, "voxtral_stream": voxtral_stream,
          "context_binary": context_binary, "read_audio": read_audio, "placement": placement_of,
          "refused": refused, "warnings": warnings_of}

if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
