"""A CTranslate2 Whisper model as an in-memory `Checkpoint`: the torch-free way into the Whisper export.

The graph builders see exactly the tensors that export.whisper.ct2 would write to a transformers
checkpoint (same names, float32 on access), and the configuration it would write (architecture from
the tensors, special ids from tokenizer.json, suppression lists and alignment heads from the
CTranslate2 config.json), without safetensors, torch or transformers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checkpoint import Checkpoint, ExportError
from .ct2 import ct2_to_hf_tensors, generation_config, read_ct2_model, special_token_ids, whisper_config


class Ct2Checkpoint(Checkpoint):
    """`model_dir` holds config.json, tokenizer.json and vocabulary.txt, and model.bin unless `model_files`
    lists the parts that concatenate into it. `source` names the model (e.g. openai/whisper-base),
    `weights` where these copies of its weights come from."""

    def __init__(self, model_dir, model_files=None, source: str | None = None, weights: str | None = None):
        self.root = Path(model_dir)
        self.source, self.revision, self.prefix = source or str(model_dir), None, ""
        self.weights = weights
        try:
            variables, ct2_config = read_ct2_model(self.root, model_files)
            token_ids = special_token_ids(self.root / "tokenizer.json")
            self.config = {"model_type": "whisper", **whisper_config(variables, ct2_config, token_ids)}
            self.generation = generation_config(ct2_config, self.config, token_ids)
            vocabulary = (self.root / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
        except (OSError, ValueError, KeyError) as exc:
            raise ExportError(f"{self.root}: not a CTranslate2 Whisper model ({type(exc).__name__}: {exc})") from None
        if len(vocabulary) != self.config["vocab_size"]:
            raise ExportError(f"{self.root}: vocabulary.txt has {len(vocabulary)} tokens, the embeddings "
                              f"{self.config['vocab_size']}: the files do not belong together")
        first_timestamp = token_ids["<|notimestamps|>"] + 1
        if vocabulary[first_timestamp] != "<|0.00|>" or vocabulary[-1] != "<|30.00|>":
            raise ExportError(f"{self.root}: vocabulary.txt does not end with the timestamp tokens <|0.00|> (id "
                              f"{first_timestamp}) .. <|30.00|>, as Whisper's tokenizer requires")
        self._files = ct2_to_hf_tensors(variables)

    def _read(self, full: str) -> np.ndarray:
        return np.ascontiguousarray(self._files[full], dtype=np.float32)  # float16 -> float32 is exact
