"""The benchmarks' common way out: figures printed as JSON, and written to a file when asked."""

from __future__ import annotations

import json
from pathlib import Path


def emit(figures: dict, out: Path | None) -> int:
    """Print `figures` as indented JSON, also into `out` when given; returns the exit status (0)."""
    text = json.dumps(figures, indent=1)
    print(text)
    if out:
        out.write_text(text + "\n")
    return 0
