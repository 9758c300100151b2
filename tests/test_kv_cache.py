"""The sliding-window KV cache's bookkeeping, without a graph: growth, compaction, the window kept."""

import numpy as np

from voxedge.engines.kv_cache import SlidingKVCache


def fill(cache, n):
    """Write positions as values, the way a graph appends keys; returns what a window query could see."""
    cache.reserve(n)
    for buf in cache.buffers:
        buf[0, 0, cache.length : cache.length + n, 0] = np.arange(cache.total, cache.total + n)
    cache.length += n
    cache.total += n


def test_a_call_larger_than_growth_allows_still_finds_room():
    # window 12 (keep 11), calls of up to 252 positions: capacity 263. A prefill of 252 and then 12
    # more must compact (the bug: growing to the cap returned without making room).
    cache = SlidingKVCache(layers=1, kv_heads=1, head_dim=1, window=12, max_step=252, initial=16)
    cache.total = 0
    fill(cache, 252)
    fill(cache, 12)
    assert cache.capacity == 263 and cache.compactions == 1
    kept = cache.buffers[0][0, 0, : cache.length, 0]
    np.testing.assert_array_equal(kept, np.arange(264 - len(kept), 264))  # the newest positions, in order
    assert len(kept) >= 11 + 12


def test_memory_is_bounded_however_long_it_runs():
    cache = SlidingKVCache(layers=2, kv_heads=1, head_dim=4, window=16, max_step=4, initial=8)
    cache.total = 0
    for _ in range(5000):
        fill(cache, 4)
    assert cache.capacity <= 15 + 64 and cache.length >= 15
    np.testing.assert_array_equal(cache.buffers[1][0, 0, cache.length - 15 : cache.length, 0],
                                  np.arange(20000 - 15, 20000))
