"""Whisper's two graphs, built from a transformers checkpoint (docs/whisper.md).

encoder:      mel [1, n_mels, 3000] -> every decoder layer's cross-attention keys and values
decoder_step: token embeddings [1, S, D] + positions + self-attention KV -> logits of the last position

The token embedding lookup happens in numpy from the (tied) LM head's bytes, as for Voxtral, so the
table is stored once. Self-attention uses the same shared-buffer KV cache as Voxtral, unwindowed.
"""

from __future__ import annotations

from ..graph import FLOAT, INT64, GraphBuilder
from ..layers import SHARED_KV, each, full_attention, last_position, layer_norm, linear, lm_head, split_heads
from ..quantize import WeightFormat

N_FRAMES = 3000  # one 30 s window of 10 ms frames


def _dims(cfg: dict):
    heads = cfg["decoder_attention_heads"]
    return heads, cfg["d_model"] // heads


def _attention_projections(g, x, w, prefix, fmt):
    def proj(name):
        return linear(g, x, f"{prefix}.{name}", w(f"{prefix}.{name}.weight"), w.optional(f"{prefix}.{name}.bias"), fmt)

    return proj


def _mlp(g, h, w, prefix, fmt) -> str:
    x = layer_norm(g, h, f"{prefix}.final_layer_norm", w(f"{prefix}.final_layer_norm.weight"),
                   w(f"{prefix}.final_layer_norm.bias"))
    x = g.op("Gelu", linear(g, x, f"{prefix}.fc1", w(f"{prefix}.fc1.weight"), w(f"{prefix}.fc1.bias"), fmt))
    return g.op("Add", h, linear(g, x, f"{prefix}.fc2", w(f"{prefix}.fc2.weight"), w(f"{prefix}.fc2.bias"), fmt))


def build_encoder(path, ckpt, cfg: dict, fmt: WeightFormat, progress=None) -> GraphBuilder:
    w = ckpt.scope("model.")
    heads, head_dim = cfg["encoder_attention_heads"], cfg["d_model"] // cfg["encoder_attention_heads"]
    g = GraphBuilder("encoder", path)
    mel = g.input("mel", FLOAT, [1, cfg["num_mel_bins"], N_FRAMES])
    h = mel
    for name, stride in (("encoder.conv1", 1), ("encoder.conv2", 2)):
        conv = g.op("Conv", h, g.weight(f"{name}.weight", w(f"{name}.weight")), g.weight(f"{name}.bias", w(f"{name}.bias")),
                    pads=[1, 1], strides=[stride])
        h = g.op("Gelu", conv)
    h = g.op("Add", g.op("Transpose", h, perm=[0, 2, 1]), g.weight("encoder.positions", w("encoder.embed_positions.weight")))
    for i in each(range(cfg["encoder_layers"]), progress, "encoder layers"):
        p = f"encoder.layers.{i}"
        x = layer_norm(g, h, f"{p}.self_attn_layer_norm", w(f"{p}.self_attn_layer_norm.weight"), w(f"{p}.self_attn_layer_norm.bias"))
        proj = _attention_projections(g, x, w, f"{p}.self_attn", fmt)
        out = full_attention(g, proj("q_proj"), split_heads(g, proj("k_proj"), heads, head_dim),
                             split_heads(g, proj("v_proj"), heads, head_dim), heads, head_dim)
        h = g.op("Add", h, linear(g, out, f"{p}.self_attn.out_proj", w(f"{p}.self_attn.out_proj.weight"),
                                  w(f"{p}.self_attn.out_proj.bias"), fmt))
        h = _mlp(g, h, w, p, fmt)
    h = layer_norm(g, h, "encoder.layer_norm", w("encoder.layer_norm.weight"), w("encoder.layer_norm.bias"))

    # Every decoder layer's cross-attention keys and values depend only on the audio: computed once
    # per window here instead of at every token.
    d_heads, d_dim = _dims(cfg)
    for i in range(cfg["decoder_layers"]):
        proj = _attention_projections(g, h, w, f"decoder.layers.{i}.encoder_attn", fmt)
        for kind in ("key", "value"):
            g.output(split_heads(g, proj(f"{kind[0]}_proj"), d_heads, d_dim), f"cross_{kind}.{i}", FLOAT,
                     [1, d_heads, N_FRAMES // 2, d_dim])
    return g


def build_decoder(path, ckpt, cfg: dict, fmt: WeightFormat, head_fmt: WeightFormat, progress=None,
                  kv=SHARED_KV) -> GraphBuilder:
    """`kv`: the self-attention cache scheme (export/layers.py; StaticKV for the npu target)."""
    w = ckpt.scope("model.decoder.")
    heads, head_dim = _dims(cfg)
    d_model, layers = cfg["d_model"], cfg["decoder_layers"]
    g = GraphBuilder("decoder_step", path)
    tokens = g.input("inputs_embeds", FLOAT, [1, kv.tokens_dim, d_model])
    positions = g.input("position_ids", INT64, [1, kv.tokens_dim])
    kv.declare(g, layers, heads, head_dim, FLOAT)
    for i in range(layers):
        for kind in ("key", "value"):
            g.input(f"cross_{kind}.{i}", FLOAT, [1, heads, N_FRAMES // 2, head_dim])

    h = g.op("Add", tokens, g.op("Gather", g.weight("decoder.positions", w("embed_positions.weight")), positions))
    for i in each(range(layers), progress, "decoder layers"):
        p = f"layers.{i}"
        x = layer_norm(g, h, f"{p}.self_attn_layer_norm", w(f"{p}.self_attn_layer_norm.weight"), w(f"{p}.self_attn_layer_norm.bias"))
        proj = _attention_projections(g, x, w, f"{p}.self_attn", fmt)
        out = kv.attend(g, proj("q_proj"), proj("k_proj"), proj("v_proj"), i, heads, heads, -1)
        h = g.op("Add", h, proj_out(g, out, w, f"{p}.self_attn", fmt))
        x = layer_norm(g, h, f"{p}.encoder_attn_layer_norm", w(f"{p}.encoder_attn_layer_norm.weight"),
                       w(f"{p}.encoder_attn_layer_norm.bias"))
        q = linear(g, x, f"{p}.encoder_attn.q_proj", w(f"{p}.encoder_attn.q_proj.weight"), w(f"{p}.encoder_attn.q_proj.bias"), fmt)
        out = full_attention(g, q, f"cross_key.{i}", f"cross_value.{i}", heads, head_dim)
        h = g.op("Add", h, proj_out(g, out, w, f"{p}.encoder_attn", fmt))
        h = _mlp(g, h, w, p, fmt)
    last = layer_norm(g, last_position(g, h, d_model), "decoder.layer_norm", w("layer_norm.weight"), w("layer_norm.bias"))
    g.output(lm_head(g, last, w("embed_tokens.weight"), head_fmt), "logits", FLOAT, [1, cfg["vocab_size"]])
    return g


def proj_out(g, x, w, prefix, fmt) -> str:
    return linear(g, x, f"{prefix}.out_proj", w(f"{prefix}.out_proj.weight"), w(f"{prefix}.out_proj.bias"), fmt)
