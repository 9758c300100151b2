"""Tekken (tekken.json) -> the runtime's byte table, special token ids and what encoding text needs
(voxedge/bpe.py), without mistral_common."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from voxedge.tokenizer import TokenTable

from ..checkpoint import ExportError

SPECIAL_NAMES = {"bos": "<s>", "eos": "</s>", "streaming_pad": "[STREAMING_PAD]", "streaming_word": "[STREAMING_WORD]"}


def read_tekken(path, vocab_size: int) -> tuple[TokenTable, dict, dict]:
    """(table, special ids, the file's audio section). Ids below the special count decode to nothing;
    id n_special + r is the bytes of vocabulary rank r (docs/voxtral.md)."""
    tekken = json.loads(Path(path).read_text(encoding="utf-8"))
    n_special = tekken["config"]["default_num_special_tokens"]
    if tekken["config"]["default_vocab_size"] != vocab_size:
        raise ExportError(f"{path}: vocabulary of {tekken['config']['default_vocab_size']} tokens, the model has {vocab_size}")
    ranks = [base64.b64decode(entry["token_bytes"]) for entry in tekken["vocab"][: vocab_size - n_special]]
    pieces = [b""] * n_special + ranks + [b""] * (vocab_size - n_special - len(ranks))
    special = [True] * n_special + [False] * (vocab_size - n_special)
    by_name = {entry["token_str"]: entry["rank"] for entry in tekken.get("special_tokens", [])}
    missing = [name for name in SPECIAL_NAMES.values() if name not in by_name]
    if missing:
        raise ExportError(f"{path}: special tokens {missing} are missing; this is not a Voxtral Realtime tokenizer")
    ids = {key: by_name[name] for key, name in SPECIAL_NAMES.items()}
    if "audio" not in tekken:
        raise ExportError(f"{path}: no audio section; this is not a Voxtral Realtime tokenizer")
    return TokenTable.from_pieces(pieces, special), ids, tekken["audio"]


def text_encoder(path) -> dict:
    """The manifest's `text_encoder` entry: tiktoken's rank BPE with the file's pre-tokenizer pattern.
    A token's rank is its id (id = special count + rank), so the byte table is all it needs."""
    tekken = json.loads(Path(path).read_text(encoding="utf-8"))
    return {"algorithm": "ranks", "pattern": tekken["config"]["pattern"]}
