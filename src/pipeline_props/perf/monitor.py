"""PerformanceMonitor: per-component throughput, latency and resource use of a pipeline run.

Components and what each figure means (one ``component_reports`` entry each):

============  =======================  ==================================  ===========================
component     stages (its windows)     rows                                processes sampled
============  =======================  ==================================  ===========================
producer      ingest                   records read and sent               this Python process
broker        ingest                   messages in the topic               the Kafka JVM (broker pid)
spark         transform                rows Spark read from Kafka          the Spark driver JVM
postgres      model, export            staged rows the marts are built on  postmaster and its children
dbt           model                    staged rows                         this Python process (in-process dbt)
oracle        oracle                   records read                        this Python process
============  =======================  ==================================  ===========================

``seconds`` is the pipeline's own time for the component's stages (its
StageTimings; the stage windows when it reports none), ``rows_per_s`` is
rows / seconds, ``resources`` is CPU (% of one core) and RSS sampled every
``interval`` seconds inside the stage windows (which also hold one-off costs
such as starting the Spark JVM on first use or importing dbt), ``resources_whole_run`` the same
over the whole run (services keep working outside their own stage: Postgres
takes Spark's staging writes during ``transform``, the broker serves Spark's
reads).

Latency (``latency`` section), exact per message when the pipeline has a
Spark checkpoint and a batch ledger (the reference pipeline):

* ``produce_to_staging``: for every message, the ledger's ``committed_at`` of
  the micro-batch that staged it minus the message's Kafka timestamp
  (CreateTime, set by the producer when ``produce()`` was called). The batch of
  a message comes from the checkpoint's ``offsets/<batch_id>`` files (each
  holds the end offset per partition of that batch). Both clocks are this
  machine's wall clock (Postgres ``clock_timestamp()`` and librdkafka).
* ``produce_to_marts``: the end of the dbt stage minus each message's
  timestamp (when the row became visible in the marts: dbt runs once per
  dataset, so this includes waiting for the last record to be produced).

A custom component is added with :meth:`PerformanceMonitor.monitor_custom_component`.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from pipeline_props.errors import UsageError
from pipeline_props.perf.analysis import Thresholds, find_bottlenecks, percentiles, scaling_analysis
from pipeline_props.perf.latency import (
    checkpoint_batch_ends,
    ledger_commit_times,
    read_message_timestamps,
    staging_latencies,
)
from pipeline_props.perf.sampler import ProcessSampler, spark_driver_pid, with_children
from pipeline_props.perf.workloads import builtin_workload

log = logging.getLogger(__name__)

#: component -> (stages it is the main engine of, sampler target)
COMPONENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "producer": (("ingest",), "python"),
    "broker": (("ingest",), "kafka"),
    "spark": (("transform",), "spark"),
    "postgres": (("model", "export"), "postgres"),
    "dbt": (("model",), "python"),
    "oracle": (("oracle",), "python"),
}

Progress = Callable[[str, str], None]


class PerformanceMonitor:
    """Samples the services while a run goes on and turns its figures into performance_metrics.json.

    Typical use (what the runner does)::

        monitor = PerformanceMonitor().start()
        step = monitor.track(progress)          # stage start/done -> time windows
        monitor.watch_services(infra)           # Kafka, Postgres and Spark pids
        ...run the stages, calling step(stage, "start"/"done")...
        latency = monitor.measure_latency(...)  # before the namespace is cleaned up
        report = monitor.pipeline_report(...)
        monitor.stop()
    """

    def __init__(self, *, interval: float = 0.25, thresholds: Thresholds = Thresholds()) -> None:
        self.sampler = ProcessSampler(interval)
        self.sampler.watch("python", [os.getpid()])
        self.thresholds = thresholds
        self.windows: dict[str, list[tuple[float, float]]] = {}
        self.wall_end: dict[str, float] = {}
        self._open: dict[str, float] = {}
        self.custom: dict[str, dict[str, Any]] = {}
        self.started_wall = time.time()
        self.started = time.monotonic()

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> PerformanceMonitor:
        """Start sampling."""
        self.sampler.start()
        return self

    def stop(self) -> None:
        """Stop sampling (idempotent)."""
        self.sampler.stop()

    def __enter__(self) -> PerformanceMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def watch_services(self, infra: Any) -> None:
        """Sample the Kafka broker, the Postgres cluster (postmaster and children) and the Spark driver.

        Uses the pids of a local-backend :class:`InfrastructureManager`; with an
        external backend only the Spark driver (when it runs here) is sampled.
        """
        kafka = getattr(infra, "kafka", None)
        postgres = getattr(infra, "postgres", None)
        if kafka is not None:
            self.sampler.watch("kafka", lambda: [kafka.pid] if kafka.pid else [])
        if postgres is not None:
            self.sampler.watch("postgres", lambda: with_children(postgres.pid), reaped_children=True)
        self.sampler.watch("spark", lambda: [p] if (p := spark_driver_pid()) else [])

    # -- stage windows ------------------------------------------------------
    def begin(self, stage: str) -> None:
        """Mark the start of ``stage``."""
        self._open[stage] = time.monotonic()

    def end(self, stage: str) -> None:
        """Mark the end of ``stage`` (ignored when it did not begin)."""
        started = self._open.pop(stage, None)
        if started is not None:
            self.windows.setdefault(stage, []).append((started, time.monotonic()))
            self.wall_end[stage] = time.time()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """``with monitor.stage("ingest"): ...`` records the window of one stage."""
        self.begin(name)
        try:
            yield
        finally:
            self.end(name)

    def track(self, progress: Progress | None = None) -> Progress:
        """A progress callback (stage, "start" | "done") that records windows and calls ``progress``."""

        def step(stage: str, what: str) -> None:
            if what == "start":
                self.begin(stage)
            elif what == "done":
                self.end(stage)
            if progress is not None:
                progress(stage, what)

        return step

    def stage_seconds(self, stage: str) -> float:
        """Wall seconds spent in ``stage`` (sum of its windows)."""
        return sum(b - a for a, b in self.windows.get(stage, []))

    # -- latency ------------------------------------------------------------
    def measure_latency(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        dsn: str | None = None,
        schema: str | None = None,
        checkpoint_dir: str | Path | None = None,
        marts_done_at: float | None = None,
        max_messages: int = 2_000_000,
    ) -> dict[str, Any]:
        """Produce-to-staging and produce-to-marts latency percentiles (seconds) of ``topic``'s messages.

        Reads every message's timestamp once (up to ``max_messages``) with a
        group-less consumer; see the module docstring for the method. Returns
        ``{"method": ..., "produce_to_staging": {p50, p95, p99, max, count}, ...}``;
        a part that cannot be measured has an ``error`` instead.
        """
        out: dict[str, Any] = {"unit": "seconds",
                               "method": "kafka CreateTime of each message vs the batch_ledger "
                                         "committed_at of its Spark micro-batch (checkpoint offsets); "
                                         "marts: end of the dbt stage vs the same timestamps"}
        try:
            stamps = read_message_timestamps(bootstrap_servers, topic, max_messages=max_messages)
        except Exception as exc:  # noqa: BLE001 - a measurement must not fail the run
            return {**out, "error": f"cannot read message timestamps: {exc}"}
        marts_done_at = marts_done_at if marts_done_at is not None else self.wall_end.get("model")
        if marts_done_at is not None and stamps:
            out["produce_to_marts"] = _rounded(percentiles([marts_done_at - ts for _, _, ts in stamps]))
        if dsn and schema and checkpoint_dir:
            try:
                ends = checkpoint_batch_ends(Path(checkpoint_dir), topic)
                commits = ledger_commit_times(dsn, schema)
                lat = staging_latencies(stamps, ends, commits)
                out["produce_to_staging"] = _rounded(percentiles(lat))
                out["batches"] = len(commits)
                unmatched = len(stamps) - len(lat)
                if unmatched:
                    out["unmatched_messages"] = unmatched
            except Exception as exc:  # noqa: BLE001
                out["produce_to_staging"] = {"count": 0, "error": str(exc)}
        else:
            out["produce_to_staging"] = {"count": 0, "error": "no checkpoint or ledger for this pipeline"}
        return out

    # -- reports ------------------------------------------------------------
    def component_report(self, name: str, rows: int | None, stages: Sequence[str], target: str,
                         seconds: float | None = None) -> dict[str, Any]:
        """One component's figures: rows, seconds, rows/s, resources in its windows and over the run.

        ``seconds`` defaults to the length of the stage windows.
        """
        wins = [w for s in stages for w in self.windows.get(s, [])]
        secs = seconds if seconds is not None else sum(b - a for a, b in wins)
        return {
            "stages": list(stages),
            "process": target,
            "rows": rows,
            "seconds": round(secs, 4),
            "rows_per_s": round(rows / secs, 1) if rows and secs > 0 else None,
            "resources": self.sampler.stats(target, wins).to_dict(),
            "resources_whole_run": self.sampler.stats(target).to_dict(),
        }

    def pipeline_report(
        self,
        *,
        run_id: str,
        rows: Mapping[str, int | None],
        stage_seconds: Mapping[str, float] | None = None,
        latency: Mapping[str, Any] | None = None,
        counts: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The performance_metrics.json document of one run.

        ``rows`` gives the rows of each component (keys of :data:`COMPONENTS`;
        missing ones are left out). ``stage_seconds`` (the pipeline's own
        timings) fill the legacy ``stages`` section; the component windows come
        from :meth:`track`.
        """
        components: dict[str, dict[str, Any]] = {}
        for name, (stages, target) in COMPONENTS.items():
            if name not in rows or not any(s in self.windows for s in stages):
                continue
            if target not in self.sampler.targets:
                continue
            # The pipeline's own stage seconds when it reports them (a window also
            # holds one-off costs around the stage: starting Spark, importing dbt).
            own = [stage_seconds[s] for s in stages if stage_seconds and s in stage_seconds]
            secs = sum(own) if own and len(own) == len(stages) else None
            components[name] = self.component_report(name, rows[name], stages, target, seconds=secs)
        components.update(self.custom)
        total = float((stage_seconds or {}).get("total") or time.monotonic() - self.started)
        legacy_rows = int(rows.get("producer") or rows.get("oracle") or 0)
        timings = dict(stage_seconds or {})
        for stage in self.windows:
            timings.setdefault(stage, self.stage_seconds(stage))
        timings.setdefault("total", total)
        report: dict[str, Any] = {
            "report_metadata": self.metadata(run_id, total),
            "component_reports": components,
            "latency": dict(latency or {}),
            "performance_analysis": {
                "bottleneck_analysis": find_bottlenecks(components, total_seconds=total,
                                                        thresholds=self.thresholds),
            },
            # Kept for the CLI summary and older readers: seconds and rows/s per stage.
            "run_id": run_id,
            "rows_read": legacy_rows,
            "stages": {stage: {"seconds": round(sec, 4),
                               "rows_per_s": round(legacy_rows / sec, 1) if sec > 0 and legacy_rows else None}
                       for stage, sec in timings.items()},
        }
        if counts:
            report["counts"] = dict(counts)
        if extra:
            report.update(extra)
        return report

    def metadata(self, run_id: str | None, total_seconds: float) -> dict[str, Any]:
        """The ``report_metadata`` section."""
        return {
            "run_id": run_id,
            "generated_at": datetime.now(timezone.utc).isoformat(),
            "started_at": datetime.fromtimestamp(self.started_wall, timezone.utc).isoformat(),
            "monitoring_seconds": round(total_seconds, 3),
            "sample_interval_s": self.sampler.interval,
            "host": {"cpus": psutil.cpu_count() or 0,
                     "memory_mb": round(psutil.virtual_memory().total / 2**20),
                     "platform": platform.platform(), "python": platform.python_version()},
            "components": list(COMPONENTS),
            "cpu_unit": "percent of one core",
        }

    # -- extension points ---------------------------------------------------
    def monitor_custom_component(
        self,
        name: str,
        work: Callable[[], int | None],
        *,
        pids: PidSourceLike = None,
        rows: int | None = None,
    ) -> dict[str, Any]:
        """Run ``work()`` as component ``name`` and add its figures to the report.

        ``work`` returns the rows it processed (or None, then ``rows`` is used).
        ``pids`` (a list of pids or a function returning them) are the processes
        to sample while it runs; by default this Python process. The result has
        the same shape as the built-in components and takes part in the
        bottleneck analysis of :meth:`pipeline_report`.
        """
        target = f"custom:{name}"
        self.sampler.watch(target, pids if pids is not None else [os.getpid()])
        was_running = self.sampler._thread is not None  # noqa: SLF001
        if not was_running:
            self.sampler.start()
        try:
            with self.stage(target):
                produced = work()
        finally:
            if not was_running:
                self.sampler.stop()
        report = self.component_report(name, produced if produced is not None else rows, (target,), target)
        self.custom[name] = report
        return report

    def run_throughput_benchmark(
        self,
        component_name: str,
        workload_sizes: Sequence[int] = (10_000, 100_000),
        *,
        workload: Callable[[int], Callable[[], int | None]] | None = None,
        rounds: int = 1,
        **options: Any,
    ) -> dict[str, Any]:
        """Rows/s of ``component_name`` at each size and whether it grows faster than linearly.

        Built-in components: ``reader`` (CSV reader), ``encode`` (reader plus
        Kafka message encoding) and ``oracle`` (DuckDB oracle); the whole run
        through the services is :func:`pipeline_props.scaling.pipeline_scaling`.
        For anything else pass ``workload``: a function that, given
        a size, prepares the data and returns the callable to time (which returns
        the rows it processed). The best of ``rounds`` is kept per size.
        """
        if component_name == "pipeline":
            raise UsageError("the whole pipeline's scaling runs datasets through the runner: "
                             "use pipeline_props.scaling.pipeline_scaling (pipeline-props scaling)")
        make = workload or builtin_workload(component_name)
        points = []
        for n in workload_sizes:
            run = make(n)
            best = None
            for _ in range(max(1, rounds)):
                t0 = time.perf_counter()
                run()
                dt = time.perf_counter() - t0
                best = dt if best is None else min(best, dt)
            assert best is not None
            points.append((n, best))
        return {"component": component_name, **scaling_analysis(points, tolerance=self.thresholds.superlinear_tolerance)}

    def monitor_kafka_streaming(
        self, bootstrap_servers: str, topic: str, duration_seconds: float, *, from_beginning: bool = False
    ) -> dict[str, Any]:
        """Watch ``topic`` for ``duration_seconds``: messages/s arriving and their age when read.

        A group-less consumer reads new messages (or all, ``from_beginning``);
        ``latency`` is receive time minus each message's Kafka timestamp, i.e.
        produce-to-consume latency as a consumer sees it. The broker's CPU and
        memory over the window are included when :meth:`watch_services` ran.
        """
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"pp-monitor-{topic}",
                             "enable.auto.commit": False, "log_level": 3, "fetch.wait.max.ms": 50})
        ages: list[float] = []
        nbytes = 0
        try:
            md = consumer.list_topics(topic, timeout=10)
            parts = list(md.topics[topic].partitions)
            start = OFFSET_BEGINNING if from_beginning else OFFSET_END
            consumer.assign([TopicPartition(topic, p, start) for p in parts])
            with self.stage(f"kafka:{topic}"):
                deadline = time.monotonic() + duration_seconds
                while (left := deadline - time.monotonic()) > 0:
                    for msg in consumer.consume(num_messages=10_000, timeout=min(left, 0.5)):
                        if msg.error():
                            continue
                        now = time.time()
                        kind, ts = msg.timestamp()
                        if kind != 0:  # TIMESTAMP_NOT_AVAILABLE is 0
                            ages.append(now - ts / 1000.0)
                        nbytes += len(msg.value() or b"")
        finally:
            consumer.close()
        wins = self.windows.get(f"kafka:{topic}", [])
        return {
            "topic": topic, "partitions": len(parts), "duration_seconds": duration_seconds,
            "messages": len(ages), "bytes": nbytes,
            "rows_per_s": round(len(ages) / duration_seconds, 1) if duration_seconds > 0 else None,
            "latency": _rounded(percentiles(ages)),
            "broker_resources": self.sampler.stats("kafka", wins[-1:]).to_dict()
            if "kafka" in self.sampler.targets else None,
        }


PidSourceLike = Callable[[], Iterable[int]] | Iterable[int] | None


def _rounded(stats: Mapping[str, float]) -> dict[str, float]:
    return {k: (v if k == "count" else round(v, 4)) for k, v in stats.items()}


__all__ = ["COMPONENTS", "PerformanceMonitor", "builtin_workload", "checkpoint_batch_ends",
           "ledger_commit_times", "read_message_timestamps", "staging_latencies"]
