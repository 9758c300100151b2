"""A stream on its own thread: push audio from an audio callback, read events from another thread.

    live = voxedge.LiveStream(model.stream())
    # in the audio callback (any thread):  live.push(samples)     never blocks, never allocates
    for event in live.events():          # in the consumer thread
        ...
    live.close()                          # flushes, joins the worker; also on `with` exit

push() only copies into a RingBuffer; a worker thread reads it, runs the engine and queues the
events. If the engine is slower than real time the ring drops the oldest audio, and the count
reaches the events (`dropped_samples`) and `stream.stats`: nothing is lost silently.
"""

from __future__ import annotations

import queue
import threading

import numpy as np

from .audio import SAMPLE_RATE
from .errors import VoxedgeError
from .ringbuffer import RingBuffer

_DONE = object()


class LiveStream:
    def __init__(self, stream, sample_rate: int = SAMPLE_RATE, buffer_seconds: float = 30.0, read_ms: int = 80):
        """`sample_rate` is that of the pushed audio (the stream resamples); pushed blocks must be 1-D float32."""
        self.stream = stream
        self.sample_rate = sample_rate
        self.ring = RingBuffer(int(buffer_seconds * sample_rate))
        self._read = sample_rate * read_ms // 1000
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = threading.Event()
        self._worker = threading.Thread(target=self._work, name="voxedge-live", daemon=True)
        self._worker.start()

    def push(self, samples: np.ndarray) -> None:
        """Called by the producer (an audio callback): 1-D float32 samples at `sample_rate`."""
        if self._closing.is_set():
            raise VoxedgeError("this live stream is closed: audio pushed now would never be transcribed")
        self.ring.write(samples)

    def _work(self) -> None:
        try:
            while not (self._closing.is_set() and self.ring.available == 0):
                if self.ring.wait(self._read, timeout=0.05) or self._closing.is_set():
                    block = self.ring.read()
                    if block.samples.size or block.dropped:
                        for event in self.stream.feed(block, self.sample_rate):
                            self._events.put(event)
            for event in self.stream.close():
                self._events.put(event)
        except BaseException as exc:  # handed to the consumer, who sees it in events()
            self._events.put(exc)
        finally:
            self._events.put(_DONE)

    def events(self, timeout: float | None = None):
        """Yield events as the worker produces them, until the stream is closed and flushed."""
        while True:
            item = self._events.get(timeout=timeout)
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
