"""The straightforward KV-cache export the shared-buffer design is measured against.

Each layer takes its past keys/values [1, heads, P, head_dim] as inputs, concatenates the new ones,
attends under an explicit sliding-window mask, and returns the grown [1, heads, P + S, head_dim]
tensors, which the caller trims to the window and feeds back: the usual transformers-style export.
"""

from __future__ import annotations

import numpy as np

from export.graph import FLOAT, GraphBuilder
from export.layers import split_heads


class ConcatKV:
    tokens_dim = "frames"  # new positions per call: any (export/layers.py's schemes say so the same way)

    def __init__(self, head_dim: int):
        self.head_dim = head_dim

    def declare(self, g: GraphBuilder, layers: int, kv_heads: int, head_dim: int, elem) -> None:
        g.input("attention_mask", FLOAT, [1, 1, "frames", "total"])
        for i in range(layers):
            for kind in ("key", "value"):
                g.input(f"past_{kind}.{i}", elem, [1, kv_heads, "past", head_dim])
                g.output(f"present_{kind}.{i}", f"present_{kind}.{i}", elem, [1, kv_heads, "total", head_dim])

    def attend(self, g: GraphBuilder, q: str, k: str, v: str, layer: int, heads: int, kv_heads: int, window: int) -> str:
        d = self.head_dim
        keys = g.op("Concat", f"past_key.{layer}", split_heads(g, k, kv_heads, d), axis=2, outputs=[f"present_key.{layer}"])[0]
        values = g.op("Concat", f"past_value.{layer}", split_heads(g, v, kv_heads, d), axis=2,
                      outputs=[f"present_value.{layer}"])[0]
        scores = g.op("MatMul", split_heads(g, q, heads, d), g.op("Transpose", keys, perm=[0, 1, 3, 2]))
        scores = g.op("Add", g.op("Mul", scores, g.const(d**-0.5)), "attention_mask")
        out = g.op("MatMul", g.op("Softmax", scores, axis=-1), values)
        return g.op("Reshape", g.op("Transpose", out, perm=[0, 2, 1, 3]), g.const([1, -1, heads * d], np.int64))


def window_mask(positions_q: np.ndarray, positions_k: np.ndarray, window: int) -> np.ndarray:
    """Additive mask: 0 where q - window < k <= q, else -inf; [1, 1, S, T]."""
    d = positions_q[:, None] - positions_k[None, :]
    return np.where((d >= 0) & (d < window), 0.0, -np.inf).astype(np.float32)[None, None]
