"""KV caches that stay bounded on endless streams, and a session runner that binds them (docs/hardware.md).

Storage: each layer has one key and one value buffer [1, kv_heads, capacity, head_dim]. Keys are stored
already rotated at their absolute positions, so which slot holds which position does not matter to
attention, only which slots a query may see.

How a graph's KV reaches the buffers depends on the graph and the execution provider:

- GroupQueryAttention graphs (the default bundles) read `past_*` and write `present_*` = past with the
  new positions appended at the current length.
  * on the CPU provider, past and present are bound to the same buffer: onnxruntime appends in place
    and nothing is copied per step (`shared`);
  * on CUDA the same, with the buffers in GPU memory (`device`): GroupQueryAttention's shared-buffer
    mode is made for it, and no step copies KV between host and device (a compaction, once every
    `slack` positions, round-trips through the host);
  * on any other provider, that aliasing is undefined (QNN returned the right logits and left garbage
    in the cache), so two buffer sets take turns: past from one, present into the other (`alternate`).
  When the buffers are full, the last `window - 1` positions (all any future query can see) move to the
  front: memory stays bounded.
- Fixed-shape graphs for NPUs (`--target npu`) read the whole buffer plus an `attention_mask` that says
  which slots each new query may see, and return only the new positions' K/V (`new_*`), which the
  runtime writes into the buffer used as a ring: position k lives in slot k mod capacity (`ring`).
  With capacity >= window - 1 this is exactly the model's sliding window, for ever; a smaller capacity
  shortens the window (the graph's capacity is chosen at export). A call with more positions than the
  graph takes is run as consecutive calls of the graph's size.
"""

from __future__ import annotations

import json
import time

import numpy as np

from ..errors import BundleError

STATIC_STEP_KEY = "voxedge.static_step"  # metadata of fixed-shape graphs (export/layers.py StaticKV writes it)


def kv_names(layers: int, kind: str) -> list[str]:
    """The graph's KV inputs ("past"), outputs ("present") or new entries ("new"), layer by layer."""
    return [f"{kind}_{t}.{i}" for i in range(layers) for t in ("key", "value")]


class SlidingKVCache:
    def __init__(self, layers: int, kv_heads: int, head_dim: int, window: int, max_step: int, dtype=np.float32,
                 initial: int = 256, slack: int = 64):
        """`max_step` is the most positions one call adds. Capacity is capped at window - 1 plus
        max(max_step, slack): when full, the buffers compact, at most once every `slack` positions."""
        self.layers, self.shape = layers, (1, kv_heads, 0, head_dim)
        self.window = window
        self.keep = window - 1  # the oldest key any future query can attend to is window - 1 back
        self.max_capacity = self.keep + max(max_step, slack)
        self.dtype = dtype
        self.length = 0  # positions in the buffers (ring: positions written since the last reset)
        self.compactions = 0
        self.version = 0  # bumped on reallocation: runners rebind their buffers
        self.ring = False
        self.buffers: list[np.ndarray] = []
        self.spare: list[np.ndarray] | None = None  # the second set, for the `alternate` binding
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
        if self.spare is not None:
            self.spare = [np.zeros(shape, self.dtype) for _ in range(2 * self.layers)]
        self.capacity = capacity
        self.version += 1

    def use_spare(self) -> None:
        """Keep a second buffer set, for graphs whose past and present must not share memory."""
        if self.spare is None:
            self.spare = [np.zeros_like(b) for b in self.buffers]
            self.version += 1

    def swap(self) -> None:
        self.buffers, self.spare = self.spare, self.buffers

    def use_ring(self, capacity: int, dtype) -> None:
        """Fixed capacity, position k in slot k mod capacity (fixed-shape graphs)."""
        if not self.ring or self.capacity != capacity or self.dtype != dtype:
            self.ring, self.dtype, self.length = True, dtype, 0
            self.max_capacity = capacity
            self.buffers = []
            self._allocate(capacity)

    def reserve(self, n_new: int) -> None:
        """Make room for `n_new` positions: grow while below the cap, else drop what no query can see."""
        if self.ring or self.length + n_new <= self.capacity:
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
        """Hold what `other` holds (a beam that continues another beam's text): its host buffers
        copied into this cache's (a ring's whole buffer), which are then bound again."""
        if self.capacity < other.length or self.ring:
            self.length = 0
            self._allocate(other.capacity)
        used = other.capacity if other.ring else other.length
        for mine, theirs in zip(self.buffers, other.buffers):
            mine[:, :, :used] = theirs[:, :, :used]
        self.length = other.length
        self.version += 1

    def ring_mask(self, n_new: int) -> np.ndarray:
        """[1, 1, n_new, capacity + n_new]: 1 where new query i (position length + i) may see a slot (the
        position it holds is among the window - 1 before it) or new key j <= i, else 0."""
        capacity, first = self.capacity, self.length
        slots = np.arange(capacity)
        # the newest position written to each slot, or -1
        held = slots + capacity * ((first - 1 - slots) // capacity)
        held = np.where(slots < first, held, -1)
        queries = first + np.arange(n_new)
        distance = queries[:, None] - held[None, :]
        past = (held[None, :] >= 0) & (distance < self.window)
        new = np.arange(n_new)[None, :] <= np.arange(n_new)[:, None]
        return np.concatenate([past, new], axis=1)[None, None]

    def write_ring(self, new: list[np.ndarray]) -> None:
        """Store the new positions' K/V (one [1, kv_heads, n, head_dim] per buffer) in their slots."""
        n = new[0].shape[2]
        slots = (self.length + np.arange(n)) % self.capacity
        for buf, values in zip(self.buffers, new):
            buf[:, :, slots] = values
        self.length += n

    def positions(self) -> np.ndarray:
        """What a future query can still see, oldest first: the last min(length, window - 1) positions,
        stacked [2 x layers, kv_heads, n, head_dim] (the form `restore` takes)."""
        if self.ring:
            n = min(self.length, self.capacity)
            slots = (self.length - n + np.arange(n)) % self.capacity
            return np.stack([buf[0][:, slots] for buf in self.buffers])
        n = min(self.length, self.keep)
        return np.stack([buf[0, :, self.length - n : self.length] for buf in self.buffers])

    def restore(self, kv: np.ndarray, end: int) -> None:
        """Hold `kv` (as `positions` returns it) as positions end - n .. end - 1, as if they had just
        been computed; whatever the buffers held before is forgotten."""
        n = kv.shape[2]
        if self.ring:
            n = min(n, self.capacity)
            self.length = end - n
            self.write_ring([values[None] for values in kv[:, :, kv.shape[2] - n :]])
            return
        self.length = 0
        if n > self.capacity:
            self._allocate(min(self.max_capacity, max(n, 2 * self.capacity)))
        for buf, values in zip(self.buffers, kv):
            buf[0, :, :n] = values
        self.length = n

    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.buffers) + sum(b.nbytes for b in self.spare or [])


