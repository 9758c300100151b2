"""Progress of a build: each stage with its duration and memory, and bars over long loops."""

from __future__ import annotations

import contextlib
import sys
import time

try:
    import resource
except ImportError:  # Windows
    resource = None


class Stages:
    """Prints each stage with its duration; `bar` shows a progress bar over a long loop.
    `stream=None` prints nothing (a build that announces itself in one line of its own)."""

    def __init__(self, stream=sys.stderr, prefix: str = "export"):
        self.stream = stream
        self.prefix = prefix
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, label: str):
        self._print(f"{label} ...")
        start = time.perf_counter()
        yield
        self.timings[label] = time.perf_counter() - start
        self._print(f"{label} done in {self.timings[label]:.1f} s (resident {current_rss_mb():.0f} MB, "
                    f"peak {peak_rss_mb():.0f} MB)")

    def bar(self, items, label: str):
        if self.stream is None:
            return items
        from tqdm import tqdm

        return tqdm(items, desc=f"  {label}", file=self.stream, leave=False)

    def _print(self, line: str) -> None:
        if self.stream is not None:
            print(f"{self.prefix}: {line}", file=self.stream, flush=True)


def peak_rss_mb() -> float:
    if resource is None:
        return float("nan")
    scale = 2**20 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:  # Linux; elsewhere the peak figure still works
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return float("nan")
