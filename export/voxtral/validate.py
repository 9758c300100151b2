"""The validation step that ends every Voxtral export: the bundle, run by voxedge's own runtime, against
transformers on the same clip, step by step. Its report is stored in the bundle (validation.json)."""

from __future__ import annotations

import numpy as np

from ..checkpoint import ExportError

FP32_LOGIT_TOLERANCE = 1e-3


def sample_clip(seconds: float = 6.0, rate: int = 16000) -> np.ndarray:
    """A deterministic speech-like test signal (voiced harmonics with gliding pitch, pauses and noise
    bursts), used when no --sample-audio is given; real speech is better for real weights."""
    rng = np.random.default_rng(1234)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = (np.sin(2 * np.pi * 1.3 * t) > -0.3).astype(float)
    noise = rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 0.4 * t) > 0.8)
    return (0.1 * voiced * envelope + 0.03 * noise).astype(np.float32)


def truncate_at_eos(tokens, eos: int):
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens


def run_bundle(bundle_dir, audio: np.ndarray, delay_ms: int):
    """voxedge's runtime on the bundle: (tokens, per-step logits)."""
    import voxedge

    tokens, logits = [], []
    stream = voxedge.load(bundle_dir).stream(delay_ms, on_step=lambda tok, lg, *_: (tokens.append(tok), logits.append(lg)))
    stream.feed(audio)
    stream.close()
    return tokens, np.stack(logits)


def compare(reference, ours, eos: int) -> dict:
    """Token agreement, and the largest logit difference over the steps before the first divergence
    (after it the two runs condition on different tokens, so their logits are not comparable)."""
    ref_tokens, ref_logits = reference
    our_tokens, our_logits = ours
    ref_tokens, our_tokens = truncate_at_eos(ref_tokens, eos), truncate_at_eos(our_tokens, eos)
    same = [a == b for a, b in zip(ref_tokens, our_tokens)]
    diverge = same.index(False) if False in same else min(len(ref_tokens), len(our_tokens))
    delta = float(np.abs(ref_logits[:diverge] - our_logits[:diverge]).max()) if diverge else 0.0
    return {
        "steps_reference": len(ref_tokens),
        "steps_bundle": len(our_tokens),
        "tokens_identical": ref_tokens == our_tokens,
        "token_agreement": sum(same) / max(len(ref_tokens), len(our_tokens), 1),
        "first_divergence": None if ref_tokens == our_tokens else diverge,
        "max_abs_logit_delta_before_divergence": delta,
    }


def check(report: dict, quantization: str) -> None:
    """fp32 bundles must reproduce transformers; quantized ones are judged by the reported agreement."""
    if quantization != "fp32":
        return
    if not report["tokens_identical"] or report["max_abs_logit_delta_before_divergence"] > FP32_LOGIT_TOLERANCE:
        raise ExportError(
            f"validation failed: the fp32 bundle does not reproduce transformers ({report}); the bundle is kept "
            "for inspection but must not be used"
        )
