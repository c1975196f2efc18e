"""ErrorInjector: inject faults into the real running services, and undo them.

Every fault gets an id; :meth:`ErrorInjector.recover_from_error` undoes it and
:meth:`ErrorInjector.recover_all` (also run by ``__exit__``) undoes whatever is
still active, so a ``with ErrorInjector(...)`` block or a ``finally`` leaves the
services healthy even when a test fails. Only processes this injector started
(the CPU hog) or the local services of the given InfrastructureManager are
signalled, always by pid.

Faults (``kind``):

* ``kafka_kill``: SIGKILL the broker; recovery restarts it on the same log dir.
* ``kafka_pause``: SIGSTOP the broker (hangs with sockets open); recovery SIGCONT.
* ``postgres_stop``: ``pg_ctl stop -m immediate`` (a crash); recovery restarts it.
* ``network_latency`` / ``packet_loss`` / ``network_cut`` / ``kafka_ack_loss``: the
  fault proxies (see :mod:`pipeline_props.faults.proxy`) between the pipeline and
  Kafka (``target="kafka"``) or Postgres (``target="postgres"``).
* ``spark_crash_before_write`` / ``spark_crash_after_write`` / ``spark_query_stop``:
  armed here, fired by the harness' sink wrapper in the next micro-batch (a
  driver-side crash in foreachBatch before the write, or after the warehouse
  COMMIT and before Spark's checkpoint commit); recovery disarms, and the
  harness restarts the query on the same checkpoint.
* ``spark_driver_kill_before_write`` / ``spark_driver_kill_after_write``: armed
  here; the harness' next stream run happens in a driver process of its own
  (:mod:`pipeline_props.faults.driver`), SIGKILLed with its JVM at that point
  of the micro-batch. Recovery disarms; the query reruns on the same checkpoint.
* ``producer_crash``: armed here; the harness' next produce stops after
  ``after`` records, and the producer's queue and in-flight requests are purged
  (the producer process killed mid-file).
* ``disk_full``: fills a tmpfs mounted (by the harness) under the checkpoint
  dir, or under a Postgres tablespace (:meth:`ErrorInjector.tmpfs_tablespace`,
  which moves staging tables onto a tmpfs); recovery removes the filler.
* ``cpu_hog``: a bounded busy process we start; recovery kills it by pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pipeline_props.errors import InfrastructureError, UsageError
from pipeline_props.faults import disk
from pipeline_props.faults.proxy import FaultProxy
from pipeline_props.infra import InfrastructureManager, _process

#: Client-side timeouts the harness gives the pipeline's clients while faults run
#: (a paused broker must be noticed in seconds, not minutes).
PRODUCER_FAULT_CONFIG: dict[str, Any] = {
    "message.timeout.ms": 8000,
    "request.timeout.ms": 3000,
    "socket.timeout.ms": 3000,
    "retry.backoff.ms": 200,
    "reconnect.backoff.max.ms": 1000,
}

SERVICE_MODES: dict[str, tuple[str, ...]] = {
    "kafka": ("kill", "pause"),
    "postgres": ("stop",),
    "spark": ("crash_before_write", "crash_after_write", "query_stop",
              "driver_kill_before_write", "driver_kill_after_write"),
    "producer": ("crash",),
}
NETWORK_MODES = ("latency", "packet_loss", "cut", "ack_loss")


@dataclass
class ActiveFault:
    """One injected fault that has not been recovered yet."""

    error_id: str
    kind: str
    params: dict[str, Any]
    injected_at: float
    undo: Callable[[], None]
    recovered_at: float | None = None


@dataclass
class SparkFaults:
    """Faults armed for the harness' sink wrapper and producer (read, then consumed, by them)."""

    crash_before_write: bool = False
    crash_after_write: bool = False
    query_stop: bool = False
    #: "before_write" / "after_write": the next stream runs in a separate driver process,
    #: SIGKILLed at that point of the batch (see faults/driver.py)
    driver_kill: str | None = None
    producer_crash_after: int | None = None
    fired: list[str] = field(default_factory=list)


class InjectedCrash(RuntimeError):
    """Raised inside foreachBatch to simulate a driver-side crash."""


