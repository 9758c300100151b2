"""Silero VAD for bundles: every exporter copies the voice activity detector's ONNX graph into the
bundle, so that `vad=True` / `vad_filter=True` work at run time without torch (voxedge/vad.py runs it).

The graph is Silero VAD v6 (MIT) as faster-whisper ships it: the export that takes a sequence of
512-sample windows and runs the LSTM across them in one call. Taking faster-whisper's own copy makes
voxedge's speech chunks those of `faster_whisper.vad.get_speech_timestamps` on the same audio, and
faster-whisper (pinned in the `export` extra) depends on no torch. The `silero-vad` package declares
torch, and its 6.2 weights differ from the v6 that faster-whisper uses.

A missing faster-whisper does not stop an export: the bundle is written without a VAD (`"vad": null`
in its manifest), the export says so, and asking such a bundle for VAD raises an error saying how to
get one (docs/bundle.md).
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from pathlib import Path

DISTRIBUTION = "faster-whisper"
ASSET = "faster_whisper/assets/silero_vad_v6.onnx"
BUNDLE_FILE = "silero_vad.onnx"


def find_silero_vad() -> tuple[Path, str] | None:
    """The installed Silero VAD graph and the distribution it comes from ("faster-whisper 1.2.1"),
    found through the package metadata without importing faster-whisper."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(ASSET))
    return (path, f"{DISTRIBUTION} {dist.version}") if path.is_file() else None


MISSING = (f"no Silero VAD found ({DISTRIBUTION} is not installed or lacks {ASSET}); the bundle is written "
           "without voice activity detection. `pip install faster-whisper==1.2.1` (part of the export extra) and "
           "export again to include it.")


def copy_vad(out: Path, stream=sys.stderr) -> dict | None:
    """Copy the Silero VAD graph into bundle directory `out` and return the manifest's `model.vad`
    entry; None (after saying so on `stream`, unless it is None) when it cannot be found."""
    found = find_silero_vad()
    if found is None:
        if stream is not None:
            print(f"export: warning: {MISSING}", file=stream, flush=True)
        return None
    path, source = found
    shutil.copyfile(path, out / BUNDLE_FILE)
    return {"file": BUNDLE_FILE, "model": "silero-vad v6", "license": "MIT", "source": f"{source}: {ASSET}",
            "sample_rate": 16000, "window_samples": 512, "context_samples": 64}
