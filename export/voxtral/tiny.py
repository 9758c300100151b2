"""A tiny random Voxtral Realtime checkpoint for tests and benchmarks (no real weights exist offline).

Only the sizes shrink. Kept as in the real model: 128 mel bins, the real 131072-entry Tekken
vocabulary, encoder heads x head_dim != hidden, GQA in the decoder, downsample 4, delays. The sliding
windows are small (12 encoder frames, 16 decoder tokens) so that both caches wrap within seconds.

    python -m export.voxtral.tiny DIR [--seed N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAMED_SPECIALS = {0: "<unk>", 1: "<s>", 2: "</s>", 11: "<pad>", 24: "[AUDIO]", 25: "[BEGIN_AUDIO]",
                  32: "[STREAMING_PAD]", 33: "[STREAMING_WORD]", 34: "[REPEAT_AUDIO_TEXT]"}


def tiny_config(encoder_window: int = 12, decoder_window: int = 16, layers: int = 2, **sizes):
    from transformers import VoxtralRealtimeConfig

    text = dict(vocab_size=131072, hidden_size=64, intermediate_size=96, num_hidden_layers=layers,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=decoder_window,
                initializer_range=0.2)
    audio = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=4, head_dim=16,
                 num_mel_bins=128, sliding_window=encoder_window, initializer_range=0.2)
    text.update(sizes.get("text", {}))
    audio.update(sizes.get("audio", {}))
    # init_range 0.2: with the default 0.02 a random model argmaxes one token forever.
    return VoxtralRealtimeConfig(text_config=text, audio_config=audio)


def write_tekken(path: Path, delay_ms: int = 480) -> None:
    """An offline tekken.json: mistral_common's bundled 131072-entry vocabulary, the special ids of
    the real file where known (placeholders elsewhere), and the real streaming audio section."""
    import mistral_common

    source = Path(mistral_common.__file__).parent / "data" / "tekken_240911.json"
    tekken = json.loads(source.read_text())
    n_special = tekken["config"]["default_num_special_tokens"]
    tekken["special_tokens"] = [
        {"rank": i, "token_str": NAMED_SPECIALS.get(i, f"<SPECIAL_{i}>"), "is_control": True} for i in range(n_special)
    ]
    tekken["config"]["version"] = "v13"
    tekken.pop("image", None)
    tekken["audio"] = {
        "sampling_rate": 16000,
        "frame_rate": 12.5,
        "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400},
        "chunk_length_s": None,
        "transcription_format": "streaming",
        "transcription_delay_ms": float(delay_ms),
        "streaming_look_ahead_ms": 2.5,
        "streaming_look_back_ms": 52.5,
        "streaming_n_left_pad_tokens": 32,
    }
    path.write_text(json.dumps(tekken))


def build(out: Path, seed: int = 0, **config_kwargs) -> Path:
    """Write a seeded tiny checkpoint (config, safetensors, tekken.json) into `out`."""
    import torch
    from transformers import VoxtralRealtimeForConditionalGeneration

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = VoxtralRealtimeForConditionalGeneration(tiny_config(**config_kwargs)).eval()
    model.save_pretrained(out)
    write_tekken(out / "tekken.json")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m export.voxtral.tiny", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="directory for the checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(build(args.out, args.seed))


if __name__ == "__main__":
    main()