class ErrorInjector:
    """Injects and undoes faults on the services of ``infra`` (local backend only).

    With ``proxies=True`` (default) the pipeline's clients should use
    :attr:`kafka_bootstrap` and :attr:`postgres_dsn`, which go through the fault
    proxies; starting the Kafka proxy restarts the broker once with a second
    listener advertised at the proxy's port (``KafkaBroker.proxied_listener``).
    """

    def __init__(self, infra: InfrastructureManager, *, proxies: bool = True,
                 kafka_proxy_ports: tuple[int, int] | None = None,
                 postgres_proxy_port: int | None = None) -> None:
        if infra.kafka is None or infra.postgres is None:
            raise UsageError("fault injection needs the local backend's own Kafka and Postgres "
                             "(it signals their processes)")
        self.infra = infra
        self.kafka = infra.kafka
        self.postgres = infra.postgres
        self.active: dict[str, ActiveFault] = {}
        self.history: list[ActiveFault] = []
        self.armed = SparkFaults()
        self.disk_fill_dir: Path | None = None
        self._proxies = proxies
        kp = kafka_proxy_ports or (self.kafka.port + 2, self.kafka.port + 3)
        self._kafka_listener_port, self._kafka_proxy_port = kp
        self._pg_proxy_port = postgres_proxy_port or (self.postgres.port + 1)
        self.kafka_proxy: FaultProxy | None = None
        self.postgres_proxy: FaultProxy | None = None
        if proxies:
            self._start_proxies()

    # -- addresses the pipeline should use --------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_proxy.address if self.kafka_proxy else self.kafka.bootstrap_servers

    @property
    def postgres_dsn(self) -> str:
        if self.postgres_proxy is None:
            return self.postgres.dsn
        p = self.postgres
        # connect_timeout bounds a connection attempt that a network fault stalls.
        return (f"host=127.0.0.1 port={self.postgres_proxy.port} user={p.user} dbname={p.dbname} "
                "connect_timeout=10")

    def _start_proxies(self) -> None:
        self.postgres_proxy = FaultProxy(self.postgres.port, port=self._pg_proxy_port).start()
        wanted = (self._kafka_listener_port, self._kafka_proxy_port)
        self.kafka_proxy = FaultProxy(self._kafka_listener_port, port=self._kafka_proxy_port,
                                      kafka_framing=True).start()
        if self._broker_has_listener(wanted):
            self.kafka.proxied_listener = wanted  # a broker an earlier injector restarted: adopt it
            return
        self.kafka.proxied_listener = wanted
        self.kafka.stop()
        try:
            self.kafka.start(timeout=self.infra.infra.startup_timeout_s)
        except InfrastructureError:
            # The ports are in the ephemeral range: a client socket can hold one for a moment.
            time.sleep(3)
            self.kafka.stop()
            self.kafka.start(timeout=self.infra.infra.startup_timeout_s)
        self.infra._save_state()  # noqa: SLF001 - the restarted broker has a new pid

    def _broker_has_listener(self, wanted: tuple[int, int]) -> bool:
        try:
            text = (self.kafka.data_dir / "server.properties").read_text()
        except OSError:
            return False
        listen, advertised = wanted
        return (f"PROXIED://127.0.0.1:{listen}" in text and f"PROXIED://127.0.0.1:{advertised}" in text
                and self.kafka.running() and self._kafka_listener_up())

    def _kafka_listener_up(self) -> bool:
        return _process.port_open(self._kafka_listener_port)

    def close(self) -> None:
        """Recover everything, stop the proxies (the broker keeps its extra listener)."""
        try:
            self.recover_all()
        finally:
            for p in (self.kafka_proxy, self.postgres_proxy):
                if p is not None:
                    p.stop()

    def __enter__(self) -> ErrorInjector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- injection -----------------------------------------------------------------
    def _register(self, kind: str, params: dict[str, Any], undo: Callable[[], None]) -> str:
        error_id = f"{kind}-{uuid.uuid4().hex[:8]}"
        fault = ActiveFault(error_id, kind, params, time.monotonic(), undo)
        self.active[error_id] = fault
        self.history.append(fault)
        return error_id

    def inject_service_failure(self, service: str, mode: str, **params: Any) -> str:
        """Crash, hang or stop one service (see SERVICE_MODES); returns the error id."""
        if mode not in SERVICE_MODES.get(service, ()):
            raise UsageError(f"unknown service fault {service}/{mode}; known: {SERVICE_MODES}")
        if service == "kafka" and mode == "kill":
            self.kafka.kill()
            return self._register("kafka_kill", params, self._restart_kafka)
        if service == "kafka" and mode == "pause":
            self.kafka.pause()
            return self._register("kafka_pause", params, self.kafka.resume)
        if service == "postgres":
            self.postgres.stop(mode="immediate")
            return self._register("postgres_stop", params, self._restart_postgres)
        if service == "spark" and mode.startswith("driver_kill_"):
            self.armed.driver_kill = mode.removeprefix("driver_kill_")

            def disarm_kill() -> None:
                self.armed.driver_kill = None

            return self._register(f"spark_{mode}", params, disarm_kill)
        if service == "spark":
            setattr(self.armed, mode, True)

            def disarm() -> None:
                setattr(self.armed, mode, False)

            return self._register(f"spark_{mode}", params, disarm)
        after = int(params.get("after", 1))
        self.armed.producer_crash_after = after

        def disarm_producer() -> None:
            self.armed.producer_crash_after = None

        return self._register("producer_crash", {"after": after}, disarm_producer)

    def inject_network_failure(self, target: str, mode: str, **params: Any) -> str:
        """Latency, packet loss, a full cut or lost Kafka acks between the pipeline and a service."""
        proxy = {"kafka": self.kafka_proxy, "postgres": self.postgres_proxy}.get(target)
        if proxy is None:
            raise UsageError(f"no fault proxy for {target!r} (proxies={self._proxies})")
        if mode not in NETWORK_MODES:
            raise UsageError(f"unknown network fault {mode!r}; known: {NETWORK_MODES}")
        if mode == "latency":
            proxy.set_delay(float(params.get("delay_s", 0.5)))
            undo = lambda: proxy.set_delay(0.0)  # noqa: E731
        elif mode == "packet_loss":
            proxy.set_loss(float(params.get("rate", 0.3)), reset_rate=float(params.get("reset_rate", 0.02)))
            undo = lambda: proxy.set_loss(0.0)  # noqa: E731
        elif mode == "cut":
            proxy.cut()

            def undo() -> None:
                proxy.is_cut = False
        else:
            if target != "kafka":
                raise UsageError("ack_loss is a Kafka fault")
            proxy.replay_produce = True

            def undo() -> None:
                proxy.replay_produce = False
        kind = "kafka_ack_loss" if mode == "ack_loss" else f"{target}_{mode}"
        return self._register(kind, {"target": target, "mode": mode, **params}, undo)

    def inject_disk_full(self, directory: Path, *, keep_bytes: int = 0) -> str:
        """Fill the filesystem of ``directory`` (must be a tmpfs the harness mounted) to the brim,
        or up to ``keep_bytes`` free (faults/disk.py)."""
        undo = disk.fill(directory, keep_bytes=keep_bytes)
        return self._register("disk_full", {"directory": str(directory)}, undo)

    def tmpfs_tablespace(self, schema: str, tables: Sequence[str], *, size: str = "8m") -> disk.TmpfsTablespace:
        """Move ``tables`` of ``schema`` and their indexes onto a tablespace on a ``size`` tmpfs
        (:func:`pipeline_props.faults.disk.create_tmpfs_tablespace`)."""
        return disk.create_tmpfs_tablespace(self.postgres, schema, tables, size=size)

    def drop_tmpfs_tablespace(self, ts: disk.TmpfsTablespace, *, force: bool = False) -> list[str]:
        """Undo :meth:`tmpfs_tablespace` (:func:`pipeline_props.faults.disk.drop_tmpfs_tablespace`)."""
        return disk.drop_tmpfs_tablespace(self.postgres, ts, force=force)

    def inject_cpu_hog(self, seconds: float = 60.0, processes: int = 1) -> str:
        """Start ``processes`` busy loops (each ends by itself after ``seconds``)."""
        code = f"import time\nend = time.monotonic() + {float(seconds)}\nwhile time.monotonic() < end: pass\n"
        procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(processes)]

        def undo() -> None:
            for p in procs:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGKILL)
                p.wait(10)

        return self._register("cpu_hog", {"seconds": seconds, "pids": [p.pid for p in procs]}, undo)

    def inject(self, kind: str, **params: Any) -> str:
        """Inject by kind name (the names :data:`FAULT_KINDS` lists)."""
        if kind not in FAULT_KINDS:
            raise UsageError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        return FAULT_KINDS[kind](self, params)

    # -- recovery ------------------------------------------------------------------
    def recover_from_error(self, error_id: str) -> float:
        """Undo one fault; returns the seconds the undo took (restart time included)."""
        fault = self.active.pop(error_id, None)
        if fault is None:
            raise UsageError(f"no active fault {error_id!r}")
        t0 = time.monotonic()
        fault.undo()
        fault.recovered_at = time.monotonic()
        return fault.recovered_at - t0

    def recover_all(self) -> None:
        """Undo every active fault, newest first; raise the first failure after trying all."""
        first: BaseException | None = None
        for error_id in list(self.active)[::-1]:
            try:
                self.recover_from_error(error_id)
            except BaseException as exc:  # noqa: BLE001 - keep healing the rest
                first = first or exc
        if first is not None:
            raise first

    def restore_services(self, timeout: float = 15.0) -> list[str]:
        """After an infrastructure error: heal everything, then restart a service of ours that does not answer.

        Every active fault is undone and both proxies are healed; a broker or a
        Postgres that is down or does not answer within ``timeout`` is stopped
        (by its pid: it is ours) and started again on the same data dir. Returns
        what was done, for the report; raises InfrastructureError when a
        service does not come back.
        """
        done: list[str] = []
        try:
            self.recover_all()
        except Exception as exc:  # noqa: BLE001 - the restarts below are the remedy
            done.append(f"recover_all failed: {type(exc).__name__}: {str(exc)[:200]}")
        for proxy in (self.kafka_proxy, self.postgres_proxy):
            if proxy is not None:
                proxy.heal()
        self.armed = SparkFaults()
        startup = self.infra.infra.startup_timeout_s
        if not (self.kafka.running() and self.kafka.healthy(timeout=timeout)):
            self.kafka.stop()
            self.kafka.start(timeout=startup)
            self.infra._save_state()  # noqa: SLF001 - new pid on record for `services down`
            done.append("kafka broker restarted (it did not answer a metadata request)")
        if not (self.postgres.running() and self.postgres.healthy()):
            self.postgres.stop(mode="immediate")
            self._restart_postgres()
            done.append("postgres restarted (it did not answer SELECT 1)")
        return done

    def _restart_kafka(self) -> None:
        self.kafka.start(timeout=self.infra.infra.startup_timeout_s)
        self.infra._save_state()  # noqa: SLF001 - new pid on record for `services down`

    def _restart_postgres(self) -> None:
        if not _process.wait_until(lambda: not self.postgres.running(), 30):
            raise InfrastructureError("postgres", "still running after an immediate stop")
        self.postgres.start(timeout=self.infra.infra.startup_timeout_s)


