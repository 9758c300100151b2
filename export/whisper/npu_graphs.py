"""Whisper's graphs for NPUs (`--target npu`, docs/hardware.md): fixed shapes and standard ops only.

encoder:      the default one (already static, standard ops)
decoder_step: one token per call; self-attention over a fixed 448-slot cache (StaticKV: an attention
              mask input, the new K/V returned for the runtime to write), so nothing in the graph
              depends on the sequence length. The prompt is fed token by token.
"""

from __future__ import annotations

from ..layers import StaticKV
from .graphs import build_decoder as build_default_decoder
from .graphs import build_encoder

__all__ = ["build_decoder", "build_encoder"]


def build_decoder(path, ckpt, cfg: dict, fmt, head_fmt, progress=None):
    kv = StaticKV(capacity=cfg["max_target_positions"], positions=1)
    g = build_default_decoder(path, ckpt, cfg, fmt, head_fmt, progress, kv=kv)
    kv.describe(g, sliced={"inputs_embeds": 1, "position_ids": 1})
    return g
