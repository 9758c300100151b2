"""Opening a bundle: a directory with manifest.json, ONNX graphs and small tables (docs/bundle.md).

Before anything is loaded the manifest is checked: its shape (every entry of the right type), a known
format version, every file inside the bundle (no "..", no absolute paths, no links leading out), every
file present with its recorded size and sha256. Only then does an engine open a graph, and only through
`Bundle.path`. The family's `model` section is parsed by voxedge/config.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BundleError

FORMAT = "voxedge-bundle"
FORMAT_VERSION = 2  # 2: the manifest carries a checksum of itself; every file in the directory is listed
MANIFEST = "manifest.json"
BUNDLE_ENV = "VOXEDGE_BUNDLE"
MAX_MANIFEST_BYTES = 16 << 20  # a manifest is a few kB; anything near this is not one
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_file(path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def manifest_checksum(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON, its own `checksum` entry left out."""
    body = {key: value for key, value in manifest.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: dict
    graphs: dict  # graph file name -> its bytes, as hashed (read once: what was checked is what is loaded)

    @property
    def family(self) -> str:
        return self.manifest["family"]

    @property
    def model_section(self) -> dict:
        """The family-specific model description, parsed by voxedge/config.py."""
        return self.manifest["model"]

    def path(self, name: str) -> Path:
        """Absolute path of a file the manifest lists; anything else is refused."""
        if name not in self.manifest["files"]:
            raise BundleError(f"{self.root}: the manifest lists no file {name!r}")
        return self.root / name

    def graph_path(self, graph: str) -> Path:
        entry = self.manifest["graphs"].get(graph)
        if entry is None:
            raise BundleError(f"{self.root}: this {self.family} bundle has no {graph!r} graph")
        return self.path(entry["file"])

    def graph_bytes(self, graph: str) -> bytes:
        """The graph's .onnx file as it was checked (its weights stay in external data files)."""
        path = self.graph_path(graph)
        return self.graphs[path.name] if path.name in self.graphs else path.read_bytes()

    def array(self, name: str, shape: tuple | None = None, mapped: bool = False) -> np.ndarray:
        """A table stored as .npy (never pickled objects), optionally checked against `shape` (None: any).
        `mapped`: memory-mapped read-only (large tables of which a call reads a part)."""
        try:
            array = np.load(self.path(name), allow_pickle=False, mmap_mode="r" if mapped else None)
        except (ValueError, OSError) as exc:
            raise BundleError(f"{self.root}: {name} is not a readable .npy table ({exc}); re-export the bundle") from None
        if shape is not None and (array.ndim != len(shape) or any(s not in (None, a) for s, a in zip(shape, array.shape))):
            raise BundleError(f"{self.root}: {name} has shape {array.shape}, expected {shape}; re-export the bundle")
        return array

    def json(self, name: str):
        try:
            with open(self.path(name), encoding="utf-8") as f:
                return json.load(f)
        except (ValueError, RecursionError) as exc:
            raise BundleError(f"{self.root}: {name} is not valid JSON ({exc}); re-export the bundle") from None

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
    if not isinstance(bundle, (str, os.PathLike)) or "\x00" in os.fspath(bundle):
        raise BundleError(f"a bundle is a directory path, got {bundle!r:.80}")
    return Path(bundle)


def open_bundle(bundle=None, verify: bool = True) -> Bundle:
    """Read and check a bundle. `verify=False` skips the sha256 pass (sizes are still checked)."""
    root = resolve(bundle)
    try:
        manifest = _read_manifest(root)
        check_manifest(root, manifest)
        _check_listing(root, manifest)
        real_root = root.resolve()
        graph_files = {entry["file"] for entry in manifest["graphs"].values()}
        graphs = {name: _check_file(root, real_root, name, entry, verify, keep=name in graph_files)
                  for name, entry in manifest["files"].items()}
    except PermissionError as exc:
        raise BundleError(f"{root}: permission denied reading {exc.filename or 'the bundle'}") from None
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EIO...: the path or the disk, not the bundle's contents
        raise BundleError(f"{root}: cannot read the bundle ({exc.strerror or exc})") from None
    return Bundle(root, manifest, {name: data for name, data in graphs.items() if data is not None})


def _read_manifest(root: Path) -> dict:
    if not root.is_dir():
        raise BundleError(f"{root}: not a directory; a bundle is a directory made by `voxedge export` "
                          "(or a model name: `voxedge models`)")
    path = root / MANIFEST
    if not path.is_file():
        raise BundleError(f"{root}: no {MANIFEST}; this is not a voxedge bundle (build one with `voxedge export`)")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path}: {path.stat().st_size} bytes is far too large for a manifest; re-export the bundle")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BundleError(f"{path}: not valid JSON ({str(exc)[:120]}); re-export the bundle") from None


