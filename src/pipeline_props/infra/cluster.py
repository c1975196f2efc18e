"""``pipeline-props cluster up / down / status``: the cluster topology on this machine, as separate processes.

* Kafka: 3 KRaft nodes (:mod:`~pipeline_props.infra.kafka_cluster`), replication 3,
  ``min.insync.replicas=2``;
* Spark standalone: a master and two 1-core workers (:mod:`~pipeline_props.infra.spark_cluster`);
* Postgres: a throwaway cluster as the local backend runs, on its own port.

Every pid is recorded in ``<home>/cluster.json`` (apart from the local
backend's ``services.json``: the two never touch each other's processes) and
``down`` stops exactly those pids, waits until their ports are free and
removes the data. The pipeline reaches the cluster through the ``external``
backend: :meth:`ClusterServices.settings` or the variables of
:meth:`ClusterServices.environment` (``pipeline-props cluster env``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline_props.config import Settings
from pipeline_props.errors import InfrastructureError
from pipeline_props.infra import _process
from pipeline_props.infra.kafka_cluster import ClusterBroker, KafkaCluster
from pipeline_props.infra.postgres import PostgresServer
from pipeline_props.infra.spark_cluster import SparkStandalone
from pipeline_props.infra.status import ServiceStatus


class ClusterServices:
    """The cluster's processes: start, reattach (from the state file), probe, stop by pid."""

    def __init__(self, settings: Settings, *, state_dir: Path | None = None) -> None:
        self.settings = settings
        self.infra = settings.infrastructure
        self.home = Path(self.infra.home)  # also where the jar cache is
        #: Where cluster.json lives (the home by default; a test keeps its own cluster apart).
        self.state_dir = Path(state_dir) if state_dir else self.home
        self.root: Path | None = None
        self.kafka: KafkaCluster | None = None
        self.spark: SparkStandalone | None = None
        self.postgres: PostgresServer | None = None

    @property
    def state_file(self) -> Path:
        return self.state_dir / "cluster.json"

    # -- addresses ---------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return self._need(self.kafka).bootstrap_servers

    @property
    def master_url(self) -> str:
        return self._need(self.spark).master_url

    @property
    def postgres_dsn(self) -> str:
        """libpq conninfo (trust auth on loopback: no secret in it)."""
        return self._need(self.postgres).dsn

    def _need(self, part: Any) -> Any:
        if part is None:
            raise InfrastructureError("cluster", "the cluster is not up", hint="pipeline-props cluster up")
        return part

    def settings_for_pipeline(self) -> Settings:
        """The settings with the ``external`` backend pointed at this cluster."""
        pg = self._need(self.postgres)
        infra = dataclasses.replace(
            self.infra, backend="external", kafka_bootstrap_servers=self.bootstrap_servers,
            postgres_dsn=pg.dsn, postgres_host="127.0.0.1", postgres_port=pg.port,
            postgres_user=pg.user, postgres_db=pg.dbname, spark_master=self.master_url)
        return dataclasses.replace(self.settings, infrastructure=infra)

    def environment(self) -> dict[str, str]:
        """The E2E_* variables that point pipeline-props (or pytest) at this cluster."""
        return {"E2E_BACKEND": "external", "E2E_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
                "E2E_POSTGRES_DSN": self.postgres_dsn, "E2E_POSTGRES_PORT": str(self._need(self.postgres).port),
                "E2E_SPARK_MASTER": self.master_url}

    # -- lifecycle ---------------------------------------------------------------
    @classmethod
    def from_state(cls, settings: Settings, *, state_dir: Path | None = None) -> ClusterServices:
        """Attach to the cluster on record (nothing is started); empty when none is."""
        svc = cls(settings, state_dir=state_dir)
        state = svc._load_state()
        if state and Path(state.get("root", "")).exists():
            svc._attach(state)
        return svc

    def _load_state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _attach(self, state: dict[str, Any]) -> None:
        self.root = Path(state["root"])
        ks = state["kafka"]
        self.kafka = KafkaCluster(home=self.home, root=self.root / "kafka", base_port=ks["base_port"],
                                  cluster_id=ks["cluster_id"])
        for b, rec in zip(self.kafka.brokers, ks["brokers"], strict=True):
            b.pid, b.create_time = rec["pid"], rec["create_time"]
        ss = state["spark"]
        self.spark = SparkStandalone(root=self.root / "spark", base_port=ss["base_port"])
        for d, rec in zip(self.spark.daemons, ss["daemons"], strict=True):
            d.pid, d.create_time = rec["pid"], rec["create_time"]
        ps = state["postgres"]
        self.postgres = PostgresServer(home=self.root, data_dir=Path(ps["data_dir"]), port=ps["port"],
                                       user=self.infra.postgres_user, dbname=self.infra.postgres_db)

    def save_state(self) -> None:
        """Write every pid to ``<home>/cluster.json`` (also after a fault restarted a process)."""
        kafka, spark, pg = self._need(self.kafka), self._need(self.spark), self._need(self.postgres)
        state = {
            "root": str(self.root),
            "kafka": {"base_port": kafka.base_port, "cluster_id": kafka.cluster_id,
                      "brokers": [{"node_id": b.node_id, "pid": b.pid, "create_time": b.create_time,
                                   "port": b.port} for b in kafka.brokers]},
            "spark": {"base_port": spark.base_port,
                      "daemons": [{"role": d.role, "pid": d.pid, "create_time": d.create_time,
                                   "port": d.port} for d in spark.daemons]},
            "postgres": {"port": pg.port, "data_dir": str(pg.data_dir)},
            "saved_at": time.time(),
        }
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def up(self, timeout: float | None = None) -> ClusterServices:
        """Start (or reuse) the cluster and wait until every part answers; idempotent."""
        timeout = timeout or max(self.infra.startup_timeout_s, 180.0)
        state = self._load_state()
        fresh = not (state and Path(state.get("root", "")).exists())
        if fresh:
            self.root = Path(tempfile.mkdtemp(prefix="pipeline-props-cluster-"))
            self.kafka = KafkaCluster(home=self.home, root=self.root / "kafka", base_port=self.infra.cluster_kafka_port)
            self.spark = SparkStandalone(root=self.root / "spark", base_port=self.infra.cluster_spark_port)
            self.postgres = PostgresServer(home=self.root, data_dir=self.root / "postgres",
                                           port=self.infra.cluster_postgres_port, user=self.infra.postgres_user,
                                           dbname=self.infra.postgres_db)
        else:
            self._attach(state)
        assert self.kafka is not None and self.spark is not None and self.postgres is not None
        try:
            if not (self.postgres.running() and self.postgres.healthy()):
                self.postgres.start(timeout=timeout)
            # Save early and after each part: a failed start must still be stoppable by `down`.
            self.kafka.start(timeout=timeout)
            self.save_state()
            self.spark.start(timeout=timeout)
            self.save_state()
        except InfrastructureError:
            if self.root is not None:
                self.save_state()
            raise
        return self

    def down(self) -> list[str]:
        """Stop every process on record (by pid), check their ports are free, remove the data.

        Returns the ports still open afterwards (empty when all is clean).
        """
        if self.kafka is not None and self.spark is not None:
            self.spark.stop()
            self.kafka.stop()
        if self.postgres is not None:
            self.postgres.stop(mode="fast")
            _process.wait_until(lambda: not _process.port_open(self.postgres.port), 20)  # type: ignore[union-attr]
        busy = [p for p in self.ports() if _process.port_open(p)]
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        self.state_file.unlink(missing_ok=True)
        return busy

    def ports(self) -> list[int]:
        """Every port the cluster listens on."""
        out: list[int] = []
        if self.kafka is not None:
            out += [p for b in self.kafka.brokers for p in (b.port, b.controller_port)]
        if self.spark is not None:
            out += [p for d in self.spark.daemons for p in (d.port, d.ui_port)]
        if self.postgres is not None:
            out.append(self.postgres.port)
        return out

    def pids(self) -> list[int]:
        """Every pid on record that still runs."""
        out = []
        if self.kafka is not None:
            out += [b.pid for b in self.kafka.brokers if b.running() and b.pid]
        if self.spark is not None:
            out += [d.pid for d in self.spark.daemons if d.running() and d.pid]
        if self.postgres is not None and self.postgres.running() and self.postgres.pid:
            out.append(self.postgres.pid)
        return out

    def status(self) -> list[ServiceStatus]:
        """Each process: port, pid, and a real probe (metadata request, master JSON, SELECT 1)."""
        if self.kafka is None or self.spark is None or self.postgres is None:
            return [ServiceStatus("cluster", None, None, False, "not up (pipeline-props cluster up)")]
        out: list[ServiceStatus] = []
        live = self.kafka.live_brokers()
        for b in self.kafka.brokers:
            out.append(_broker_status(b, live))
        state = self.spark.master_state()
        workers = {w.get("port"): w.get("state") for w in (state or {}).get("workers", [])}
        m = self.spark.master
        ok = m.running() and state is not None and state.get("status") == "ALIVE"
        out.append(ServiceStatus("spark master", m.port, m.pid, ok,
                                 f"{self.spark.master_url}, {self.spark.alive_workers()} workers ALIVE, "
                                 f"{len((state or {}).get('activeapps', []))} app(s)" if state else "no answer"))
        for w in self.spark.workers:
            st = workers.get(w.port)
            out.append(ServiceStatus(f"spark {w.role}", w.port, w.pid, w.running() and st == "ALIVE",
                                     f"{st or 'unknown to the master'}, 1 core"))
        pg_ok = self.postgres.healthy()
        out.append(ServiceStatus("postgres", self.postgres.port, self.postgres.pid, pg_ok,
                                 "SELECT 1 answered" if pg_ok else "no answer"))
        return out


def _broker_status(b: ClusterBroker, live: set[int]) -> ServiceStatus:
    ok = b.running() and b.node_id in live
    return ServiceStatus(f"kafka broker {b.node_id}", b.port, b.pid, ok,
                         "registered in the cluster" if ok else ("running, not registered" if b.running() else "down"))
