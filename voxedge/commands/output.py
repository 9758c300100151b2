"""Where command output goes: stdout (as it is decided) or files written atomically, and a progress
line on stderr. Failures to write (a full disk, a closed pipe) become one-line errors."""

from __future__ import annotations

import glob
import os
import sys
import tempfile
import time
from pathlib import Path

from ..errors import VoxedgeError


class OutputError(VoxedgeError):
    """The result could not be written: the command stops (a full disk fails every file after it)."""


class AtomicFile:
    """A file that appears whole or not at all: written to a temporary file beside it, renamed at the
    end. On any failure the previous file (if any) is left as it was."""

    SUFFIX = ".part"

    def __init__(self, path: Path):
        self.path = Path(path)
        self._tmp = None

    @classmethod
    def temporaries(cls, path: Path) -> list[Path]:
        """The temporary files of writes to `path` that have not ended (left by a killed process)."""
        path = Path(path)
        return list(path.parent.glob(f".{glob.escape(path.name)}.*{cls.SUFFIX}"))

    def __enter__(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=self.SUFFIX, dir=self.path.parent)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._tmp = Path(tmp)
        self._file = os.fdopen(handle, "w", encoding="utf-8")
        return self

    def write(self, text: str) -> None:
        try:
            self._file.write(text)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def __exit__(self, kind, exc, tb):
        try:
            self._file.close()
            if kind is None:
                os.replace(self._tmp, self.path)
        except OSError as error:
            raise OutputError(f"cannot write {self.path}: {error.strerror or error}") from None
        finally:
            self._tmp.unlink(missing_ok=True)


class _Stdout:
    """stdout, flushed after every write so results appear as they are decided."""

    def __enter__(self):
        return self

    def write(self, text: str) -> None:
        if not text:
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            raise  # the reader is gone (e.g. `| head`): cli.main ends quietly
        except OSError as exc:
            raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None

    def __exit__(self, *exc):
        return False


def stdout() -> _Stdout:
    return _Stdout()


class Progress:
    """`voxedge: NAME 12:30 / 1:02:00 (20%)` redrawn on stderr, only on a terminal and only for files
    long enough to wait for."""

    MIN_SECONDS = 60.0

    def __init__(self, name: str, duration: float):
        self.name, self.duration = name, duration
        self.shown = sys.stderr.isatty() and duration >= self.MIN_SECONDS
        self._last = 0.0

    def update(self, seconds: float) -> None:
        now = time.monotonic()
        if self.shown and now - self._last > 0.2:
            self._last = now
            share = min(1.0, seconds / self.duration)
            print(f"\r\033[Kvoxedge: {self.name} {clock(seconds)} / {clock(self.duration)} ({share:.0%})",
                  end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.shown:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
