"""N worker processes, each with its own model, transcribing files handed out one at a time in the
order given (the caller puts the longest first, so that no long file starts last).

Built on multiprocessing (spawn) rather than concurrent.futures: when a worker process dies (the
kernel's out-of-memory killer, a crash in native code) this pool knows which file it was on, reports
that file and starts a new worker, where a ProcessPoolExecutor fails every pending file
(BrokenProcessPool) and, before Python 3.14, has no public way to stop its workers in mid-file.

Stopping (Ctrl-C, SIGTERM, an error) sends SIGTERM to the workers, whose handler removes the temporary
file of the output being written and exits at once, so no partial output is ever left. The handler
never raises: an exception raised from a signal handler while a native extension is running (soxr's
resampler calls back into Python) aborts the process instead of unwinding it. Workers ignore SIGINT: a
Ctrl-C reaches the whole process group, and the parent, which only waits for messages, decides.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing import connection, get_context

from ..errors import VoxedgeError
from .jobs import Job, Outcome

STOP_GRACE_S = 10.0  # a worker unwinds within one onnxruntime call; after this it is killed


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker is started with (pickled into the spawned process)."""

    bundle: str  # a bundle directory the parent has checked
    providers: tuple[str, ...]
    threads: int  # onnxruntime threads of this worker's model
    fmt: str  # txt, srt, vtt or json
    options: dict = field(default_factory=dict)  # transcribe() fields
    provider_options: tuple = ()  # RuntimeOptions.provider_options
    strict: bool = False


class WorkerPool:
    """`with WorkerPool(settings, n) as pool: for outcome in pool.run(jobs): ...` yields each file's
    Outcome as it finishes; leaving the block stops the workers."""

    def __init__(self, settings: WorkerSettings, workers: int):
        self.settings, self.size = settings, workers
        self._workers: list[_Worker] = []
        self._context = get_context("spawn")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def run(self, jobs: list[Job]):
        pending = deque(jobs)
        self._workers = [self._start() for _ in range(min(self.size, len(pending)))]
        while self._workers:
            waiting = {w.conn: w for w in self._workers} | {w.process.sentinel: w for w in self._workers}
            for worker in dict.fromkeys(waiting[ready] for ready in connection.wait(list(waiting))):
                message = worker.receive()
                if message is None:
                    yield from self._replace_dead(worker, pending)
                elif message[0] == "fatal":
                    raise VoxedgeError(message[1])
                else:  # ("ready",) or ("done", outcome): its next file first, so that it never waits for us
                    worker.loaded = True
                    self._hand_out(worker, pending)
                    if message[0] == "done":
                        yield message[1]

    def _hand_out(self, worker, pending) -> None:
        if not pending:
            worker.finish()
            self._workers.remove(worker)
        elif worker.give(pending[0]):  # else it died after its last file: its sentinel says so next
            pending.popleft()

    def _replace_dead(self, worker, pending):
        self._workers.remove(worker)
        worker.process.join()
        how = _exit_description(worker.process.exitcode)
        if not worker.loaded:
            raise VoxedgeError(f"a worker process died while loading the model ({how})")
        if worker.job is not None:
            _remove_temporaries(worker.job)
            yield Outcome(worker.job, f"{worker.job.name}: the worker process transcribing it died ({how}); "
                          "the other files go on", time.monotonic() - worker.since)
        if pending:
            self._workers.append(self._start())

    def _start(self) -> _Worker:
        return _Worker(self._context, self.settings)

    def stop(self) -> None:
        """SIGTERM to every worker still running, then SIGKILL to any not gone after STOP_GRACE_S."""
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker.process.is_alive():
                worker.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
                if worker.job is not None:
                    _remove_temporaries(worker.job)
            worker.conn.close()


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, context, settings: WorkerSettings):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, settings), daemon=True, name="voxedge-worker")
        with handling(signal.SIGINT, signal.SIG_IGN):  # inherited: a Ctrl-C never interrupts a worker
            self.process.start()
        child.close()
        self.job, self.since, self.loaded = None, time.monotonic(), False

    def receive(self):
        """The worker's next message, or None when it is gone."""
        try:
            return self.conn.recv() if self.conn.poll() else None
        except (EOFError, OSError):
            return None

    def give(self, job: Job) -> bool:
        """Send it the job; False if it is gone."""
        try:
            self.conn.send(job)
        except OSError:
            self.job = None
            return False
        self.job, self.since = job, time.monotonic()
        return True

    def finish(self) -> None:
        self.job = None
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join()
        self.conn.close()


def _serve(conn, settings: WorkerSettings) -> None:
    """The worker process: load the model, then transcribe jobs until told to stop. If the parent is gone
    (killed), the file in hand is finished (its output appears whole) and the worker exits."""
    current = {}  # "job": the job being transcribed, whose temporary output a SIGTERM removes
    signal.signal(signal.SIGTERM, lambda signum, frame: _exit_now(current.get("job"), signum))
    with contextlib.suppress(EOFError, BrokenPipeError, ConnectionResetError):  # the parent is gone
        _work(conn, settings, current)


def _work(conn, settings: WorkerSettings, current: dict) -> None:
    from ..commands.output import OutputError
    from ..model import load
    from .jobs import transcribe_job

    try:
        model = load(settings.bundle, providers=settings.providers, threads=settings.threads, verify=False,
                     provider_options=settings.provider_options, strict=settings.strict)
    except VoxedgeError as exc:
        conn.send(("fatal", str(exc)))
        return
    conn.send(("ready",))
    while (job := conn.recv()) is not None:
        current["job"] = job
        try:
            outcome = transcribe_job(model, job, settings.fmt, settings.options)
        except OutputError as exc:  # a full disk fails every file after this one: the batch stops
            conn.send(("fatal", str(exc)))
            return
        current.clear()
        conn.send(("done", outcome))


def _exit_now(job: Job | None, signum: int) -> None:
    """SIGTERM: the output being written is removed (a finished one is already renamed into place), then exit."""
    if job is not None:
        _remove_temporaries(job)
    os._exit(128 + signum)


@contextlib.contextmanager
def handling(signum: int, handler):
    """`handler` for signal `signum` inside the block, the previous one after it (outside the main thread,
    where signals are not ours to change, nothing)."""
    try:
        previous = signal.signal(signum, handler)
    except ValueError:
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signum, previous)


def _remove_temporaries(job: Job) -> None:
    from ..commands.output import AtomicFile

    for path in AtomicFile.temporaries(job.target):
        path.unlink(missing_ok=True)


def _exit_description(code: int | None) -> str:
    if code is None or code >= 0:
        return f"exit status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"killed by {name}" + (", out of memory?" if name == "SIGKILL" else "")
