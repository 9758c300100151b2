"""What every export's validation step shares: comparing the bundle's run with the reference's."""

from __future__ import annotations

import numpy as np

from .checkpoint import ExportError

FP32_LOGIT_TOLERANCE = 1e-3


def truncate_at_eos(tokens, eos: int):
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens


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
