"""This machine's memory read bandwidth: what bounds a decoder step of a large model from below."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def read_bandwidth(gigabytes: float = 1.0, repeats: int = 5, threads: int | None = None) -> float:
    """Median GB/s of reading a buffer much larger than any cache, with one thread per core (numpy
    releases the GIL in reductions, so the threads read in parallel)."""
    threads = threads or os.cpu_count() or 1
    data = np.ones(int(gigabytes * 1e9) // 4, np.float32)  # written once, so every page is resident
    parts = np.array_split(data, threads)
    times = []
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(np.max, parts))  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            list(pool.map(np.max, parts))
            times.append(time.perf_counter() - start)
    return data.nbytes / float(np.median(times)) / 1e9
