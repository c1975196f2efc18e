"""The built-in fault scenarios: one named fault each, injected at its failure point, then healed.

Each registers itself in :data:`~pipeline_props.faults.registry.FAULT_SCENARIOS`
with the seed's fields (description, component, failure point, expected
behaviour, recovery). :func:`~pipeline_props.faults.runner.run_scenario` runs one
through the :class:`~pipeline_props.faults.harness.FaultHarness`: it recovers,
resends what the producer could not confirm (same file_index and record
positions, so the sink's ON CONFLICT dedupes), lets the stream catch up, runs
dbt and checks: nothing lost, nothing duplicated, tables == oracle.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipeline_props.errors import UsageError
from pipeline_props.faults.driver import run_separate_driver
from pipeline_props.faults.harness import Batch
from pipeline_props.faults.registry import FAULT_SCENARIOS, ScenarioContext, scenario
from pipeline_props.faults.stream_run import StreamOutcome


def _produce(ctx: ScenarioContext, k: int) -> Batch:
    b = ctx.harness.produce(ctx.dataset(k))
    ctx.expect_failure(f"produce batch {k}", b.status == "acked", b.error)
    return b


def _stream(ctx: ScenarioContext, label: str = "stream", timeout: float | None = None) -> StreamOutcome:
    out = ctx.harness.run_stream(timeout)
    ctx.expect_failure(label, out.ok, out.error)
    return out


def _stream_under_fault(ctx: ScenarioContext, label: str, service: str, mode: str) -> None:
    """Produce batch 0, arm the service fault, stream over it, recover."""
    _produce(ctx, 0)
    eid = ctx.injector.inject_service_failure(service, mode)
    _stream(ctx, label)
    ctx.recover(eid)


def _on_both_links(ctx: ScenarioContext, mode: str, **params: Any) -> list[str]:
    """The same network fault between the pipeline and Kafka, then Postgres; their error ids."""
    return [ctx.injector.inject_network_failure(target, mode, **params) for target in ("kafka", "postgres")]


def _recover(ctx: ScenarioContext, error_ids: list[str]) -> None:
    for eid in error_ids:
        ctx.recover(eid)


@scenario("kafka_service_stop", "Kafka broker SIGKILLed while a file is produced, restarted on the same log dir",
          "service", "kafka", "during produce", "produce fails loudly; acked data survives the crash",
          "restart the broker, rerun the producer for unconfirmed files")
def _kafka_service_stop(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    eid = ctx.injector.inject_service_failure("kafka", "kill")
    _produce(ctx, 1)
    ctx.recover(eid)


@scenario("kafka_pause", "Kafka broker SIGSTOPped longer than the client timeouts, then SIGCONT",
          "service", "kafka", "during produce and stream", "producer and query time out loudly",
          "SIGCONT; rerun producer and query")
def _kafka_pause(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    eid = ctx.injector.inject_service_failure("kafka", "pause")
    _produce(ctx, 1)
    _stream(ctx, "stream while paused", timeout=40)
    ctx.recover(eid)


@scenario("postgres_restart", "Postgres stopped in immediate mode (a crash) mid-stream, restarted",
          "service", "postgres", "staging write", "the micro-batch fails; nothing half-written",
          "restart Postgres; restart the query on its checkpoint")
def _postgres_restart(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    _produce(ctx, 1)
    eid = ctx.injector.inject_service_failure("postgres", "stop")
    _stream(ctx, "stream while Postgres is down")
    ctx.recover(eid)


@scenario("spark_driver_crash", "driver-side crash in foreachBatch before the warehouse write",
          "service", "spark", "before the staging write", "the query fails; the batch is not committed",
          "restart the query on the same checkpoint: the batch is replayed")
def _spark_driver_crash(ctx: ScenarioContext) -> None:
    _stream_under_fault(ctx, "stream with a crashing driver", "spark", "crash_before_write")


@scenario("spark_crash_after_write", "crash after the warehouse COMMIT, before Spark's checkpoint commit",
          "service", "spark", "after the staging commit, before the checkpoint commit",
          "the query fails; the batch is in the warehouse but not in the checkpoint",
          "restart the query: the batch is replayed and the ledger/ON CONFLICT make it a no-op")
def _spark_crash_after_write(ctx: ScenarioContext) -> None:
    _stream_under_fault(ctx, "stream crashing after the write", "spark", "crash_after_write")


@scenario("spark_query_stop", "the streaming query is stopped while a micro-batch is in flight",
          "service", "spark", "mid-batch", "the query ends without committing the batch",
          "restart the query on the same checkpoint")
def _spark_query_stop(ctx: ScenarioContext) -> None:
    _stream_under_fault(ctx, "stream stopped mid-batch", "spark", "query_stop")


@scenario("producer_crash", "the producer is killed mid-file (nothing flushed), then rerun",
          "service", "producer", "mid-file", "part of the file may be in Kafka, unconfirmed",
          "rerun the producer on the same file (same positions): the sink dedupes")
def _producer_crash(ctx: ScenarioContext) -> None:
    eid = ctx.injector.inject_service_failure("producer", "crash", after=max(1, ctx.rows // 2))
    _produce(ctx, 0)
    ctx.recover(eid)
    _stream(ctx, "stream over the partial file")


@scenario("network_latency", "0.3 s added to every chunk between the pipeline and Kafka and Postgres",
          "network", "kafka+postgres", "produce and stream", "slower, still correct",
          "remove the delay")
def _network_latency(ctx: ScenarioContext) -> None:
    faults = _on_both_links(ctx, "latency", delay_s=0.3)
    _produce(ctx, 0)
    _stream(ctx, "stream under latency", timeout=180)
    _recover(ctx, faults)


@scenario("network_partition", "full cut between the pipeline and Kafka and Postgres (connections reset)",
          "network", "kafka+postgres", "produce and stream", "producer and query fail loudly",
          "heal the network; rerun the producer for unconfirmed files and the query")
def _network_partition(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    faults = _on_both_links(ctx, "cut")
    _produce(ctx, 1)
    _stream(ctx, "stream while partitioned", timeout=40)
    _recover(ctx, faults)


@scenario("postgres_partition", "cut between the Spark sink and Postgres only, mid-stream",
          "network", "postgres", "staging write", "the micro-batch fails loudly",
          "heal; restart the query on its checkpoint")
def _postgres_partition(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    eid = ctx.injector.inject_network_failure("postgres", "cut")
    _stream(ctx, "stream while Postgres is unreachable")
    ctx.recover(eid)


@scenario("packet_loss", "30% retransmission stalls and 2% connection resets to Kafka and Postgres",
          "network", "kafka+postgres", "produce and stream", "retries; possibly failures, never loss",
          "heal; rerun what failed")
def _packet_loss(ctx: ScenarioContext) -> None:
    faults = _on_both_links(ctx, "packet_loss", rate=0.3, reset_rate=0.02)
    _produce(ctx, 0)
    _stream(ctx, "stream under packet loss", timeout=120)
    _recover(ctx, faults)


@scenario("kafka_ack_loss", "every produce request reaches the broker twice, the second ack is lost",
          "network", "producer", "produce acks", "the idempotent producer's retries are deduplicated",
          "none needed: idempotence")
def _kafka_ack_loss(ctx: ScenarioContext) -> None:
    eid = ctx.injector.inject_network_failure("kafka", "ack_loss")
    _produce(ctx, 0)
    ctx.recover(eid)
    assert ctx.injector.kafka_proxy is not None
    ctx.notes.append(f"produce requests replayed: {ctx.injector.kafka_proxy.stats.replayed_requests}")


@scenario("corrupt_messages", "bad JSON, wrong schema, truncated and empty values written into the topic",
          "data", "kafka topic", "between good messages", "MALFORMED_ROW rows; the stream never stops",
          "none needed")
def _corrupt_messages(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    added = ctx.harness.inject_corrupt_messages()
    ctx.observed.append(f"{len(added)} corrupt message(s) injected")
    _produce(ctx, 1)
    out = _stream(ctx, "stream over corrupt messages")
    if not out.ok:
        ctx.notes.append("the stream stopped on corrupt messages: that is a failure")
        raise AssertionError(f"corrupt messages stopped the stream: {out.error}")


@scenario("disk_full", "the checkpoint folder's file system (a 4 MB tmpfs) is filled up",
          "resource", "spark checkpoint", "offset/commit log write", "the query fails loudly",
          "free the space; restart the query on its checkpoint")
def _disk_full(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    _stream(ctx, "stream before the disk fills")
    _produce(ctx, 1)
    eid = ctx.injector.inject_disk_full(ctx.harness.checkpoint_dir)
    _stream(ctx, "stream with a full disk")
    ctx.recover(eid)


@scenario("postgres_disk_full", "the staging tables sit on a Postgres tablespace on an 8 MB tmpfs, "
          "which is filled up (WAL stays in the main data dir)",
          "resource", "postgres staging", "staging table extension in the sink's write",
          "the micro-batch fails loudly (could not extend file: No space left on device)",
          "free the space; restart the query on its checkpoint: the batch is replayed")
def _postgres_disk_full(ctx: ScenarioContext) -> None:
    ts = ctx.harness.tablespace
    if ts is None:
        raise UsageError("postgres_disk_full needs prepare(staging_tablespace=...)")
    _produce(ctx, 0)
    _stream(ctx, "stream before the tablespace fills")
    _produce(ctx, 1)
    server_log = ctx.injector.postgres.data_dir / "server.log"  # the live log (PostgresServer.start)
    log_start = _file_size(server_log)
    eid = ctx.injector.inject_disk_full(ts.directory)
    out = _stream(ctx, "stream with the tablespace full")
    enospc = [ln.strip() for ln in _read_from(server_log, log_start).splitlines()
              if "No space left on device" in ln]
    ctx.notes.append(f"postgres log while full: {len(enospc)} 'No space left on device' line(s)"
                     + (f", first: {enospc[0][:300]}" if enospc else ""))
    if out.ok:
        raise AssertionError(f"the stream succeeded with tablespace {ts.name} full: the fault did nothing")
    if not enospc and "No space left on device" not in out.error:
        raise AssertionError(f"the stream failed, but not on the full tablespace: {out.error[:300]}")
    ctx.recover(eid)


@scenario("cpu_hog", "two busy processes compete for the 2 cores while the pipeline runs",
          "resource", "host cpu", "produce and stream", "slower, still correct", "kill the hogs")
def _cpu_hog(ctx: ScenarioContext) -> None:
    eid = ctx.injector.inject_cpu_hog(seconds=120, processes=2)
    _produce(ctx, 0)
    _stream(ctx, "stream under CPU pressure", timeout=240)
    ctx.recover(eid)


#: Driver heap and the free heap left to the transform under memory_pressure.
LOW_MEMORY_DRIVER = "480m"
LOW_MEMORY_HEADROOM_MB = 16


@scenario("memory_pressure", f"the transform runs in a separate driver process with a {LOW_MEMORY_DRIVER} heap "
          f"filled with live ballast down to {LOW_MEMORY_HEADROOM_MB} MB free",
          "resource", "spark driver memory", "whole batch",
          "the driver dies of OutOfMemoryError (loudly) or gets through, never loses",
          "rerun the query with normal memory on the same checkpoint")
def _memory_pressure(ctx: ScenarioContext) -> None:
    _produce(ctx, 0)
    h = ctx.harness
    run = run_separate_driver(bootstrap=ctx.injector.kafka_bootstrap, topic=h.ns,
                              checkpoint=str(h.checkpoint_dir), dsn=ctx.injector.postgres_dsn, schema=h.schema,
                              memory=LOW_MEMORY_DRIVER, ballast_headroom_mb=LOW_MEMORY_HEADROOM_MB)
    ballast = run.line("PP-BALLAST") or "PP-BALLAST: never reached"
    ctx.expect_failure("transform in a low-memory driver", run.returncode == 0, run.why)
    ctx.notes.append(f"low-memory driver: {ballast[len('PP-BALLAST '):]}; exit {run.returncode} after "
                     f"{run.seconds:.0f} s")
    ctx.recovery_started = time.monotonic()


@scenario("spark_driver_kill", "the driver process (Python and its JVM) SIGKILLed mid-batch, before the write",
          "service", "spark", "mid-batch, before the staging write",
          "the driver is gone at once: no shutdown hook, no checkpoint commit",
          "rerun the query on the same checkpoint: the batch is replayed")
def _spark_driver_kill(ctx: ScenarioContext) -> None:
    _kill_driver(ctx, "before_write")


@scenario("spark_driver_kill_after_write", "the driver process SIGKILLed after the warehouse COMMIT, "
          "before Spark's checkpoint commit", "service", "spark",
          "after the staging commit, before the checkpoint commit",
          "the driver is gone; the batch is in the warehouse but not in the checkpoint",
          "rerun the query on the same checkpoint: the replay is a no-op (ledger)")
def _spark_driver_kill_after_write(ctx: ScenarioContext) -> None:
    _kill_driver(ctx, "after_write")


def _kill_driver(ctx: ScenarioContext, kill_at: str) -> None:
    _produce(ctx, 0)
    eid = ctx.injector.inject_service_failure("spark", f"driver_kill_{kill_at}")
    out = _stream(ctx, f"stream in a driver killed {kill_at.replace('_', ' ')}")
    staged, _ = ctx.harness.staging_positions()
    ctx.notes.append(f"{len(staged)} record(s) staged when the driver died")
    if not out.error.startswith("driver process SIGKILLed"):
        raise AssertionError(f"the driver was not killed {kill_at}: the fault did nothing ({out.error})")
    ctx.recover(eid)


#: Scenarios that SIGKILL a driver process of their own (faults/driver.py): it runs the
#: reference transform and StagingSink, so only a pipeline with that sink has one to kill.
NEEDS_DRIVER_PROCESS = frozenset({"spark_driver_kill", "spark_driver_kill_after_write"})


#: FaultHarness.prepare() arguments of the scenarios that need a resource set up first.
PREPARE_ARGS: dict[str, dict[str, str]] = {
    "disk_full": {"checkpoint_tmpfs": "4m"},
    "postgres_disk_full": {"staging_tablespace": "8m"},
}


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    """The text of ``path`` from byte ``offset`` on ('' when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


__all__ = ["FAULT_SCENARIOS", "LOW_MEMORY_DRIVER", "LOW_MEMORY_HEADROOM_MB", "NEEDS_DRIVER_PROCESS", "PREPARE_ARGS"]
