"""`voxedge.load`: open a bundle and hand it to the engine its manifest names."""

from __future__ import annotations

import importlib

from .bundle import open_bundle
from .catalog import locate
from .errors import BundleError
from .options import RuntimeOptions

# family -> "module:class"; engines are imported only when a bundle of their family is loaded
ENGINES = {
    "voxtral_realtime": "voxedge.engines.voxtral_realtime:VoxtralRealtimeModel",
    "whisper": "voxedge.engines.whisper:WhisperModel",
}


def load(bundle=None, *, providers=("cpu",), threads: int | None = None, verify: bool = True,
         provider_options=None, strict: bool = False):
    """Load a bundle directory or a model name (voxedge/catalog.py; default: $VOXEDGE_BUNDLE) and return its model.

    `providers` lists onnxruntime execution providers in priority order ("cuda", "coreml", "qnn",
    "openvino", "directml" or full names), with their options as `provider_options` ({"qnn":
    {"soc_model": "60"}}) or in the command line's spelling ("qnn:soc_model=60,cpu"); unavailable ones
    fall back to CPU with a warning, or fail with `strict` (RuntimeOptions, docs/hardware.md).
    `verify=False` skips hashing the files (their sizes are still checked).
    """
    runtime = RuntimeOptions(providers if isinstance(providers, str) else tuple(providers), threads,
                             provider_options or (), strict)
    opened = open_bundle(locate(bundle), verify=verify)
    target = ENGINES.get(opened.family)
    if target is None:
        raise BundleError(
            f"{opened.root}: model family {opened.family!r:.40} is not supported by this voxedge "
            f"(supported: {', '.join(ENGINES)})"
        )
    module, cls = target.split(":")
    engine = getattr(importlib.import_module(module), cls)
    return engine(opened, runtime)
