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


def test_positions_restored_into_a_fresh_cache_are_what_the_window_still_sees():
    # a snapshot (positions) restored into a fresh cache, as a plain buffer or as a ring, then written on:
    # every later query must see the same window - 1 positions as the cache that computed them
    for ring in (False, True):
        source = SlidingKVCache(layers=1, kv_heads=1, head_dim=1, window=6, max_step=8, initial=8)
        source.total = 0
        fill(source, 13)
        snapshot = source.positions()
        np.testing.assert_array_equal(snapshot[0, 0, :, 0], np.arange(8, 13))  # the last window - 1, oldest first
        cache = SlidingKVCache(layers=1, kv_heads=1, head_dim=1, window=6, max_step=8, initial=8)
        if ring:
            cache.use_ring(5, np.float32)
        cache.restore(snapshot, end=13)
        np.testing.assert_array_equal(cache.positions(), snapshot)
        if ring:
            assert cache.length == 13  # the ring's slots stay those of the absolute positions
            cache.write_ring([np.full((1, 1, 2, 1), 13.0) + np.arange(2)[None, None, :, None]] * 2)
        else:
            cache.total = 13
            fill(cache, 2)
        np.testing.assert_array_equal(cache.positions()[0, 0, :, 0], np.arange(10, 15))
