"""The local services shared across processes: the start lock, the users' leases, the hand-over.

Starting is serialized across processes by a file lock in ``<home>/locks``, so
two pytest-xdist workers (or a test and ``services up``) never both start Kafka:
the second reuses what the first started. Every manager using the local
services holds a lease (a shared lock on ``<home>/locks/services.users``) until
its ``cleanup``; a manager that started services and finds another lease still
held does not stop them but hands them over (``handed_over`` in the state
file), and the last user out stops them. So no process stops a service another
one still uses (an xdist worker, another test session, a CLI run), and nothing
started by a session is left unrecorded.
"""

from __future__ import annotations

import os
import weakref
from contextlib import AbstractContextManager
from pathlib import Path

from pipeline_props.infra.locks import (
    file_lock,
    hold_shared,
    lock_dir,
    nobody_else_holds,
)
from pipeline_props.infra.state import load_state, write_state

#: The local services a manager may start and stop (Spark is per process, not among them).
SERVICES = frozenset({"kafka", "postgres", "fakesnow"})


def start_lock_file(home: Path) -> Path:
    """The file whose exclusive lock serializes starting the local services of ``home``."""
    return lock_dir(home) / "services.start"


def start_lock(home: Path, startup_timeout_s: float) -> AbstractContextManager[None]:
    """The lock that serializes starting the local services of this home across processes.

    The holder may start Kafka, Postgres and the emulator one after the other,
    each bounded by the startup timeout: wait a little longer than that.
    """
    return file_lock(start_lock_file(home), what="infrastructure", timeout=3 * startup_timeout_s + 30)


def users_file(home: Path) -> Path:
    """The file each user of the services of ``home`` holds a lease (a shared lock) on."""
    return lock_dir(home) / "services.users"


def take_lease(owner: object, home: Path) -> weakref.finalize:
    """A lease on the services of ``home`` for ``owner``; calling the result lets go of it.

    It is let go as well when ``owner`` is garbage-collected, so a forgotten
    manager holds no lease. Take it under the start lock: nobody is deciding to
    stop the services meanwhile.
    """
    fd = hold_shared(users_file(home), timeout=30, what="infrastructure")
    return weakref.finalize(owner, os.close, fd)


def stop_or_hand_over(home: Path, started: set[str], *, stop_all: bool) -> set[str]:
    """The local services a user leaving them must stop; what it started and may not stop is handed over.

    Call it under the start lock, the caller's lease let go: no one takes a
    lease (starts using them) while we decide. ``stop_all`` (``services down``)
    stops every one; otherwise, when nobody else holds a lease, the last user out
    stops what it started and whatever was handed over.
    """
    if stop_all:
        return set(SERVICES)
    if nobody_else_holds(users_file(home)):
        return started & SERVICES | set(handed_over(home))
    if started & SERVICES:
        hand_over(home, started & SERVICES)
    return set()


def handed_over(home: Path) -> list[str]:
    """The local services waiting for their last user to stop them."""
    return list(load_state(home).get("handed_over", []))


def hand_over(home: Path, names: set[str]) -> None:
    """Record ``names`` for the last user of the services to stop."""
    state = load_state(home)
    if state:
        state["handed_over"] = sorted(set(state.get("handed_over", [])) | names)
        write_state(home, state)
