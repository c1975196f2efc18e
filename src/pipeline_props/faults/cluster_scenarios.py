"""The cluster scenarios of ``pipeline-props errors --scenario cluster_...`` (they need ``cluster up``).

Each runs through :func:`~pipeline_props.faults.runner.run_scenario` with a
:class:`~pipeline_props.faults.cluster.ClusterInjector` and the pipeline of
:func:`~pipeline_props.faults.cluster.cluster_pipeline`, so the verdict is the
usual one: 0 lost, 0 duplicated, 0 phantom, tables equal to the oracle.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline_props.errors import UsageError
from pipeline_props.faults.cluster import ClusterInjector
from pipeline_props.faults.registry import ErrorScenario, ScenarioContext, register
from pipeline_props.faults.runner import ScenarioResult, run_scenario
from pipeline_props.infra import _process

#: Records of the batch a mid-ingest or mid-task kill lands in (so there is a "mid").
BIG_BATCH_ROWS = 3000


def _injector(ctx: ScenarioContext) -> ClusterInjector:
    inj = ctx.injector
    if not isinstance(inj, ClusterInjector):
        raise UsageError("a cluster scenario needs the cluster: `pipeline-props cluster up`, then "
                         "`pipeline-props errors --scenario cluster_...`")
    inj.topic = ctx.harness.ns
    return inj


def _big(ctx: ScenarioContext, k: int) -> bytes:
    from pipeline_props.strategies import DataGenerationConfig, DataGenerator

    gen = DataGenerator(DataGenerationConfig(seed=ctx.seed * 100 + k, num_customers=50, num_products=20,
                                             error_rate=0.05))
    return gen.generate_csv_data(BIG_BATCH_ROWS)


def _leader_kill_mid_ingest(ctx: ScenarioContext) -> None:
    inj = _injector(ctx)
    ctx.harness.produce(ctx.dataset(0))
    eid = inj.inject("kafka_leader_kill_mid_ingest")
    batch = ctx.harness.produce(_big(ctx, 1))
    ctx.expect_failure(f"produce {len(batch.positions)} records through a leader failover",
                       batch.status == "acked", batch.error)
    _process.wait_until(lambda: bool(inj.ingest_kill_offsets), 10)  # the watcher is a thread
    end = ctx.harness.topic_end_offsets().get(0, 0)
    killed_at = inj.ingest_kill_offsets[-1] if inj.ingest_kill_offsets else None
    ctx.notes.append(f"leader killed at high watermark {killed_at} of {end}")
    if killed_at is None or killed_at >= end:
        raise AssertionError(f"the leader was not killed while the batch was produced (killed at {killed_at}, "
                             f"end {end}): the fault did nothing; {inj.notes}")
    out = ctx.harness.run_stream()
    ctx.expect_failure("stream after the failover", out.ok, out.error)
    ctx.recover(eid)
    ctx.notes.extend(inj.notes)


def _kill_mid_batch(ctx: ScenarioContext, kind: str, label: str, what: str) -> None:
    """Produce a big batch, arm the kill ``kind`` (it fires inside the micro-batch), stream, recover."""
    inj = _injector(ctx)
    ctx.harness.produce(_big(ctx, 0))
    eid = inj.inject(kind)
    out = ctx.harness.run_stream()
    ctx.expect_failure(label, out.ok, out.error)
    if kind not in inj.armed.fired:
        raise AssertionError(f"no micro-batch ran: the {what} kill never fired")
    ctx.recover(eid)
    ctx.notes.extend(inj.notes)


def _leader_kill_mid_transform(ctx: ScenarioContext) -> None:
    _kill_mid_batch(ctx, "kafka_leader_kill_mid_transform", "stream whose leader dies as the batch starts", "leader")


def _worker_kill(ctx: ScenarioContext) -> None:
    _kill_mid_batch(ctx, "spark_worker_kill", "stream with a worker and its executor SIGKILLed mid-batch", "worker")


def _master_kill(ctx: ScenarioContext) -> None:
    inj = _injector(ctx)
    spark = inj.spark_cluster
    ctx.harness.produce(ctx.dataset(0))
    ctx.expect_failure("stream before the kill", *_ok(ctx))
    eid = inj.inject("spark_master_kill")
    ctx.harness.produce(ctx.dataset(1))
    ctx.expect_failure("stream with the master dead (executors talk to the driver)", *_ok(ctx))
    ctx.recover(eid)
    apps = [a.get("id") for a in (spark.master_state() or {}).get("activeapps", [])]
    ctx.notes.append(f"master restarted: {spark.alive_workers()} worker(s) ALIVE, running apps {apps}")
    ctx.harness.produce(ctx.dataset(2))
    ctx.expect_failure("stream after the master's restart", *_ok(ctx))
    ctx.notes.extend(inj.notes)


def _ok(ctx: ScenarioContext) -> tuple[bool, str]:
    out = ctx.harness.run_stream()
    return out.ok, out.error


for _s in (
    ErrorScenario("cluster_leader_kill_mid_ingest",
                  f"the leader of the topic's partition SIGKILLed as a {BIG_BATCH_ROWS}-record file is produced "
                  "(3 brokers, replication 3, min.insync.replicas 2)", "service", "kafka cluster", "mid-ingest",
                  "a new leader is elected; the idempotent producer retries; nothing lost or doubled",
                  "restart the broker on its log dir (it rejoins as a follower)", _leader_kill_mid_ingest),
    ErrorScenario("cluster_leader_kill_mid_transform",
                  "the partition leader SIGKILLed as a micro-batch starts, before its Kafka fetch",
                  "service", "kafka cluster", "mid-transform",
                  "the executors' fetch fails over to the new leader (or the batch fails and replays)",
                  "restart the broker", _leader_kill_mid_transform),
    ErrorScenario("cluster_worker_kill",
                  "a Spark worker and its executor SIGKILLed 0.2 s into a micro-batch (2 workers of 1 core)",
                  "service", "spark cluster", "mid-batch",
                  "the lost tasks are rescheduled on the other worker; the batch commits once",
                  "restart the worker; the master gives the application a new executor", _worker_kill),
    ErrorScenario("cluster_master_kill",
                  "the Spark master SIGKILLed between batches, restarted later (FILESYSTEM recovery)",
                  "service", "spark cluster", "between batches",
                  "batches keep running on the registered executors; the restarted master recovers the app",
                  "restart the master on its recovery directory", _master_kill),
):
    register(_s)

#: Names of the scenarios that need the cluster.
CLUSTER_SCENARIOS: tuple[str, ...] = ("cluster_leader_kill_mid_ingest", "cluster_leader_kill_mid_transform",
                                      "cluster_worker_kill", "cluster_master_kill")


def cluster_is_up(settings: object) -> bool:
    """Whether a healthy cluster is on record (``errors --all`` runs the cluster scenarios only then)."""
    from pipeline_props.infra.cluster import ClusterServices

    svc = ClusterServices.from_state(settings)  # type: ignore[arg-type]
    return svc.kafka is not None and all(s.healthy for s in svc.status())


def run_cluster_scenarios(names: list[str], settings: object, *, rows: int, seed: int,
                          on_result: Callable[[ScenarioResult], None]) -> list[ScenarioResult]:
    """Run cluster scenarios against the running cluster; the Spark session is the cluster's, stopped after."""
    from pipeline_props.faults.cluster import cluster_pipeline, cluster_session
    from pipeline_props.infra.spark import stop_spark_session

    stop_spark_session()  # a local session of an earlier group: the cluster needs one on its master
    _, infra, injector = cluster_session(settings)
    results = []
    try:
        for name in names:
            r = run_scenario(name, infra, injector=injector, rows=rows, seed=seed,
                             pipeline=cluster_pipeline(infra, injector))
            injector.notes.clear()
            results.append(r)
            on_result(r)
    finally:
        try:
            injector.close()
        finally:
            stop_spark_session()
    return results
