"""What ``services status`` shows: one :class:`ServiceStatus` a service, each from a real probe.

A broker answers a metadata request, a warehouse or the Snowflake emulator
``SELECT 1``; a service reached at an address (backend ``external`` or
``containers``) is probed at that address.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_props.errors import InfrastructureError
from pipeline_props.infra import admin

if TYPE_CHECKING:
    from pipeline_props.infra.fakesnow import FakesnowServer
    from pipeline_props.infra.kafka import KafkaBroker
    from pipeline_props.infra.postgres import PostgresServer


@dataclass(frozen=True)
class ServiceStatus:
    """What ``services status`` shows for one service."""

    name: str
    port: int | None
    pid: int | None
    healthy: bool
    detail: str = ""


def kafka_status(kafka: KafkaBroker | None, bootstrap: str | None) -> ServiceStatus:
    """The broker we run, else the one at ``bootstrap`` (external), else not started."""
    if kafka is not None:
        ok = kafka.running() and kafka.healthy()
        return ServiceStatus("kafka", kafka.port, kafka.pid, ok,
                             "metadata request answered" if ok else "no answer")
    if bootstrap:
        ok = admin.probe_kafka(bootstrap)
        return ServiceStatus("kafka", None, None, ok, bootstrap)
    return ServiceStatus("kafka", None, None, False, "not started")


def postgres_status(postgres: PostgresServer | None, dsn: str | None) -> ServiceStatus:
    """The cluster we run, else the warehouse at ``dsn`` (external), else not started."""
    if postgres is not None:
        ok = postgres.healthy()
        return ServiceStatus("postgres", postgres.port, postgres.pid, ok,
                             "SELECT 1 answered" if ok else "no answer")
    if dsn:
        return ServiceStatus("postgres", None, None, admin.probe_postgres(dsn), "external")
    return ServiceStatus("postgres", None, None, False, "not started")


def fakesnow_status(fakesnow: FakesnowServer) -> ServiceStatus:
    """The local Snowflake emulator."""
    ok = fakesnow.healthy()
    return ServiceStatus("fakesnow", fakesnow.port, fakesnow.pid, ok,
                         "SELECT 1 answered (Snowflake emulator)" if ok else "no answer")


def wait_until_healthy(probe: Callable[[], list[ServiceStatus]], timeout: float,
                       logs_dir: Path) -> list[ServiceStatus]:
    """Call ``probe`` until every service is healthy or ``timeout`` s passed; raise naming one that is not."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = probe()
        bad = [s for s in statuses if not s.healthy]
        if not bad:
            return statuses
        if time.monotonic() > deadline:
            first = bad[0]
            raise InfrastructureError(first.name, f"not ready after {timeout:.0f} s: {first.detail}",
                                      log_path=logs_dir / f"{first.name}.log")
        time.sleep(0.5)
