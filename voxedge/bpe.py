"""Text -> token ids on the device (for keyterms), from tables stored in the bundle (docs/keyterms.md).

Both families encode the same way: a regular expression (the pre-tokenizer) cuts the text into
pieces, and the UTF-8 bytes of each piece start as single-byte tokens that are merged pairwise,
always the lowest-ranked adjacent pair first (leftmost on ties), until no pair merges. They differ
in what ranks a pair, which the manifest's `text_encoder.algorithm` names:

- "merges" (Whisper; Hugging Face tokenizers' BPE): only the pairs of the merge list merge, ranked
  by their line in it (stored as a [n, 2] array of token ids).
- "ranks" (Voxtral's Tekken; tiktoken): any two tokens whose bytes together are a token merge,
  ranked by that token's id; a piece that is a token as a whole is that token without merging.

Decoding stays in tokenizer.py. The patterns use Unicode classes (\\p{L}, \\p{N}), hence `regex`.
"""

from __future__ import annotations

import numpy as np
import regex

from .errors import BundleError, UnsupportedError
from .tokenizer import TokenTable

MANIFEST_KEY = "text_encoder"
ALGORITHMS = ("merges", "ranks")


class BytePairEncoder:
    def __init__(self, table: TokenTable, pattern: str, merges: np.ndarray | None = None):
        """`merges`: the [n, 2] merge list in rank order ("merges"), or None ("ranks")."""
        self._pattern = regex.compile(pattern)
        self._ids: dict[bytes, int] = {}
        for token in range(len(table)):
            if not table.special[token]:
                self._ids.setdefault(table.piece(token), token)
        self._byte_ids = [self._ids[bytes([b])] for b in range(256)]  # KeyError: caught by from_bundle
        self._pieces = {token: piece for piece, token in self._ids.items()}
        self._merges = None if merges is None else {
            (int(left), int(right)): (rank, self._ids[self._pieces[int(left)] + self._pieces[int(right)]])
            for rank, (left, right) in enumerate(merges)
        }

    @classmethod
    def from_bundle(cls, bundle, table: TokenTable) -> BytePairEncoder:
        spec = bundle.model_section.get(MANIFEST_KEY)
        if spec is None:
            raise UnsupportedError(
                f"{bundle.root}: this bundle has no tables for turning text into tokens (keyterms need them); "
                "it was exported by an older voxedge: re-export it with `python -m export`")
        try:
            algorithm, pattern = spec["algorithm"], spec["pattern"]
            if algorithm not in ALGORITHMS:
                raise BundleError(f"{bundle.root}: unknown text encoder {algorithm!r} (this voxedge knows "
                                  f"{', '.join(ALGORITHMS)}); upgrade voxedge or re-export the bundle")
            merges = bundle.array(spec["merges"]) if algorithm == "merges" else None
            if merges is not None and (merges.ndim != 2 or merges.shape[1] != 2 or merges.dtype.kind not in "iu"):
                raise BundleError(f"{bundle.root}: {spec['merges']} is not a [n, 2] table of token ids; re-export it")
            return cls(table, pattern, merges)
        except (KeyError, IndexError, regex.error) as exc:
            raise BundleError(f"{bundle.root}: the manifest's {MANIFEST_KEY} entry is incomplete or "
                              f"inconsistent with tokenizer.npz ({exc!r}); re-export the bundle") from None

    def encode(self, text: str) -> list[int]:
        # as tiktoken: a lone surrogate (which UTF-8 cannot hold) becomes U+FFFD
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        ids: list[int] = []
        for match in self._pattern.finditer(text):
            ids += self._encode_piece(match.group().encode("utf-8"))
        return ids

    def _encode_piece(self, data: bytes) -> list[int]:
        if self._merges is None and data in self._ids:
            return [self._ids[data]]
        parts = [self._byte_ids[b] for b in data]
        while len(parts) > 1:
            best = None  # (rank, position, merged token)
            for i in range(len(parts) - 1):
                found = self._pair(parts[i], parts[i + 1])
                if found is not None and (best is None or found[0] < best[0]):
                    best = (found[0], i, found[1])
            if best is None:
                break
            _, i, merged = best
            parts[i : i + 2] = [merged]
        return parts

    def _pair(self, left: int, right: int) -> tuple[int, int] | None:
        """(rank, merged token) of two adjacent tokens, or None when they do not merge."""
        if self._merges is not None:
            return self._merges.get((left, right))
        merged = self._ids.get(self._pieces[left] + self._pieces[right])
        return None if merged is None else (merged, merged)
