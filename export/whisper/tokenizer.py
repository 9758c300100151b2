"""Whisper's byte-level BPE (tokenizer.json) -> the runtime's byte table, special ids, decoding rules,
and what encoding text needs (the pre-tokenizer pattern and the merge list, voxedge/bpe.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from voxedge.tokenizer import TokenTable

from ..checkpoint import ExportError

SPECIALS = {
    "eot": "<|endoftext|>",
    "sot": "<|startoftranscript|>",
    "sot_prev": "<|startofprev|>",
    "sot_lm": "<|startoflm|>",
    "transcribe": "<|transcribe|>",
    "translate": "<|translate|>",
    "no_timestamps": "<|notimestamps|>",
    "timestamp_begin": "<|0.00|>",
}
NO_SPEECH = ("<|nospeech|>", "<|nocaptions|>")  # newer and older spelling
# The pattern of tokenizers' ByteLevel pre-tokenizer (use_regex=true), GPT-2's, which tokenizer.json
# implies rather than states.
BYTE_LEVEL_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-ins for bytes, reversed (the mapping every byte-level BPE uses)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    stand_ins, extra = {}, 0
    for b in range(256):
        if b in printable:
            stand_ins[chr(b)] = b
        else:
            stand_ins[chr(256 + extra)] = b
            extra += 1
    return stand_ins


def read_tokenizer(path, vocab_size: int) -> tuple[TokenTable, dict, dict]:
    """(table, special ids, language -> token id). Every added token (specials, languages,
    timestamps) decodes to nothing."""
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    to_byte = byte_decoder()
    pieces = [b""] * vocab_size
    special = [True] * vocab_size
    for token, index in spec["model"]["vocab"].items():
        pieces[index] = bytes(to_byte[c] for c in token)
        special[index] = False
    added = {entry["content"]: entry["id"] for entry in spec["added_tokens"]}
    for index in added.values():
        pieces[index], special[index] = b"", True
    # CTranslate2's tokenizer.json stops before the timestamp tokens (they are in its vocabulary.txt):
    # they start right after <|notimestamps|>, as openai/whisper's tokenizer defines timestamp_begin.
    if SPECIALS["no_timestamps"] in added:
        added.setdefault(SPECIALS["timestamp_begin"], added[SPECIALS["no_timestamps"]] + 1)
    missing = [name for name in SPECIALS.values() if name not in added]
    if missing:
        raise ExportError(f"{path}: special tokens {missing} are missing; this is not a Whisper tokenizer")
    ids = {key: added[name] for key, name in SPECIALS.items()}
    ids["no_speech"] = next((added[n] for n in NO_SPEECH if n in added), None)
    languages = {name[2:-2]: i for name, i in added.items()
                 if name.startswith("<|") and name.endswith("|>") and 2 <= len(name) - 4 <= 3 and name[2:-2].isalpha()
                 and i < ids["translate"]}
    return TokenTable.from_pieces(pieces, special), ids, languages


def read_encoding(path) -> tuple[str, np.ndarray]:
    """(pre-tokenizer pattern, [n, 2] merge list as token ids in rank order): what voxedge.bpe needs
    to encode text exactly as the tokenizers library does with this file. Anything else in the file
    that would change the ids (a normalizer, a prefix space, dropout, suffixes) is refused."""
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    model, pre = spec["model"], spec.get("pre_tokenizer") or {}
    expected = {
        "normalizer": spec.get("normalizer") is None,
        "pre_tokenizer ByteLevel": pre.get("type") == "ByteLevel" and pre.get("use_regex", True),
        "no prefix space": not pre.get("add_prefix_space", False),
        "BPE model": model.get("type") == "BPE" and model.get("dropout") is None,
        "no word affixes": not model.get("continuing_subword_prefix") and not model.get("end_of_word_suffix"),
        "merges always applied": not model.get("ignore_merges", False),
    }
    unsupported = [name for name, ok in expected.items() if not ok]
    if unsupported:
        raise ExportError(f"{path}: cannot reproduce this tokenizer's encoding (expected: {', '.join(unsupported)})")
    vocab = model["vocab"]
    pairs = [m.split(" ") if isinstance(m, str) else m for m in model["merges"]]
    unknown = [f"{left} {right}" for left, right in pairs if not {left, right, left + right} <= vocab.keys()]
    if unknown:
        raise ExportError(f"{path}: merges name tokens missing from the vocabulary: {unknown[:3]}")
    merges = [(vocab[left], vocab[right]) for left, right in pairs]
    return BYTE_LEVEL_PATTERN, np.asarray(merges, np.int32).reshape(-1, 2)
