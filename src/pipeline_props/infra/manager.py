"""InfrastructureManager: start, probe and stop Kafka, Postgres and Spark behind one object.

Backends:

* ``local`` (default): a KRaft broker from the jar cache and a throwaway
  Postgres cluster, as processes this manager starts. Their pids and data dirs
  are kept in ``<home>/services.json`` so ``pipeline-props services down`` in
  another process stops exactly them, and a second ``up`` reuses them.
* ``external``: the team's own Kafka, Postgres and Spark master from config;
  nothing is started or stopped.
* ``containers``: testcontainers, only when a Docker engine answers.

How several processes share the local services (the start lock, the users'
leases, the hand-over to the last user out) is :mod:`~pipeline_props.infra.local`,
the state file's format :mod:`~pipeline_props.infra.state`; the external and
containers backends are :mod:`~pipeline_props.infra.external`, the probes
:mod:`~pipeline_props.infra.status`.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_props.config import Settings, load_settings
from pipeline_props.errors import InfrastructureError
from pipeline_props.infra import _process, admin, external, local
from pipeline_props.infra import fakesnow as _fakesnow
from pipeline_props.infra import state as _state
from pipeline_props.infra.kafka import KafkaBroker
from pipeline_props.infra.postgres import PostgresServer
from pipeline_props.infra.status import (
    ServiceStatus,
    fakesnow_status,
    kafka_status,
    postgres_status,
    wait_until_healthy,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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
        return _state.state_path(self.home)

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
                self.fakesnow = _state.recorded_fakesnow(self.home)
            if self.fakesnow is None or not self.fakesnow.running():
                self.fakesnow = _fakesnow.FakesnowServer(home=self.home, port=self.infra.fakesnow_port)
                self.fakesnow.start(timeout=self.infra.startup_timeout_s)
                self._started.add("fakesnow")
            if self.kafka is not None and self.postgres is not None:
                self._save_state()

    def _start_lock(self) -> AbstractContextManager[None]:
        """The lock that serializes starting the local services of this home across processes.

        See :func:`~pipeline_props.infra.local.start_lock`.
        """
        return local.start_lock(self.home, self.infra.startup_timeout_s)

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
            self._external_bootstrap, self._external_dsn = external.external_addresses(self.infra)
        elif self.backend == "containers":
            kafka, pg = self._containers = external.start_containers()
            self._external_bootstrap = kafka.get_bootstrap_server()
            self._external_dsn = external.container_dsn(pg)
        else:
            with self._start_lock():
                self._start_local()
        return self

    def _save_state(self) -> None:
        """Record the running local services in the state file (also after a fault restarted one)."""
        assert self.kafka is not None and self.postgres is not None
        _state.save_services(self.home, self._root, self.kafka, self.postgres, self.fakesnow)

    def _start_local(self) -> None:
        infra = self.infra
        self.home.mkdir(parents=True, exist_ok=True)
        state = _state.load_state(self.home)
        if state and Path(state.get("root", "")).exists():
            self._root = Path(state["root"])
            self.kafka, self.postgres, self.fakesnow = _state.recorded_services(self.home, infra, state)
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
            self._lease = local.take_lease(self, self.home)
        try:
            if not (self.postgres.running() and self.postgres.healthy()):
                self.postgres.start(timeout=infra.startup_timeout_s)
                self._started.add("postgres")
            if not self.kafka.running():
                self.kafka.start(timeout=infra.startup_timeout_s)
                self._started.add("kafka")
        except InfrastructureError:
            self._stop(self._started & local.SERVICES)  # half started: nobody can be using them yet
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
        ks = _state.load_state(self.home).get("kafka") or {}
        if (ks.get("data_dir") == str(self.kafka.data_dir) and ks.get("pid")
                and _process.pid_alive(ks["pid"], ks.get("create_time"))):
            self.kafka.pid, self.kafka.create_time = ks["pid"], ks.get("create_time")

    def wait_for_readiness(self, timeout: float | None = None, *, spark: bool = False) -> list[ServiceStatus]:
        """Probe each service for real until healthy or ``timeout``; raise naming the one that is not."""
        return wait_until_healthy(lambda: self.status(spark=spark), timeout or self.infra.startup_timeout_s,
                                  self.infra.logs_dir)

    def status(self, *, spark: bool = False) -> list[ServiceStatus]:
        """Health of each service: a Kafka metadata request, ``SELECT 1``, a Spark job."""
        out: list[ServiceStatus] = []
        out.append(kafka_status(self.kafka, self._external_bootstrap))
        out.append(postgres_status(self.postgres, self._external_dsn))
        if self.fakesnow is not None:
            out.append(fakesnow_status(self.fakesnow))
        if spark:
            from pipeline_props.infra.spark import spark_healthy

            try:
                ok = spark_healthy(self.spark)
                detail = "local job ran" if ok else "job failed"
            except InfrastructureError as exc:
                ok, detail = False, str(exc)
            out.append(ServiceStatus("spark", None, None, ok, detail))
        return out

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
            self._stop(local.stop_or_hand_over(self.home, self._started, stop_all=stop_all))
        self._started.clear()

    def handed_over(self) -> list[str]:
        """The local services waiting for their last user to stop them (see :meth:`cleanup`)."""
        return local.handed_over(self.home)

    def _release_lease(self) -> None:
        if self._lease is not None:
            self._lease()
            self._lease = None

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
                self.fakesnow = _state.recorded_fakesnow(self.home)
            if self.fakesnow is not None:
                self.fakesnow.stop()
                self.fakesnow = None
        if stop_kafka and stop_pg:
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
            self.state_file.unlink(missing_ok=True)
            return
        _state.record_stopped(self.home, names)

    @classmethod
    def from_state(cls, settings: Settings | None = None) -> InfrastructureManager:
        """A manager attached to the local services on record (for ``status`` and ``down``)."""
        mgr = cls(settings, backend="local")
        state = _state.load_state(mgr.home)
        if state:
            mgr._root = Path(state["root"])
            mgr.kafka, mgr.postgres, mgr.fakesnow = _state.recorded_services(mgr.home, mgr.infra, state)
        return mgr

    def describe(self) -> dict[str, Any]:
        """Status as plain data (for JSON output and metadata), no secrets."""
        return {"backend": self.backend, "services": [asdict(s) for s in self.status()]}
