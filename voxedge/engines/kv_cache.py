"""Sliding-window KV caches that onnxruntime updates in place, and a session runner that binds them.

Each layer has one key and one value buffer [1, kv_heads, capacity, head_dim], bound through IO
binding as both the graph's past input and its present output: GroupQueryAttention writes the new
keys at the current length, and nothing is copied per step. Keys are stored already rotated at
their absolute positions, so when a buffer is full the last `window - 1` entries (all any future
query can see) move to the front and decoding continues: memory stays bounded on endless streams.
"""

from __future__ import annotations

import time

import numpy as np


def kv_names(layers: int, kind: str) -> list[str]:
    """The graph's KV inputs ("past") or outputs ("present"), layer by layer."""
    return [f"{kind}_{t}.{i}" for i in range(layers) for t in ("key", "value")]


class SlidingKVCache:
    def __init__(self, layers: int, kv_heads: int, head_dim: int, window: int, max_step: int, dtype=np.float32,
                 initial: int = 256, slack: int = 64):
        """`max_step` is the most positions one call adds. Capacity is capped at window - 1 plus
        max(max_step, slack): when full, the buffers compact, at most once every `slack` positions."""
        self.layers, self.shape = layers, (1, kv_heads, 0, head_dim)
        self.keep = window - 1  # the oldest key any future query can attend to is window - 1 back
        self.max_capacity = self.keep + max(max_step, slack)
        self.dtype = dtype
        self.length = 0  # positions currently in the buffers
        self.compactions = 0
        self.version = 0  # bumped on reallocation: runners rebind their buffers
        self.buffers: list[np.ndarray] = []
        self._allocate(min(max(initial, max_step), self.max_capacity))

    @classmethod
    def of(cls, attention, max_step: int, dtype=np.float32, initial: int = 256) -> SlidingKVCache:
        """A cache for an attention stack described by voxedge.config.Attention."""
        return cls(attention.layers, attention.kv_heads, attention.head_dim, attention.window, max_step, dtype, initial)

    def _allocate(self, capacity: int) -> None:
        old = self.buffers
        shape = (1, self.shape[1], capacity, self.shape[3])
        self.buffers = [np.zeros(shape, self.dtype) for _ in range(2 * self.layers)]
        for new, prev in zip(self.buffers, old):
            new[:, :, : self.length] = prev[:, :, : self.length]
        self.capacity = capacity
        self.version += 1

    def reserve(self, n_new: int) -> None:
        """Make room for `n_new` positions: grow while below the cap, else drop what no query can see."""
        if self.length + n_new <= self.capacity:
            return
        if self.capacity < self.max_capacity:
            self._allocate(min(self.max_capacity, max(2 * self.capacity, self.length + n_new)))
            if self.length + n_new <= self.capacity:
                return
        if self.length > self.keep:
            for buf in self.buffers:
                buf[:, :, : self.keep] = buf[:, :, self.length - self.keep : self.length]
            self.length = self.keep
            self.compactions += 1

    def copy_from(self, other: SlidingKVCache) -> None:
        """Hold what `other` holds (a beam that continues another beam's text): its positions copied
        into this cache's buffers, which keep their identity unless they are too small."""
        if self.capacity < other.length:
            self.length = 0
            self._allocate(other.capacity)
        for mine, theirs in zip(self.buffers, other.buffers):
            mine[:, :, : other.length] = theirs[:, :, : other.length]
        self.length = other.length

    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.buffers)


class CachedGraph:
    """One onnxruntime session whose past/present KV tensors live in a SlidingKVCache."""

    def __init__(self, session, cache: SlidingKVCache, outputs: list[str]):
        import onnxruntime

        self._ort = onnxruntime
        self.session = session
        self.cache = cache
        self.outputs = outputs
        self._io = session.io_binding()
        self._bound_version = None
        self._values = []
        self.seconds = 0.0  # wall time spent inside onnxruntime, for the benchmarks' glue share

    def _bind_cache(self) -> None:
        self._values = [self._ort.OrtValue.ortvalue_from_numpy(b) for b in self.cache.buffers]
        self._bound_version = self.cache.version

    def run(self, feeds: dict, n_new: int) -> list[np.ndarray]:
        """Run with `n_new` new positions; the positions' KV are appended to the cache."""
        cache = self.cache
        cache.reserve(n_new)
        if self._bound_version != cache.version:
            self._bind_cache()
        io = self._io
        for name, value in feeds.items():
            io.bind_cpu_input(name, value)
        io.bind_cpu_input("seqlens_k", np.array([cache.length + n_new - 1], np.int32))
        io.bind_cpu_input("total_sequence_length", np.array(cache.length + n_new, np.int32))
        io.clear_binding_outputs()
        for name in self.outputs:
            io.bind_output(name)
        for i in range(cache.layers):
            for j, kind in enumerate(("key", "value")):
                value = self._values[2 * i + j]
                io.bind_ortvalue_input(f"past_{kind}.{i}", value)
                io.bind_ortvalue_output(f"present_{kind}.{i}", value)
        start = time.perf_counter()
        self.session.run_with_iobinding(io)
        self.seconds += time.perf_counter() - start
        cache.length += n_new
        return [v.numpy() for v in io.get_outputs()[: len(self.outputs)]]
