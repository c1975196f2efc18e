"""InfrastructureManager: start, probe and stop Kafka, Postgres and Spark behind one object.

Backends:

* ``local`` (default): a KRaft broker from the jar cache and a throwaway
  Postgres cluster, as processes this manager starts. Their pids and data dirs
  are kept in ``<home>/services.json`` so ``pipeline-props services down`` in
  another process stops exactly them, and a second ``up`` reuses them.
* ``external``: the team's own Kafka, Postgres and Spark master from config;
  nothing is started or stopped.
* ``containers``: testcontainers, only when a Docker engine answers.

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

import json
import os
import shutil
import subprocess
import tempfile
import time
import weakref
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_props.config import Settings, load_settings
from pipeline_props.errors import InfrastructureError
from pipeline_props.infra import _process, admin
from pipeline_props.infra import fakesnow as _fakesnow
from pipeline_props.infra.kafka import KafkaBroker
from pipeline_props.infra.locks import (
    file_lock,
    hold_shared,
    lock_dir,
    nobody_else_holds,
)
from pipeline_props.infra.postgres import PostgresServer

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


#: The local services a manager may start and stop (Spark is per process, not among them).
_SERVICES = frozenset({"kafka", "postgres", "fakesnow"})


@dataclass(frozen=True)
class ServiceStatus:
    """What ``services status`` shows for one service."""

    name: str
    port: int | None
    pid: int | None
    healthy: bool
    detail: str = ""


class InfrastructureManager(AbstractContextManager["InfrastructureManager"]):
    """Starts (or reaches) the services and hands out their addresses.

    Idempotent: ``start_services()`` twice, or in a second process while the
    first one's services run, reuses them. ``cleanup()`` stops only what this
    manager started, unless ``stop_all=True`` (the CLI's ``services down``),
    which stops what the state file records as started by pipeline-props.
    """

    def __init__(self, settings: Settings | None = None, backend: str | None = None) -> None:
        self.settings = settings or load_settings()
        self.infra = self.settings.infrastructure
        self.backend = backend or self.infra.backend
        if self.backend not in ("local", "external", "containers"):
            raise InfrastructureError("infrastructure", f"unknown backend {self.backend!r}",
                                      hint="use local, external or containers")
        self.home = Path(self.infra.home)
        self.kafka: KafkaBroker | None = None
        self.postgres: PostgresServer | None = None
        #: The Snowflake emulator, when this manager started or found one (--warehouse snowflake).
        self.fakesnow: _fakesnow.FakesnowServer | None = None
        self._started: set[str] = set()
        self._root: Path | None = None
        self._containers: list[Any] = []
        self._external_dsn: str | None = None
        self._external_bootstrap: str | None = None
        #: Our shared lock on the users file while we use the services; closed by cleanup, or
        #: when this manager is garbage-collected, so a forgotten manager holds no lease.
        self._lease: weakref.finalize | None = None

    # -- addresses ---------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.home / "services.json"

    @property
    def kafka_bootstrap(self) -> str:
        if self._external_bootstrap:
            return self._external_bootstrap
        if self.kafka is None:
            raise InfrastructureError("kafka", "services are not started", hint="call start_services()")
        return self.kafka.bootstrap_servers

    @property
    def postgres_dsn(self) -> str:
        """libpq conninfo of the warehouse (may hold a secret: never log it)."""
        if self._external_dsn:
            return self._external_dsn
        if self.postgres is None:
            raise InfrastructureError("postgres", "services are not started", hint="call start_services()")
        return self.postgres.dsn

    @property
    def spark(self) -> SparkSession:
        """The shared SparkSession (started on first use)."""
        from pipeline_props.infra import spark as spark_mod

        if not spark_mod.session_active():
            self._started.add("spark")  # this manager starts it, so its cleanup stops it
        return spark_mod.get_spark_session(self.infra)

    @property
    def snowflake(self) -> _fakesnow.SnowflakeEndpoint:
        """The Snowflake target: the account of the snowflake_* settings, or the local emulator."""
        real = _fakesnow.configured_endpoint(self.infra)
        if real is not None:
            return real
        if self.backend != "local":
            raise InfrastructureError(
                "snowflake", f"backend {self.backend!r} runs no emulator",
                hint="set E2E_SNOWFLAKE_ACCOUNT and friends for a real account (docs/snowflake.md)")
        if self.fakesnow is None or not self.fakesnow.running():
            self.start_snowflake()
        assert self.fakesnow is not None
        return self.fakesnow.endpoint

    def start_snowflake(self) -> None:
        """Start (or reuse) the local Snowflake emulator and record it in the state file."""
        with self._start_lock():
            if self.fakesnow is None or not self.fakesnow.running():
                # Another process may have started one since: the state file says.
                self.fakesnow = _fakesnow.server_from_state(self.home, self._load_state().get("fakesnow"))
            if self.fakesnow is None or not self.fakesnow.running():
                self.fakesnow = _fakesnow.FakesnowServer(home=self.home, port=self.infra.fakesnow_port)
                self.fakesnow.start(timeout=self.infra.startup_timeout_s)
                self._started.add("fakesnow")
            if self.kafka is not None and self.postgres is not None:
                self._save_state()

    def _start_lock(self) -> AbstractContextManager[None]:
        """The lock that serializes starting the local services of this home across processes.

        The holder may start Kafka, Postgres and the emulator one after the other,
        each bounded by the startup timeout: wait a little longer than that.
        """
        return file_lock(lock_dir(self.home) / "services.start", what="infrastructure",
                         timeout=3 * self.infra.startup_timeout_s + 30)

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> InfrastructureManager:
        self.start_services()
        self.wait_for_readiness()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def start_services(self) -> InfrastructureManager:
        """Start (or reach, or reuse) Kafka and Postgres. Spark starts lazily on first use."""
        if self.backend == "external":
            self._start_external()
        elif self.backend == "containers":
            self._start_containers()
        else:
            with self._start_lock():
                self._start_local()
        return self

    def _start_external(self) -> None:
        infra = self.infra
        if not infra.kafka_bootstrap_servers:
            raise InfrastructureError(
                "kafka", "backend 'external' needs the bootstrap servers",
                hint="set E2E_KAFKA_BOOTSTRAP_SERVERS or infrastructure.kafka_bootstrap_servers")
        self._external_bootstrap = infra.kafka_bootstrap_servers
        self._external_dsn = infra.postgres_dsn or (
            f"host={infra.postgres_host} port={infra.postgres_port} user={infra.postgres_user} "
            f"dbname={infra.postgres_db}" + (f" password={infra.postgres_password}"
                                             if infra.postgres_password else ""))

    def _start_containers(self) -> None:
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
        self._containers = [kafka, pg]
        self._external_bootstrap = kafka.get_bootstrap_server()
        self._external_dsn = (f"host={pg.get_container_host_ip()} port={pg.get_exposed_port(5432)} "
                              "user=postgres password=postgres dbname=postgres")

    def _load_state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self) -> None:
        assert self.kafka is not None and self.postgres is not None
        state = {
            "root": str(self._root),
            "kafka": {"pid": self.kafka.pid, "create_time": self.kafka.create_time,
                      "port": self.kafka.port, "controller_port": self.kafka.controller_port,
                      "data_dir": str(self.kafka.data_dir)},
            "postgres": {"pid": self.postgres.pid, "port": self.postgres.port,
                         "data_dir": str(self.postgres.data_dir)},
            "saved_at": time.time(),
        }
        if self.fakesnow is not None:
            state["fakesnow"] = _fakesnow.server_state(self.fakesnow)
        handed = self._load_state().get("handed_over")
        if handed:
            state["handed_over"] = handed
        self._write_state(state)

    def _write_state(self, state: dict[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def _start_local(self) -> None:
        infra = self.infra
        self.home.mkdir(parents=True, exist_ok=True)
        state = self._load_state()
        if state and Path(state.get("root", "")).exists():
            self._root = Path(state["root"])
            ks, ps = state["kafka"], state["postgres"]
            self.kafka = KafkaBroker(home=self.home, data_dir=Path(ks["data_dir"]), port=ks["port"],
                                     controller_port=ks["controller_port"], heap=infra.kafka_heap,
                                     pid=ks["pid"], create_time=ks["create_time"])
            self.postgres = PostgresServer(home=self.home, data_dir=Path(ps["data_dir"]),
                                           port=ps["port"], user=infra.postgres_user,
                                           dbname=infra.postgres_db)
            self.fakesnow = _fakesnow.server_from_state(self.home, state.get("fakesnow"))
            if self.fakesnow is not None and not self.fakesnow.running():
                # An emulator on record whose process is gone (a reboot, a crash) is no service
                # to wait for: forget it, and start_snowflake starts a new one when it is wanted.
                self.fakesnow = None
            if (self.kafka.port, self.postgres.port) != (infra.kafka_port, infra.postgres_port):
                raise InfrastructureError(
                    "infrastructure",
                    f"services from an earlier `up` run on ports kafka {self.kafka.port}, "
                    f"postgres {self.postgres.port}, not the configured {infra.kafka_port}, "
                    f"{infra.postgres_port}",
                    hint="`pipeline-props services down` first, or use the same ports")
        else:
            self._root = Path(tempfile.mkdtemp(prefix="pipeline-props-services-"))
            self.kafka = KafkaBroker(home=self.home, data_dir=self._root / "kafka",
                                     port=infra.kafka_port, controller_port=infra.kafka_controller_port,
                                     heap=infra.kafka_heap)
            self.postgres = PostgresServer(home=self.home, data_dir=self._root / "postgres",
                                           port=infra.postgres_port, user=infra.postgres_user,
                                           dbname=infra.postgres_db)
        fresh = not self.state_file.exists()
        if self._lease is None:  # under the start lock: nobody is deciding to stop them meanwhile
            fd = hold_shared(self._users_file, timeout=30, what="infrastructure")
            self._lease = weakref.finalize(self, os.close, fd)
        try:
            if not (self.postgres.running() and self.postgres.healthy()):
                self.postgres.start(timeout=infra.startup_timeout_s)
                self._started.add("postgres")
            if not self.kafka.running():
                self.kafka.start(timeout=infra.startup_timeout_s)
                self._started.add("kafka")
        except InfrastructureError:
            self._stop(self._started & _SERVICES)  # half started: nobody can be using them yet
            self._release_lease()
            self._started.clear()
            if fresh and self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
            raise
        self._save_state()
        if self.settings.run.warehouse == "snowflake" and not self.infra.snowflake_account:
            self.start_snowflake()

    def adopt_recorded_broker(self) -> None:
        """Follow a broker another process restarted (a fault test on the other pytest-xdist worker).

        Our pid is dead then and the state file has the live one: signals and health
        checks must reach that. A live pid of ours is never replaced.
        """
        if self.backend != "local" or self.kafka is None or self.kafka.running():
            return
        ks = self._load_state().get("kafka") or {}
        if (ks.get("data_dir") == str(self.kafka.data_dir) and ks.get("pid")
                and _process.pid_alive(ks["pid"], ks.get("create_time"))):
            self.kafka.pid, self.kafka.create_time = ks["pid"], ks.get("create_time")

    def wait_for_readiness(self, timeout: float | None = None, *, spark: bool = False) -> list[ServiceStatus]:
        """Probe each service for real until healthy or ``timeout``; raise naming the one that is not."""
        timeout = timeout or self.infra.startup_timeout_s
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.status(spark=spark)
            bad = [s for s in statuses if not s.healthy]
            if not bad:
                return statuses
            if time.monotonic() > deadline:
                first = bad[0]
                raise InfrastructureError(first.name, f"not ready after {timeout:.0f} s: {first.detail}",
                                          log_path=self.infra.logs_dir / f"{first.name}.log")
            time.sleep(0.5)

    def status(self, *, spark: bool = False) -> list[ServiceStatus]:
        """Health of each service: a Kafka metadata request, ``SELECT 1``, a Spark job."""
        out: list[ServiceStatus] = []
        out.append(self._kafka_status())
        out.append(self._postgres_status())
        if self.fakesnow is not None:
            ok = self.fakesnow.healthy()
            out.append(ServiceStatus("fakesnow", self.fakesnow.port, self.fakesnow.pid, ok,
                                     "SELECT 1 answered (Snowflake emulator)" if ok else "no answer"))
        if spark:
            from pipeline_props.infra.spark import spark_healthy

            try:
                ok = spark_healthy(self.spark)
                detail = "local job ran" if ok else "job failed"
            except InfrastructureError as exc:
                ok, detail = False, str(exc)
            out.append(ServiceStatus("spark", None, None, ok, detail))
        return out

    def _kafka_status(self) -> ServiceStatus:
        if self.kafka is not None:
            ok = self.kafka.running() and self.kafka.healthy()
            return ServiceStatus("kafka", self.kafka.port, self.kafka.pid, ok,
                                 "metadata request answered" if ok else "no answer")
        if self._external_bootstrap:
            ok = admin.probe_kafka(self._external_bootstrap)
            return ServiceStatus("kafka", None, None, ok, self._external_bootstrap)
        return ServiceStatus("kafka", None, None, False, "not started")

    def _postgres_status(self) -> ServiceStatus:
        if self.postgres is not None:
            ok = self.postgres.healthy()
            return ServiceStatus("postgres", self.postgres.port, self.postgres.pid, ok,
                                 "SELECT 1 answered" if ok else "no answer")
        if self._external_dsn:
            return ServiceStatus("postgres", None, None, admin.probe_postgres(self._external_dsn), "external")
        return ServiceStatus("postgres", None, None, False, "not started")

    # -- per-dataset setup ---------------------------------------------------
    def setup_databases(self, schema: str | None = None) -> None:
        """Check the warehouse answers and create ``schema`` when given (idempotent)."""
        admin.create_schema(self.postgres_dsn, schema)

    def drop_schema(self, schema: str) -> None:
        """Drop one dataset's schema and everything in it."""
        admin.drop_schema(self.postgres_dsn, schema)

    def setup_kafka_topics(self, topics: str | list[str], partitions: int = 1, timeout: float = 30.0) -> None:
        """Create topics (idempotent, the brokers' default replication) and wait until they have leaders."""
        admin.create_topics(self.kafka_bootstrap, topics, partitions=partitions, timeout=timeout)

    def delete_kafka_topics(self, topics: str | list[str], timeout: float = 30.0) -> None:
        """Delete topics; missing ones are ignored."""
        admin.delete_topics(self.kafka_bootstrap, topics, timeout=timeout)

    def cleanup(self, *, stop_all: bool = False) -> None:
        """Stop what this manager started (or, with ``stop_all``, every local service on record).

        Services still used by another manager (its lease is held: a pytest-xdist
        worker, another session, a CLI run) are handed over instead, and the last
        user's cleanup stops them with whatever else was handed over.
        """
        for container in self._containers:
            try:
                container.stop()
            except Exception:  # pragma: no cover - best effort on a backend we cannot run here
                pass
        self._containers = []
        if self.backend != "local":
            return
        if "spark" in self._started:
            # The session is process-wide: only the manager that started it stops it,
            # so a second manager (a CLI call inside a test) never pulls it from under others.
            from pipeline_props.infra.spark import stop_spark_session

            stop_spark_session()
        with self._start_lock():  # no one takes a lease (starts using them) while we decide
            self._release_lease()
            if stop_all:
                self._stop(set(_SERVICES))
            elif nobody_else_holds(self._users_file):
                self._stop(self._started & _SERVICES | set(self._load_state().get("handed_over", [])))
            elif self._started & _SERVICES:
                self._hand_over(self._started & _SERVICES)
        self._started.clear()

    def handed_over(self) -> list[str]:
        """The local services waiting for their last user to stop them (see :meth:`cleanup`)."""
        return list(self._load_state().get("handed_over", []))

    @property
    def _users_file(self) -> Path:
        return lock_dir(self.home) / "services.users"

    def _release_lease(self) -> None:
        if self._lease is not None:
            self._lease()
            self._lease = None

    def _hand_over(self, names: set[str]) -> None:
        """Record ``names`` for the last user of the services to stop."""
        state = self._load_state()
        if state:
            state["handed_over"] = sorted(set(state.get("handed_over", [])) | names)
            self._write_state(state)

    def _stop(self, names: set[str]) -> None:
        """Stop the named local services (by their recorded pids) and update the state file."""
        if not names:
            return
        stop_kafka, stop_pg = "kafka" in names, "postgres" in names
        if stop_kafka and self.kafka is not None:
            self.kafka.stop()
        if stop_pg and self.postgres is not None:
            self.postgres.stop()
        if "fakesnow" in names:
            if self.fakesnow is None:
                self.fakesnow = _fakesnow.server_from_state(self.home, self._load_state().get("fakesnow"))
            if self.fakesnow is not None:
                self.fakesnow.stop()
                self.fakesnow = None
        if stop_kafka and stop_pg:
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
            self.state_file.unlink(missing_ok=True)
            return
        state = self._load_state()
        if state:
            if "fakesnow" in names:
                state.pop("fakesnow", None)
            left = sorted(set(state.get("handed_over", [])) - names)
            state.pop("handed_over", None)
            if left:
                state["handed_over"] = left
            self._write_state(state)

    @classmethod
    def from_state(cls, settings: Settings | None = None) -> InfrastructureManager:
        """A manager attached to the local services on record (for ``status`` and ``down``)."""
        mgr = cls(settings, backend="local")
        state = mgr._load_state()
        if state:
            infra = mgr.infra
            mgr._root = Path(state["root"])
            ks, ps = state["kafka"], state["postgres"]
            mgr.kafka = KafkaBroker(home=mgr.home, data_dir=Path(ks["data_dir"]), port=ks["port"],
                                    controller_port=ks["controller_port"], heap=infra.kafka_heap,
                                    pid=ks["pid"], create_time=ks["create_time"])
            mgr.postgres = PostgresServer(home=mgr.home, data_dir=Path(ps["data_dir"]), port=ps["port"],
                                          user=infra.postgres_user, dbname=infra.postgres_db)
            mgr.fakesnow = _fakesnow.server_from_state(mgr.home, state.get("fakesnow"))
        return mgr

    def describe(self) -> dict[str, Any]:
        """Status as plain data (for JSON output and metadata), no secrets."""
        return {"backend": self.backend, "services": [asdict(s) for s in self.status()]}