FAULT_KINDS: dict[str, Callable[[ErrorInjector, dict[str, Any]], str]] = {
    "kafka_kill": lambda i, p: i.inject_service_failure("kafka", "kill", **p),
    "kafka_pause": lambda i, p: i.inject_service_failure("kafka", "pause", **p),
    "postgres_stop": lambda i, p: i.inject_service_failure("postgres", "stop", **p),
    "spark_crash_before_write": lambda i, p: i.inject_service_failure("spark", "crash_before_write", **p),
    "spark_crash_after_write": lambda i, p: i.inject_service_failure("spark", "crash_after_write", **p),
    "spark_query_stop": lambda i, p: i.inject_service_failure("spark", "query_stop", **p),
    "spark_driver_kill_before_write": lambda i, p: i.inject_service_failure("spark", "driver_kill_before_write", **p),
    "spark_driver_kill_after_write": lambda i, p: i.inject_service_failure("spark", "driver_kill_after_write", **p),
    "producer_crash": lambda i, p: i.inject_service_failure("producer", "crash", **p),
    "kafka_latency": lambda i, p: i.inject_network_failure("kafka", "latency", **p),
    "postgres_latency": lambda i, p: i.inject_network_failure("postgres", "latency", **p),
    "kafka_packet_loss": lambda i, p: i.inject_network_failure("kafka", "packet_loss", **p),
    "postgres_packet_loss": lambda i, p: i.inject_network_failure("postgres", "packet_loss", **p),
    "kafka_cut": lambda i, p: i.inject_network_failure("kafka", "cut", **p),
    "postgres_cut": lambda i, p: i.inject_network_failure("postgres", "cut", **p),
    "kafka_ack_loss": lambda i, p: i.inject_network_failure("kafka", "ack_loss", **p),
    "cpu_hog": lambda i, p: i.inject_cpu_hog(**p),
}

__all__ = ["FAULT_KINDS", "PRODUCER_FAULT_CONFIG", "ActiveFault", "ErrorInjector", "InjectedCrash",
           "SparkFaults"]
