"""The backends that run no service process of ours: ``external`` and ``containers``.

* ``external``: the team's own Kafka and Postgres, reached at the addresses of
  the settings; nothing is started or stopped.
* ``containers``: Kafka and Postgres in testcontainers, only when a Docker
  engine answers; the manager's ``cleanup`` stops the containers.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from pipeline_props.errors import InfrastructureError

if TYPE_CHECKING:
    from pipeline_props.config import InfrastructureSettings


def external_addresses(infra: InfrastructureSettings) -> tuple[str, str]:
    """The bootstrap servers and the libpq conninfo (may hold a secret) of the team's own services."""
    if not infra.kafka_bootstrap_servers:
        raise InfrastructureError(
            "kafka", "backend 'external' needs the bootstrap servers",
            hint="set E2E_KAFKA_BOOTSTRAP_SERVERS or infrastructure.kafka_bootstrap_servers")
    dsn = infra.postgres_dsn or (
        f"host={infra.postgres_host} port={infra.postgres_port} user={infra.postgres_user} "
        f"dbname={infra.postgres_db}" + (f" password={infra.postgres_password}"
                                         if infra.postgres_password else ""))
    return infra.kafka_bootstrap_servers, dsn


def start_containers() -> list[Any]:
    """Start a Kafka and a Postgres container; returns them, in that order."""
    docker = shutil.which("docker")
    ok = docker is not None and subprocess.run(
        [docker, "info"], capture_output=True, timeout=20).returncode == 0
    if not ok:
        raise InfrastructureError(
            "containers", "no Docker engine answers (`docker info` failed)",
            hint="use the default local backend (E2E_BACKEND=local), or start a Docker engine; "
                 "`pipeline-props services compose` writes docker-compose.test.yml for compose users")
    try:
        from testcontainers.kafka import KafkaContainer  # type: ignore[import-not-found]
        from testcontainers.postgres import PostgresContainer  # type: ignore[import-not-found]
    except ImportError:
        raise InfrastructureError("containers", "testcontainers is not installed",
                                  hint="pip install 'pipeline-props[containers]'") from None
    kafka = KafkaContainer("apache/kafka:4.1.1").start()
    pg = PostgresContainer("postgres:15", username="postgres", password="postgres").start()
    return [kafka, pg]


def container_dsn(pg: Any) -> str:
    """The libpq conninfo of the Postgres container :func:`start_containers` started."""
    return (f"host={pg.get_container_host_ip()} port={pg.get_exposed_port(5432)} "
            "user=postgres password=postgres dbname=postgres")