def check_manifest(root: Path, manifest) -> None:
    """The manifest's shape: types of every top-level entry, file entries and graph entries."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{root}: {MANIFEST} is not a voxedge bundle manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{root}: bundle format version {version!r:.40}, but this voxedge reads version {FORMAT_VERSION}; "
            "re-export the bundle with this version's `voxedge export` (`voxedge models prepare NAME --force` for a "
            "model name), or install the matching voxedge"
        )
    if manifest.get("checksum") != manifest_checksum(manifest):
        raise BundleError(f"{root}: {MANIFEST} does not match its checksum: it was edited or damaged; re-export "
                          "the bundle")
    for key, kind in (("family", str), ("files", dict), ("graphs", dict), ("model", dict)):
        if key not in manifest:
            raise BundleError(f"{root}: {MANIFEST} has no {key!r} entry; the bundle is incomplete")
        if not isinstance(manifest[key], kind):
            raise BundleError(f"{root}: {MANIFEST} entry {key!r} must be a {kind.__name__}; re-export the bundle")
    for name, entry in manifest["files"].items():
        if not (isinstance(entry, dict) and _is_size(entry.get("bytes"))
                and isinstance(entry.get("sha256"), str) and _SHA256.fullmatch(entry["sha256"])):
            raise BundleError(f"{root}: the manifest entry for file {name!r:.80} needs 'bytes' (a size) and "
                              "'sha256' (64 hex digits); re-export the bundle")
    for graph, entry in manifest["graphs"].items():
        if not (isinstance(entry, dict) and isinstance(entry.get("file"), str) and entry["file"] in manifest["files"]):
            raise BundleError(f"{root}: graph {graph!r:.80} must name one of the bundle's files; re-export the bundle")


def _is_size(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 50


def _check_listing(root: Path, manifest: dict) -> None:
    """Every file in the bundle's directory is listed (and so checked): a graph can then load external
    data only from a checked file (onnxruntime refuses external data outside the graph's directory)."""
    listed = set(manifest["files"]) | {MANIFEST}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if (path.is_file() or path.is_symlink()) and name not in listed:
            raise BundleError(f"{root}: {name} is not listed in the manifest; a bundle holds only the files its "
                              "manifest lists (remove it, or re-export the bundle)")


def _check_file(root: Path, real_root: Path, name: str, entry: dict, verify: bool, keep: bool) -> bytes | None:
    """Check one listed file; returns its bytes when `keep` (a graph, read once) and `verify`."""
    relative = Path(name)
    if "\x00" in name or relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise BundleError(f"{root}: the manifest names {name!r:.80}, a path outside the bundle; refusing to load it")
    path = root / relative
    if path.is_symlink() or not path.resolve().is_relative_to(real_root):
        raise BundleError(f"{root}: {name} is a link or leads outside the bundle; refusing to load it")
    if not path.is_file():
        raise BundleError(f"{root}: {name} is missing or not a regular file; the bundle is incomplete, "
                          "re-export or re-copy it")
    info = path.stat()
    if info.st_nlink > 1:
        raise BundleError(f"{root}: {name} has {info.st_nlink} hard links: a bundle's files must be its own "
                          "(copy the bundle instead of linking its files)")
    size = info.st_size
    if size != entry["bytes"]:
        raise BundleError(
            f"{root}: {name} has {size} bytes where the manifest records {entry['bytes']}: the file was truncated "
            "or modified; re-export it"
        )
    if not verify:
        return None
    if keep:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
    else:
        data, digest = None, sha256_file(path)
    if digest != entry["sha256"]:
        raise BundleError(f"{root}: {name} does not match its sha256 in the manifest: the file was modified")
    return data
