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
    dynamic: bool = False  # 8-bit per-output-channel weights x activations quantized per call (DynamicQuantizeMatMul)

    @property
    def label(self) -> str:
        if self.dynamic:
            return "int8-dynamic"
        if self.bits:
            return f"int{self.bits}" + (f"-b{self.block_size}" if self.block_size != 32 else "")
        return "fp16" if self.dtype == "float16" else "fp32"

    @property
    def bytes_per_weight(self) -> float:
        """What one weight costs to read: blocks of `block_size` values carry one float32 scale; dynamic int8
        has one scale per output channel (negligible)."""
        if self.dynamic:
            return 1.0
        if self.bits:
            return self.bits / 8 + 4 / self.block_size
        return 2.0 if self.dtype == "float16" else 4.0


FP32 = WeightFormat()
FP16 = WeightFormat(dtype="float16")
INT8 = WeightFormat(bits=8)
INT4 = WeightFormat(bits=4)
# Many rows at once (the encoder, 4 frames per 80 ms step, several steps per call): MLAS's int8 GEMM
# runs 2.1x faster than 8-bit MatMulNBits at 32 rows (288 vs 137 GMAC/s measured), equal at 4 rows.
INT8_DYNAMIC = WeightFormat(bits=8, dynamic=True)
# Larger 4-bit blocks: block 32's float32 scales add 25% to the 4-bit values' bytes, block 64's 12.5%,
# block 128's 6.25%; a decoder step reads every weight once, so fewer bytes are a faster step.
INT4_B64 = WeightFormat(bits=4, block_size=64)
INT4_B128 = WeightFormat(bits=4, block_size=128)

BY_LABEL = {f.label: f for f in (FP32, FP16, INT8, INT4, INT8_DYNAMIC, INT4_B64, INT4_B128)}

# Weight format of each role (roles: see PRESETS below), per preset; benchmarks/floor.py counts bytes from it.
PRESET_FORMATS = {
    "fp32": {"encoder": "fp32", "adapter": "fp32", "decoder": "fp32", "lm_head": "fp32"},
    "fp16": {"encoder": "fp16", "adapter": "fp16", "decoder": "fp16", "lm_head": "fp16"},
    "int8": {"encoder": "int8-dynamic", "adapter": "int8-dynamic", "decoder": "int8", "lm_head": "int8"},
    # 4 bits only where the bytes are (the decoder's linears); the embedding/LM head, encoder and
    # adapter stay at 8 bits, as ports measured all-4-bit variants to lose accuracy. The encoder's
    # 8 bits are per-channel weights with activations quantized per call: 2x faster when several
    # steps are encoded at once (INT8_DYNAMIC above).
    "int4": {"encoder": "int8-dynamic", "adapter": "int8-dynamic", "decoder": "int4", "lm_head": "int8"},
    "int4-b64": {"encoder": "int8-dynamic", "adapter": "int8-dynamic", "decoder": "int4-b64", "lm_head": "int8"},
    "int4-b128": {"encoder": "int8-dynamic", "adapter": "int8-dynamic", "decoder": "int4-b128", "lm_head": "int8"},
}

# preset -> role -> format. Roles: "encoder" (audio encoder linears), "adapter" (projector), "decoder"
# (decoder linears), "lm_head" (also the token embedding table at run time).
PRESETS = {preset: {role: BY_LABEL[label] for role, label in roles.items()} for preset, roles in PRESET_FORMATS.items()}


def quantize_blockwise(weight: np.ndarray, fmt: WeightFormat) -> tuple[np.ndarray, np.ndarray]:
    """A linear's weight [N=out, K=in] -> (packed uint8 [N, ceil(K/block), block*bits/8], scales float32
    [N, ceil(K/block)]). Symmetric: value = (q - 2**(bits-1)) * scale, 4-bit values packed low nibble
    first; a K that is not a multiple of the block size ends in a zero-padded block (MatMulNBits reads
    K from its attribute)."""
    from onnxruntime.capi._pybind_state import quantize_matmul_4bits, quantize_matmul_8bits

    n, k = weight.shape
    blocks = -(-k // fmt.block_size)
    packed = np.zeros((n, blocks, fmt.block_size * fmt.bits // 8), np.uint8)
    scales = np.zeros((n, blocks), np.float32)
    zero_points = np.zeros((n, (blocks + 1) // 2 if fmt.bits == 4 else blocks), np.uint8)  # unused: symmetric
    routine = quantize_matmul_4bits if fmt.bits == 4 else quantize_matmul_8bits
    routine(packed, np.ascontiguousarray(weight.T, np.float32), scales, zero_points, fmt.block_size, n, k, True)
    return packed, scales


# DynamicQuantizeMatMul multiplies uint8 activations by int8 weights. On x86 CPUs without VNNI (AVX2,
# AVX-512 before Cascade Lake, AMD before Zen 4) MLAS sums pairs of uint8 x int8 products in int16, which
# saturates when both are near full range; 7-bit weights (onnxruntime's `reduce_range`) cannot overflow
# it (255 x 63 x 2 < 32767). Full-range weights sent Whisper tiny.en int8 into repetition loops on such a
# CPU (WER 0.95 against fp32's 0.32 on 78 sentences, docs/export.md); 7-bit: 0.33.
PER_CHANNEL_MAX = 63


def quantize_per_channel(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A linear's weight [N=out, K=in] -> (int8 [K, N] for MatMul, float32 scales [N]): symmetric, one
    scale per output channel, as onnxruntime's quantize_dynamic(per_channel=True, reduce_range=True)
    writes them."""
    scales = np.abs(weight).max(axis=1) / PER_CHANNEL_MAX
    scales[scales == 0] = 1.0
    quantized = np.clip(np.rint(weight / scales[:, None]), -PER_CHANNEL_MAX, PER_CHANNEL_MAX).astype(np.int8)
    return np.ascontiguousarray(quantized.T), scales.astype(np.float32)



def check_shapes(preset: str, head_dims: dict, lm_head_hidden: int) -> None:
    """Refuse, before any work, shapes the graphs cannot run: GroupQueryAttention needs head sizes that
    are multiples of 8, and the runtime reads a block-quantized LM head as the token embedding table,
    whose rows must be whole blocks."""
    from .checkpoint import ExportError

    odd = {name: dim for name, dim in head_dims.items() if dim % 8}
    if odd:
        raise ExportError(f"attention head size {odd} is not a multiple of 8, which onnxruntime's "
                          "GroupQueryAttention requires; this checkpoint cannot be exported")
    head = PRESETS[preset]["lm_head"]
    if head.bits and lm_head_hidden % head.block_size:
        raise ExportError(f"the hidden size {lm_head_hidden} is not a multiple of the {head.block_size}-value "
                          f"blocks the {preset} preset quantizes the LM head with; export with --quant fp32 or fp16")
