"""transformers' Whisper as the oracle for the export's validation step (greedy, one 30 s window)."""

from __future__ import annotations

import numpy as np
import torch


def generate(checkpoint_dir, audio: np.ndarray):
    """Greedy, no timestamps, on the first 30 s: (features [n_mels, 3000], tokens, per-step logits)."""
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(checkpoint_dir, dtype=torch.float32).eval()
    extractor = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    features = extractor(audio[: 30 * 16000], sampling_rate=16000, return_tensors="pt")["input_features"]
    # a multilingual model is validated on English, the language its bundle's start sequence names
    language = {"language": "en", "task": "transcribe"} if model.generation_config.is_multilingual else {}
    with torch.no_grad():
        out = model.generate(features, do_sample=False, num_beams=1, return_timestamps=False,
                             output_logits=True, return_dict_in_generate=True, **language)
    prompt = len(out.sequences[0]) - len(out.logits)
    return features[0].numpy(), out.sequences[0, prompt:].tolist(), torch.cat(out.logits).numpy()


def version() -> str:
    import transformers

    return transformers.__version__
