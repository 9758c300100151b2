"""Writing a bundle's manifest (docs/bundle.md): every file with its size and sha256."""

from __future__ import annotations

import json
from pathlib import Path

from voxedge import __version__
from voxedge.bundle import FORMAT, FORMAT_VERSION, MANIFEST, manifest_checksum, sha256_file


def write_manifest(out: Path, family: str, source: dict, quantization: str, graphs: dict, model: dict) -> dict:
    """Hash every file in `out` (the manifest itself excepted) and write manifest.json."""
    files = {
        path.relative_to(out).as_posix(): {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": family,
        "exporter": {"name": "voxedge-export", "version": __version__},
        "source": source,
        "quantization": quantization,
        "graphs": graphs,
        "model": model,
        "files": files,
    }
    manifest["checksum"] = manifest_checksum(manifest)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def extend_manifest(out: Path, **model_entries) -> dict:
    """Add entries to the manifest's model section and hash again (after adding e.g. validation.json)."""
    manifest = json.loads((out / MANIFEST).read_text())
    return write_manifest(out, manifest["family"], manifest["source"], manifest["quantization"], manifest["graphs"],
                          manifest["model"] | model_entries)

