"""pytest-xdist support: per-worker names, who stops the services, which tests may overlap.

``pytest -n 2`` runs two worker processes against one set of services:

* every fixed name a test uses (a warehouse schema, a DuckDB file) goes through
  :func:`per_worker`, which appends ``_gw0``, ``_gw1``... under xdist and
  nothing without it, so two workers never truncate each other's tables;
* the first worker that needs Kafka and Postgres starts them (under the start
  lock of :mod:`pipeline_props.infra.locks`); the other reuses them. The
  controller holds a lease on them for the whole run, so a worker that started
  them hands them over at its end, and the controller's end stops them;
* a test that signals the shared services (marked ``faults``) runs alone: it
  holds the services' readers-writer lock exclusively, every other test that
  uses the services holds it shared;
* the cluster tests (which kill brokers and workers, and whose Spark
  application takes both executors) run on one worker at a time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_props.errors import UsageError

if TYPE_CHECKING:
    import pytest

#: How long a worker waits for the other's exclusive test (a fault test) or package (the cluster's).
LOCK_WAIT_ENV = "PIPELINE_PROPS_XDIST_LOCK_WAIT_S"
DEFAULT_LOCK_WAIT_S = 3600.0


def worker_id() -> str:
    """The xdist worker's id (``gw0``, ``gw1``...), or ``""`` outside xdist (and in the controller)."""
    wid = os.environ.get("PYTEST_XDIST_WORKER", "")
    if wid and not re.fullmatch(r"[a-z0-9]{1,16}", wid):
        raise UsageError(f"PYTEST_XDIST_WORKER={wid!r}: expected a short id such as gw0")
    return wid


def worker_suffix() -> str:
    """``_gw0`` under worker gw0, ``""`` without xdist."""
    wid = worker_id()
    return f"_{wid}" if wid else ""


def per_worker(name: str) -> str:
    """``name`` made private to this xdist worker (unchanged without xdist)."""
    return f"{name}{worker_suffix()}"


def lock_wait_s() -> float:
    """The bound on waiting for another worker's exclusive test or cluster package."""
    raw = os.environ.get(LOCK_WAIT_ENV, "")
    try:
        return float(raw) if raw else DEFAULT_LOCK_WAIT_S
    except ValueError:
        raise UsageError(f"{LOCK_WAIT_ENV}={raw!r} is not a number of seconds") from None


def is_controller(config: pytest.Config) -> bool:
    """True in the process that distributes tests to xdist workers (``-n N`` with N >= 1)."""
    return (config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput")
            and (config.getoption("dist", "no") or "no") != "no"
            and bool(config.getoption("numprocesses", 0)))


@contextmanager
def controller_lease(home: Path | str) -> Iterator[None]:
    """In the controller, for the whole run: a lease on the local services.

    Services a worker starts are then still in use when that worker ends, so it
    hands them over (see :class:`~pipeline_props.infra.InfrastructureManager`)
    and they live until the run ends instead of stopping and starting again.
    """
    from pipeline_props.infra.local import start_lock_file, take_lease
    from pipeline_props.infra.locks import file_lock

    with file_lock(start_lock_file(Path(home)), timeout=lock_wait_s(), what="infrastructure"):
        lease = take_lease(controller_lease, Path(home))
    try:
        yield
    finally:
        lease()


#: Markers of tests that use the local services even without a service fixture (a CLI subprocess).
_LOCAL_SERVICE_MARKERS = {"integration", "properties", "faults", "mutations", "snowflake"}


def services_access(item: pytest.Item, service_fixtures: set[str]) -> str | None:
    """``"exclusive"``, ``"shared"`` or None: how ``item`` uses the local services.

    A ``faults`` test signals them (or starts the fault proxies on their fixed
    ports): exclusive. Any other test that uses them: shared. The cluster's
    tests (marked ``cluster``) have their own lock unless they use a local fixture.
    """
    marks = {m.name for m in item.iter_markers()}
    uses = bool(set(getattr(item, "fixturenames", ())) & service_fixtures) or (
        bool(marks & _LOCAL_SERVICE_MARKERS) and "cluster" not in marks)
    if not uses:
        return None
    return "exclusive" if "faults" in marks else "shared"


def alone_scope(default: str) -> Any:
    """A dynamic fixture scope: ``default`` without xdist, ``function`` under it.

    For fixtures that hold something on a fixed port between tests (the fault
    injector's proxies): under xdist they must be gone when the exclusive test ends.
    """
    def scope(fixture_name: str, config: pytest.Config) -> str:
        return "function" if worker_id() else default

    return scope


@contextmanager
def services_turn(home: Path | str, access: str | None) -> Iterator[None]:
    """Under xdist, hold the local services' readers-writer lock as ``access`` says."""
    if access is None or not worker_id():
        yield
        return
    from pipeline_props.infra.locks import lock_dir, readers_writer

    with readers_writer(lock_dir(home), "services-in-use", exclusive=access == "exclusive",
                        timeout=lock_wait_s(), what="infrastructure"):
        yield


def cluster_turn(home: Path | str) -> Any:
    """Under xdist, the cluster for this worker alone while the context lasts (else nothing)."""
    if not worker_id():
        return nullcontext()
    from pipeline_props.infra.locks import file_lock, lock_dir

    return file_lock(lock_dir(home) / "cluster.use", timeout=lock_wait_s(), what="cluster")