class CachedGraph:
    """One onnxruntime session whose KV tensors live in a SlidingKVCache (module docstring)."""

    def __init__(self, session, cache: SlidingKVCache, outputs: list[str], binding: str | None = None):
        import onnxruntime

        self._ort = onnxruntime
        self.session = session
        self.cache = cache
        self.outputs = outputs
        self.binding = binding or binding_for(session)
        self._io = session.io_binding()
        self._bound_version = None
        self._values: list = []
        self._spare_values: list = []
        self.seconds = 0.0  # wall time spent inside onnxruntime, for the benchmarks' glue share
        kind = "new" if self.binding == "ring" else "present"
        missing = sorted(set(kv_names(cache.layers, kind)) - {o.name for o in session.get_outputs()})
        if missing:
            raise BundleError(f"a graph lacks the KV outputs {', '.join(missing[:2])}, ... that its {self.binding} KV "
                              "binding needs: it comes from another export; re-export the bundle")
        if self.binding == "ring":
            self._static = _StaticStep(session)
            cache.use_ring(self._static.capacity, self._static.dtype)
        elif self.binding == "alternate":
            cache.use_spare()

    def run(self, feeds: dict, n_new: int) -> list[np.ndarray]:
        """Run with `n_new` new positions; the positions' KV are appended to the cache."""
        if self.binding == "ring":
            return self._static.run(self, feeds, n_new)
        cache = self.cache
        if self.binding == "device" and cache.length + n_new > cache.capacity and self._values:
            self.pull()  # growth and compaction work on the host copy
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
        past, present = self._values, self._spare_values if self.binding == "alternate" else self._values
        for i in range(cache.layers):
            for j, kind in enumerate(("key", "value")):
                io.bind_ortvalue_input(f"past_{kind}.{i}", past[2 * i + j])
                io.bind_ortvalue_output(f"present_{kind}.{i}", present[2 * i + j])
        self._timed(io)
        cache.length += n_new
        if self.binding == "alternate":
            cache.swap()
            self._values, self._spare_values = self._spare_values, self._values
        return [v.numpy() for v in io.get_outputs()[: len(self.outputs)]]

    def snapshot(self) -> np.ndarray:
        """The cache's visible positions (SlidingKVCache.positions), e.g. to start later runs from."""
        if self.binding == "device" and self._values:
            self._pull()
        return self.cache.positions()

    def restore(self, kv: np.ndarray, end: int) -> None:
        """Start from a snapshot: positions end - n .. end - 1 (SlidingKVCache.restore)."""
        self.cache.restore(kv, end)
        if self.binding == "device":  # the host buffers are the truth now: upload them at the next run
            self._values, self._bound_version = [], None

    def _bind_cache(self) -> None:
        wrap = self._ort.OrtValue.ortvalue_from_numpy
        where = ("cuda", self._device_id()) if self.binding == "device" else ()
        self._values = [wrap(b, *where) for b in self.cache.buffers]
        self._spare_values = [wrap(b) for b in self.cache.spare or []]
        self._bound_version = self.cache.version

    def _device_id(self) -> int:
        return int(self.session.get_provider_options().get("CUDAExecutionProvider", {}).get("device_id", 0))

    def pull(self) -> None:
        """Copy the device buffers to the host ones (then rebind: the next run uploads them again).
        Only the `device` binding keeps KV off the host."""
        if self.binding != "device" or not self._values:
            return
        for buf, value in zip(self.cache.buffers, self._values):
            buf[...] = value.numpy()
        self._bound_version = None

    def _timed(self, io) -> None:
        start = time.perf_counter()
        self.session.run_with_iobinding(io)
        self.seconds += time.perf_counter() - start


