"""A stream on its own thread: push audio from an audio callback, read events from another thread.

    live = voxedge.LiveStream(model.stream())
    # in the audio callback (any thread):  live.push(samples)     never blocks, never allocates
    for event in live.events():          # in the consumer thread
        ...
    live.close()                          # flushes, joins the worker; also on `with` exit

push() only copies into a RingBuffer; a worker thread reads it, runs the engine and queues the
events. If the engine is slower than real time the ring drops the oldest audio, and the count
reaches the events (`dropped_samples`) and `stream.stats`: nothing is lost silently. Before that,
every event says how much audio is still waiting (`backlog`, seconds), and a Voxtral stream that has
fallen behind catches up by batching its steps (docs/voxtral.md). A block the
stream refuses (NaN or infinite samples) is dropped and counted the same way, with a warning; any
other failure stops the worker, reaches the consumer through events(), and makes push() raise.
"""

from __future__ import annotations

import queue
import threading
import warnings

import numpy as np

from .audio import RATE_RANGE, SAMPLE_RATE
from .errors import AudioError, OptionError, VoxedgeError
from .ringbuffer import Block, RingBuffer
from .stream import with_backlog

_DONE = object()


class LiveStream:
    def __init__(self, stream, sample_rate: int = SAMPLE_RATE, buffer_seconds: float = 30.0, read_ms: int = 80):
        """`sample_rate` is that of the pushed audio (the stream resamples); pushed blocks must be 1-D float32."""
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not RATE_RANGE[0] <= sample_rate <= RATE_RANGE[1]:
            raise OptionError(f"sample_rate must be a whole number of Hz from {RATE_RANGE[0]} to {RATE_RANGE[1]}, "
                              f"got {sample_rate!r}")
        if not isinstance(buffer_seconds, (int, float)) or not 0.1 <= buffer_seconds <= 3600:
            raise OptionError(f"buffer_seconds must be from 0.1 to 3600, got {buffer_seconds!r}")
        if isinstance(read_ms, bool) or not isinstance(read_ms, int) or not 10 <= read_ms <= 10_000:
            raise OptionError(f"read_ms must be a whole number from 10 to 10000, got {read_ms!r}")
        self.stream = stream
        self.sample_rate = sample_rate
        self.ring = RingBuffer(int(buffer_seconds * sample_rate))
        self._read = sample_rate * read_ms // 1000
        self._failure: BaseException | None = None
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = threading.Event()
        self._worker = threading.Thread(target=self._work, name="voxedge-live", daemon=True)
        self._worker.start()

    def push(self, samples: np.ndarray) -> None:
        """Called by the producer (an audio callback): 1-D float32 samples at `sample_rate`."""
        if self._closing.is_set():
            raise VoxedgeError("this live stream is closed: audio pushed now would never be transcribed")
        if self._failure is not None:
            raise VoxedgeError(f"this live stream stopped on an error ({self._failure!r:.200}): audio pushed now would "
                               "never be transcribed; start a new one")
        self.ring.write(samples)

    def _work(self) -> None:
        try:
            while not (self._closing.is_set() and self.ring.available == 0):
                if self.ring.wait(self._read, timeout=0.05) or self._closing.is_set():
                    block = self.ring.read()
                    if block.samples.size or block.dropped:
                        self._feed(block)
            for event in self.stream.close():
                self._events.put(event)
        except BaseException as exc:  # handed to the consumer, who sees it in events()
            self._failure = exc
            self._events.put(exc)
        finally:
            self._events.put(_DONE)

    def _feed(self, block: Block) -> None:
        try:
            events = self.stream.feed(block, self.sample_rate)
        except AudioError as exc:  # bad samples: the block is dropped and counted, the stream goes on
            warnings.warn(f"a block of {block.samples.size} samples was dropped: {exc}", stacklevel=2)
            events = self.stream.feed(Block(block.start, block.samples[:0], block.dropped + block.samples.size),
                                      self.sample_rate)
        for event in with_backlog(events, self.ring.available / self.sample_rate):
            self._events.put(event)

    def events(self, timeout: float | None = None):
        """Yield events as the worker produces them, until the stream is closed and flushed; with a
        `timeout`, also return when no event came for that many seconds (call again to go on)."""
        while True:
            try:
                item = self._events.get(timeout=timeout)
            except queue.Empty:
                return
            if item is _DONE:
                self._events.put(_DONE)  # later calls end at once too
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop accepting audio, let the worker transcribe what is buffered and flush the stream."""
        self._closing.set()
        self._worker.join(timeout)

    @property
    def running(self) -> bool:
        return self._worker.is_alive()

    def __enter__(self) -> LiveStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
