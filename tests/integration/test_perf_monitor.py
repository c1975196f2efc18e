"""The PerformanceMonitor on a real run: every component measured, the documented shape, report.html.

Also ``monitor_kafka_streaming`` against the session's broker.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest

from pipeline_props.config import load_settings
from pipeline_props.perf import COMPONENTS, PerformanceMonitor
from pipeline_props.runner import run_dataset
from pipeline_props.strategies import DataGenerationConfig, DataGenerator

pytestmark = pytest.mark.integration

ROWS = 3000


@pytest.fixture(scope="module")
def run_dir(infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    settings = load_settings(overrides={"run": {"artifacts_dir": str(tmp_path_factory.mktemp("perf-artifacts"))}})
    files = list(DataGenerator(DataGenerationConfig(seed=11)).generate_test_scenario_data(
        "data_quality_issues", ROWS).files)
    # Whether the tables match is the e2e tests' business; this module checks the figures.
    return run_dataset(files, settings=settings, infra=infrastructure, seed=11, scenario="perf").artifacts_dir


def test_every_component_has_plausible_figures(run_dir: Path) -> None:
    perf = json.loads((run_dir / "performance_metrics.json").read_text())
    comps = perf["component_reports"]
    assert set(comps) == set(COMPONENTS)
    rows_read = perf["counts"]["rows_read"]
    assert rows_read >= ROWS
    total = perf["stages"]["total"]["seconds"]
    for name, c in comps.items():
        assert c["rows"] and c["rows"] > 0, name
        assert 0 < c["seconds"] < total, (name, c)
        assert c["rows_per_s"] == pytest.approx(c["rows"] / c["seconds"], rel=0.01), name
        res = c["resources"]
        assert res["samples"] >= 1 and res["rss_max_mb"] > 1, (name, res)
        assert c["resources_whole_run"]["cpu_avg_percent"] > 0, (name, c["resources_whole_run"])
    assert comps["producer"]["rows"] == rows_read == comps["oracle"]["rows"]
    assert comps["broker"]["rows"] == comps["spark"]["rows"] == rows_read  # one message per record
    assert comps["postgres"]["rows"] == comps["dbt"]["rows"] == rows_read  # valid + rejected staged
    # The processes are the ones named: the JVMs are big, postgres has backends.
    assert comps["spark"]["resources"]["rss_max_mb"] > 100
    assert comps["broker"]["resources"]["rss_max_mb"] > 100
    assert comps["postgres"]["resources_whole_run"]["processes_max"] >= 3
    assert comps["spark"]["resources"]["cpu_avg_percent"] > 0  # Spark worked during transform


def test_latency_percentiles_are_consistent(run_dir: Path) -> None:
    perf = json.loads((run_dir / "performance_metrics.json").read_text())
    lat = perf["latency"]
    staging, marts = lat["produce_to_staging"], lat["produce_to_marts"]
    assert staging["count"] == marts["count"] == perf["counts"]["messages_in_topic"]
    assert "unmatched_messages" not in lat and lat["batches"] >= 1
    assert 0 < staging["p50"] <= staging["p95"] <= staging["p99"] <= staging["max"]
    assert staging["max"] < perf["stages"]["total"]["seconds"]
    assert marts["p50"] >= staging["p50"]  # the marts are built after staging


def test_documented_shape(run_dir: Path) -> None:
    perf = json.loads((run_dir / "performance_metrics.json").read_text())
    meta = perf["report_metadata"]
    assert meta["run_id"] == run_dir.name and meta["sample_interval_s"] > 0 and meta["host"]["cpus"] >= 1
    bn = perf["performance_analysis"]["bottleneck_analysis"]
    assert bn["bottlenecks_found"] == len(bn["bottlenecks"])
    for b in bn["bottlenecks"]:
        assert b["component"] in COMPONENTS
        assert b["type"] in ("cpu_bound", "memory", "waiting")
        assert b["severity"] in ("low", "medium", "high") and isinstance(b["value"], (int, float))
    for stage in ("oracle", "ingest", "transform", "model", "export", "total"):
        assert perf["stages"][stage]["seconds"] > 0, stage
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert re.search(r'<h1 id="verdict">(HELD|DIVERGED|VALIDATION FAILED)</h1>', page)
    assert "produce to staging p95" in page and "spark" in page


def test_monitor_kafka_streaming(infrastructure, namespace: str) -> None:  # noqa: ANN001
    from confluent_kafka import Producer

    infrastructure.setup_kafka_topics(namespace, partitions=2)
    try:
        monitor = PerformanceMonitor(interval=0.1)
        monitor.watch_services(infrastructure)

        def produce() -> None:
            time.sleep(1.0)  # the consumer is assigned by then
            p = Producer({"bootstrap.servers": infrastructure.kafka_bootstrap, "linger.ms": 5, "log_level": 3})
            for i in range(500):
                p.produce(namespace, value=b"x" * 100, key=str(i).encode())
                if i % 100 == 0:
                    p.poll(0)
                    time.sleep(0.1)
            p.flush(30)

        producer = threading.Thread(target=produce)
        with monitor:
            producer.start()
            out = monitor.monitor_kafka_streaming(infrastructure.kafka_bootstrap, namespace, duration_seconds=5.0)
        producer.join()
        assert out["messages"] == 500 and out["bytes"] == 500 * 100 and out["partitions"] == 2
        assert out["rows_per_s"] == pytest.approx(100.0)
        assert 0 <= out["latency"]["p50"] <= out["latency"]["max"] < 5.0
        assert out["broker_resources"]["samples"] > 10 and out["broker_resources"]["rss_max_mb"] > 100
    finally:
        infrastructure.delete_kafka_topics(namespace)
