"""Whisper's two graphs, built from a transformers checkpoint (docs/whisper.md).

encoder:      mel [1, n_mels, frames] -> every decoder layer's cross-attention keys and values
              [1, heads, frames / 2, head_dim]
decoder_step: token embeddings [1, S, D] + positions + self-attention KV -> logits of the last position,
              and the alignment heads' cross-attention scores of every position (word timestamps)

The token embedding lookup happens in numpy from the (tied) LM head's bytes, as for Voxtral, so the
table is stored once. Self-attention uses the same shared-buffer KV cache as Voxtral, unwindowed.

`frames` is even and at most 3000: files always run 30 s windows, as the references do; live streams
run a window cut to the audio they hold (whisper.cpp's `audio_ctx`), the positional embedding cut to
the conv output's length (docs/whisper.md, "Live").

`alignment_scores` [1, A, S, frames / 2] are the pre-softmax cross-attention scores of the checkpoint's
alignment heads (the `alignment_heads` [layer, head] pairs, in layer order): what openai/whisper and
CTranslate2 align words to audio with. They are a slice of scores the step computes anyway, and a
caller that does not bind the output (greedy decoding) does not pay for it
(docs/whisper.md, "Word timestamps").
"""

from __future__ import annotations

import numpy as np

from ..checkpoint import ExportError
from ..graph import FLOAT, INT64, GraphBuilder
from ..layers import (SHARED_KV, attend, attention_scores, each, full_attention, last_position, layer_norm, linear,
                      lm_head, split_heads)
from ..quantize import WeightFormat

N_FRAMES = 3000  # one 30 s window of 10 ms frames: the most the encoder takes


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


def build_encoder(path, ckpt, cfg: dict, fmt: WeightFormat, progress=None, frames="frames") -> GraphBuilder:
    """`frames`: the mel input's length, a dimension name (any even length up to N_FRAMES) or N_FRAMES
    (fixed shapes: the npu target)."""
    w = ckpt.scope("model.")
    heads, head_dim = cfg["encoder_attention_heads"], cfg["d_model"] // cfg["encoder_attention_heads"]
    g = GraphBuilder("encoder", path)
    mel = g.input("mel", FLOAT, [1, cfg["num_mel_bins"], frames])
    h = mel
    for name, stride in (("encoder.conv1", 1), ("encoder.conv2", 2)):
        conv = g.op("Conv", h, g.weight(f"{name}.weight", w(f"{name}.weight")), g.weight(f"{name}.bias", w(f"{name}.bias")),
                    pads=[1, 1], strides=[stride])
        h = g.op("Gelu", conv)
    h = g.op("Transpose", h, perm=[0, 2, 1])
    positions = g.weight("encoder.positions", w("encoder.embed_positions.weight"))
    if isinstance(frames, str):  # as many positions as the conv gave frames
        positions = g.op("Slice", positions, g.const([0], np.int64), g.op("Shape", h, start=1, end=2),
                         g.const([0], np.int64))
    h = g.op("Add", h, positions)
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
                     [1, d_heads, _audio_positions(frames), d_dim])
    return g


def build_decoder(path, ckpt, cfg: dict, fmt: WeightFormat, head_fmt: WeightFormat, progress=None,
                  kv=SHARED_KV, alignment_heads=None, frames="frames") -> GraphBuilder:
    """`kv`: the self-attention cache scheme (export/layers.py; StaticKV for the npu target); with
    `alignment_heads` ([layer, head] pairs) also their cross-attention scores; `frames`: the encoder's
    (build_encoder)."""
    w = ckpt.scope("model.decoder.")
    heads, head_dim = _dims(cfg)
    d_model, layers = cfg["d_model"], cfg["decoder_layers"]
    by_layer = _heads_by_layer(alignment_heads or [], layers, heads)
    aligned = []
    g = GraphBuilder("decoder_step", path)
    tokens = g.input("inputs_embeds", FLOAT, [1, kv.tokens_dim, d_model])
    positions = g.input("position_ids", INT64, [1, kv.tokens_dim])
    kv.declare(g, layers, heads, head_dim, FLOAT)
    for i in range(layers):
        for kind in ("key", "value"):
            g.input(f"cross_{kind}.{i}", FLOAT, [1, heads, _audio_positions(frames), head_dim])

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
        scores = attention_scores(g, q, f"cross_key.{i}", heads, head_dim)
        if by_layer.get(i):
            aligned.append(g.op("Gather", scores, g.const(by_layer[i], np.int64), axis=1))
        h = g.op("Add", h, proj_out(g, attend(g, scores, f"cross_value.{i}", heads, head_dim), w, f"{p}.encoder_attn", fmt))
        h = _mlp(g, h, w, p, fmt)
    last = layer_norm(g, last_position(g, h, d_model), "decoder.layer_norm", w("layer_norm.weight"), w("layer_norm.bias"))
    g.output(lm_head(g, last, w("embed_tokens.weight"), head_fmt), "logits", FLOAT, [1, cfg["vocab_size"]])
    if aligned:
        g.output(g.op("Concat", *aligned, axis=1) if len(aligned) > 1 else aligned[0], "alignment_scores", FLOAT,
                 [1, sum(map(len, by_layer.values())), "tokens", _audio_positions(frames)])
    return g


def _audio_positions(frames) -> int | str:
    """The encoder's output length for `frames` mel frames (its second conv has stride 2)."""
    return "audio_positions" if isinstance(frames, str) else frames // 2


def _heads_by_layer(pairs, layers: int, heads: int) -> dict[int, list[int]]:
    """[[layer, head], ...] -> {layer: [heads]}, checked against the decoder's size."""
    by_layer: dict[int, list[int]] = {}
    for pair in pairs:
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(v, int) for v in pair)
                or not (0 <= pair[0] < layers and 0 <= pair[1] < heads)):
            raise ExportError(f"alignment head {pair!r} is not a [layer, head] pair of this {layers}-layer, "
                              f"{heads}-head decoder")
        by_layer.setdefault(pair[0], []).append(pair[1])
    return dict(sorted(by_layer.items()))


def proj_out(g, x, w, prefix, fmt) -> str:
    return linear(g, x, f"{prefix}.out_proj", w(f"{prefix}.out_proj.weight"), w(f"{prefix}.out_proj.bias"), fmt)
