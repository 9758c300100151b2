"""Raw PCM from the wire (Wyoming audio chunks, WebSocket binary messages) -> mono float32 samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio import PcmFormat, RATE_RANGE, decode_pcm, to_float32, to_mono, validate
from ..errors import AudioError

# bytes per sample -> numpy dtype, as Wyoming's `width` counts them (little-endian signed integers)
WIDTHS = {2: "int16", 4: "int32"}
# the WebSocket's names for the same layouts, plus float32 (what a browser's audio graph produces)
ENCODINGS = {"s16le": "int16", "s32le": "int32", "f32le": "float32"}
MAX_CHANNELS = 8


@dataclass(frozen=True)
class WireFormat:
    """How a client's audio bytes are laid out; `check()` refuses anything voxedge cannot take."""

    rate: int
    dtype: str
    channels: int

    @classmethod
    def from_width(cls, rate, width, channels) -> WireFormat:
        if width not in WIDTHS:
            raise AudioError(f"audio width {width!r} is not supported: send 16-bit (2) or 32-bit (4) samples")
        return cls(rate, WIDTHS[width], channels).check()

    @classmethod
    def from_encoding(cls, rate, encoding, channels) -> WireFormat:
        if encoding not in ENCODINGS:
            raise AudioError(f"audio encoding {encoding!r} is not supported: use one of {', '.join(ENCODINGS)}")
        return cls(rate, ENCODINGS[encoding], channels).check()

    def check(self) -> WireFormat:
        if not _whole(self.rate, *RATE_RANGE):
            low, high = RATE_RANGE
            raise AudioError(f"sample rate {self.rate!r} is not a whole number of Hz from {low} to {high}")
        if not _whole(self.channels, 1, MAX_CHANNELS):
            raise AudioError(f"channels {self.channels!r} is not a whole number from 1 to {MAX_CHANNELS}")
        return self

    def decode(self, data: bytes) -> np.ndarray:
        """Interleaved little-endian frames -> 1-D float32 mono (channels averaged)."""
        frames = decode_pcm(data, PcmFormat(self.rate, self.dtype, self.channels))
        if frames.size == 0:
            return np.zeros(0, np.float32)
        return np.ascontiguousarray(to_mono(validate(to_float32(frames)), channels_first=False))


def _whole(value, low: int, high: int) -> bool:
    """A JSON whole number (not a bool, float or string) within [low, high]."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
