"""Delay conditioning precomputed for every supported delay (AdaRMSNorm, docs/voxtral.md "The model").

Each decoder layer scales its post-attention norm by 1 + ada_rms_norm(t_cond(n_d)), which depends
only on the delay. Computing it here with transformers' own float32 operations, for every delay the
model supports, lets a session pick its delay at run time without re-export, exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn.functional import gelu, linear

SUPPORTED_DELAYS_MS = tuple(range(80, 1201, 80)) + (2400,)  # the model card's list


def ada_scales(weights, delays_ms, hidden: int, layers: int) -> np.ndarray:
    """[delays, layers, hidden] float32; `weights(name)` returns a checkpoint tensor."""
    half = hidden // 2
    inv_freq = torch.exp(-math.log(10000.0) * torch.arange(half).float() / half)  # TimeEmbedding, theta 1e4
    w1 = [torch.from_numpy(weights(f"language_model.model.layers.{i}.ada_rms_norm.linear1.weight")) for i in range(layers)]
    w2 = [torch.from_numpy(weights(f"language_model.model.layers.{i}.ada_rms_norm.linear2.weight")) for i in range(layers)]
    rows = []
    for delay in delays_ms:
        angle = torch.full((1,), float(delay // 80)) * inv_freq
        t_cond = torch.cat((angle.cos(), angle.sin()))[None]  # cos first
        rows.append(torch.stack([(1 + linear(gelu(linear(t_cond, a)), b))[0] for a, b in zip(w1, w2)]))
    return torch.stack(rows).numpy().astype(np.float32)
