"""Transformer building blocks emitted into a GraphBuilder, each the ONNX twin of a transformers module.

Values are names of tensors in the graph. Activations are [1, S, features]. Weights arrive as
numpy arrays in the checkpoint's [out, in] layout and are written in the requested WeightFormat.
"""

from __future__ import annotations

import json

import numpy as np

from .graph import FLOAT16, INT32, GraphBuilder
from .quantize import WeightFormat, quantize_blockwise, quantize_per_channel

def each(items, progress, label):
    """`items`, through the progress bar factory when there is one."""
    return progress(items, label) if progress else items


def linear(g: GraphBuilder, x: str, name: str, weight: np.ndarray, bias, fmt: WeightFormat) -> str:
    """y = x W^T + b: MatMulNBits for block-quantized weights, DynamicQuantizeMatMul for per-channel
    int8, MatMul on a stored W^T otherwise."""
    n, k = weight.shape
    if fmt.dynamic:
        quantized, scales = quantize_per_channel(weight)
        y = g.op(
            "DynamicQuantizeMatMul",
            x,
            g.weight(f"{name}.qweight", quantized),
            g.weight(f"{name}.scales", scales),
            g.weight(f"{name}.zero_points", np.zeros(n, np.int8)),
            domain="com.microsoft",
        )
    elif fmt.bits:
        packed, scales = quantize_blockwise(weight, fmt)
        y = g.op(
            "MatMulNBits",
            x,
            g.weight(f"{name}.qweight", packed),
            g.weight(f"{name}.scales", scales.astype(fmt.dtype, copy=False)),
            domain="com.microsoft",
            K=k,
            N=n,
            bits=fmt.bits,
            block_size=fmt.block_size,
            accuracy_level=fmt.accuracy_level,
        )
    else:
        y = g.op("MatMul", x, g.weight(f"{name}.weight_t", np.ascontiguousarray(weight.T, fmt.dtype)))
    if bias is not None:
        y = g.op("Add", y, g.weight(f"{name}.bias", bias.astype(fmt.dtype, copy=False)))
    return y


def fused_linear(g: GraphBuilder, x: str, name: str, weights: list, biases: list, fmt: WeightFormat) -> list:
    """Several linears of the same input as one kernel (weights stacked along the output dimension),
    then split: exact, since every format quantizes per output row, and fewer, larger kernel calls."""
    sizes = [w.shape[0] for w in weights]
    bias = None
    if any(b is not None for b in biases):
        bias = np.concatenate([b if b is not None else np.zeros(n, np.float32) for b, n in zip(biases, sizes)])
    y = linear(g, x, name, np.concatenate(weights), bias, fmt)
    return g.op("Split", y, g.const(sizes, np.int64), axis=-1, outputs=len(sizes))


def rms_norm(g: GraphBuilder, x: str, name: str, weight: np.ndarray, eps: float, dtype: str) -> str:
    """weight * x / sqrt(mean(x^2) + eps), computed in float32 as transformers does. Written with
    Pow(x, 2), the form onnxruntime fuses into one SimplifiedLayerNormalization kernel."""
    xf = g.op("Cast", x, to=1) if dtype == "float16" else x
    mean_sq = g.op("ReduceMean", g.op("Pow", xf, g.const(2.0)), g.const([-1], np.int64), keepdims=1)
    normed = g.op("Div", xf, g.op("Sqrt", g.op("Add", mean_sq, g.const(eps))))
    if dtype == "float16":
        normed = g.op("Cast", normed, to=FLOAT16)
    return g.op("Mul", normed, g.weight(f"{name}.weight", weight.astype(dtype, copy=False)))


def rope_tables(g: GraphBuilder, positions: str, inv_freq: np.ndarray, dtype: str) -> tuple[str, str]:
    """cos, sin [1, S, 1, head_dim] for int64 positions [1, S]: angle = float32(position) * inv_freq."""
    angle = g.op("Mul", g.op("Unsqueeze", g.op("Cast", positions, to=1), g.const([-1], np.int64)), g.const(inv_freq))
    emb = g.op("Unsqueeze", g.op("Concat", angle, angle, axis=-1), g.const([2], np.int64))
    cos, sin = g.op("Cos", emb), g.op("Sin", emb)
    if dtype == "float16":
        cos, sin = g.op("Cast", cos, to=FLOAT16), g.op("Cast", sin, to=FLOAT16)
    return cos, sin


