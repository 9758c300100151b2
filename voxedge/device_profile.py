"""What this machine measured about a bundle, kept between runs: the cost of a Voxtral decoder call over
1, 2, 4 and 8 positions (`voxedge bench --device --bundle B`), from which sessions choose how many
drafted steps a call verifies (voxedge/engines/draft_policy.py).

One JSON file in the cache ($VOXEDGE_HOME/device-profile.json), keyed by the machine (CPU model, cores,
memory) and the bundle (its manifest's checksum): figures from another machine or bundle are never used.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

FILE = "device-profile.json"


def path() -> Path:
    from .catalog import home

    return home() / FILE


def decoder_costs(bundle) -> dict[int, float] | None:
    """Positions per call -> cost relative to one position, as measured here for `bundle`; None if never."""
    entry = _read().get(_key(bundle))
    if not entry:
        return None
    return {int(k): float(v) for k, v in entry["decoder_call_cost"].items()}


def save_decoder_costs(bundle, costs: dict[int, float]) -> Path:
    profile = _read()
    profile[_key(bundle)] = {"bundle": str(bundle.root), "quantization": bundle.manifest.get("quantization"),
                             "decoder_call_cost": {str(k): round(v, 4) for k, v in costs.items()}}
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps(profile, indent=1) + "\n")
    partial.replace(target)  # atomic: a reader sees the old file or the new one
    return target


def _key(bundle) -> str:
    from .bench.device import machine

    here = machine()
    return f"{here['cpu']} | {here['cores']} cores | {here['ram_gb']} GB | bundle {bundle.manifest.get('checksum')}"


def _read() -> dict:
    try:
        profile = json.loads(path().read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        warnings.warn(f"voxedge: ignoring the unreadable device profile {path()} ({exc}); "
                      "`voxedge bench --device --bundle B` measures it again", stacklevel=3)
        return {}
    return profile if isinstance(profile, dict) else {}
