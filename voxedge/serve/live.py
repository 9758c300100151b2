"""Many live clients, one model: each client's audio waits in its own bounded ring, and one shared pool
of worker threads runs the model for every client in turn.

Fairness: a session has at most one job queued in the pool at a time, and a job transcribes at most
`JOB_SECONDS` of audio before the session queues again behind the others (the pool's queue is
first-in first-out), so one busy client cannot hold the model while others wait.

Overload: when the clients together send more audio than the machine transcribes, each ring keeps
its newest `max_lag_s` seconds and drops the oldest. The drop reaches the client as an event with the
count (the stream tags the next event with `dropped_samples`), never silently. Before that, every event
says how much of the client's audio still waits in its ring (`backlog`, seconds).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..audio import SAMPLE_RATE, StreamResampler
from ..errors import VoxedgeError
from ..ringbuffer import RingBuffer
from ..stream import with_backlog

JOB_SECONDS = 1.0  # audio per job: one Whisper step, 12 Voxtral steps
log = logging.getLogger("voxedge.serve")


class Scheduler:
    """The worker threads that run the model for every client (the only threads that call it)."""

    def __init__(self, workers: int = 1):
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="voxedge-serve")

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class LiveSession:
    """One client's live stream: `push` audio as it arrives (never blocks), `finish` at its end.

    `emit(events)` is awaited for every batch of `voxedge.Event`s, in order; `fail(exc)` when the
    model refuses the audio or breaks. Both run on the event loop and must not raise (a connection
    handles its own write errors), so a client that reads slowly delays only its own session.
    """

    def __init__(self, transcriber, scheduler: Scheduler, rate: int, *, max_lag_s: float, emit, fail):
        self.transcriber = transcriber
        self.scheduler = scheduler
        self.emit, self.fail = emit, fail
        self.ring = RingBuffer(max(int(max_lag_s * SAMPLE_RATE), 1))
        self._resampler = StreamResampler(rate) if rate != SAMPLE_RATE else None
        self._task: asyncio.Task | None = None
        self.finished = False

    def push(self, samples: np.ndarray) -> None:
        """1-D float32 samples at the client's rate (see `pcm.WireFormat.decode`)."""
        if self.finished:
            raise VoxedgeError("audio after the end of the stream: start a new one")
        if self._resampler is not None:
            samples = self._resampler.process(samples)
        if samples.size:
            self.ring.write(samples)
            self._wake()

    async def finish(self) -> None:
        """The client's audio ended: transcribe what is buffered, then flush what the model holds."""
        if self.finished:
            return
        self.finished = True
        if self._resampler is not None:
            tail = self._resampler.process(np.zeros(0, np.float32), last=True)
            if tail.size:
                self.ring.write(tail)
        self._wake()
        await self._task
        if not self._task.result():
            return
        try:
            events = await self.scheduler.run(self.transcriber.close)
        except Exception as exc:  # noqa: BLE001 - handed to the connection, which reports and closes
            await self.fail(exc)
            return
        await self.emit(events)

    def abort(self) -> None:
        """The client is gone: stop scheduling its audio (a job already running completes unseen)."""
        self.finished = True
        if self._task is not None:
            self._task.cancel()

    def _wake(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> bool:
        """Feed the ring to the model, one job at a time, until it is empty. False if the model failed."""
        while self.ring.available:  # after an overflow too: the ring then holds its newest audio
            try:
                events = await self.scheduler.run(self._feed_job)
            except Exception as exc:  # noqa: BLE001 - handed to the connection, which reports and closes
                self.finished = True
                await self.fail(exc)
                return False
            if events:
                await self.emit(events)
        return True

    def _feed_job(self) -> list:
        """Worker thread: the oldest audio of the ring (and the count of what it dropped) to the model."""
        events = self.transcriber.feed(self.ring.read(int(JOB_SECONDS * SAMPLE_RATE)), SAMPLE_RATE)
        return with_backlog(events, self.ring.available / SAMPLE_RATE)
