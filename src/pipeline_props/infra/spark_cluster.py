"""A Spark standalone cluster from the pinned pyspark: one master and two 1-core workers, own JVMs.

Started with pyspark's own ``bin/spark-class`` (``org.apache.spark.deploy.master.Master``
and ``...deploy.worker.Worker``), so the cluster runs exactly the Spark the
driver links against. The master keeps its state in a recovery directory
(``spark.deploy.recoveryMode=FILESYSTEM``): a master killed and restarted
reads back its workers and running applications and tells them it is back,
so a running streaming query survives a master restart (docs/cluster.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_props.errors import InfrastructureError
from pipeline_props.infra import _process

#: Seconds after which the master declares a silent worker dead (Spark's default is 60).
WORKER_TIMEOUT_S = 10


def spark_home() -> Path:
    """The pyspark package folder: it has ``bin/spark-class`` and ``jars/``."""
    try:
        import pyspark
    except ImportError as exc:  # pragma: no cover - pyspark is a dependency
        raise InfrastructureError("spark", f"pyspark is not importable: {exc}") from exc
    home = Path(pyspark.__file__).parent
    if not (home / "bin" / "spark-class").exists():
        raise InfrastructureError("spark", f"{home}/bin/spark-class is missing", hint="pip install --force-reinstall pyspark")
    return home


@dataclass
class SparkDaemon:
    """One master or worker JVM we started (pid and its creation time, to never signal a reused pid)."""

    role: str  # "master", "worker1", "worker2"
    port: int
    ui_port: int
    log_path: Path
    args: list[str]
    pid: int | None = None
    create_time: float | None = None

    @property
    def name(self) -> str:
        return f"spark {self.role}"

    def running(self) -> bool:
        return self.pid is not None and _process.pid_alive(self.pid, self.create_time)

    def spawn(self, env: dict[str, str]) -> None:
        """Start the JVM (spark-class execs java: the pid is the JVM's)."""
        if self.running():
            return
        for port, what in ((self.port, "port"), (self.ui_port, "web UI port")):
            _process.ensure_port_free(self.name, port, f"cluster_spark_port ({what})", "E2E_CLUSTER_SPARK_PORT")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== starting {self.name} at {time.ctime()} ===\n".encode())
            proc = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *self.args], env=env,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.pid = proc.pid
        self.create_time = _process.process_create_time(proc.pid)

    def kill(self) -> None:
        """SIGKILL the daemon's process group: a worker's executors die with it (a lost machine)."""
        if self.pid is not None and self.running():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _process.wait_until(lambda: not _group_alive(self.pid), 20)  # type: ignore[arg-type]
            _process.terminate(self.pid, self.create_time, timeout=0)
        self._wait_ports_released()
        self.pid = self.create_time = None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the daemon (SIGKILL after ``timeout``), then make sure its executors are gone too."""
        if self.pid is not None:
            pgid = self.pid
            _process.terminate(self.pid, self.create_time, timeout=timeout)
            if _group_alive(pgid):
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _process.wait_until(lambda: not _group_alive(pgid), 10)
        self._wait_ports_released()
        self.pid = self.create_time = None

    def _wait_ports_released(self, timeout: float = 15.0) -> None:
        _process.wait_until(lambda: not any(_process.port_open(p) for p in (self.port, self.ui_port)), timeout)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


@dataclass
class SparkStandalone:
    """Master on ``base_port``, workers on +1 and +2; web UIs on +3 (master), +4, +5."""

    root: Path
    base_port: int = 27077
    worker_cores: int = 1
    worker_memory: str = "1536m"
    daemon_memory: str = "256m"
    daemons: list[SparkDaemon] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.daemons:
            return
        p = self.base_port
        logs = self.root / "logs"
        self.daemons = [SparkDaemon("master", p, p + 3, logs / "spark-master.log", [
            "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(p),
            "--webui-port", str(p + 3)])]
        for i in (1, 2):
            self.daemons.append(SparkDaemon(f"worker{i}", p + i, p + 3 + i, logs / f"spark-worker{i}.log", [
                "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--port", str(p + i),
                "--webui-port", str(p + 3 + i), "--cores", str(self.worker_cores),
                "--memory", self.worker_memory, "--work-dir", str(self.root / f"work{i}"), self.master_url]))

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.base_port}"

    @property
    def master(self) -> SparkDaemon:
        return self.daemons[0]

    @property
    def workers(self) -> list[SparkDaemon]:
        return self.daemons[1:]

    def daemon(self, role: str) -> SparkDaemon:
        """The daemon called ``role`` (master, worker1, worker2)."""
        for d in self.daemons:
            if d.role == role:
                return d
        raise InfrastructureError("spark cluster", f"no daemon {role!r}")

    def env(self) -> dict[str, str]:
        """The environment of the daemons (and so of the executors the workers start)."""
        opts = (f"-Dspark.deploy.recoveryMode=FILESYSTEM -Dspark.deploy.recoveryDirectory={self.root / 'recovery'} "
                f"-Dspark.worker.timeout={WORKER_TIMEOUT_S} -Duser.timezone=UTC")
        return {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1",
                "SPARK_DAEMON_MEMORY": self.daemon_memory, "SPARK_DAEMON_JAVA_OPTS": opts,
                # Python on the workers is the project's venv (same machine, same path).
                "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}

    def start(self, timeout: float = 120.0) -> None:
        """Start master then workers; wait until the master lists both workers ALIVE."""
        (self.root / "recovery").mkdir(parents=True, exist_ok=True)
        env = self.env()
        self.master.spawn(env)
        if not _process.wait_until(lambda: self.master_state() is not None or not self.master.running(), timeout, 0.5):
            raise InfrastructureError("spark master", f"no answer on its web UI after {timeout:.0f} s",
                                      log_path=self.master.log_path)
        for w in self.workers:
            w.spawn(env)
        self.wait_for_workers(len(self.workers), timeout)

    def restart(self, role: str, timeout: float = 120.0) -> None:
        """Start one daemon again (after a kill); for a worker, wait until the master counts it."""
        d = self.daemon(role)
        d.spawn(self.env())
        if role == "master":
            if not _process.wait_until(lambda: (self.master_state() or {}).get("status") == "ALIVE", timeout, 0.5):
                raise InfrastructureError("spark master", f"not ALIVE {timeout:.0f} s after its restart",
                                          log_path=d.log_path)
            # workers recovered from its state, or started while it was down, register again
            self.wait_for_workers(sum(w.running() for w in self.workers), timeout)
        else:
            self.wait_for_workers(len(self.workers), timeout)

    def wait_for_workers(self, n: int, timeout: float) -> None:
        """Wait until the master has ``n`` ALIVE workers."""
        if not _process.wait_until(lambda: self.alive_workers() >= n, timeout, 0.5):
            raise InfrastructureError("spark master", f"{self.alive_workers()} of {n} workers ALIVE after "
                                      f"{timeout:.0f} s", log_path=self.master.log_path)

    def master_state(self, timeout: float = 3.0) -> dict[str, Any] | None:
        """The master's JSON status (its web UI's /json/), or None when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.master.ui_port}/json/", timeout=timeout) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def alive_workers(self) -> int:
        """How many workers the master lists as ALIVE (0 when it does not answer)."""
        state = self.master_state() or {}
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def stop(self) -> None:
        """Stop the workers (and their executors), then the master."""
        for d in self.workers:
            d.stop()
        self.master.stop()
