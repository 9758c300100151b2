"""A fixed-capacity float32 ring between an audio callback (producer) and the engine (consumer).

The producer never waits and never allocates: `write` copies into preallocated storage and then
publishes two counters. It never touches the consumer's state, so no lock is needed:

- `_claimed` is raised *before* slots are overwritten, `_written` *after* the copy is complete;
- the consumer copies what it wants, then re-reads `_claimed`: any sample whose slot may have been
  reused meanwhile (position < claimed - capacity) is discarded and counted as dropped.

All positions are absolute sample indices since the buffer was created, so they double as the clock
for timestamps even across drops.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from .errors import AudioError, BufferOverflowError, OptionError, VoxedgeError

OVERFLOW_POLICIES = ("drop_oldest", "raise")


@dataclass(frozen=True)
class Block:
    """Samples read from the ring: they start at absolute index `start`; `dropped` samples were lost just before."""

    start: int
    samples: np.ndarray
    dropped: int


class RingBuffer:
    """Single-producer single-consumer ring of float32 samples."""

    def __init__(self, capacity: int, overflow: str = "drop_oldest"):
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity <= 0:
            raise OptionError(f"capacity must be a positive whole number of samples, got {capacity!r}")
        if overflow not in OVERFLOW_POLICIES:
            raise OptionError(f"overflow must be one of {OVERFLOW_POLICIES}, got {overflow!r}")
        self.capacity = capacity
        self.overflow = overflow
        self._data = np.zeros(capacity, np.float32)
        self._claimed = 0  # producer: slots up to here are being or have been written
        self._written = 0  # producer: samples up to here are complete and readable
        self._read = 0  # consumer: next absolute index it will read
        self._dropped = 0  # consumer: samples it had to skip because they were overwritten
        self._writing = threading.Lock()  # held during write: a second producer at the same time is an error

    # -- producer ---------------------------------------------------------------------------------

    def write(self, samples: np.ndarray) -> None:
        """Append 1-D float32 samples. Never blocks; on overflow drops the oldest or raises (policy)."""
        if not isinstance(samples, np.ndarray) or samples.dtype != np.float32 or samples.ndim != 1:
            raise AudioError("RingBuffer.write takes a 1-D float32 numpy array (convert with voxedge.audio)")
        if not self._writing.acquire(blocking=False):
            raise VoxedgeError("two threads wrote to this ring buffer at once: it takes one producer (its counters "
                               "are not safe to share); give each producer its own ring or stream")
        try:
            self._write(samples)
        finally:
            self._writing.release()

    def _write(self, samples: np.ndarray) -> None:
        n = samples.shape[0]
        start = self._written
        if self.overflow == "raise" and start + n - self._read > self.capacity:
            raise BufferOverflowError(
                f"ring buffer full: {start - self._read} samples unread, {n} more would exceed the capacity of "
                f"{self.capacity}; read faster, enlarge the buffer or use overflow='drop_oldest'"
            )
        kept = samples[-self.capacity :] if n > self.capacity else samples
        self._claimed = start + n
        self._copy_in(kept, (start + n - kept.shape[0]) % self.capacity)
        self._written = start + n

    def _copy_in(self, samples: np.ndarray, slot: int) -> None:
        first = min(samples.shape[0], self.capacity - slot)
        self._data[slot : slot + first] = samples[:first]
        self._data[: samples.shape[0] - first] = samples[first:]

    # -- consumer ---------------------------------------------------------------------------------

    def read(self, max_samples: int | None = None) -> Block:
        """Take up to `max_samples` (default: all) of the oldest unread samples."""
        written = self._written
        start = max(self._read, self._claimed - self.capacity)
        end = written if max_samples is None else min(written, start + max_samples)
        out = self._copy_out(start, max(end - start, 0))
        valid_from = max(start, self._claimed - self.capacity)  # the producer may have lapped us meanwhile
        out = out[valid_from - start :]
        dropped = valid_from - self._read
        self._dropped += dropped
        self._read = valid_from + out.shape[0]
        return Block(valid_from, out, dropped)

    def _copy_out(self, start: int, n: int) -> np.ndarray:
        slot = start % self.capacity
        first = min(n, self.capacity - slot)
        return np.concatenate([self._data[slot : slot + first], self._data[: n - first]])

    def wait(self, n_samples: int, timeout: float | None = None, poll: float = 0.005) -> bool:
        """Consumer side: sleep until `n_samples` are readable (True) or `timeout` seconds pass (False).

        Polling keeps the producer free of any lock or condition variable.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.available < n_samples:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    # -- counters ---------------------------------------------------------------------------------

    @property
    def written(self) -> int:
        """Samples accepted by `write` since creation."""
        return self._written

    @property
    def delivered(self) -> int:
        """Samples handed to the consumer."""
        return self._read - self._dropped

    @property
    def dropped(self) -> int:
        """Samples lost to overflow: skipped by the consumer plus those overwritten and not yet skipped."""
        return self._dropped + max(0, self._claimed - self.capacity - self._read)

    @property
    def available(self) -> int:
        """Samples readable now."""
        return max(0, self._written - max(self._read, self._claimed - self.capacity))
