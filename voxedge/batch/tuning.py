"""How many workers `--workers auto` starts, and how many threads each gets.

The batch benchmark (`python -m benchmarks batch`) measures every split of the cores between workers
and threads and remembers the fastest for this machine and bundle in `$VOXEDGE_HOME/batch.json`
(a machine is its CPU model, core count and memory, as `voxedge bench --device` identifies it; a
bundle is its manifest checksum), when the machine was quiet enough for the figures to mean something.
Without a measurement the rule is one worker per core with one thread each, as many as fit in memory.
Why (the benchmark's `thread_ceilings`, which other load does not spoil): one Whisper tiny.en process
with two onnxruntime threads does about 60% of its work on its busiest thread (the decoding loop, the
features and numpy between the graphs run on one thread), so it cannot take less wall time than 60%
of its CPU time, where two single-thread workers can take 50%. A model whose graphs dominate (Voxtral's
big matrix products) gains more from threads: measure it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

RECORDS = "batch.json"
PROCESS_BYTES = 400 << 20  # Python, numpy, onnxruntime and a file's buffers: up to 370 MB measured with tiny.en
LOAD_FACTOR = 2.0  # bytes in memory per bundle byte while a model loads (Voxtral int4 peaks at 1.96x)
MEMORY_SHARE = 0.8  # of the memory available now, the rest left to everything else


def choose(bundle, total_threads: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker) for a checked bundle (`voxedge.bundle.Bundle`) and `total_threads`
    (default: one per core): the measured split if there is one for that many threads, else the rule."""
    record, fit = measured(bundle), max(1, fitting(bundle))
    if record and total_threads in (None, record["workers"] * record["threads"]):
        return min(record["workers"], fit), record["threads"]
    cores = total_threads or os.cpu_count() or 1
    workers = min(cores, fit)
    return workers, max(1, cores // workers)


def fitting(bundle) -> int:
    """How many models of this bundle fit in the memory available now."""
    return int(MEMORY_SHARE * available_bytes() // worker_bytes(bundle.size_bytes()))


def worker_bytes(bundle_bytes: int) -> int:
    """Memory one worker needs at its peak (while its model loads)."""
    return int(LOAD_FACTOR * bundle_bytes) + PROCESS_BYTES


def available_bytes() -> int:
    """MemAvailable on Linux, else half the physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError):
        return 4 << 30


def measured(bundle) -> dict | None:
    """The benchmark's record for this machine and bundle, if there is one."""
    key = _key(bundle)
    return next((r for r in _records() if {k: r.get(k) for k in key} == key), None)


def remember(bundle, workers: int, threads: int, figures: dict) -> Path:
    """Store the best split the benchmark measured; returns the file it is kept in."""
    key = _key(bundle)
    records = [r for r in _records() if {k: r.get(k) for k in key} != key]
    records.append({**key, "workers": workers, "threads": threads, "figures": figures})
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(records, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def _key(bundle) -> dict:
    from ..bench.device import machine
    from ..bundle import manifest_checksum

    return {"machine": machine(), "bundle": bundle.manifest.get("checksum") or manifest_checksum(bundle.manifest)}


def _records() -> list:
    try:
        records = json.loads(_path().read_text())
    except (OSError, ValueError):
        return []
    return [r for r in records if isinstance(r, dict) and _valid(r)] if isinstance(records, list) else []


def _valid(record: dict) -> bool:
    return all(isinstance(record.get(k), int) and not isinstance(record.get(k), bool) and record[k] >= 1
               for k in ("workers", "threads"))


def _path() -> Path:
    from ..catalog import home

    return home() / RECORDS
