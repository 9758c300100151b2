"""Opening a bundle: a directory with manifest.json, ONNX graphs and small tables (docs/bundle.md).

Before anything is loaded the manifest is checked: known format version, every file inside the
bundle (no "..", no absolute paths, no symlinks leading out), every file present with its recorded
size and sha256. Only then does an engine open a graph, and only through `Bundle.path`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BundleError

FORMAT = "voxedge-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BUNDLE_ENV = "VOXEDGE_BUNDLE"


def sha256_file(path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: dict

    @property
    def family(self) -> str:
        return self.manifest["family"]

    @property
    def config(self) -> dict:
        """The family-specific model description (dimensions, windows, delays, special tokens)."""
        return self.manifest["model"]

    def path(self, name: str) -> Path:
        """Absolute path of a file the manifest lists; anything else is refused."""
        if name not in self.manifest["files"]:
            raise BundleError(f"{self.root}: the manifest lists no file {name!r}")
        return self.root / name

    def graph_path(self, graph: str) -> Path:
        try:
            return self.path(self.manifest["graphs"][graph]["file"])
        except KeyError:
            raise BundleError(f"{self.root}: this {self.family} bundle has no {graph!r} graph") from None

    def array(self, name: str) -> np.ndarray:
        """A table stored as .npy (never pickled objects)."""
        return np.load(self.path(name), allow_pickle=False)

    def json(self, name: str):
        with open(self.path(name), encoding="utf-8") as f:
            return json.load(f)

    def size_bytes(self) -> int:
        return sum(entry["bytes"] for entry in self.manifest["files"].values())


def resolve(bundle) -> Path:
    """The bundle directory to use: the argument, else $VOXEDGE_BUNDLE (model names: voxedge/catalog.py)."""
    if bundle is None:
        bundle = os.environ.get(BUNDLE_ENV)
        if not bundle:
            raise BundleError(
                f"no bundle given: pass a model name or a bundle directory (e.g. --bundle whisper-tiny.en; "
                f"`voxedge models` lists the names) or set {BUNDLE_ENV}"
            )
    return Path(bundle)


def open_bundle(bundle=None, verify: bool = True) -> Bundle:
    """Read and check a bundle. `verify=False` skips the sha256 pass (sizes are still checked)."""
    root = resolve(bundle)
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise BundleError(f"{root}: not a directory; a bundle is a directory made by `voxedge export` (or a model name: `voxedge models`)")
    if not manifest_path.is_file():
        raise BundleError(f"{root}: no {MANIFEST}; this is not a voxedge bundle (build one with `voxedge export`)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc}); re-export the bundle") from None
    _check_format(root, manifest)
    real_root = root.resolve()
    for name, entry in manifest["files"].items():
        _check_file(root, real_root, name, entry, verify)
    return Bundle(root, manifest)


def _check_format(root: Path, manifest) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{root}: {MANIFEST} is not a voxedge bundle manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{root}: bundle format version {version!r}, but this voxedge reads version {FORMAT_VERSION}; "
            "re-export the bundle with this version's `voxedge export` (`voxedge models prepare NAME --force` for a model "
            "name), or install the matching voxedge"
        )
    for key in ("family", "files", "graphs", "model"):
        if key not in manifest:
            raise BundleError(f"{root}: {MANIFEST} has no {key!r} entry; the bundle is incomplete")


def _check_file(root: Path, real_root: Path, name: str, entry: dict, verify: bool) -> None:
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise BundleError(f"{root}: the manifest names {name!r}, a path outside the bundle; refusing to load it")
    path = root / relative
    if path.is_symlink() or not path.resolve().is_relative_to(real_root):
        raise BundleError(f"{root}: {name} is a link or leads outside the bundle; refusing to load it")
    if not path.is_file():
        raise BundleError(f"{root}: {name} is missing; the bundle is incomplete, re-export or re-copy it")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise BundleError(
            f"{root}: {name} has {size} bytes, the manifest says {entry['bytes']}: truncated or modified; re-export it"
        )
    if verify and sha256_file(path) != entry["sha256"]:
        raise BundleError(f"{root}: {name} does not match its sha256 in the manifest: the file was modified")
