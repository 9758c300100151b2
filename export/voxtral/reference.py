"""transformers as the oracle: the offline padding and greedy generate(), step by step (docs/voxtral.md).

Used by the export's validation step and by the tests; torch and transformers only (build time).
"""

from __future__ import annotations

import numpy as np
import torch


def padded_audio(audio: np.ndarray, delay_ms: int, left_pad_tokens: int = 32) -> np.ndarray:
    """mistral-common's own OFFLINE streaming padding (left silence, right pad grown by the delay)."""
    from mistral_common.tokens.tokenizers.audio import (
        AudioConfig,
        AudioEncoder,
        AudioSpectrogramConfig,
        TranscriptionFormat,
    )

    config = AudioConfig(
        sampling_rate=16000,
        frame_rate=12.5,
        encoding_config=AudioSpectrogramConfig(num_mel_bins=128, hop_length=160, window_size=400),
        transcription_format=TranscriptionFormat.STREAMING,
        transcription_delay_ms=float(delay_ms),
        streaming_look_ahead_ms=2.5,
        streaming_look_back_ms=52.5,
        streaming_n_left_pad_tokens=left_pad_tokens,
    )
    return AudioEncoder(config, special_ids=None).pad(audio, 16000, transcription_delay_ms=float(delay_ms))


def load_model(checkpoint_dir):
    from transformers import VoxtralRealtimeForConditionalGeneration

    return VoxtralRealtimeForConditionalGeneration.from_pretrained(
        checkpoint_dir, dtype=torch.float32, attn_implementation="eager"
    ).eval()


def generate(model, audio: np.ndarray, delay_ms: int, bos: int = 1, streaming_pad: int = 32):
    """Greedy offline generate(): (token ids, per-step logits [steps, vocab]) after the prompt."""
    from transformers.models.voxtral_realtime.feature_extraction_voxtral_realtime import (
        VoxtralRealtimeFeatureExtractor,
    )

    n_d = delay_ms // 80
    features = VoxtralRealtimeFeatureExtractor(feature_size=model.config.audio_config.num_mel_bins)(
        padded_audio(audio, delay_ms), sampling_rate=16000, return_tensors="pt"
    )["input_features"]
    prompt = torch.tensor([[bos] + [streaming_pad] * (32 + n_d)])
    with torch.no_grad():
        out = model.generate(
            input_ids=prompt,
            input_features=features,
            num_delay_tokens=n_d,
            max_length=-(-features.shape[-1] // 8),  # transformers' own bound (one position per 8 frames), stated
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
        )
    tokens = out.sequences[0, prompt.shape[1] :].tolist()
    return tokens, torch.cat(out.logits).numpy()
