"""`voxedge transcribe ... --output-dir DIR --workers N|auto`: many files on every core of this machine.

Files whose outputs are complete are skipped (jobs.py says what complete means); the others are handed
out longest first to N worker processes (pool.py), each with its own model and a share of the
threads, while this process only hands out files and reports. Each output is written atomically when
its file is done. A file that fails is reported and skipped. On a terminal a progress line counts files and
audio; a summary ends every run. Ctrl-C or SIGTERM stops the workers in mid-file and leaves no partial
output: running the same command again goes on where it stopped.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from .jobs import Job, Outcome, plan


def parse_workers(text: str):
    """argparse type of --workers: a whole number from 1, or "auto"."""
    import argparse

    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1, or auto; got {text!r}")
    return value


def run(args, sources: list, targets: dict, failed: int, inputs: int) -> int:
    """Transcribe the opened `sources` [(name, AudioSource)] into `targets` {name: output path}; `failed`
    inputs (of `inputs`) were already reported. Returns the exit status."""
    todo, complete = plan([Job(name, source.name, Path(targets[name]), source.duration) for name, source in sources])
    report = Report(todo, len(complete), failed, inputs)
    if todo:
        from .pool import handling

        with handling(signal.SIGTERM, _terminate):
            try:
                _transcribe(args, todo, report)
            except (KeyboardInterrupt, Terminated) as exc:
                report.close(interrupted=True)
                return 143 if isinstance(exc, Terminated) else 130
            except BaseException:  # a one-line error follows (cli.py): the progress line goes first
                report.clear()
                raise
    report.close()
    return 1 if report.failed else 0


def _transcribe(args, todo: list[Job], report: Report) -> None:
    from ..bundle import open_bundle
    from ..catalog import locate
    from ..commands.common import model_kwargs
    from ..options import RuntimeOptions
    from ..runtime import CPU, plan

    bundle = open_bundle(locate(args.bundle))  # checked once here; the workers skip hashing it again
    workers, threads = worker_split(args, bundle, len(todo))
    runtime = RuntimeOptions(args.providers, threads, strict=args.strict)  # bad options fail here, not in every worker
    providers = (*(choice.name for choice in plan(runtime)), CPU)  # unavailable ones are warned about once, here
    report.start(workers, threads)
    from .pool import WorkerPool, WorkerSettings

    settings = WorkerSettings(str(bundle.root), providers, threads, args.format,
                              model_kwargs(args) | {"vad_filter": args.vad}, runtime.provider_options, args.strict)
    with WorkerPool(settings, workers) as pool:
        for outcome in pool.run(todo):
            report.add(outcome)


def worker_split(args, bundle, files: int) -> tuple[int, int]:
    """(workers, threads per worker): --workers N shares --threads (default: the cores) among N; auto
    asks tuning.py. Never more workers than files, nor than fit in memory."""
    import warnings

    from .tuning import choose, fitting, worker_bytes

    if args.workers == "auto":
        workers, threads = choose(bundle, args.threads)
        total = workers * threads
    else:
        workers, total, fit = args.workers, args.threads or os.cpu_count() or 1, max(1, fitting(bundle))
        if workers > fit:
            need = workers * worker_bytes(bundle.size_bytes()) / 2**30
            warnings.warn(f"{workers} workers would need about {need:.1f} GB of memory; {fit} fit in what is "
                          f"available now: starting {fit}", stacklevel=2)
            workers = fit
    workers = min(workers, files)
    return workers, max(1, total // workers)


class Terminated(BaseException):
    """SIGTERM arrived: stop as for Ctrl-C (a BaseException, like KeyboardInterrupt: nothing may catch it
    as a failure of the file being transcribed)."""


def _terminate(signum, frame):
    raise Terminated()


class Report:
    """Failures as they happen, a progress line over files and audio (on a terminal), the summary."""

    def __init__(self, todo: list[Job], skipped: int, failed: int, inputs: int):
        self.files, self.audio = len(todo), sum(job.duration for job in todo)
        self.skipped, self.failed, self.inputs = skipped, failed, inputs
        self.done = self.done_audio = 0
        self.split = ""
        self.started = time.monotonic()
        self.shown = sys.stderr.isatty()

    def start(self, workers: int, threads: int) -> None:
        self.split = f"{workers} worker{'s' * (workers > 1)} x {threads} thread{'s' * (threads > 1)}"
        self.started = time.monotonic()
        self._draw()

    def add(self, outcome: Outcome) -> None:
        if outcome.error:
            self.failed += 1
            self.clear()
            print(f"voxedge: error: {outcome.error}", file=sys.stderr, flush=True)
        else:
            self.done += 1
            self.done_audio += outcome.job.duration
        self._draw()

    def close(self, interrupted: bool = False) -> None:
        from ..commands.output import clock

        self.clear()
        elapsed = time.monotonic() - self.started
        audio = f"{clock(self.done_audio)} of audio"
        if interrupted:
            line = (f"interrupted: {self.done} of {self.files} files done ({audio}) in {clock(elapsed)}; run the "
                    "same command again to go on")
        else:
            line = f"{self.done} file{'s' * (self.done != 1)} transcribed ({audio})"
            if self.done:
                rtf = elapsed / self.done_audio if self.done_audio else 0.0
                line += (f" in {clock(elapsed)} with {self.split}: real-time factor {rtf:.3f} "
                         f"({1 / rtf if rtf else 0:.0f}x real time)")
        if self.skipped:
            line += f"; {self.skipped} already done, skipped"
        if self.failed:
            line += f"; {self.failed} of {self.inputs} inputs failed"
        print(f"voxedge: {line}", file=sys.stderr, flush=True)

    def _draw(self) -> None:
        from ..commands.output import clock

        if self.shown and self.split:
            share = self.done_audio / self.audio if self.audio else 1.0
            failed = f", {self.failed} failed" if self.failed else ""
            print(f"\r\033[Kvoxedge: {self.done}/{self.files} files, {clock(self.done_audio)} / {clock(self.audio)} "
                  f"of audio ({share:.0%}){failed}, {self.split}", end="", file=sys.stderr, flush=True)

    def clear(self) -> None:
        if self.shown and self.split:
            print("\r\033[K", end="", file=sys.stderr, flush=True)

