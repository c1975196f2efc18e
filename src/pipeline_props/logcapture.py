"""A quiet terminal: the JVM's, the libraries' and logging's output go to a log file.

Spark's JVM inherits the process's file descriptors 1 and 2 when pyspark
starts it, and librdkafka and dbt write to them too, so swapping
``sys.stdout`` is not enough. :class:`OutputCapture` points fds 1 and 2 at a
log file for the duration of a command and hands back streams on the original
terminal for the progress display and the summary. It prints nothing itself.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path
from types import TracebackType
from typing import IO, Self

LOG_NAME = "pipeline-props.log"


class OutputCapture:
    """Redirect fds 1 and 2 to ``path`` (appending) inside a ``with`` block.

    ``terminal(stream)`` returns a stream that still reaches where ``stream``
    went before the redirect: a duplicate of the original descriptor for a real
    stdout/stderr, the stream itself otherwise (pytest's capture, CliRunner).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: dict[int, int] = {}
        self._terminals: dict[int, IO[str]] = {}

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _flush()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for target in (1, 2):
                self._saved[target] = os.dup(target)
                os.dup2(fd, target)
        finally:
            os.close(fd)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.restore()

    def restore(self) -> None:
        """Point fds 1 and 2 back at the terminal (idempotent). Processes started meanwhile keep the file."""
        _flush()
        for stream in self._terminals.values():
            stream.flush()
        for target, saved in self._saved.items():
            os.dup2(saved, target)
            os.close(saved)
        self._saved.clear()
        for stream in self._terminals.values():
            stream.close()
        self._terminals.clear()

    def terminal(self, stream: IO[str]) -> IO[str]:
        """A stream that writes where ``stream`` wrote before the redirect (see the class doc)."""
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
            return stream
        if fd not in self._saved:
            return stream
        if fd not in self._terminals:
            self._terminals[fd] = open(os.dup(self._saved[fd]), "w", buffering=1,  # noqa: SIM115
                                       encoding=getattr(stream, "encoding", None) or "utf-8",
                                       errors="replace", closefd=True)
        return self._terminals[fd]

    def offset(self) -> int:
        """The log's current size: where the next segment starts."""
        _flush()
        try:
            return self.path.stat().st_size
        except OSError:
            return 0


def copy_segment(source: Path, start: int, target: Path) -> Path:
    """Copy ``source`` from byte ``start`` to its end into ``target`` (a later run's own log)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, open(target, "wb") as dst:
        src.seek(start)
        shutil.copyfileobj(src, dst)
    return target


def tail(path: Path, lines: int = 20, max_bytes: int = 64_000) -> list[str]:
    """The last ``lines`` non-empty lines of a text file ([] when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
