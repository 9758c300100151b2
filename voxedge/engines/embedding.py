"""Token embeddings read from the LM head's own bytes in the decoder's weight file.

Voxtral ties its token embedding to its output projection, and the exporter stores that projection
row-major [vocab, hidden] in every format. Memory-mapping those bytes gives the embedding table with
no second copy: only the rows looked up are ever read.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import BundleError


class EmbeddingTable:
    def __init__(self, path, spec):
        """`spec` (voxedge.config.EmbeddingSpec): format fp32|fp16|int8|int4, vocab, hidden, block size,
        and the byte offsets of the weight (float formats) or of the packed blocks and their scales."""
        self.vocab, self.hidden = spec.vocab, spec.hidden
        size = os.path.getsize(path)
        if spec.format in ("fp32", "fp16"):
            dtype = np.float32 if spec.format == "fp32" else np.float16
            _check_span(path, size, spec.offset, self.vocab * self.hidden * np.dtype(dtype).itemsize)
            self._weight = np.memmap(path, dtype, "r", spec.offset, (self.vocab, self.hidden))
            self._bits = None
        else:
            self._bits = {"int8": 8, "int4": 4}[spec.format]
            blocks = self.hidden // spec.block_size
            row_bytes = self.hidden * self._bits // 8
            _check_span(path, size, spec.offset, self.vocab * row_bytes)
            _check_span(path, size, spec.scales_offset, self.vocab * blocks * 4)
            self._packed = np.memmap(path, np.uint8, "r", spec.offset, (self.vocab, row_bytes))
            self._scales = np.memmap(path, np.float32, "r", spec.scales_offset, (self.vocab, blocks))
            self._block = spec.block_size

    def __call__(self, ids) -> np.ndarray:
        """Rows for `ids` as float32 [len(ids), hidden]."""
        ids = np.asarray(ids, np.int64)
        if self._bits is None:
            return np.asarray(self._weight[ids], np.float32)
        return dequantize(np.asarray(self._packed[ids]), np.asarray(self._scales[ids]), self._bits, self._block)


def dequantize(packed: np.ndarray, scales: np.ndarray, bits: int, block: int) -> np.ndarray:
    """MatMulNBits' symmetric blocks -> float32 rows: `packed` [rows, values * bits / 8] (4 bits: two values
    per byte, low nibble first), `scales` [rows, values / block]."""
    if bits == 4:
        packed = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(len(packed), -1)
    centred = packed.astype(np.float32) - (1 << (bits - 1))  # zero point 2**(bits-1)
    return centred * np.repeat(scales, block, axis=1)


def _check_span(path, size: int, offset: int, length: int) -> None:
    if offset + length > size:
        raise BundleError(f"{path}: the embedding table needs bytes {offset}..{offset + length}, but the file has "
                          f"{size}; the manifest does not match the graph's weights, re-export the bundle")
