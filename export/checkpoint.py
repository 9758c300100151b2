"""Reading a Hugging Face checkpoint one tensor at a time (safetensors are memory-mapped)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np


class ExportError(Exception):
    """The export cannot proceed; the message says why and what to do."""


class Checkpoint:
    """A checkpoint directory: config.json plus *.safetensors. Calling it returns a float32 tensor."""

    weights: str | None = None  # where the weights come from, when not from `source` itself

    def __init__(self, root: Path, source: str, revision: str | None = None, prefix: str = ""):
        self.root = Path(root)
        self.source = source
        self.revision = revision
        self.prefix = prefix
        config_path = self.root / "config.json"
        if not config_path.is_file():
            raise ExportError(f"{self.root}: no config.json; this is not a Hugging Face checkpoint directory")
        self.config = json.loads(config_path.read_text())
        self._files = self._index()

    def _index(self) -> dict[str, Path]:
        index = self.root / "model.safetensors.index.json"
        if index.is_file():
            weight_map = json.loads(index.read_text())["weight_map"]
            return {name: self.root / file for name, file in weight_map.items()}
        from safetensors import safe_open

        files = {}
        for path in sorted(self.root.glob("*.safetensors")):
            with safe_open(path, framework="pt") as f:
                files.update({name: path for name in f.keys()})
        if not files:
            raise ExportError(f"{self.root}: no *.safetensors weights found")
        return files

    def scope(self, prefix: str) -> Checkpoint:
        """The same checkpoint with names relative to `prefix` (e.g. "model.audio_tower.")."""
        scoped = copy.copy(self)
        scoped.prefix = self.prefix + prefix
        return scoped

    def names(self) -> list[str]:
        """The tensors' names under this checkpoint's prefix."""
        return [name[len(self.prefix):] for name in self._files if name.startswith(self.prefix)]

    def has(self, name: str) -> bool:
        return self.prefix + name in self._files

    def __call__(self, name: str) -> np.ndarray:
        full = self.prefix + name
        if full not in self._files:
            raise ExportError(f"{self.root}: tensor {full} is missing from the checkpoint")
        return self._read(full)

    def _read(self, full: str) -> np.ndarray:
        from safetensors import safe_open

        with safe_open(self._files[full], framework="pt") as f:
            return f.get_tensor(full).float().numpy()  # bf16 has no numpy dtype: go through torch

    def optional(self, name: str):
        return self(name) if self.has(name) else None

    def file(self, name: str) -> Path:
        path = self.root / name
        if not path.is_file():
            raise ExportError(f"{self.root}: {name} is missing from the checkpoint")
        return path


def open_checkpoint(model: str, revision: str | None = None) -> Checkpoint:
    """A local directory as it is; anything else is a hub id, downloaded where a network allows."""
    path = Path(model)
    if path.is_dir():
        return Checkpoint(path, source=str(model), revision=revision)
    if path.exists() or model.count("/") != 1:
        raise ExportError(f"{model}: neither a checkpoint directory nor a hub id of the form owner/name")
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(model, revision=revision)
    except Exception as exc:  # offline machines fail here; say how to proceed
        raise ExportError(
            f"could not download {model} ({type(exc).__name__}: {exc}). Without network access, download the "
            "checkpoint elsewhere (`huggingface-cli download " + model + " --local-dir DIR`) and pass DIR"
        ) from None
    return Checkpoint(Path(local), source=model, revision=revision)
