"""Inter-process file locks (``fcntl.flock``) with a bounded wait.

Used where several processes share one set of services: two pytest-xdist
workers (or a test and ``services up``) must not both start Kafka on one port,
and a fault test that kills the shared broker must not run while another
worker's test uses it. A lock is released when its file descriptor is closed,
so a process that dies releases what it held.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline_props.errors import InfrastructureError

#: Per path, in this process: (a reentrant thread lock, how deep the holding thread is).
_held: dict[Path, list] = {}
_held_guard = threading.Lock()


def lock_dir(home: Path | str) -> Path:
    """Where a home's lock files live."""
    return Path(home) / "locks"


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (last exclusive holder: pid {pid})" if pid else ""


@contextmanager
def file_lock(path: Path, *, timeout: float, what: str, shared: bool = False) -> Iterator[None]:
    """Hold ``path`` locked (exclusive, or ``shared``) for the block; wait at most ``timeout`` s.

    Exclusive locks are reentrant within a thread of this process (a start that
    calls another start under the same lock); ``what`` names the service in the
    :class:`InfrastructureError` raised when the wait runs out.
    """
    path = Path(path).resolve()
    deadline = time.monotonic() + timeout
    with _held_guard:
        entry = _held.setdefault(path, [threading.RLock(), 0])
    local: threading.RLock = entry[0]
    if not local.acquire(timeout=max(timeout, 0.0)):
        raise InfrastructureError(what, f"another thread held the lock {path} for {timeout:.0f} s")
    try:
        if entry[1] > 0:  # this thread holds the file lock already
            entry[1] += 1
            try:
                yield
            finally:
                entry[1] -= 1
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            op = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
            delay = 0.02
            while True:
                try:
                    fcntl.flock(fd, op | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise InfrastructureError(
                            what, f"waited {timeout:.0f} s for the lock {path}{_holder(path)}",
                            hint="another process (a pytest-xdist worker, a `services up`) holds it; "
                                 "if none runs, the lock is free again: retry") from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
            if not shared:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            entry[1] = 1
            try:
                yield
            finally:
                entry[1] = 0
        finally:
            os.close(fd)
    finally:
        local.release()


@contextmanager
def readers_writer(directory: Path, name: str, *, exclusive: bool, timeout: float,
                   what: str) -> Iterator[None]:
    """A fair readers-writer lock over processes: many shared holders, or one exclusive.

    A writer first takes the turnstile and keeps it while it waits, so readers
    arriving after it queue behind it instead of starving it.
    """
    deadline = time.monotonic() + timeout
    turnstile = directory / f"{name}.turnstile"
    main = directory / f"{name}.lock"
    if exclusive:
        with (file_lock(turnstile, timeout=timeout, what=what),
              file_lock(main, timeout=max(deadline - time.monotonic(), 0.0), what=what)):
            yield
        return
    with file_lock(turnstile, timeout=timeout, what=what):
        pass
    with file_lock(main, timeout=max(deadline - time.monotonic(), 0.0), what=what, shared=True):
        yield


def hold_shared(path: Path, *, timeout: float, what: str) -> int:
    """Take a shared lock on ``path`` and keep it: returns the descriptor (close it to let go).

    A lease: while any process holds one, :func:`try_exclusive` on the same file fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise InfrastructureError(what, f"waited {timeout:.0f} s for a shared lock on {path}") from None
            time.sleep(0.05)


def nobody_else_holds(path: Path) -> bool:
    """True when no process (this one's other descriptors included) holds a lease on ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
