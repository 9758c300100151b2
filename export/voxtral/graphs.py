"""The two Voxtral Realtime graphs, built layer by layer from the checkpoint (docs/voxtral.md).

audio_encoder_step: mel [1, n_mels, 8n] + both conv states + encoder KV -> audio_embeds [1, n, D]
decoder_step:       inputs_embeds [1, S, D] + decoder KV + ada_scale + logits_to_keep n
                    -> logits [n, vocab] of the last n positions

Positions are explicit inputs and the KV caches are shared buffers handled by GroupQueryAttention
with the model's sliding windows, so the runtime can keep memory bounded forever.
"""

from __future__ import annotations

import numpy as np

from ..graph import FLOAT, FLOAT16, INT64, GraphBuilder
from ..layers import (
    SHARED_KV,
    apply_rope,
    each,
    fused_linear,
    last_position,
    last_positions,
    linear,
    lm_head,
    rms_norm,
    rope_tables,
    swiglu,
    tail,
)
from ..quantize import WeightFormat

def inv_freq(config: dict) -> np.ndarray:
    theta = config["rope_parameters"]["rope_theta"]
    dim = config["head_dim"]
    return (1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float32) / dim)).astype(np.float32)


def _attention_block(g, h, w, cfg, index, fmt, cos, sin, norm_name, kv) -> str:
    """Pre-norm self-attention with residual. Biases are used where the checkpoint has them."""
    heads, hd = cfg["num_attention_heads"], cfg["head_dim"]
    kv_heads = cfg.get("num_key_value_heads", heads)
    p = f"layers.{index}"
    x = rms_norm(g, h, f"{p}.{norm_name}", w(f"{p}.{norm_name}.weight"), cfg["rms_norm_eps"], fmt.dtype)

    a = f"{p}.self_attn"
    q, k, v = fused_linear(g, x, f"{a}.qkv_proj", [w(f"{a}.{n}_proj.weight") for n in "qkv"],
                           [w.optional(f"{a}.{n}_proj.bias") for n in "qkv"], fmt)
    q, k = apply_rope(g, q, cos, sin, heads, hd), apply_rope(g, k, cos, sin, kv_heads, hd)
    out = kv.attend(g, q, k, v, index, heads, kv_heads, cfg["sliding_window"])
    return g.op("Add", h, linear(g, out, f"{a}.o_proj", w(f"{a}.o_proj.weight"), w.optional(f"{a}.o_proj.bias"), fmt))


def build_encoder(path, ckpt, config: dict, fmt: WeightFormat, adapter_fmt: WeightFormat, progress=None,
                  kv=SHARED_KV) -> GraphBuilder:
    """audio_encoder_step: conv stem with its states, the causal encoder layers, 4x stacking, adapter."""
    cfg = config["audio_config"]
    w = ckpt.scope("audio_tower.")
    n_mels, hidden, layers = cfg["num_mel_bins"], cfg["hidden_size"], cfg["num_hidden_layers"]
    elem = FLOAT16 if fmt.dtype == "float16" else FLOAT
    g = GraphBuilder("audio_encoder_step", path)
    frames = kv.tokens_dim if isinstance(kv.tokens_dim, int) else None  # conv positions per call, when fixed
    mel = g.input("mel", elem, [1, n_mels, 2 * frames if frames else "mel_frames"])
    state1 = g.input("conv1_state", elem, [1, n_mels, 2])
    state2 = g.input("conv2_state", elem, [1, hidden, 1])
    positions = g.input("position_ids", INT64, [1, frames or "frames"])
    kv.declare(g, layers, cfg["num_attention_heads"], cfg["head_dim"], elem)

    # Causal convs: the states are the left context (2 mel frames, 1 conv1 frame) the chunk needs.
    x1 = g.op("Concat", state1, mel, axis=2)
    h1 = _conv_gelu(g, x1, w, "embedder.conv1", 1, fmt.dtype)
    x2 = g.op("Concat", state2, h1, axis=2)
    h2 = _conv_gelu(g, x2, w, "embedder.conv2", 2, fmt.dtype)
    g.output(tail(g, x1, 2, axis=2), "conv1_state_out", elem, [1, n_mels, 2])
    g.output(tail(g, x2, 1, axis=2), "conv2_state_out", elem, [1, hidden, 1])

    h = g.op("Transpose", h2, perm=[0, 2, 1])
    cos, sin = rope_tables(g, positions, inv_freq(cfg), fmt.dtype)
    for i in each(range(layers), progress, "encoder layers"):
        h = _attention_block(g, h, w, cfg, i, fmt, cos, sin, "self_attn_layer_norm", kv)
        x = rms_norm(g, h, f"layers.{i}.final_layer_norm", w(f"layers.{i}.final_layer_norm.weight"), cfg["rms_norm_eps"], fmt.dtype)
        h = g.op("Add", h, swiglu(g, x, f"layers.{i}.mlp", w, fmt))
    h = rms_norm(g, h, "norm", w("norm.weight"), cfg["rms_norm_eps"], fmt.dtype)

    # 4 consecutive frames side by side, then the two-layer adapter into the decoder's width.
    stacked = g.op("Reshape", h, g.const([1, -1, hidden * config["downsample_factor"]], np.int64))
    a = ckpt.scope("multi_modal_projector.")
    y = linear(g, stacked, "adapter.linear_1", a("linear_1.weight"), None, adapter_fmt)
    y = linear(g, g.op("Gelu", y), "adapter.linear_2", a("linear_2.weight"), None, adapter_fmt)
    tokens = frames // config["downsample_factor"] if frames else "tokens"
    g.output(y, "audio_embeds", elem, [1, tokens, config["text_config"]["hidden_size"]])
    return g


