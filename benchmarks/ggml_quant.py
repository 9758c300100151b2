"""ggml's own quantizer, called in the peer's shared library: the bytes the peers' `quantize` tools write.

whisper.cpp's `quantize` (examples/quantize/quantize.cpp, through examples/common-ggml.cpp) and CrispASR's
`crispasr-quantize` both call `ggml_quantize_chunk` row by row; the PyPI wheels ship the library but not the
tools, so the converters here call the same function in the wheel's libggml-base through ctypes.
"""

from __future__ import annotations

import ctypes
import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

# enum ggml_type (ggml/include/ggml.h)
GGML_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "q4_k": 12}
# enum ggml_ftype, the file-level type whisper.cpp's header stores
GGML_FTYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q4_k": 12}
# values per block (ggml's type traits)
BLOCK_SIZE = {"f32": 1, "f16": 1, "q4_0": 32, "q4_1": 32, "q5_0": 32, "q5_1": 32, "q8_0": 32, "q4_k": 256}


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ModuleNotFoundError(f"{name} is not installed: `make dev` installs the bench extra")
    return Path(spec.origin).parent


def library(peer: str) -> Path:
    """The libggml-base a peer's wheel ships ("whisper.cpp": pywhispercpp, "crispasr": crispasr)."""
    if peer == "crispasr":
        return package_dir("crispasr") / "libggml-base.so"
    if peer == "whisper.cpp":
        libs = package_dir("pywhispercpp").parent / "pywhispercpp.libs"
        found = sorted(libs.glob("libggml-base*.so*"))
        if not found:
            raise FileNotFoundError(f"no libggml-base in {libs}")
        return found[0]
    raise ValueError(f"unknown peer {peer!r}")


class Quantizer:
    """float32 rows -> the bytes of one ggml type, as the peer's own build of ggml writes them."""

    def __init__(self, peer: str):
        self.lib = ctypes.CDLL(str(library(peer)))
        self.lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        self.lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                                 ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
        self.lib.ggml_row_size.restype = ctypes.c_size_t
        self.lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]

    def row_size(self, qtype: str, n_per_row: int) -> int:
        return self.lib.ggml_row_size(GGML_TYPES[qtype], n_per_row)

    def nbytes(self, qtype: str, shape) -> int:
        rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        return rows * self.row_size(qtype, shape[-1])

    def __call__(self, array: np.ndarray, qtype: str, threads: int = 2) -> np.ndarray:
        """The last axis is the row (ggml's ne[0]); returns the raw bytes as uint8."""
        if qtype == "f32":
            return np.ascontiguousarray(array, np.float32).view(np.uint8).reshape(-1)
        if qtype == "f16":
            return np.ascontiguousarray(array, np.float16).view(np.uint8).reshape(-1)
        n_per_row = array.shape[-1]
        if n_per_row % BLOCK_SIZE[qtype]:
            raise ValueError(f"rows of {n_per_row} values do not tile {qtype} blocks of {BLOCK_SIZE[qtype]}")
        src = np.ascontiguousarray(array, np.float32).reshape(-1, n_per_row)
        rows, row_bytes = src.shape[0], self.row_size(qtype, n_per_row)
        out = np.empty(rows * row_bytes, np.uint8)
        chunk = max(1, -(-rows // max(1, threads)))

        def part(start: int) -> int:  # ctypes releases the GIL: the chunks run in parallel
            n = min(chunk, rows - start)
            return self.lib.ggml_quantize_chunk(GGML_TYPES[qtype], src[start:].ctypes.data,
                                                out[start * row_bytes:].ctypes.data, 0, n, n_per_row, None)

        with ThreadPoolExecutor(threads) as pool:
            written = sum(pool.map(part, range(0, rows, chunk)))
        if written != out.size:
            raise RuntimeError(f"ggml_quantize_chunk wrote {written} bytes, expected {out.size}")
        return out
