"""A 3-broker Apache Kafka KRaft cluster from the jar cache: three JVMs, each broker and controller.

Every node runs ``process.roles=broker,controller`` (combined mode) with a
static quorum of the three controllers, so the cluster survives the loss of
any one node: a new controller leader and new partition leaders are elected
by the remaining two. Replication defaults to 3 copies and
``min.insync.replicas=2``: an ``acks=all`` write is acknowledged only once two
replicas have it, so a leader killed right after an ack loses nothing.

Failure detection is tightened for tests (``broker.session.timeout.ms`` 4 s,
heartbeats every second): a SIGKILLed leader is fenced and replaced within
about 5 s instead of 9-18 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline_props.errors import InfrastructureError
from pipeline_props.infra import _process
from pipeline_props.infra.kafka import _LOG4J2, KafkaBroker, new_cluster_id

#: Node ids of the cluster's brokers.
NODE_IDS: tuple[int, ...] = (1, 2, 3)

_CLUSTER_PROPERTIES = """\
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dir}
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000
replica.lag.time.max.ms=10000
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
"""


@dataclass
class ClusterBroker(KafkaBroker):
    """One node of a :class:`KafkaCluster` (broker and controller in one JVM)."""

    node_id: int = 1
    voters: str = ""
    cluster_id: str = ""

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    def _format_storage(self) -> None:
        props = self.data_dir / "server.properties"
        log_dir = self.data_dir / "kraft-logs"
        props.write_text(_CLUSTER_PROPERTIES.format(
            node_id=self.node_id, voters=self.voters, port=self.port,
            controller_port=self.controller_port, log_dir=log_dir))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2.format(level=self.log_level))
        if (log_dir / "meta.properties").exists():
            return
        proc = subprocess.run(
            self._base_cmd("kafka.tools.StorageTool") + [
                "format", "-t", self.cluster_id, "-c", str(props), "--ignore-formatted"],
            capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise InfrastructureError(
                f"kafka broker {self.node_id}", f"formatting KRaft storage failed: {proc.stderr.strip()[-800:]}")

    def spawn(self) -> None:
        """Start the JVM without waiting: a node is ready only once a quorum of controllers runs."""
        if self.running():
            return
        name = f"kafka broker {self.node_id}"
        _process.ensure_port_free(name, self.port, "cluster_kafka_port", "E2E_CLUSTER_KAFKA_PORT")
        _process.ensure_port_free(name, self.controller_port, "cluster_kafka_port", "E2E_CLUSTER_KAFKA_PORT")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._format_storage()
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== starting kafka broker {self.node_id} at {time.ctime()} ===\n".encode())
            proc = subprocess.Popen(
                self._base_cmd("kafka.Kafka") + [str(self.data_dir / "server.properties")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = proc.pid
        self.create_time = _process.process_create_time(proc.pid)

    def start(self, timeout: float = 90.0) -> None:
        """(Re)start this node and wait until it answers a metadata request (the others must run)."""
        self.spawn()
        if not _process.wait_until(lambda: self.healthy() or not self.running(), timeout, 0.5):
            raise InfrastructureError(f"kafka broker {self.node_id}", f"not ready after {timeout:.0f} s",
                                      log_path=self.log_path)
        if not self.running():
            self.pid = None
            raise InfrastructureError(f"kafka broker {self.node_id}",
                                      f"exited at start:\n{_process.tail(self.log_path)}", log_path=self.log_path)


@dataclass
class KafkaCluster:
    """Three :class:`ClusterBroker` nodes on ``base_port`` (+2 per node; controllers on the odd ports)."""

    home: Path
    root: Path
    base_port: int = 27092
    heap: str = "384m"
    cluster_id: str = field(default_factory=new_cluster_id)
    brokers: list[ClusterBroker] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.brokers:
            voters = ",".join(f"{n}@127.0.0.1:{self._ports(n)[1]}" for n in NODE_IDS)
            self.brokers = [
                ClusterBroker(home=self.home, data_dir=self.root / f"broker{n}", port=self._ports(n)[0],
                              controller_port=self._ports(n)[1], heap=self.heap, node_id=n,
                              voters=voters, cluster_id=self.cluster_id)
                for n in NODE_IDS]

    def _ports(self, node_id: int) -> tuple[int, int]:
        port = self.base_port + 2 * (node_id - 1)
        return port, port + 1

    @property
    def bootstrap_servers(self) -> str:
        """All three client addresses (a client survives any one of them being down)."""
        return ",".join(b.bootstrap_servers for b in self.brokers)

    def broker(self, node_id: int) -> ClusterBroker:
        """The node with id ``node_id``."""
        for b in self.brokers:
            if b.node_id == node_id:
                return b
        raise InfrastructureError("kafka cluster", f"no broker with node id {node_id}")

    def start(self, timeout: float = 120.0) -> None:
        """Start the three nodes together and wait until each answers and sees all three brokers."""
        for b in self.brokers:
            b.spawn()
        if not _process.wait_until(lambda: self._all_ready() or any(not b.running() for b in self.brokers),
                                   timeout, 1.0):
            raise InfrastructureError("kafka cluster", f"not ready after {timeout:.0f} s "
                                      f"(brokers answering: {self._answering()})", log_path=self.root)
        dead = [b for b in self.brokers if not b.running()]
        if dead:
            raise InfrastructureError(f"kafka broker {dead[0].node_id}", "exited at start:\n"
                                      + _process.tail(dead[0].log_path), log_path=dead[0].log_path)

    def _answering(self) -> list[int]:
        return [b.node_id for b in self.brokers if b.running() and b.healthy(timeout=2)]

    def _all_ready(self) -> bool:
        return all(b.running() for b in self.brokers) and len(self.live_brokers()) == len(self.brokers)

    def live_brokers(self, timeout: float = 3.0) -> set[int]:
        """Node ids the cluster's metadata lists as registered brokers now."""
        from confluent_kafka.admin import AdminClient

        try:
            admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0,
                                 "socket.connection.setup.timeout.ms": 2000})
            return set(admin.list_topics(timeout=timeout).brokers)
        except Exception:  # noqa: BLE001 - a probe: no answer is the answer
            return set()

    def partition_leaders(self, topic: str, timeout: float = 10.0) -> dict[int, int]:
        """partition -> node id of its leader now (-1: none), from a metadata request."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        try:
            md = admin.list_topics(topic, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - KafkaException, a timeout
            raise InfrastructureError("kafka cluster", f"no metadata for topic {topic}: {exc}") from None
        if topic not in md.topics or md.topics[topic].error is not None:
            raise InfrastructureError("kafka cluster", f"topic {topic} is unknown to the cluster")
        return {p: m.leader for p, m in md.topics[topic].partitions.items()}

    def partition_replicas(self, topic: str, timeout: float = 10.0) -> dict[int, tuple[list[int], list[int]]]:
        """partition -> (replicas, in-sync replicas), from a metadata request."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        md = admin.list_topics(topic, timeout=timeout)
        return {p: (list(m.replicas), list(m.isrs)) for p, m in md.topics[topic].partitions.items()}

    def wait_for_leaders(self, topic: str, *, avoid: Iterable[int] = (), timeout: float = 60.0) -> dict[int, int]:
        """Wait until every partition of ``topic`` has a live leader not in ``avoid``; return them."""
        avoid = set(avoid)
        found: dict[int, int] = {}

        def elected() -> bool:
            nonlocal found
            try:
                found = self.partition_leaders(topic, timeout=5)
            except InfrastructureError:
                return False
            return bool(found) and all(leader >= 0 and leader not in avoid for leader in found.values())

        if not _process.wait_until(elected, timeout, 0.5):
            raise InfrastructureError("kafka cluster", f"topic {topic}: no new leader within {timeout:.0f} s "
                                      f"(leaders now: {found})")
        return found

    def running(self) -> list[int]:
        """Node ids whose JVM runs."""
        return [b.node_id for b in self.brokers if b.running()]

    def stop(self) -> None:
        """Stop every node we started (SIGTERM, then SIGKILL), all at once (a lone survivor waits on quorum)."""
        for b in self.brokers:
            b.resume()
        for b in self.brokers:
            if b.pid is not None and _process.pid_alive(b.pid, b.create_time):
                try:
                    os.kill(b.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for b in self.brokers:
            b.stop(timeout=30)