def _conv_gelu(g, x, w, name, stride, dtype) -> str:
    conv = g.op("Conv", x, g.weight(f"{name}.weight", w(f"{name}.weight").astype(dtype)),
                g.weight(f"{name}.bias", w(f"{name}.bias").astype(dtype)), strides=[stride])
    return g.op("Gelu", conv)


def build_decoder(path, ckpt, config: dict, fmt: WeightFormat, head_fmt: WeightFormat, progress=None,
                  kv=SHARED_KV) -> GraphBuilder:
    """decoder_step: the causal LM over inputs_embeds (token + audio embedding) -> logits [n, vocab].

    ada_scale [layers, hidden] is 1 + ada_rms_norm(t_cond(delay)) per layer, precomputed per delay at
    export: the delay is chosen at run time by feeding its row set. `logits_to_keep` (int64 [1]) asks for
    the logits of the last n positions: a call over drafted tokens verifies them all at once
    (docs/voxtral.md). Fixed-shape graphs (`kv.tokens_dim` an int: NPUs) give the last position's only.
    """
    cfg = config["text_config"]
    w = ckpt.scope("language_model.model.")
    hidden, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    elem = FLOAT16 if fmt.dtype == "float16" else FLOAT
    g = GraphBuilder("decoder_step", path)
    h = g.input("inputs_embeds", elem, [1, kv.tokens_dim, hidden])
    positions = g.input("position_ids", INT64, [1, kv.tokens_dim])
    ada_scale = g.input("ada_scale", elem, [layers, hidden])
    kv.declare(g, layers, cfg["num_key_value_heads"], cfg["head_dim"], elem)

    cos, sin = rope_tables(g, positions, inv_freq(cfg), fmt.dtype)
    for i in each(range(layers), progress, "decoder layers"):
        h = _attention_block(g, h, w, cfg, i, fmt, cos, sin, "input_layernorm", kv)
        x = rms_norm(g, h, f"layers.{i}.post_attention_layernorm", w(f"layers.{i}.post_attention_layernorm.weight"),
                     cfg["rms_norm_eps"], fmt.dtype)
        x = g.op("Mul", x, g.op("Gather", ada_scale, g.const(i, np.int64), axis=0))
        h = g.op("Add", h, swiglu(g, x, f"layers.{i}.mlp", w, fmt))

    if isinstance(kv.tokens_dim, int):
        last, rows = last_position(g, h, hidden), 1
    else:
        keep = g.input("logits_to_keep", INT64, [1])
        last, rows = last_positions(g, h, keep, hidden), "logits_rows"
    last = rms_norm(g, last, "norm", w("norm.weight"), cfg["rms_norm_eps"], fmt.dtype)
    g.output(lm_head(g, last, lm_head_weight(ckpt), head_fmt), "logits", elem, [rows, cfg["vocab_size"]])
    return g


def lm_head_weight(ckpt) -> np.ndarray:
    """The output projection [vocab, hidden]: tied to the token embedding unless stored separately."""
    if ckpt.has("language_model.lm_head.weight"):
        return ckpt("language_model.lm_head.weight")
    return ckpt("language_model.model.embed_tokens.weight")
