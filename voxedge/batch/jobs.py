"""The work of a batch: which files still need transcribing, in which order, and transcribing one of them
into its output file.

An output is *complete* when it exists and is not older than its input. Outputs are written to a
temporary name and renamed (`AtomicFile`), so a file at the output's name is always a whole result;
the age check redoes an input that changed after its output was written (a recording still growing,
a file replaced), and an input that changes while it is transcribed gets an output dated before the
change, so the next run redoes it too.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Job:
    name: str  # as the user gave it (shown in messages)
    path: str  # the file to read (stdin's copy for "-")
    target: Path  # the output file
    duration: float  # seconds, from the file's header


@dataclass(frozen=True)
class Outcome:
    job: Job
    error: str | None  # None: the output is written
    seconds: float  # time spent on it


def is_complete(job: Job) -> bool:
    try:
        return job.name != "-" and job.target.stat().st_mtime_ns >= os.stat(job.path).st_mtime_ns
    except OSError:
        return False


def plan(jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    """(the jobs to do, longest first; the jobs whose outputs are complete)."""
    todo = [job for job in jobs if not is_complete(job)]
    done = [job for job in jobs if job not in todo]
    return sorted(todo, key=lambda job: -job.duration), done


def transcribe_job(model, job: Job, fmt: str, options: dict) -> Outcome:
    """Transcribe one file into its output, as `voxedge transcribe --output-dir` writes it. A failure the
    input causes becomes the outcome's error; an OutputError (the disk is full) is raised: it fails every
    file after it."""
    from ..audio import open_audio
    from ..commands.output import AtomicFile, OutputError
    from ..errors import VoxedgeError
    from ..writers import write_transcription

    start = time.perf_counter()

    def failed(message: str) -> Outcome:
        named = job.name in message or job.path in message
        return Outcome(job, message if named else f"{job.name}: {message}", time.perf_counter() - start)

    try:
        before = os.stat(job.path).st_mtime_ns
        result = model.transcribe(open_audio(job.path), **options)
        with AtomicFile(job.target) as sink:
            write_transcription(result, fmt, sink)
        if os.stat(job.path).st_mtime_ns != before:  # it changed while it was read: the next run redoes it
            os.utime(job.target, ns=(time.time_ns(), 0))
    except OutputError:
        raise
    except VoxedgeError as exc:
        return failed(str(exc))
    except OSError as exc:
        return failed(exc.strerror or str(exc))
    except MemoryError:
        return failed("out of memory")
    except Exception as exc:  # a defect: reported with the file it happened on, and the batch goes on
        return failed(f"unexpected error ({type(exc).__name__}: {exc}); please report it")
    return Outcome(job, None, time.perf_counter() - start)
