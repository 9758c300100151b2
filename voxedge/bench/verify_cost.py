"""The cost of a Voxtral decoder call over M positions (the step and M - 1 drafted steps, all M logits
kept), relative to a single step: what verifying drafted steps costs on this machine (docs/voxtral.md)."""

from __future__ import annotations

import time

import numpy as np

POSITIONS = (1, 2, 4, 8)
CONTEXT = 375  # decoder tokens in context: 30 s of audio


def verify_cost(model, positions=POSITIONS, calls: int = 24, context: int = CONTEXT) -> dict:
    """Median milliseconds of one decoder call over M positions at `context` tokens of context, and its
    ratio to M = 1. Empty for graphs that give the last position's logits only."""
    if not model.verifies:
        return {}
    stream = model.stream(delay_ms=model.config.default_delay_ms)
    stream.feed(np.zeros(model.padding.first_chunk(model.delay_tokens(None)), np.float32))  # the prefill
    decoder = stream.engine._decoder
    context = min(context, decoder.cache.keep - max(positions))  # a small test model's window is shorter
    decoder.cache.reserve(context + max(positions) - decoder.cache.length)
    scale, hidden = stream.engine.ada_scale, model.config.decoder.hidden
    rng = np.random.default_rng(0)
    ms = {}
    for m in positions:
        times = []
        for _ in range(calls):
            decoder.cache.length = context  # verified positions are forgotten the same way
            embeds = rng.standard_normal((1, m, hidden)).astype(model.config.kv_dtype)
            start = time.perf_counter()
            decoder.run(model.decoder_feeds(embeds, context, scale, keep=m), m)
            times.append(time.perf_counter() - start)
        ms[m] = float(np.median(times)) * 1e3
    return {m: {"ms": round(t, 2), "ratio": round(t / ms[positions[0]], 3)} for m, t in ms.items()}