def apply_rope(g: GraphBuilder, x: str, cos: str, sin: str, heads: int, head_dim: int) -> str:
    """NeoX rotate-half RoPE on [1, S, heads * head_dim] (HF weights are permuted for this form)."""
    xh = g.op("Reshape", x, g.const([1, -1, heads, head_dim], np.int64))
    half = head_dim // 2
    x1, x2 = g.op("Split", xh, g.const([half, half], np.int64), axis=-1, outputs=2)
    rotated = g.op("Concat", g.op("Neg", x2), x1, axis=-1)
    out = g.op("Add", g.op("Mul", xh, cos), g.op("Mul", rotated, sin))
    return g.op("Reshape", out, g.const([1, -1, heads * head_dim], np.int64))


class SharedKV:
    """Sliding-window causal attention over shared KV buffers (GroupQueryAttention, RoPE already applied).

    The runtime binds each layer's past and present K (and V) to one buffer, so new keys are written
    in place at the current length; `window` keys, the current one included, are attended (-1: all).
    """

    tokens_dim = "tokens"  # new positions per call: any

    def declare(self, g: GraphBuilder, layers: int, kv_heads: int, head_dim: int, elem) -> None:
        """The graph inputs/outputs this scheme needs."""
        g.input("seqlens_k", INT32, [1])
        g.input("total_sequence_length", INT32, [])
        for i in range(layers):
            for kind in ("key", "value"):
                g.input(f"past_{kind}.{i}", elem, [1, kv_heads, "cache_len", head_dim])
                g.output(f"present_{kind}.{i}", f"present_{kind}.{i}", elem, [1, kv_heads, "cache_len", head_dim])

    def attend(self, g: GraphBuilder, q: str, k: str, v: str, layer: int, heads: int, kv_heads: int, window: int) -> str:
        out, _, _ = g.op(
            "GroupQueryAttention", q, k, v, f"past_key.{layer}", f"past_value.{layer}", "seqlens_k",
            "total_sequence_length", domain="com.microsoft", num_heads=heads, kv_num_heads=kv_heads,
            local_window_size=window, do_rotary=0,
            outputs=[g.fresh("attn"), f"present_key.{layer}", f"present_value.{layer}"],
        )
        return out


SHARED_KV = SharedKV()