def binding_for(session) -> str:
    """How this session's KV is bound: `ring` for fixed-shape graphs, `shared` when only the CPU
    provider runs it, `device` with CUDA, `alternate` otherwise (module docstring)."""
    providers = session.get_providers()
    if STATIC_STEP_KEY in session.get_modelmeta().custom_metadata_map:
        return "ring"
    if providers == ["CPUExecutionProvider"]:
        return "shared"
    return "device" if "CUDAExecutionProvider" in providers else "alternate"


class _StaticStep:
    """Runs a fixed-shape graph: `positions` new positions per call, a ring of `capacity` slots.

    The graph's metadata (STATIC_STEP_KEY) names the inputs cut along their position axis for calls longer than
    one graph step ({"mel": 2, "position_ids": 1, ...}: input -> axis) and the state outputs fed back
    into the next step ({"conv1_state_out": "conv1_state"}); the other outputs come back concatenated
    along axis 1, except the states and logits-like outputs (rank 2), which are the last step's.
    """

    def __init__(self, session):
        spec = json.loads(session.get_modelmeta().custom_metadata_map[STATIC_STEP_KEY])
        inputs = {i.name: i for i in session.get_inputs()}
        self.positions = int(spec["positions"])
        self.sliced = {name: int(axis) for name, axis in spec["sliced"].items()}
        self.carried = dict(spec.get("carried", {}))
        past = inputs["past_key.0"]
        self.capacity = int(past.shape[2])
        self.dtype = np.float16 if "float16" in past.type else np.float32
        self.mask_dtype = np.float16 if "float16" in inputs["attention_mask"].type else np.float32
        self.sizes = {name: int(inputs[name].shape[axis]) for name, axis in self.sliced.items()}
        self.layers = sum(1 for name in inputs if name.startswith("past_key."))
        self.new_names = kv_names(self.layers, "new")

    def run(self, graph: CachedGraph, feeds: dict, n_new: int) -> list[np.ndarray]:
        if n_new % self.positions:
            raise ValueError(f"{n_new} positions do not make whole steps of {self.positions}")
        cache, steps = graph.cache, n_new // self.positions
        names = graph.outputs + [n for n in self.carried if n not in graph.outputs] + self.new_names
        pasts = dict(zip(kv_names(self.layers, "past"), cache.buffers))
        state, collected = {}, []
        for step in range(steps):
            chunk = {name: (_slice(value, self.sliced[name], step, self.sizes[name]) if name in self.sliced else value)
                     for name, value in feeds.items()}
            chunk.update(state)
            chunk["attention_mask"] = cache.ring_mask(self.positions).astype(self.mask_dtype)
            start = time.perf_counter()
            out = dict(zip(names, graph.session.run(names, {**chunk, **pasts})))
            graph.seconds += time.perf_counter() - start
            cache.write_ring([out[n] for n in self.new_names])
            state = {self.carried[n]: out[n] for n in self.carried}
            collected.append([out[n] for n in graph.outputs])
        return [last if steps == 1 or last.ndim == 2 or name in self.carried
                else np.concatenate([c[i] for c in collected], axis=1)
                for i, (name, last) in enumerate(zip(graph.outputs, collected[-1]))]


def _slice(value: np.ndarray, axis: int, step: int, size: int) -> np.ndarray:
    index = [slice(None)] * value.ndim
    index[axis] = slice(step * size, (step + 1) * size)
    return value[tuple(index)]
