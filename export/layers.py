"""Transformer building blocks emitted into a GraphBuilder, each the ONNX twin of a transformers module.

Values are names of tensors in the graph. Activations are [1, S, features]. Weights arrive as
numpy arrays in the checkpoint's [out, in] layout and are written in the requested WeightFormat.
"""

from __future__ import annotations

import numpy as np

from .graph import FLOAT16, GraphBuilder
from .quantize import WeightFormat, quantize_blockwise


def linear(g: GraphBuilder, x: str, name: str, weight: np.ndarray, bias, fmt: WeightFormat) -> str:
    """y = x W^T + b: MatMulNBits for quantized weights, MatMul on a stored W^T otherwise."""
    n, k = weight.shape
    if fmt.bits:
        packed, scales = quantize_blockwise(weight, fmt)
        y = g.op(
            "MatMulNBits",
            x,
            g.weight(f"{name}.qweight", packed),
            g.weight(f"{name}.scales", scales.astype(fmt.dtype)),
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
        y = g.op("Add", y, g.weight(f"{name}.bias", bias.astype(fmt.dtype)))
    return y


def rms_norm(g: GraphBuilder, x: str, name: str, weight: np.ndarray, eps: float, dtype: str) -> str:
    """weight * x / sqrt(mean(x^2) + eps), computed in float32 as transformers does."""
    xf = g.op("Cast", x, to=1) if dtype == "float16" else x
    mean_sq = g.op("ReduceMean", g.op("Mul", xf, xf), g.const([-1], np.int64), keepdims=1)
    normed = g.op("Div", xf, g.op("Sqrt", g.op("Add", mean_sq, g.const(eps))))
    if dtype == "float16":
        normed = g.op("Cast", normed, to=FLOAT16)
    return g.op("Mul", normed, g.weight(f"{name}.weight", weight.astype(dtype)))


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


def attention(
    g: GraphBuilder,
    q: str,
    k: str,
    v: str,
    layer: int,
    heads: int,
    kv_heads: int,
    window: int,
    cache: dict,
) -> str:
    """Sliding-window causal attention over a shared KV buffer (GroupQueryAttention, RoPE already applied).

    `cache` holds the graph-level names: seqlens_k, total_sequence_length, and the per-layer
    past/present name patterns. The runtime binds past and present to one buffer, so new keys are
    written in place at the current length; `window` keys, the current one included, are attended.
    """
    out, _, _ = g.op(
        "GroupQueryAttention",
        q,
        k,
        v,
        cache["past_key"].format(layer),
        cache["past_value"].format(layer),
        cache["seqlens_k"],
        cache["total_sequence_length"],
        domain="com.microsoft",
        num_heads=heads,
        kv_num_heads=kv_heads,
        local_window_size=window,
        do_rotary=0,
        outputs=[g.fresh("attn"), cache["present_key"].format(layer), cache["present_value"].format(layer)],
    )
    return out


def swiglu(g: GraphBuilder, x: str, name: str, weights, fmt: WeightFormat) -> str:
    """down(silu(gate(x)) * up(x)) (+ down bias when the checkpoint has one)."""
    gate = linear(g, x, f"{name}.gate_proj", weights(f"{name}.gate_proj.weight"), None, fmt)
    up = linear(g, x, f"{name}.up_proj", weights(f"{name}.up_proj.weight"), None, fmt)
    hidden = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up)
    return linear(g, hidden, f"{name}.down_proj", weights(f"{name}.down_proj.weight"), weights.optional(f"{name}.down_proj.bias"), fmt)