class StaticKV:
    """Fixed-capacity attention in standard ops, for NPUs (docs/hardware.md): each layer reads its past
    K/V [1, kv_heads, capacity, head_dim] (a ring the runtime fills), attends to the past and the
    `positions` new entries where `attention_mask` [1, 1, positions, capacity + positions] is 1, and
    returns the new K/V [1, kv_heads, positions, head_dim] as `new_key.i` / `new_value.i` for the runtime
    to write. The mask becomes an additive -100 (not -inf): exp(-100) is zero for softmax in any
    precision, and the range stays small enough for 16-bit quantized activations. Grouped KV heads are
    repeated with a Gather (4-D tensors only)."""

    def __init__(self, capacity: int, positions: int = 1):
        self.capacity, self.positions = capacity, positions
        self.tokens_dim = positions  # new positions per call: fixed

    def describe(self, g: GraphBuilder, sliced: dict, carried: dict | None = None) -> None:
        """Tell the runtime how to run the graph (voxedge/engines/kv_cache.py): the inputs cut along their
        position axis for longer calls (input -> axis) and the state outputs fed back (output -> input)."""
        from voxedge.engines.kv_cache import STATIC_STEP_KEY

        g.metadata[STATIC_STEP_KEY] = json.dumps({"positions": self.positions, "capacity": self.capacity,
                                                  "sliced": sliced, "carried": carried or {}})

    def declare(self, g: GraphBuilder, layers: int, kv_heads: int, head_dim: int, elem) -> None:
        mask = g.input("attention_mask", elem, [1, 1, self.positions, self.capacity + self.positions])
        self._bias = g.op("Mul", g.op("Sub", mask, g.const(1.0, _np_type(elem))), g.const(100.0, _np_type(elem)))
        self._elem, self._head_dim = elem, head_dim
        for i in range(layers):
            for kind in ("key", "value"):
                g.input(f"past_{kind}.{i}", elem, [1, kv_heads, self.capacity, head_dim])

    def attend(self, g: GraphBuilder, q: str, k: str, v: str, layer: int, heads: int, kv_heads: int, window: int) -> str:
        d, elem = self._head_dim, self._elem
        new_k, new_v = split_heads(g, k, kv_heads, d), split_heads(g, v, kv_heads, d)
        g.output(new_k, f"new_key.{layer}", elem, [1, kv_heads, self.positions, d])
        g.output(new_v, f"new_value.{layer}", elem, [1, kv_heads, self.positions, d])
        keys = g.op("Concat", f"past_key.{layer}", new_k, axis=2)
        values = g.op("Concat", f"past_value.{layer}", new_v, axis=2)
        if heads != kv_heads:
            group = g.const(np.repeat(np.arange(kv_heads), heads // kv_heads), np.int64)
            keys, values = g.op("Gather", keys, group, axis=1), g.op("Gather", values, group, axis=1)
        scores = g.op("MatMul", split_heads(g, q, heads, d), g.op("Transpose", keys, perm=[0, 1, 3, 2]))
        scores = g.op("Add", g.op("Mul", scores, g.const(d**-0.5, _np_type(elem))), self._bias)
        out = g.op("MatMul", g.op("Softmax", scores, axis=-1), values)
        return g.op("Reshape", g.op("Transpose", out, perm=[0, 2, 1, 3]), g.const([1, -1, heads * d], np.int64))


def _np_type(elem) -> type:
    return np.float16 if elem == FLOAT16 else np.float32


def swiglu(g: GraphBuilder, x: str, name: str, weights, fmt: WeightFormat) -> str:
    """down(silu(gate(x)) * up(x)) (+ down bias when the checkpoint has one)."""
    gate, up = fused_linear(g, x, f"{name}.gate_up_proj",
                            [weights(f"{name}.gate_proj.weight"), weights(f"{name}.up_proj.weight")], [None, None], fmt)
    hidden = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up)
    return linear(g, hidden, f"{name}.down_proj", weights(f"{name}.down_proj.weight"), weights.optional(f"{name}.down_proj.bias"), fmt)


def layer_norm(g: GraphBuilder, x: str, name: str, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> str:
    return g.op("LayerNormalization", x, g.weight(f"{name}.weight", weight), g.weight(f"{name}.bias", bias),
                axis=-1, epsilon=eps)


def split_heads(g: GraphBuilder, x: str, heads: int, head_dim: int) -> str:
    """[1, S, heads * head_dim] -> [1, heads, S, head_dim]"""
    return g.op("Transpose", g.op("Reshape", x, g.const([1, -1, heads, head_dim], np.int64)), perm=[0, 2, 1, 3])


def attention_scores(g: GraphBuilder, q: str, k_heads: str, heads: int, head_dim: int) -> str:
    """q k^T / sqrt(d), before the softmax: q [1, S, H*D], k already [1, H, T, D] -> [1, H, S, T]."""
    qh = split_heads(g, q, heads, head_dim)
    return g.op("Mul", g.op("MatMul", qh, g.op("Transpose", k_heads, perm=[0, 1, 3, 2])), g.const(head_dim**-0.5))


def attend(g: GraphBuilder, scores: str, v_heads: str, heads: int, head_dim: int) -> str:
    """softmax(scores) v, heads merged: scores [1, H, S, T], v [1, H, T, D] -> [1, S, H*D]."""
    out = g.op("MatMul", g.op("Softmax", scores, axis=-1), v_heads)
    return g.op("Reshape", g.op("Transpose", out, perm=[0, 2, 1, 3]), g.const([1, -1, heads * head_dim], np.int64))


def full_attention(g: GraphBuilder, q: str, k_heads: str, v_heads: str, heads: int, head_dim: int) -> str:
    """Unmasked softmax(q k^T / sqrt(d)) v; q [1, S, H*D], k/v already [1, H, T, D] -> [1, S, H*D]."""
    return attend(g, attention_scores(g, q, k_heads, heads, head_dim), v_heads, heads, head_dim)


def lm_head(g: GraphBuilder, x: str, weight: np.ndarray, fmt: WeightFormat) -> str:
    """Logits for x [1, hidden]. The weight is stored row-major [vocab, hidden] in every format (Gemm
    with transB for floats), so the runtime reads token embeddings from these same bytes."""
    if fmt.bits:
        return linear(g, x, "lm_head", weight, None, fmt)
    return g.op("Gemm", x, g.weight("lm_head.weight", weight.astype(fmt.dtype, copy=False)), transB=1)


def tail(g: GraphBuilder, x: str, n: int, axis: int) -> str:
    """The last `n` entries of `x` along `axis`."""
    return g.op("Slice", x, g.const([-n], np.int64), g.const([np.iinfo(np.int64).max], np.int64), g.const([axis], np.int64))


def last_position(g: GraphBuilder, h: str, hidden: int) -> str:
    """[1, S, hidden] -> [1, hidden] at the last position (only its logits are needed)."""
    return g.op("Reshape", tail(g, h, 1, axis=1), g.const([1, hidden], np.int64))


def last_positions(g: GraphBuilder, h: str, count: str, hidden: int) -> str:
    """[1, S, hidden] -> [n, hidden]: the last n positions, n the int64 [1] tensor `count`."""
    last = g.op("Slice", h, g.op("Neg", count), g.const([np.iinfo(np.int64).max], np.int64), g.const([1], np.int64))
    return g.op("Reshape", last, g.const([-1, hidden], np.int64))

