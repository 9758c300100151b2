"""What the real Voxtral Mini 4B Realtime must read from memory per 80 ms step, per preset.

A decoder step reads every decoder weight once (tokens cannot be batched: each needs the previous),
the LM head, and the KV cache of its context; an encoder call reads every encoder weight and the
encoder KV window once, for `encoder_batch` steps. Divided by the memory bandwidth, that is the
fastest any implementation can be on a machine: the floor the benchmarks compare against.
"""

from __future__ import annotations

from export.quantize import BY_LABEL, PRESET_FORMATS

# The real checkpoint's dimensions (docs/voxtral.md, "The model")
REAL_SIZE = {
    "encoder": {"layers": 32, "hidden": 1280, "heads": 32, "head_dim": 64, "mlp": 5120, "window": 750, "mels": 128},
    "adapter": {"in": 5120, "out": 3072},
    "decoder": {"layers": 26, "hidden": 3072, "heads": 32, "kv_heads": 8, "head_dim": 128, "mlp": 9216,
                "window": 8192, "vocab": 131072},
}


KV_BYTES = 4  # float32 caches


def parameters(size=REAL_SIZE) -> dict:
    """Linear-layer parameters per role (biases and norms are negligible)."""
    e, d, a = size["encoder"], size["decoder"], size["adapter"]
    attn_e = e["heads"] * e["head_dim"]
    encoder = e["layers"] * (4 * e["hidden"] * attn_e + 3 * e["hidden"] * e["mlp"])
    q, kv = d["heads"] * d["head_dim"], d["kv_heads"] * d["head_dim"]
    decoder = d["layers"] * (2 * d["hidden"] * q + 2 * d["hidden"] * kv + 3 * d["hidden"] * d["mlp"])
    return {"encoder": encoder, "adapter": a["in"] * a["out"] + a["out"] ** 2, "decoder": decoder,
            "lm_head": d["vocab"] * d["hidden"], "convs": e["mels"] * e["hidden"] * 3 + e["hidden"] ** 2 * 3}


def step_bytes(preset: str, context: int = 375, encoder_batch: int = 1, size=REAL_SIZE) -> dict:
    """Bytes read per 80 ms step: decoder (weights + LM head + KV at `context` tokens) and encoder
    (weights, adapter, convs in float32, KV over the full 750-frame window, shared by `encoder_batch` steps)."""
    formats, params = PRESET_FORMATS[preset], parameters(size)
    per_weight = {role: BY_LABEL[label].bytes_per_weight for role, label in formats.items()}
    e, d = size["encoder"], size["decoder"]
    decoder = (params["decoder"] * per_weight["decoder"]
               + params["lm_head"] * per_weight["lm_head"]
               + 2 * d["layers"] * d["kv_heads"] * d["head_dim"] * KV_BYTES * min(context, d["window"]))
    encoder_call = (params["encoder"] * per_weight["encoder"]
                    + params["adapter"] * per_weight["adapter"] + params["convs"] * 4
                    + 2 * e["layers"] * e["heads"] * e["head_dim"] * KV_BYTES * e["window"])
    return {"decoder": decoder, "encoder": encoder_call / encoder_batch, "total": decoder + encoder_call / encoder_batch}
