"""Token ids -> text, from the bundle's byte table (no tokenizer library at run time).

Both families' vocabularies are byte-level: every id maps to a byte string (Tekken ranks, or
Whisper's GPT-2 pieces with the byte-to-unicode mapping undone at export). Special ids map to
nothing. Text is the UTF-8 decoding of the concatenated bytes, so a character split across pieces
comes out whole, even when a special token falls between its pieces.
"""

from __future__ import annotations

import codecs
import zipfile

import numpy as np

from .errors import BundleError

TABLE_FILE = "tokenizer.npz"


class TokenTable:
    def __init__(self, data: np.ndarray, offsets: np.ndarray, special: np.ndarray):
        self._data = data.tobytes()
        self._offsets = offsets.astype(np.int64)
        self.special = special.astype(bool)

    @classmethod
    def load(cls, path) -> TokenTable:
        try:
            with np.load(path, allow_pickle=False) as z:
                data, offsets, special = z["data"], z["offsets"], z["special"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise BundleError(f"{path}: not a readable token table ({str(exc)[:120]}); re-export the bundle") from None
        if (data.ndim != 1 or offsets.ndim != 1 or special.shape != (len(offsets) - 1,) or offsets[0] != 0
                or offsets[-1] != len(data) or np.any(np.diff(offsets) < 0)):
            raise BundleError(f"{path}: the token table's arrays do not fit together; re-export the bundle")
        return cls(data, offsets, special)

    @classmethod
    def from_pieces(cls, pieces: list[bytes], special) -> TokenTable:
        offsets = np.zeros(len(pieces) + 1, np.int64)
        np.cumsum([len(p) for p in pieces], out=offsets[1:])
        return cls(np.frombuffer(b"".join(pieces), np.uint8), offsets, np.asarray(special, bool))

    def arrays(self) -> dict:
        """What `load` reads back, for np.savez."""
        return {"data": np.frombuffer(self._data, np.uint8), "offsets": self._offsets, "special": self.special}

    def __len__(self) -> int:
        return len(self.special)

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for (b"" for special tokens)."""
        if self.special[token]:
            return b""
        return self._data[self._offsets[token] : self._offsets[token + 1]]

    def decode(self, ids) -> str:
        return b"".join(self.piece(int(i)) for i in ids).decode("utf-8", errors="replace")


class TextAssembler:
    """Incremental decoding: pieces in, the text they complete out; an incomplete UTF-8 sequence
    waits for the next piece instead of becoming U+FFFD."""

    def __init__(self, table: TokenTable):
        self.table = table
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token: int) -> str:
        return self._decoder.decode(self.table.piece(token))

    def flush(self) -> str:
        """Whatever is pending at the end (a truncated character becomes U+FFFD)."""
        return self._decoder.decode(b"", final=True)
