"""A checkpoint of random weights with the real Voxtral Mini 4B Realtime's shapes, for timing.

It has the interface of export.checkpoint.Checkpoint, so the exporter builds real-size graphs from
it with the same code as from a real checkpoint. Every tensor is drawn from its own seed: identical
layers would be deduplicated by onnxruntime and make the timings meaningless (speed does not depend
on the values otherwise).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from export.voxtral.tiny import write_tekken
from benchmarks.floor import REAL_SIZE


def hf_config(size=REAL_SIZE) -> dict:
    e, d = size["encoder"], size["decoder"]
    return {
        "model_type": "voxtral_realtime", "audio_length_per_tok": 8, "downsample_factor": 4,
        "audio_config": {"num_mel_bins": e["mels"], "hidden_size": e["hidden"], "num_hidden_layers": e["layers"],
                         "num_attention_heads": e["heads"], "head_dim": e["head_dim"], "intermediate_size": e["mlp"],
                         "sliding_window": e["window"], "rms_norm_eps": 1e-5, "rope_parameters": {"rope_theta": 1e6}},
        "text_config": {"hidden_size": d["hidden"], "num_hidden_layers": d["layers"], "num_attention_heads": d["heads"],
                        "num_key_value_heads": d["kv_heads"], "head_dim": d["head_dim"], "intermediate_size": d["mlp"],
                        "sliding_window": d["window"], "vocab_size": d["vocab"], "rms_norm_eps": 1e-5,
                        "rope_parameters": {"rope_theta": 1e6}},
    }


def shapes(size=REAL_SIZE) -> dict:
    e, d, a = size["encoder"], size["decoder"], size["adapter"]
    out = {"audio_tower.embedder.conv1.weight": (e["hidden"], e["mels"], 3), "audio_tower.embedder.conv1.bias": (e["hidden"],),
           "audio_tower.embedder.conv2.weight": (e["hidden"], e["hidden"], 3), "audio_tower.embedder.conv2.bias": (e["hidden"],),
           "audio_tower.norm.weight": (e["hidden"],), "language_model.model.norm.weight": (d["hidden"],),
           "language_model.model.embed_tokens.weight": (d["vocab"], d["hidden"]),
           "multi_modal_projector.linear_1.weight": (a["out"], a["in"]), "multi_modal_projector.linear_2.weight": (a["out"], a["out"])}
    attn = e["heads"] * e["head_dim"]
    for i in range(e["layers"]):
        p = f"audio_tower.layers.{i}."
        out.update({p + "self_attn.q_proj.weight": (attn, e["hidden"]), p + "self_attn.q_proj.bias": (attn,),
                    p + "self_attn.k_proj.weight": (attn, e["hidden"]), p + "self_attn.v_proj.weight": (attn, e["hidden"]),
                    p + "self_attn.v_proj.bias": (attn,), p + "self_attn.o_proj.weight": (e["hidden"], attn),
                    p + "self_attn.o_proj.bias": (e["hidden"],), p + "self_attn_layer_norm.weight": (e["hidden"],),
                    p + "final_layer_norm.weight": (e["hidden"],), p + "mlp.gate_proj.weight": (e["mlp"], e["hidden"]),
                    p + "mlp.up_proj.weight": (e["mlp"], e["hidden"]), p + "mlp.down_proj.weight": (e["hidden"], e["mlp"]),
                    p + "mlp.down_proj.bias": (e["hidden"],)})
    q, kv = d["heads"] * d["head_dim"], d["kv_heads"] * d["head_dim"]
    for i in range(d["layers"]):
        p = f"language_model.model.layers.{i}."
        out.update({p + "self_attn.q_proj.weight": (q, d["hidden"]), p + "self_attn.k_proj.weight": (kv, d["hidden"]),
                    p + "self_attn.v_proj.weight": (kv, d["hidden"]), p + "self_attn.o_proj.weight": (d["hidden"], q),
                    p + "input_layernorm.weight": (d["hidden"],), p + "post_attention_layernorm.weight": (d["hidden"],),
                    p + "ada_rms_norm.linear1.weight": (32, d["hidden"]), p + "ada_rms_norm.linear2.weight": (d["hidden"], 32),
                    p + "mlp.gate_proj.weight": (d["mlp"], d["hidden"]), p + "mlp.up_proj.weight": (d["mlp"], d["hidden"]),
                    p + "mlp.down_proj.weight": (d["hidden"], d["mlp"])})
    return out


class RandomCheckpoint:
    def __init__(self, root: Path, size=REAL_SIZE, prefix: str = "", scale: float = 0.02):
        """`scale`: the weights' standard deviation (a tiny model needs a larger one to emit varied tokens)."""
        self.root, self.source, self.revision, self.prefix = Path(root), "random weights, real shapes", None, prefix
        self.scale = scale
        self.config = hf_config(size)
        self._shapes = shapes(size)
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / "tekken.json").exists():
            write_tekken(self.root / "tekken.json")

    def scope(self, prefix: str) -> RandomCheckpoint:
        scoped = object.__new__(RandomCheckpoint)
        scoped.__dict__.update(self.__dict__, prefix=self.prefix + prefix)
        return scoped

    def tensors(self) -> dict[str, tuple]:
        """Every tensor's full name and shape."""
        return dict(self._shapes)

    def has(self, name: str) -> bool:
        return self.prefix + name in self._shapes

    def __call__(self, name: str) -> np.ndarray:
        full = self.prefix + name
        shape = self._shapes[full]
        if full.endswith("norm.weight"):
            return np.ones(shape, np.float32)
        rng = np.random.default_rng(zlib.crc32(full.encode()))
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(self.scale)

    def optional(self, name: str):
        return self(name) if self.has(name) else None

    def file(self, name: str) -> Path:
        return self.root / name
