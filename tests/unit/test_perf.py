"""PerformanceMonitor pieces without services: sampling, analysis, latency arithmetic, A/B verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline_props.perf import PerformanceMonitor, ProcessSampler, find_bottlenecks, percentiles, scaling_analysis
from pipeline_props.perf.compare import BenchmarkDelta, Comparison, saved_run_args
from pipeline_props.perf.monitor import checkpoint_batch_ends, staging_latencies
from pipeline_props.perf.sampler import with_children

pytestmark = pytest.mark.unit


def _child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_sampler_tells_a_busy_process_from_an_idle_one() -> None:
    busy = _child("import time\nend = time.time() + 3\nwhile time.time() < end: pass")
    idle = _child("import time; time.sleep(3)")
    try:
        sampler = ProcessSampler(interval=0.1)
        sampler.watch("busy", [busy.pid])
        sampler.watch("idle", lambda: [idle.pid])
        with sampler:
            time.sleep(1.2)
        b, i = sampler.stats("busy"), sampler.stats("idle")
    finally:
        busy.kill()
        idle.kill()
        busy.wait()
        idle.wait()
    assert b.samples >= 5 and i.samples >= 5
    # The machine is shared (load can be 6 per core): relative, not absolute, figures.
    assert b.cpu_avg_percent > 5 and b.cpu_avg_percent > 5 * i.cpu_avg_percent, (b, i)
    assert i.cpu_avg_percent < 5, i
    assert b.rss_max_mb > 1 and i.rss_max_mb > 1


def test_sampler_windows_select_samples_and_dead_pids_count_nothing() -> None:
    sampler = ProcessSampler(interval=0.05)
    sampler.watch("me", [os.getpid()])
    sampler.watch("gone", [2**22 + 12345])  # no such pid
    sampler.sample_once()
    for _ in range(6):
        time.sleep(0.06)  # longer than the interval, so each tick closes at most one window
        sampler.sample_once()
    s = sampler.samples("me")
    assert len(s) == 6 and sampler.stats("me").samples == 6
    assert sampler.stats("me", [(s[1].t, s[3].t)]).samples == 3
    assert sampler.stats("me", [(s[1].t, s[3].t - 0.01)]).samples == 3  # the tick closing the window counts
    assert sampler.stats("me", [(s[0].t, s[0].t), (s[5].t, s[5].t)]).samples == 2
    assert sampler.stats("me", [(s[5].t + 100, s[5].t + 200)]).samples == 0
    assert sampler.stats("gone").samples == 0
    assert with_children(None) == [] and with_children(2**22 + 12345) == []
    assert os.getpid() in with_children(os.getpid())


def test_bottlenecks_by_type_and_severity() -> None:
    reports = {
        "spark": {"seconds": 6.0, "resources": {"samples": 20, "cpu_avg_percent": 180.0, "rss_max_mb": 900}},
        "dbt": {"seconds": 5.0, "resources": {"samples": 20, "cpu_avg_percent": 8.0, "rss_max_mb": 200}},
        "producer": {"seconds": 1.0, "resources": {"samples": 5, "cpu_avg_percent": 95.0, "rss_max_mb": 100}},
        "oracle": {"seconds": 0.5, "resources": {"samples": 2, "cpu_avg_percent": 40.0, "rss_max_mb": 9000}},
        "unmeasured": {"seconds": 9.0, "resources": {"samples": 0}},
    }
    out = find_bottlenecks(reports, total_seconds=15.0, total_memory_bytes=16 * 2**30)
    got = {(b["component"], b["type"]): b for b in out["bottlenecks"]}
    assert out["bottlenecks_found"] == len(out["bottlenecks"]) == 4
    assert got[("spark", "cpu_bound")]["severity"] == "high"  # cpu bound and 40 % of the time
    assert got[("producer", "cpu_bound")]["severity"] == "medium"
    assert got[("dbt", "waiting")]["value"] == pytest.approx(5 / 15, abs=1e-3)
    assert got[("oracle", "memory")]["value"] == 9000
    assert not any(b["component"] == "unmeasured" for b in out["bottlenecks"])
    assert out["slowest_component"] == "unmeasured"
    assert out["bottlenecks"][0]["severity"] == "high"
    quiet = find_bottlenecks({"a": {"seconds": 1, "resources": {"samples": 3, "cpu_avg_percent": 50, "rss_max_mb": 10}},
                              "b": {"seconds": 1, "resources": {"samples": 3, "cpu_avg_percent": 50, "rss_max_mb": 10}}})
    assert quiet["bottlenecks_found"] == 0


def test_scaling_flags_superlinear_growth_only() -> None:
    linear = scaling_analysis([(10_000, 1.0), (100_000, 10.0), (1_000_000, 100.0)])
    assert not linear["superlinear"]
    assert linear["fitted_exponent"] == pytest.approx(1.0)
    assert [p["rows_per_s"] for p in linear["points"]] == [10_000.0] * 3
    fixed_cost = scaling_analysis([(10_000, 5.0), (100_000, 6.0)])  # start-up dominates: sub-linear
    assert not fixed_cost["superlinear"]
    quadratic = scaling_analysis([(100_000, 40.0), (10_000, 3.0), (1_000_000, 4000.0)])  # unsorted input
    assert quadratic["superlinear"]
    assert [s["superlinear"] for s in quadratic["segments"]] == [False, True]  # 1.12 then 2.0
    assert quadratic["segments"][1]["exponent"] == pytest.approx(2.0)
    assert scaling_analysis([(10, 1.0)])["fitted_exponent"] is None


def test_percentiles_nearest_rank() -> None:
    p = percentiles([float(x) for x in range(1, 101)])
    assert (p["p50"], p["p95"], p["p99"], p["max"], p["count"]) == (50.0, 95.0, 99.0, 100.0, 100)
    assert percentiles([]) == {"count": 0}
    assert percentiles([3.0])["p95"] == 3.0


def test_staging_latency_maps_offsets_to_batches(tmp_path: Path) -> None:
    offsets = tmp_path / "offsets"
    offsets.mkdir()
    meta = '{"batchWatermarkMs":0,"batchTimestampMs":1,"conf":{}}'
    (offsets / "0").write_text(f'v1\n{meta}\n{{"t":{{"0":2,"1":1}}}}')
    (offsets / "1").write_text(f'v1\n{meta}\n{{"t":{{"0":4,"1":3}}}}')
    (offsets / ".1.crc").write_text("x")
    ends = checkpoint_batch_ends(tmp_path, "t")
    assert ends == {0: {0: 2, 1: 1}, 1: {0: 4, 1: 3}}
    commits = {0: 100.0, 1: 110.0}
    stamps = [(0, 0, 99.0), (0, 1, 99.5), (0, 2, 105.0), (0, 3, 106.0), (1, 0, 98.0), (1, 2, 109.0),
              (1, 7, 1.0)]  # offset 7 is past every batch: not matched
    assert staging_latencies(stamps, ends, commits) == [1.0, 0.5, 5.0, 4.0, 2.0, 1.0]
    assert staging_latencies(stamps, ends, {0: 100.0}) == [1.0, 0.5, 2.0]  # batch 1 not in the ledger
    with pytest.raises(ValueError):
        checkpoint_batch_ends(tmp_path, "other")


def test_report_shape_and_custom_component() -> None:
    monitor = PerformanceMonitor(interval=0.05)

    def work() -> int:
        end = time.perf_counter() + 0.4
        n = 0
        while time.perf_counter() < end:
            n += 1
        return n

    with monitor:
        step = monitor.track()
        step("oracle", "start")
        work()
        step("oracle", "done")
        custom = monitor.monitor_custom_component("hashing", work)
        report = monitor.pipeline_report(run_id="r1", rows={"oracle": 1000, "spark": 5},
                                         stage_seconds={"oracle": 0.4}, latency={"unit": "seconds"})
    assert custom["rows"] > 0 and custom["rows_per_s"] > 0 and custom["resources"]["samples"] > 0
    assert custom["resources"]["cpu_avg_percent"] > 5
    assert set(report) >= {"report_metadata", "component_reports", "performance_analysis", "latency", "stages"}
    assert set(report["component_reports"]) == {"oracle", "hashing"}  # spark never ran: left out
    oracle = report["component_reports"]["oracle"]
    assert oracle["rows"] == 1000 and oracle["rows_per_s"] == pytest.approx(1000 / oracle["seconds"], rel=0.01)
    assert oracle["resources"]["cpu_avg_percent"] > 5
    bn = report["performance_analysis"]["bottleneck_analysis"]
    assert isinstance(bn["bottlenecks_found"], int) and isinstance(bn["bottlenecks"], list)
    for b in bn["bottlenecks"]:
        assert set(b) >= {"component", "type", "severity", "value"}
        assert b["type"] in ("cpu_bound", "memory", "waiting") and b["severity"] in ("low", "medium", "high")
    assert report["report_metadata"]["run_id"] == "r1" and report["report_metadata"]["host"]["cpus"] >= 1
    json.dumps(report)  # JSON-ready


def test_throughput_benchmark_flags_a_quadratic_workload() -> None:
    monitor = PerformanceMonitor()

    def linear(n: int):  # noqa: ANN202
        return lambda: time.sleep(n * 5e-4)

    def quadratic(n: int):  # noqa: ANN202
        return lambda: time.sleep(n * n * 5e-6)

    lin = monitor.run_throughput_benchmark("lin", [100, 200, 400], workload=linear, rounds=2)
    quad = monitor.run_throughput_benchmark("quad", [100, 200, 400], workload=quadratic)
    assert not lin["superlinear"] and quad["superlinear"]
    assert quad["fitted_exponent"] > 1.5
    reader = monitor.run_throughput_benchmark("reader", [500, 1000])
    assert [p["rows"] for p in reader["points"]] == [500, 1000]
    assert all(p["rows_per_s"] > 0 for p in reader["points"])


def test_ab_verdicts_and_rendering() -> None:
    slow = BenchmarkDelta("b.py::test_x", a=[1.0, 1.02], b=[1.3, 1.25])
    same = BenchmarkDelta("b.py::test_y", a=[2.0, 2.1], b=[2.05, 2.0])
    new = BenchmarkDelta("b.py::test_new", b=[1.0])
    assert slow.ratio == pytest.approx(1.275 / 1.01)
    assert slow.regressed(0.10) and not slow.regressed(0.30)
    assert not same.regressed(0.10) and new.ratio is None and not new.regressed(0.0)
    comp = Comparison(rev_a="HEAD~1", rev_b="working tree", threshold=0.10, rounds=2, selection=["b.py"],
                      deltas={d.name: d for d in (slow, same, new)}, commit_a="a" * 40, commit_b="b" * 40)
    assert comp.failed and [d.name for d in comp.regressions] == ["b.py::test_x"]
    text = comp.render()
    assert "SLOWER" in text and "1.262" in text and "only in B" in text and "FAILED: b.py::test_x" in text
    doc = comp.to_json()
    assert doc["failed"] and {b["name"]: b["regressed"] for b in doc["benchmarks"]}["b.py::test_y"] is False
    args = saved_run_args(storage=Path("/s"), compare_with="0001", threshold=0.1)
    assert "--benchmark-autosave" in args and "--benchmark-compare=0001" in args
    assert "--benchmark-compare-fail=median:10%" in args


def test_reaped_children_cpu_is_counted() -> None:
    # A parent that runs short busy children one after another: each exits
    # between ticks, so only the parent's reaped-children times can show them.
    parent = _child(
        "import subprocess, sys, time\n"
        "for _ in range(8):\n"
        "    subprocess.run([sys.executable, '-c', 'import time\\nend=time.time()+0.15\\nwhile time.time()<end: pass'])\n"
        "time.sleep(5)\n")
    try:
        with_reaped = ProcessSampler(interval=0.5)
        with_reaped.watch("tree", lambda: with_children(parent.pid), reaped_children=True)
        parent_only = ProcessSampler(interval=0.5)
        parent_only.watch("parent", [parent.pid])
        with with_reaped, parent_only:
            time.sleep(3.5)
        counted = sum(s.cpu_percent * 0.5 / 100 for s in with_reaped.samples("tree"))
        alone = sum(s.cpu_percent * 0.5 / 100 for s in parent_only.samples("parent"))
    finally:
        parent.kill()
        parent.wait()
    # 8 children burn up to 1.2 CPU seconds (less when the machine is busy; interpreter start-up adds some)
    assert counted > 0.3 and counted > 3 * alone, (counted, alone)
