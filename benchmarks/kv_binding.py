"""KV binding on the CPU provider: one buffer shared by past and present vs two buffers in turn.

The `alternate` binding (voxedge/engines/kv_cache.py) is what every provider other than CPU and CUDA
gets, because aliasing past and present is undefined there; this measures what it would cost on the
CPU, where `shared` is kept. Decoder steps of Whisper tiny.en (int8, the catalog's default, built
torch-free) and of the tiny random Voxtral (int8, needs torch to build), both bindings interleaved
round by round in one process, medians of the per-step times.

    python -m benchmarks kv [--repeats N]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

BINDINGS = ("shared", "alternate")
WHISPER_STEPS = 120  # tokens decoded per round: a long 30 s window
VOXTRAL_STEPS = 120  # 9.6 s of tokens: the tiny model's 16-token window wraps many times


def run(repeats: int = 5) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["whisper_tiny_en_int8_decoder_step"] = _compare(_whisper_steps(Path(tmp)), repeats)
        voxtral = _voxtral_steps(Path(tmp))
        if voxtral is not None:
            results["voxtral_tiny_int8_decoder_step"] = _compare(voxtral, repeats)
    return results


def _compare(steps, repeats: int) -> dict:
    """`steps(binding)` -> per-step seconds of one round; rounds alternate between the bindings."""
    per_round = {b: [] for b in BINDINGS}
    for r in range(repeats):
        for binding in BINDINGS if r % 2 == 0 else BINDINGS[::-1]:
            per_round[binding].append(statistics.median(steps(binding)))
    medians = {b: statistics.median(v) for b, v in per_round.items()}
    return {**{f"{b}_ms": round(1e3 * m, 4) for b, m in medians.items()},
            "alternate_over_shared": round(medians["alternate"] / medians["shared"], 3)}


def _whisper_steps(tmp: Path):
    import voxedge
    from export.stages import Stages
    from export.whisper.offline import build, shipped_model_dir
    from voxedge.engines.kv_cache import CachedGraph, SlidingKVCache

    (tmp / "whisper").mkdir()
    build(shipped_model_dir(), tmp / "whisper", "int8", Stages(stream=None))
    model = voxedge.load(tmp / "whisper")
    cross = model.encode(np.zeros((model.config.front_end.n_mels, 3000), np.float32))
    tokens = np.random.default_rng(0).integers(0, 50000, WHISPER_STEPS)

    def steps(binding):
        graph = CachedGraph(model.decoder, SlidingKVCache.of(model.config.decoder, model.config.max_positions,
                                                             initial=64), ["logits"], binding=binding)
        times = []
        for position, token in enumerate(tokens):
            feeds = {"inputs_embeds": model.embed([int(token)])[None],
                     "position_ids": np.array([[position]], np.int64), **cross}
            start = time.perf_counter()
            graph.run(feeds, 1)
            times.append(time.perf_counter() - start)
        return times

    return steps


def _voxtral_steps(tmp: Path):
    try:
        from export.voxtral import tiny
    except ImportError:
        return None
    import voxedge
    from export.__main__ import main as export_main
    from voxedge.engines.kv_cache import CachedGraph, SlidingKVCache

    export_main([str(tiny.build(tmp / "voxtral-ckpt", seed=0)), "--out", str(tmp / "voxtral"), "--quant", "int8"])
    model = voxedge.load(tmp / "voxtral")
    cfg = model.config
    scale = next(iter(model.ada_scales.values()))
    embeds = np.random.default_rng(0).standard_normal((VOXTRAL_STEPS, 1, 1, cfg.decoder.hidden)).astype(np.float32)

    def steps(binding):
        graph = CachedGraph(model.decoder, SlidingKVCache.of(cfg.decoder, 1), ["logits"], binding=binding)
        times = []
        for position, embed in enumerate(embeds):
            feeds = model.decoder_feeds(embed, position, scale)
            start = time.perf_counter()
            graph.run(feeds, 1)
            times.append(time.perf_counter() - start)
        return times

    return steps
