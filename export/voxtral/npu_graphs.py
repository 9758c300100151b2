"""Voxtral Realtime's graphs for NPUs (`--target npu`, docs/hardware.md): fixed shapes, standard ops only.

audio_encoder_step: 8 mel frames (4 conv positions, one 80 ms token) per call
decoder_step:       one token per call

Both caches are rings of window - 1 slots (StaticKV in export/layers.py): the runtime writes the new
K/V that each call returns into slot position mod (window - 1) and tells the graph through
`attention_mask` which slots each query may see. Keys are stored rotated at their absolute positions,
so a query sees exactly the window - 1 positions before it, as in transformers: the windows slide for
ever with a fixed capacity, and no position is ever moved.
"""

from __future__ import annotations

from ..layers import StaticKV
from . import graphs

STATES = {"conv1_state_out": "conv1_state", "conv2_state_out": "conv2_state"}


def build_encoder(path, ckpt, config: dict, fmt, adapter_fmt, progress=None):
    audio = config["audio_config"]
    kv = StaticKV(capacity=audio["sliding_window"] - 1, positions=config["downsample_factor"])
    g = graphs.build_encoder(path, ckpt, config, fmt, adapter_fmt, progress, kv=kv)
    kv.describe(g, sliced={"mel": 2, "position_ids": 1}, carried=STATES)
    return g


def build_decoder(path, ckpt, config: dict, fmt, head_fmt, progress=None):
    kv = StaticKV(capacity=config["text_config"]["sliding_window"] - 1, positions=1)
    g = graphs.build_decoder(path, ckpt, config, fmt, head_fmt, progress, kv=kv)
    kv.describe(g, sliced={"inputs_embeds": 1, "position_ids": 1})
    return g
