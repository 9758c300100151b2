"""Weight formats and the quantization presets (docs/export.md has the reasoning and measurements).

Linear layers become MatMulNBits (com.microsoft) for 4- and 8-bit weights: block-wise symmetric
quantization along K, packed by onnxruntime's own routine, so the bytes are exactly what its
quantizer would write. Each weight is quantized as it is added to the graph, one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WeightFormat:
    bits: int | None = None  # 4 or 8 for MatMulNBits; None for a float weight
    dtype: str = "float32"  # float weights: float32 or float16
    block_size: int = 32
    accuracy_level: int = 4  # int8 activations in MLAS: measured as accurate as fp32 compute, 2.4x faster

    @property
    def label(self) -> str:
        return f"int{self.bits}" if self.bits else ("fp16" if self.dtype == "float16" else "fp32")


FP32 = WeightFormat()
FP16 = WeightFormat(dtype="float16")
INT8 = WeightFormat(bits=8)
INT4 = WeightFormat(bits=4)

# role -> format. Roles: "encoder" (audio encoder linears), "adapter" (projector), "decoder"
# (decoder linears), "lm_head" (also the token embedding table at run time).
PRESETS = {
    "fp32": {"encoder": FP32, "adapter": FP32, "decoder": FP32, "lm_head": FP32},
    "fp16": {"encoder": FP16, "adapter": FP16, "decoder": FP16, "lm_head": FP16},
    "int8": {"encoder": INT8, "adapter": INT8, "decoder": INT8, "lm_head": INT8},
    # 4 bits only where the bytes are (the decoder's linears); the embedding/LM head, encoder and
    # adapter stay at 8 bits, as ports measured all-4-bit variants to lose accuracy.
    "int4": {"encoder": INT8, "adapter": INT8, "decoder": INT4, "lm_head": INT8},
}


def quantize_blockwise(weight: np.ndarray, fmt: WeightFormat) -> tuple[np.ndarray, np.ndarray]:
    """A linear's weight [N=out, K=in] -> (packed uint8 [N, K/block, block*bits/8], scales float32 [N, K/block]).

    Symmetric: value = (q - 2**(bits-1)) * scale, 4-bit values packed low nibble first.
    """
    from onnxruntime.capi._pybind_state import quantize_matmul_4bits, quantize_matmul_8bits

    n, k = weight.shape
    if k % fmt.block_size:
        raise ValueError(f"K={k} is not a multiple of the block size {fmt.block_size}")
    blocks = k // fmt.block_size
    packed = np.zeros((n, blocks, fmt.block_size * fmt.bits // 8), np.uint8)
    scales = np.zeros((n, blocks), np.float32)
    zero_points = np.zeros((n, (blocks + 1) // 2 if fmt.bits == 4 else blocks), np.uint8)  # unused: symmetric
    routine = quantize_matmul_4bits if fmt.bits == 4 else quantize_matmul_8bits
    routine(packed, np.ascontiguousarray(weight.T, np.float32), scales, zero_points, fmt.block_size, n, k, True)
    return packed, scales
