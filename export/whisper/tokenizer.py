"""Whisper's byte-level BPE (tokenizer.json) -> the runtime's byte table, special ids, decoding rules."""

from __future__ import annotations

import json
from pathlib import Path

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
