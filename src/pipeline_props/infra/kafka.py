"""A single-node Apache Kafka 4.x broker in KRaft mode, run from the jar cache as a JVM process."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipeline_props.errors import InfrastructureError
from pipeline_props.infra import _process
from pipeline_props.infra.jars import kafka_classpath

_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dir}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
num.network.threads=2
num.io.threads=4
"""

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRefs = stdout
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.controller.name = org.apache.kafka
logger.controller.level = {level}
"""


def new_cluster_id() -> str:
    """A random KRaft cluster id, as Kafka's ``Uuid.randomUuid()`` makes it.

    URL-safe base64 of 16 random bytes, redrawn while it starts with ``-``:
    kafka-storage's argument parser takes such a value for an option
    ("argument --cluster-id/-t: expected one argument"), one start in 64.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class KafkaBroker:
    """One broker process. ``data_dir`` holds its config and log dir and survives restarts."""

    home: Path
    data_dir: Path
    port: int = 29092
    controller_port: int = 29093
    heap: str = "512m"
    log_level: str = "WARN"
    pid: int | None = None
    create_time: float | None = None
    #: Optional second listener (listen port, advertised port) for the fault proxy:
    #: clients that bootstrap through a proxy on the advertised port stay behind it.
    proxied_listener: tuple[int, int] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return Path(self.home) / "logs" / "kafka.log"

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise InfrastructureError(
                "kafka", "no Java runtime found (Kafka 4 needs Java 17+)",
                hint="apt-get install -y openjdk-17-jre-headless, or set JAVA_HOME",
            )
        return java

    def _base_cmd(self, main: str) -> list[str]:
        return [
            self._java(), f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp", kafka_classpath(self.home), main,
        ]

    def _format_storage(self) -> None:
        props = self.data_dir / "server.properties"
        log_dir = self.data_dir / "kraft-logs"
        text = _SERVER_PROPERTIES.format(port=self.port, controller_port=self.controller_port,
                                         log_dir=log_dir)
        if self.proxied_listener is not None:
            listen, advertised = self.proxied_listener
            text = (text.replace("\nadvertised.listeners=PLAINTEXT://127.0.0.1:{}".format(self.port),
                                 f"\nadvertised.listeners=PLAINTEXT://127.0.0.1:{self.port},"
                                 f"PROXIED://127.0.0.1:{advertised}")
                    .replace(f"\nlisteners=PLAINTEXT://127.0.0.1:{self.port},",
                             f"\nlisteners=PLAINTEXT://127.0.0.1:{self.port},PROXIED://127.0.0.1:{listen},")
                    .replace("PLAINTEXT:PLAINTEXT\n", "PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT\n"))
        props.write_text(text)
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2.format(level=self.log_level))
        if (log_dir / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        proc = subprocess.run(
            self._base_cmd("kafka.tools.StorageTool") + [
                "format", "-t", cluster_id, "-c", str(props), "--ignore-formatted"],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise InfrastructureError(
                "kafka", f"formatting KRaft storage failed: {proc.stderr.strip()[-800:]}")

    def start(self, timeout: float = 90.0) -> None:
        """Start the broker (formatting storage on first start) and wait until it answers."""
        if self.running():
            return
        _process.ensure_port_free("kafka", self.port, "kafka_port", "E2E_KAFKA_PORT")
        _process.ensure_port_free(
            "kafka", self.controller_port, "kafka_controller_port", "E2E_KAFKA_CONTROLLER_PORT")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._format_storage()
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== starting kafka broker at {time.ctime()} ===\n".encode())
            proc = subprocess.Popen(
                self._base_cmd("kafka.Kafka") + [str(self.data_dir / "server.properties")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid = proc.pid
        self.create_time = _process.process_create_time(proc.pid)
        if not _process.wait_until(lambda: self.healthy() or proc.poll() is not None, timeout, 0.5):
            self.stop()
            raise InfrastructureError("kafka", f"broker not ready after {timeout:.0f} s",
                                      log_path=self.log_path)
        if proc.poll() is not None:
            self.pid = None
            raise InfrastructureError(
                "kafka", f"broker exited with code {proc.returncode}:\n{_process.tail(self.log_path)}",
                log_path=self.log_path)

    def running(self) -> bool:
        return self.pid is not None and _process.pid_alive(self.pid, self.create_time)

    def healthy(self, timeout: float = 3.0) -> bool:
        """A real metadata request answered by the broker."""
        from confluent_kafka.admin import AdminClient

        try:
            admin = AdminClient({"bootstrap.servers": self.bootstrap_servers,
                                 "socket.connection.setup.timeout.ms": 2000,
                                 "log_level": 0})
            md = admin.list_topics(timeout=timeout)
            return bool(md.brokers)
        except Exception:
            return False

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker we started (SIGTERM, then SIGKILL)."""
        if self.pid is not None:
            self.resume()
            _process.terminate(self.pid, self.create_time, timeout=timeout)
            self._wait_ports_released()
        self.pid = None
        self.create_time = None

    def kill(self) -> None:
        """SIGKILL the broker (a crash); its log dir stays for a restart."""
        if self.pid is not None:
            _process.terminate(self.pid, self.create_time, timeout=0.0, sig=signal.SIGKILL)
            self._wait_ports_released()
        self.pid = None
        self.create_time = None

    def _wait_ports_released(self, timeout: float = 15.0) -> None:
        # The JVM's main thread can be a zombie while its other threads still exit and
        # hold the sockets: a restart right away found the port "in use by another process".
        ports = (self.port, self.controller_port, *(self.proxied_listener[:1] if self.proxied_listener else ()))
        _process.wait_until(lambda: not any(_process.port_open(p) for p in ports), timeout)

    def pause(self) -> None:
        """SIGSTOP: the broker hangs without closing its sockets."""
        if self.running():
            os.kill(self.pid, signal.SIGSTOP)  # type: ignore[arg-type]

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self.running():
            os.kill(self.pid, signal.SIGCONT)  # type: ignore[arg-type]
