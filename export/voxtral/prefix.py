"""The start every Voxtral session shares, computed once at export (docs/voxtral.md, "The prompt prefix").

A session prefills the prompt [BOS] + [STREAMING_PAD] x (32 + n_d) against audio that begins with
2.56 s of left-pad silence. The first mel frames see nothing but that silence (frames 0..254 at the
real sizes, docs/features.md), so the encoder's output over them, and the decoder's over the prompt
positions they feed, are the same in every session: the first 31 prompt tokens. This module runs the
bundle's own graphs, through the runtime's own caches, over those tokens and stores what the caches
hold afterwards: the encoder KV and conv states once (they do not depend on the delay) and the
decoder KV for every supported delay (the delay enters the decoder through ada_scale). A session
restores them and prefills only the rest of the prompt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ENCODER_KV = "prefix_encoder_kv.npy"
CONV_STATES = {"conv1_state": "prefix_conv1_state.npy", "conv2_state": "prefix_conv2_state.npy"}
DECODER_KV = "prefix_decoder_kv.npy"


def constant_tokens(padding, mel_frames_per_token: int) -> int:
    """How many prompt tokens get an audio embedding that depends on the left pad only."""
    frames = (padding.left_pad - padding.n_fft // 2) // padding.hop_length + 1  # mel frames seeing only zeros
    conv = frames // 2  # the stride-2 causal conv's frame j reads conv1 frames up to 2j + 1
    return conv // (mel_frames_per_token // 2)  # an audio token stacks mel_frames_per_token / 2 conv frames


def write_prefix(out: Path) -> dict:
    """Compute the snapshot with the bundle in `out` (its manifest written); returns the manifest entry."""
    import voxedge
    from voxedge.engines.kv_cache import CachedGraph, SlidingKVCache
    from voxedge.engines.voxtral_realtime import ENCODER_OUTPUTS
    from voxedge.features import StreamingLogMel

    model = voxedge.load(out, verify=False)
    cfg, dtype = model.config, model.config.kv_dtype
    tokens = constant_tokens(model.padding, cfg.mel_frames_per_token)
    frames, positions = tokens * cfg.mel_frames_per_token, tokens * cfg.mel_frames_per_token // 2
    mel = StreamingLogMel(model.mel, left_pad=model.padding.left_pad).feed(np.zeros(0, np.float32))[:, :frames]
    encoder = CachedGraph(model.encoder, SlidingKVCache.of(cfg.encoder, positions, dtype), ENCODER_OUTPUTS)
    conv = {name: np.zeros(shape, dtype) for name, shape in model.conv_shapes.items()}
    audio, *states = encoder.run({"mel": mel[None].astype(dtype), **conv,
                                  "position_ids": np.arange(positions, dtype=np.int64)[None]}, positions)
    np.save(out / ENCODER_KV, encoder.snapshot())
    for name, state in zip(CONV_STATES.values(), states):
        np.save(out / name, state)

    ids = [cfg.tokens.bos] + [cfg.tokens.streaming_pad] * (tokens - 1)
    embeds = (model.embed(ids)[None] + audio).astype(dtype)
    snapshots = []
    for delay in cfg.delays_ms:
        decoder = CachedGraph(model.decoder, SlidingKVCache.of(cfg.decoder, tokens, dtype), ["logits"])
        decoder.run(model.decoder_feeds(embeds, 0, model.ada_scales[delay]), tokens)
        snapshots.append(decoder.snapshot())
    np.save(out / DECODER_KV, np.stack(snapshots))
    return {"tokens": tokens, "encoder_kv": ENCODER_KV, **CONV_STATES, "decoder_kv": DECODER_KV}
