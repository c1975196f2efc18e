"""Cluster faults: partition leaders, Spark workers and the Spark master killed for real.

The :class:`ClusterInjector` is an :class:`~pipeline_props.faults.injector.ErrorInjector`
for the topology of ``pipeline-props cluster up`` (:class:`~pipeline_props.infra.cluster.ClusterServices`):
the same registry of active faults, undo and ``recover_all``, the same armed
Spark and producer faults (a driver-side crash before or after the write, a
producer killed mid-file), and these kinds of its own (every process is one
the cluster started, signalled by its recorded pid):

* ``kafka_leader_kill``: SIGKILL the broker leading partition 0 of the
  harness' topic, now. Undo: restart it on its log dir (it rejoins as a follower).
* ``kafka_leader_kill_mid_ingest``: armed; a watcher SIGKILLs the leader as soon as
  the topic's high watermark moves, i.e. while the next produce is in flight.
* ``kafka_leader_kill_mid_transform``: armed; the next micro-batch's sink
  SIGKILLs the leader on entering the batch, before its Kafka fetch runs
  (the batch's data is read from the new leader, or the task fails and is retried).
* ``kafka_followers_pause``: SIGSTOP the brokers that follow partition 0's
  leader (with them two of the three controllers: no election can happen
  while they are stopped). Undo: SIGCONT. The broken-configuration self-check
  combines it with a leader kill.
* ``kafka_isolated_leader_kill``: the leader goes on alone (its followers
  SIGSTOPped, after a second to copy what was acknowledged before); recovery is
  the failover: SIGKILL the leader, SIGCONT the followers, wait until one of
  them is elected, restart the old leader. Whatever only the old leader had is
  gone unless the producer waited for the replicas (``acks=all`` with
  ``min.insync.replicas=2`` never acknowledges it).
* ``spark_worker_kill``: armed; 0.2 s into the next micro-batch a worker that
  runs an executor of the application is SIGKILLed with its process group
  (the Worker JVM and its executor: a lost machine). Undo: restart the worker.
* ``spark_master_kill``: SIGKILL the Spark master now (between batches). Undo:
  restart it; with ``spark.deploy.recoveryMode=FILESYSTEM`` it reads back its
  workers and applications (docs/cluster.md).

The harness learns nothing new: a scenario or machine sets :attr:`ClusterInjector.topic`
to its namespace's topic and builds its pipeline with :meth:`ClusterInjector.sink_factory`,
whose sink calls :meth:`ClusterInjector.on_batch` on entering each micro-batch.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pipeline_props.errors import InfrastructureError, UsageError
from pipeline_props.faults.injector import FAULT_KINDS, ErrorInjector, SparkFaults
from pipeline_props.infra import InfrastructureManager, _process, admin
from pipeline_props.infra.cluster import ClusterServices
from pipeline_props.pipeline.staging import StagingSink

#: Producer settings under cluster faults: a leader failover takes ~5 s
#: (broker.session.timeout.ms 4 s + election); the idempotent producer must
#: retry through it instead of expiring its messages (the harness' default is 8 s).
CLUSTER_PRODUCER_CONFIG: dict[str, Any] = {"message.timeout.ms": 30000, "request.timeout.ms": 5000}

#: Kinds that need a micro-batch to fire (the state machine runs the stream at once for them).
STREAM_FAULTS = frozenset({"kafka_leader_kill_mid_transform", "spark_worker_kill"})

CLUSTER_KINDS: tuple[str, ...] = ("kafka_leader_kill", "kafka_leader_kill_mid_ingest",
                                  "kafka_leader_kill_mid_transform", "kafka_followers_pause",
                                  "kafka_isolated_leader_kill",
                                  "spark_worker_kill", "spark_master_kill")


class ClusterInjector(ErrorInjector):
    """Faults on the processes of a :class:`ClusterServices` (see the module docstring).

    ``infra`` is the external-backend manager the pipeline runs on (its Spark
    session drives the executors of the cluster).
    """

    def __init__(self, cluster: ClusterServices, infra: InfrastructureManager) -> None:
        # ErrorInjector.__init__ is not called: it signals the local backend's single
        # broker and puts proxies in front of it; the cluster has neither.
        if cluster.kafka is None or cluster.spark is None or cluster.postgres is None:
            raise UsageError("cluster faults need a running cluster: pipeline-props cluster up")
        self.cluster = cluster
        self.infra = infra
        self.kafka_cluster = cluster.kafka
        self.spark_cluster = cluster.spark
        self.postgres = cluster.postgres
        self.kafka = None  # type: ignore[assignment]
        self.active = {}
        self.history = []
        self.armed = SparkFaults()
        self.disk_fill_dir = None
        self._proxies = False
        self.kafka_proxy = self.postgres_proxy = None
        #: The topic whose partition-0 leader the Kafka faults target (set by the scenario or machine).
        self.topic: str | None = None
        #: What fired, with details, for reports: e.g. "kafka_leader_kill_mid_ingest: broker 2 at offset 812".
        self.notes: list[str] = []
        self._on_batch: dict[str, bool] = {}
        #: armed kind -> the brokers / daemons it killed, restarted by its undo
        self._fired_kills: dict[str, list[Any]] = {}
        self._paused: set[int] = set()
        #: High watermarks at which the mid-ingest watcher killed a leader.
        self.ingest_kill_offsets: list[int] = []

    # -- addresses -------------------------------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return self.cluster.bootstrap_servers

    @property
    def postgres_dsn(self) -> str:
        return self.cluster.postgres_dsn + " connect_timeout=10"

    def sink_factory(self) -> Any:
        """A StagingSink factory whose sinks call :meth:`on_batch` on entering each micro-batch."""
        injector = self

        class HookedSink(StagingSink):
            def __call__(self, batch_df: Any, batch_id: int) -> None:
                injector.on_batch(int(batch_id))
                super().__call__(batch_df, batch_id)

        return HookedSink

    # -- injection -------------------------------------------------------------------
    def inject(self, kind: str, **params: Any) -> str:
        """Inject a cluster kind (module docstring) or one of the armed Spark / producer kinds."""
        if kind == "kafka_leader_kill":
            broker = self._kill_leader(kind)
            return self._register(kind, {"node_id": broker.node_id}, lambda: self._restart(broker))
        if kind in ("kafka_leader_kill_mid_ingest",):
            return self._arm_ingest_watcher(kind)
        if kind in ("kafka_leader_kill_mid_transform", "spark_worker_kill"):
            self._on_batch[kind] = True
            return self._register(kind, params, lambda: self._disarm(kind))
        if kind == "kafka_followers_pause":
            followers = self._followers()
            for b in followers:
                b.pause()
                self._paused.add(b.node_id)
            self.notes.append(f"{kind}: brokers {[b.node_id for b in followers]} SIGSTOPped")

            def resume() -> None:
                for b in followers:
                    b.resume()
                    self._paused.discard(b.node_id)

            return self._register(kind, {"nodes": [b.node_id for b in followers]}, resume)
        if kind == "kafka_isolated_leader_kill":
            return self._isolate_leader(kind)
        if kind == "spark_master_kill":
            master = self.spark_cluster.master
            master.kill()
            self.armed.fired.append(kind)
            self.notes.append(f"{kind}: the Spark master SIGKILLed between batches")
            return self._register(kind, {}, lambda: self._restart(master))
        if kind.startswith(("spark_crash", "spark_query_stop", "producer_crash")):
            return FAULT_KINDS[kind](self, params)
        raise UsageError(f"fault kind {kind!r} is not available on the cluster; known: "
                         f"{', '.join(CLUSTER_KINDS)}, spark_crash_before_write, spark_crash_after_write, "
                         "producer_crash")

    def _need_topic(self) -> str:
        if not self.topic:
            raise UsageError("ClusterInjector.topic is not set: the Kafka faults target its partition 0 leader")
        return self.topic

    def _leader(self) -> Any:
        leader = self.kafka_cluster.partition_leaders(self._need_topic()).get(0, -1)
        if leader < 0:
            raise InfrastructureError("kafka cluster", f"topic {self.topic} partition 0 has no leader now")
        return self.kafka_cluster.broker(leader)

    def _followers(self) -> list[Any]:
        leader = self._leader()
        return [b for b in self.kafka_cluster.brokers if b.node_id != leader.node_id and b.running()]

    def _kill_leader(self, kind: str, detail: str = "") -> Any:
        broker = self._leader()
        broker.kill()
        self.armed.fired.append(kind)
        self.notes.append(f"{kind}: broker {broker.node_id} (leader of {self.topic}[0]) SIGKILLed{detail}")
        return broker

    def _isolate_leader(self, kind: str) -> str:
        leader = self._leader()
        time.sleep(1.0)  # let the followers copy what was acknowledged before the fault
        followers = [b for b in self.kafka_cluster.brokers if b is not leader]
        for b in followers:
            b.pause()
            self._paused.add(b.node_id)
        self.notes.append(f"{kind}: followers {[b.node_id for b in followers]} of leader {leader.node_id} "
                          "SIGSTOPped")

        def fail_over() -> None:
            leader.kill()
            for b in followers:
                b.resume()
                self._paused.discard(b.node_id)
            self.armed.fired.append(kind)
            try:
                new = self.kafka_cluster.wait_for_leaders(self._need_topic(), avoid=[leader.node_id])
                self.notes.append(f"{kind}: leader {leader.node_id} SIGKILLed, {new.get(0)} elected")
            finally:
                self._restart(leader)

        return self._register(kind, {"leader": leader.node_id}, fail_over)

    def _arm_ingest_watcher(self, kind: str) -> str:
        from confluent_kafka import Consumer, TopicPartition

        topic = self._need_topic()
        stop = threading.Event()
        consumer = Consumer({"bootstrap.servers": self.kafka_bootstrap, "group.id": "pp-cluster-watch",
                             "enable.auto.commit": False, "log_level": 0})
        start = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]

        def watch() -> None:
            try:
                deadline = time.monotonic() + 600
                while not stop.is_set() and time.monotonic() < deadline:
                    try:
                        high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=2)[1]
                    except Exception:  # noqa: BLE001 - keep watching through a hiccup
                        high = start
                    if high > start:
                        self.ingest_kill_offsets.append(high)
                        self._fired_kills.setdefault(kind, []).append(
                            self._kill_leader(kind, f" at high watermark {high} (was {start})"))
                        return
                    time.sleep(0.005)
            except Exception as exc:  # noqa: BLE001 - a thread: report it where the scenario looks
                self.notes.append(f"{kind}: the watcher failed: {type(exc).__name__}: {exc}")
            finally:
                consumer.close()

        thread = threading.Thread(target=watch, name="pp-leader-watch", daemon=True)
        thread.start()

        def undo() -> None:
            stop.set()
            thread.join(30)
            self._disarm(kind)

        return self._register(kind, {"from_offset": start}, undo)

    def _disarm(self, kind: str) -> None:
        self._on_batch.pop(kind, None)
        for item in self._fired_kills.pop(kind, []):
            self._restart(item)

    def on_batch(self, batch_id: int) -> None:
        """Called by the hooked sink on entering a micro-batch: fire what is armed for it."""
        kind = "kafka_leader_kill_mid_transform"
        if self._on_batch.pop(kind, False):
            self._fired_kills.setdefault(kind, []).append(
                self._kill_leader(kind, f" on entering batch {batch_id}"))
        if self._on_batch.pop("spark_worker_kill", False):
            worker = self._busy_worker()

            def later() -> None:
                time.sleep(0.2)  # the batch's tasks are running on the executors now
                worker.kill()

            self._fired_kills.setdefault("spark_worker_kill", []).append(worker)
            self.armed.fired.append("spark_worker_kill")
            self.notes.append(f"spark_worker_kill: {worker.role} (and its executor) SIGKILLed 0.2 s into "
                              f"batch {batch_id}")
            threading.Thread(target=later, name="pp-worker-kill", daemon=True).start()

    def _busy_worker(self) -> Any:
        state = self.spark_cluster.master_state() or {}
        busy = {w.get("port") for w in state.get("workers", []) if w.get("coresused", 0) > 0}
        for w in self.spark_cluster.workers:
            if w.port in busy and w.running():
                return w
        return next(w for w in self.spark_cluster.workers if w.running())

    # -- recovery --------------------------------------------------------------------
    def _restart(self, process: Any) -> None:
        """Start a killed broker or Spark daemon again (a no-op when it runs) and record its new pid."""
        if getattr(process, "role", "master") != "master":
            # a worker's kill runs in a thread 0.2 s into the batch: let it land first
            _process.wait_until(lambda: process.pid is None or not process.running(), 30, 0.1)
        if process.running():
            return
        if hasattr(process, "node_id"):
            if self._paused:
                # two of three controllers stopped: no quorum, the node cannot be ready until they resume
                process.spawn()
            else:
                process.start(timeout=self.infra.infra.startup_timeout_s)
        elif process.role != "master" and not self.spark_cluster.master.running():
            # the master is down too (its kill is undone later): the worker registers once it is back
            process.spawn(self.spark_cluster.env())
        else:
            self.spark_cluster.restart(process.role, timeout=self.infra.infra.startup_timeout_s)
        self.cluster.save_state()

    def restore_services(self, timeout: float = 15.0) -> list[str]:
        """Heal every fault; restart any cluster process that is down (by its recorded pid)."""
        done: list[str] = []
        try:
            self.recover_all()
        except Exception as exc:  # noqa: BLE001 - the restarts below are the remedy
            done.append(f"recover_all failed: {type(exc).__name__}: {str(exc)[:200]}")
        self.armed = SparkFaults()
        self._on_batch.clear()
        self._paused.clear()
        for b in self.kafka_cluster.brokers:
            b.resume()
            if not b.running():
                self._restart(b)
                done.append(f"kafka broker {b.node_id} restarted")
        for d in self.spark_cluster.daemons:
            if not d.running():
                self._restart(d)
                done.append(f"spark {d.role} restarted")
        if not _process.wait_until(lambda: len(self.kafka_cluster.live_brokers()) == 3, 60, 1.0):
            raise InfrastructureError("kafka cluster", "not all 3 brokers registered after the restore")
        return done

    def close(self) -> None:
        """Recover everything (processes restarted), nothing else to stop."""
        self.recover_all()


def cluster_session(settings: Any) -> tuple[ClusterServices, InfrastructureManager, ClusterInjector]:
    """The running cluster, a manager on it (external backend) and an injector; raises when it is not up."""
    cluster = ClusterServices.from_state(settings)
    if cluster.kafka is None or not all(s.healthy for s in cluster.status()):
        raise InfrastructureError("cluster", "the cluster is not up or not healthy",
                                  hint="pipeline-props cluster up (then cluster status)")
    infra = InfrastructureManager(cluster.settings_for_pipeline())
    infra.start_services()
    return cluster, infra, ClusterInjector(cluster, infra)


def cluster_pipeline(infra: InfrastructureManager, injector: ClusterInjector, *,
                     topic_config: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """The reference pipeline for cluster faults: 1 partition, hooked sink, failover-proof producer.

    ``topic_config`` creates each namespace's topic with these topic-level
    settings (``min.insync.replicas``, ``unclean.leader.election.enable``...),
    which override the brokers' defaults for that topic alone.
    """
    from pipeline_props.pipeline.reference import ReferencePipeline

    class TopicConfigPipeline(ReferencePipeline):
        def prepare(self, namespace: str) -> None:
            if topic_config:
                admin.create_topics(self.infra.kafka_bootstrap, namespace, partitions=self.partitions,
                                    config=topic_config)
            super().prepare(namespace)

    kwargs.setdefault("producer_config", dict(CLUSTER_PRODUCER_CONFIG))
    kwargs.setdefault("sink_factory", injector.sink_factory())
    return TopicConfigPipeline(infra, partitions=1, **kwargs)
