"""report.html: content from a synthetic run folder, and a real render in headless Chromium.

The Chromium tests need Debian's ``chromium`` (``./dev setup`` installs it);
without it they skip, saying so. Their screenshots go to
``artifacts/tests/report_html/``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from pipeline_props import contract
from pipeline_props.compare import write_table_csv
from pipeline_props.reports.charts import bar_chart, line_chart
from pipeline_props.reports.collect import collect, verdict_of
from pipeline_props.reports.html import _cell, render_html, write_report

pytestmark = pytest.mark.unit

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "tests" / "report_html"
EVIL = '<script>alert("x")</script>'


def _row(table: str, **values: object) -> tuple:
    return tuple(values.get(c) for c in contract.OUTPUT_TABLES[table])


def make_run(root: Path, *, diverged: bool = True) -> Path:
    """A run folder as run_dataset writes it, with a divergence, rejects, perf, scaling and a bench comparison."""
    run = root / "20250101T000000_abc123"
    (run / "warehouse").mkdir(parents=True)
    (run / "metadata.json").write_text(json.dumps({
        "run_id": run.name, "scenario": "data_quality_issues", "pipeline": "reference",
        "files": [{"name": "sales.csv", "bytes": 12345}], "created_at": "2025-01-01T00:00:00+00:00"}))
    (run / "validation_report.json").write_text(json.dumps({
        "pipeline_run_id": run.name, "overall_passed": False, "overall_score": 0.9,
        "stage_results": [{"stage": "spark", "passed": False, "score": 0.5, "checks": [
            {"check_name": "row_count_conservation", "passed": False, "score": 0.5, "details": {"why": EVIL}},
            {"check_name": "ok_check", "passed": True, "score": 1.0, "details": {}}]}]}))
    audit = {c: 0 for c in contract.OUTPUT_TABLES[contract.INGESTION_AUDIT]}
    audit.update(rows_read=1000, rows_accepted=940, rows_duplicate=20, rows_rejected=40,
                 rejected_missing_field=25, rejected_unknown_code=15)
    write_table_csv(run / "warehouse" / "ingestion_audit.csv", contract.INGESTION_AUDIT,
                    [tuple(audit[c] for c in contract.OUTPUT_TABLES[contract.INGESTION_AUDIT])])
    rejected = [_row(contract.REJECTED_ROWS, source_file="sales.csv", record_number=i, event_id=f"E{i}",
                     reason="MISSING_FIELD" if i < 25 else "UNKNOWN_CODE", raw_record=f"E{i},,x")
                for i in range(40)]
    write_table_csv(run / "warehouse" / "rejected_rows.csv", contract.REJECTED_ROWS, rejected)
    comps = {name: {"stages": [name], "process": "python", "rows": 1000, "seconds": s,
                    "rows_per_s": round(1000 / s, 1),
                    "resources": {"samples": 8, "cpu_avg_percent": cpu, "cpu_max_percent": cpu + 10,
                                  "rss_avg_mb": 100.0, "rss_max_mb": 120.0, "processes_max": 1}}
             for name, s, cpu in (("producer", 0.5, 95.0), ("broker", 0.5, 30.0), ("spark", 6.0, 150.0),
                                  ("postgres", 2.0, 20.0), ("dbt", 1.8, 10.0), ("oracle", 0.2, 90.0))}
    (run / "performance_metrics.json").write_text(json.dumps({
        "report_metadata": {"run_id": run.name},
        "component_reports": comps,
        "latency": {"method": "kafka timestamps vs ledger", "unit": "seconds",
                    "produce_to_staging": {"count": 1000, "p50": 3.1, "p95": 5.2, "p99": 5.6, "max": 6.0},
                    "produce_to_marts": {"count": 1000, "p50": 8.0, "p95": 9.0, "p99": 9.1, "max": 9.4}},
        "performance_analysis": {"bottleneck_analysis": {"bottlenecks_found": 1, "bottlenecks": [
            {"component": "spark", "type": "cpu_bound", "severity": "high", "value": 150.0, "detail": "busy"}]}},
        "stages": {"oracle": {"seconds": 0.2}, "ingest": {"seconds": 0.5}, "transform": {"seconds": 6.0},
                   "model": {"seconds": 1.8}, "export": {"seconds": 0.2}, "total": {"seconds": 12.0}},
        "counts": {"rows_read": 1000, "messages_produced": 1000, "messages_in_topic": 1000,
                   "spark_rows_in": 1000, "staged_rows": 1000, "staged_valid": 960, "staged_rejected": 40},
    }))
    if diverged:
        cols = list(contract.OUTPUT_TABLES[contract.CUSTOMER_SUMMARY])
        a = ["C1" if c == "customer_id" else 1 for c in cols]
        b = ["C1" if c == "customer_id" else 2 for c in cols]
        (run / "divergence.json").write_text(json.dumps({"ok": False, "tables": {
            contract.CUSTOMER_SUMMARY: {"ok": False, "columns": cols, "absent_in": None,
                                        "counts": {"missing": 1, "extra": 0, "changed": 1},
                                        "missing": [[EVIL if c == "customer_id" else 0 for c in cols]], "extra": [],
                                        "changed": [{"pipeline": a, "oracle": b, "differing_columns": cols[1:2]}]},
            contract.DAILY_SALES: {"ok": True, "columns": [], "absent_in": None, "counts": {},
                                   "missing": [], "extra": [], "changed": []}}}))
    (run / "scaling.json").write_text(json.dumps({"component": "pipeline", "stages": {
        "ingest": {"points": [{"rows": 10_000, "seconds": 0.2, "rows_per_s": 50_000.0},
                              {"rows": 100_000, "seconds": 2.0, "rows_per_s": 50_000.0}],
                   "segments": [{"from_rows": 10_000, "to_rows": 100_000, "exponent": 1.0, "superlinear": False}]},
        "model": {"points": [{"rows": 10_000, "seconds": 2.0, "rows_per_s": 5_000.0},
                             {"rows": 100_000, "seconds": 40.0, "rows_per_s": 2_500.0}],
                  "segments": [{"from_rows": 10_000, "to_rows": 100_000, "exponent": 1.3, "superlinear": True}]}}}))
    (run / "bench_compare.json").write_text(json.dumps({
        "rev_a": "HEAD~1", "rev_b": "working tree", "commit_a": "a" * 40, "commit_b": "b" * 40,
        "threshold": 0.1, "rounds": 2, "failed": True, "benchmarks": [
            {"name": "benchmarks/x.py::test_fast", "median_a": 1.0, "median_b": 1.01, "ratio": 1.01,
             "regressed": False},
            {"name": "benchmarks/x.py::test_slow", "median_a": 1.0, "median_b": 1.5, "ratio": 1.5,
             "regressed": True}]}))
    return run


def test_report_shows_every_part(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    path = write_report(run)
    page = path.read_text(encoding="utf-8")
    assert path == run / "report.html"
    assert '<h1 id="verdict">DIVERGED</h1>' in page
    for text in ("rows read", "messages in topic", "accepted (marts)", "duplicates dropped",
                 "MISSING_FIELD", "UNKNOWN_CODE", "customer_summary: 1 missing, 0 extra, 1 changed",
                 "row_count_conservation", "produce to staging p95", "cpu_bound", "faster than linear",
                 "test_slow", "SLOWER", "HEAD~1"):
        assert text in page, text
    assert "<mark>" in page  # the differing cell of the changed row
    assert EVIL not in page and "&lt;script&gt;" in page  # data is escaped
    assert page.count("<svg") >= 7
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no external asset
    assert page.count("<script>") == 1


def test_verdicts_and_partial_runs(tmp_path: Path) -> None:
    run = make_run(tmp_path, diverged=False)
    data = collect(run)
    assert verdict_of(data) == "VALIDATION FAILED"
    assert data["reasons"] == {"MISSING_FIELD": 25, "UNKNOWN_CODE": 15}
    report = json.loads((run / "validation_report.json").read_text())
    report["overall_passed"] = True
    (run / "validation_report.json").write_text(json.dumps(report))
    assert verdict_of(collect(run)) == "HELD"
    empty = tmp_path / "empty"
    empty.mkdir()
    page = render_html(collect(empty))
    assert "INCOMPLETE" in page and "no counts recorded" in page
    assert "no data" in bar_chart([]) and "no data" in line_chart({}, x_label="x", y_label="y")
    assert _cell("a\x00b<") == "a\\x00b&lt;" and _cell(None) == "<i>NULL</i>"  # NUL visible in diffs


def make_fault_run(root: Path, *, lost: int = 0) -> Path:
    """A folder as ``pipeline-props errors`` writes it (fault_report.json only)."""
    run = root / "faults_20250101T000000"
    run.mkdir(parents=True)
    scenarios = [
        {"name": "kafka_service_stop", "description": "broker SIGKILL, restart", "recovered": True,
         "recovery_seconds": 8.1, "records_lost": 0, "records_duplicated": 0, "tables_equal": True,
         "passed": True, "error": None},
        {"name": "postgres_restart", "description": EVIL, "recovered": True, "recovery_seconds": 5.9,
         "records_lost": lost, "records_duplicated": 0, "tables_equal": lost == 0, "passed": lost == 0,
         "error": f"{lost} event id(s) lost at staging" if lost else None},
    ]
    (run / "fault_report.json").write_text(json.dumps({"passed": lost == 0, "scenarios": scenarios}))
    return run


def test_fault_run_page(tmp_path: Path) -> None:
    good = make_fault_run(tmp_path / "a")
    page = write_report(good).read_text(encoding="utf-8")
    assert '<h1 id="verdict">RECOVERED</h1>' in page
    for text in ("Fault scenarios", "kafka_service_stop", "recovery seconds per scenario", "all recovered"):
        assert text in page, text
    assert "Rows per stage" not in page  # no dataset of its own: no empty per-run sections
    assert EVIL not in page
    bad = collect(make_fault_run(tmp_path / "b", lost=3))
    assert verdict_of(bad) == "FAULTS FAILED"
    assert "1 failed" in render_html(bad) and "3 event id(s) lost at staging" in render_html(bad)


def test_benchmark_run_pages(tmp_path: Path) -> None:
    run = tmp_path / "bench" / "run_20250101T000000"
    run.mkdir(parents=True)
    (run / "bench_run.json").write_text(json.dumps({
        "machine_info": {"node": "box", "cpu": {"brand_raw": "Some CPU"}},
        "commit_info": {"id": "0123456789abcdef", "dirty": True},
        "benchmarks": [{"name": "test_oracle_rows_per_second", "fullname": "benchmarks/x.py::test_oracle",
                        "stats": {"min": 0.4, "median": 0.5, "max": 0.6, "rounds": 3},
                        "extra_info": {"rows_per_s": 2_000_000}}]}))
    page = write_report(run).read_text(encoding="utf-8")
    assert '<h1 id="verdict">BENCHMARKED</h1>' in page
    assert "rows/s per benchmark" in page and "2,000,000" in page and "0123456789ab" in page
    compared = tmp_path / "bench" / "compare_20250101T000000"
    compared.mkdir()
    doc = {"rev_a": "HEAD~1", "rev_b": "working tree", "threshold": 0.1, "rounds": 2, "failed": True,
           "benchmarks": [{"name": "b::test_slow", "median_a": 0.02, "median_b": 0.04, "ratio": 2.0,
                           "regressed": True}]}
    (compared / "bench_compare.json").write_text(json.dumps(doc))
    data = collect(compared)
    assert verdict_of(data) == "REGRESSED"
    assert "SLOWER" in render_html(data)
    doc["failed"] = False
    (compared / "bench_compare.json").write_text(json.dumps(doc))
    assert verdict_of(collect(compared)) == "NO REGRESSION"


# --------------------------------------------------------------------------- headless Chromium


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


needs_chromium = pytest.mark.skipif(_chromium() is None,
                                    reason="Debian's chromium is not installed (./dev setup installs it)")


def run_chromium(page: Path, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on ``page`` (file://) with console messages logged to stderr."""
    exe = _chromium()
    assert exe is not None
    with tempfile.TemporaryDirectory(prefix="pp-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               "--virtual-time-budget=3000", *extra, page.resolve().as_uri()]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def console_errors(stderr: str) -> list[str]:
    """Console errors and uncaught exceptions Chromium logged for the page."""
    return [line for line in stderr.splitlines()
            if "Uncaught" in line or "ERROR:CONSOLE" in line or ":CONSOLE(" in line and "error" in line.lower()]


@needs_chromium
def test_report_renders_in_chromium_without_console_errors(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    page = write_report(run)
    dom = run_chromium(page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == [], dom.stderr[-3000:]
    assert 'data-rendered="yes"' in dom.stdout  # the inline script ran to its end
    charts = int(re.search(r'data-charts="(\d+)"', dom.stdout).group(1))  # type: ignore[union-attr]
    assert charts >= 7
    assert dom.stdout.count("<rect") > 20 and "<path" in dom.stdout
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "report.png"
    shot.unlink(missing_ok=True)
    res = run_chromium(page, f"--screenshot={shot}", "--window-size=1200,3400", "--hide-scrollbars")
    assert res.returncode == 0, res.stderr[-2000:]
    assert console_errors(res.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a blank page compresses far smaller
    shutil.copy(page, SHOTS / "report.html")


@needs_chromium
def test_the_console_check_catches_a_broken_page(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    res = run_chromium(page, "--dump-dom")
    assert console_errors(res.stderr), res.stderr[-2000:]
