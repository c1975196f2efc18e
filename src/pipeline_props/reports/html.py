"""report.html: one self-contained page per run (inline CSS, inline SVG charts, a few lines of inline JS).

It reads what the run wrote into ``artifacts/<run_id>/`` (metadata.json,
validation_report.json, performance_metrics.json, divergence.json,
warehouse/ingestion_audit.csv and rejected_rows.csv) plus, when present, a
scaling analysis (``scaling.json`` in the run folder, else
``<artifacts>/scaling/latest.json``) and a benchmark comparison
(``bench_compare.json`` in the run folder, else
``<artifacts>/bench/latest_compare.json``). Missing parts are left out, so
the page also works for a run that stopped half-way. No external asset is
loaded: the page opens from file:// without a network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline_props.reports.charts import PALETTE, bar_chart, line_chart
from pipeline_props.reports.charts import escape as _e
from pipeline_props.reports.charts import fmt_number as _fmt
from pipeline_props.reports.collect import collect, verdict_of

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _cell(value: Any) -> str:
    """A table cell's value: NULL spelled out, control characters visible (a NUL shows as \\x00)."""
    if value is None:
        return "<i>NULL</i>"
    return _e(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value)))


# --------------------------------------------------------------------------- sections


def _section(title: str, body: str, sid: str) -> str:
    return f'<section id="{sid}"><h2>{_e(title)}</h2>{body}</section>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _funnel(data: Mapping[str, Any]) -> str:
    counts = dict(data["perf"].get("counts") or {})
    audit = data["audit"]
    items: list[tuple[str, float | None]] = []
    labels = [("rows_read", "rows read"), ("messages_produced", "messages acked by Kafka"),
              ("messages_in_topic", "messages in topic"), ("spark_rows_in", "rows Spark read"),
              ("staged_rows", "rows staged (valid + rejected)"), ("staged_valid", "staged valid"),
              ("staged_rejected", "staged rejected")]
    for key, label in labels:
        if counts.get(key) is not None:
            items.append((label, counts[key]))
    for key, label in (("rows_accepted", "accepted (marts)"), ("rows_duplicate", "duplicates dropped"),
                       ("rows_rejected", "rejected")):
        if key in audit and audit[key] is not None:
            items.append((label, int(audit[key])))
    if not items:
        return '<p class="muted">no counts recorded</p>'
    colors = [PALETTE[0]] * (len(items) - 3) + [PALETTE[2], PALETTE[6], PALETTE[3]] if audit else None
    return bar_chart(items, unit="rows", title="rows per stage", colors=colors)


def _steps(doc: Mapping[str, Any]) -> str:
    """One row per arrival batch (runner.incremental_steps.json): what arrived, the audit, the verdict."""
    rows, details = [], []
    for s in doc.get("steps", []):
        a = s.get("audit") or {}
        held = '<span class="ok">held</span>' if s.get("held") else '<span class="bad">DIVERGED</span>'
        rows.append([_e(s["step"]), _e(", ".join(s.get("parts") or []) or "nothing new"), _e(s.get("rows_arrived")),
                     *(_e(a.get(k)) for k in ("rows_read", "rows_accepted", "rows_duplicate", "rows_rejected")),
                     _e(_fmt((s.get("seconds") or {}).get("model"))), held])
        for problem in (s.get("model_error"), s.get("divergence")):
            if problem:
                details.append(f'<h3>batch {_e(s["step"])}</h3><pre>{_e(problem)}</pre>')
    head = f'<p class="muted">dbt mode: {_e(doc.get("dbt_mode", "?"))}; after each batch the five tables are ' \
           f'compared with the oracle over every batch arrived so far</p>'
    return head + _table(["batch", "parts", "rows arrived", "rows read", "accepted", "duplicate", "rejected",
                          "model s", "verdict"], rows) + "".join(details)


def _diffs(div: Mapping[str, Any] | None) -> str:
    if not div:
        return '<p class="ok">every table equals the oracle\'s</p>'
    parts = []
    for name, t in div.get("tables", {}).items():
        if t.get("ok"):
            continue
        c = t.get("counts", {})
        parts.append(f'<h3>{_e(name)}: {c.get("missing", 0)} missing, {c.get("extra", 0)} extra, '
                     f'{c.get("changed", 0)} changed</h3>')
        if t.get("absent_in"):
            parts.append(f'<p class="bad">table absent in {_e(t["absent_in"])}</p>')
        cols = t.get("columns", [])
        rows: list[list[str]] = []
        for kind in ("missing", "extra"):
            for r in t.get(kind, [])[:50]:
                rows.append([f'<span class="tag {kind}">{kind}</span>'] + [_cell(v) for v in r])
        for ch in t.get("changed", [])[:50]:
            diff = set(ch.get("differing_columns", []))
            for side in ("pipeline", "oracle"):
                cells = [f'<span class="tag changed">{side}</span>']
                for col, v in zip(cols, ch.get(side, [])):
                    text = _cell(v)
                    cells.append(f'<mark>{text}</mark>' if col in diff else text)
                rows.append(cells)
        parts.append('<div class="scroll">' + _table(["row", *cols], rows, "diff") + "</div>")
    return "".join(parts) or '<p class="ok">every table equals the oracle\'s</p>'


def _performance(perf: Mapping[str, Any]) -> str:
    comps = perf.get("component_reports") or {}
    parts = []
    if comps:
        parts.append("<h3>Throughput per component (rows/s)</h3>")
        parts.append(bar_chart([(n, c.get("rows_per_s")) for n, c in comps.items()], unit="rows/s",
                               title="throughput per component", colors=PALETTE))
        rows = []
        for n, c in comps.items():
            r = c.get("resources") or {}
            rows.append([_e(n), _e(", ".join(c.get("stages", []))), _e(_fmt(c.get("rows"))),
                         _e(_fmt(c.get("seconds"))), _e(_fmt(c.get("rows_per_s"))),
                         _e(_fmt(r.get("cpu_avg_percent"), 0)), _e(_fmt(r.get("cpu_max_percent"), 0)),
                         _e(_fmt(r.get("rss_max_mb"), 0)), _e(r.get("samples", 0))])
        parts.append(_table(["component", "stages", "rows", "seconds", "rows/s", "CPU avg %", "CPU max %",
                             "RSS max MiB", "samples"], rows, "num"))
        parts.append("<h3>CPU while each component ran (% of one core)</h3>")
        parts.append(bar_chart([(n, (c.get("resources") or {}).get("cpu_avg_percent")) for n, c in comps.items()],
                               unit="%", title="cpu per component", color=PALETTE[1]))
    stages = perf.get("stages") or {}
    if stages:
        parts.append("<h3>Seconds per stage</h3>")
        parts.append(bar_chart([(s, m.get("seconds")) for s, m in stages.items()], unit="s",
                               title="seconds per stage", color=PALETTE[4]))
    lat = perf.get("latency") or {}
    lat_items: list[tuple[str, float | None]] = []
    for part in ("produce_to_staging", "produce_to_marts"):
        p = lat.get(part) or {}
        for q in ("p50", "p95", "p99", "max"):
            if q in p:
                lat_items.append((f"{part.replace('_', ' ')} {q}", p[q]))
    if lat_items:
        parts.append("<h3>Latency from produce to warehouse (seconds)</h3>")
        parts.append(bar_chart(lat_items, unit="s", title="latency percentiles", color=PALETTE[5]))
        parts.append(f'<p class="muted">method: {_e(lat.get("method", ""))}</p>')
    elif lat.get("error") or (lat.get("produce_to_staging") or {}).get("error"):
        parts.append(f'<p class="muted">latency not measured: '
                     f'{_e(lat.get("error") or lat["produce_to_staging"]["error"])}</p>')
    bn = (perf.get("performance_analysis") or {}).get("bottleneck_analysis")
    if bn is not None:
        parts.append(f"<h3>Bottlenecks ({bn.get('bottlenecks_found', 0)})</h3>")
        if bn.get("bottlenecks"):
            parts.append(_table(["component", "type", "severity", "value", "detail"],
                                [[_e(b["component"]), _e(b["type"]), f'<span class="sev {_e(b["severity"])}">'
                                  f'{_e(b["severity"])}</span>', _e(b["value"]), _e(b.get("detail", ""))]
                                 for b in bn["bottlenecks"]]))
        else:
            parts.append('<p class="ok">none above the thresholds</p>')
    return "".join(parts) or '<p class="muted">no performance figures</p>'


def _scaling(sc: Mapping[str, Any] | None) -> str:
    if not sc:
        return ('<p class="muted">no scaling run yet: <code>pipeline-props scaling</code> '
                "writes one (10k and 100k rows; add <code>--with-1m</code>)</p>")
    analyses = sc.get("stages") or {sc.get("component", "component"): sc}
    series = {}
    flagged = []
    for name, a in analyses.items():
        if name == "total":
            continue
        series[name] = [(p["rows"], p["rows_per_s"]) for p in a.get("points", [])]
        flagged += [(name, s["to_rows"]) for s in a.get("segments", []) if s.get("superlinear")]
    rows = []
    for name, a in analyses.items():
        for s in a.get("segments", []):
            rows.append([_e(name), _e(f'{s["from_rows"]:,} -> {s["to_rows"]:,}'), _e(s["exponent"]),
                         '<span class="bad">faster than linear</span>' if s.get("superlinear") else "ok"])
    return (line_chart(series, x_label="rows (log scale)", y_label="rows/s", title="scaling", flagged=flagged)
            + _table(["stage", "sizes", "time exponent (1 = linear)", "verdict"], rows))


def _faults(report: Mapping[str, Any]) -> str:
    scenarios = report.get("scenarios") or []
    if not scenarios:
        return '<p class="muted">no scenario ran</p>'
    failed = [x for x in scenarios if not x.get("passed")]
    head = (f'<p>{len(scenarios)} scenario(s): '
            + (f'<b class="bad">{len(failed)} failed</b>' if failed else '<b class="ok">all recovered with '
               "nothing lost or duplicated</b>") + "</p>")
    rows = []
    for x in scenarios:
        verdict = '<span class="ok">PASS</span>' if x.get("passed") else '<span class="bad">FAIL</span>'
        rows.append([_e(x.get("name")), _e(x.get("description", "")), _e(x.get("recovered")),
                     _e(_fmt(x.get("recovery_seconds"))), _e(x.get("records_lost")),
                     _e(x.get("records_duplicated")), _e(x.get("tables_equal")), verdict,
                     _e(str(x.get("error") or "")[:300])])
    chart = bar_chart([(x.get("name", "?"), x.get("recovery_seconds")) for x in scenarios], unit="s",
                      title="recovery seconds per scenario",
                      colors=[PALETTE[2] if x.get("passed") else PALETTE[3] for x in scenarios])
    return head + chart + _table(["scenario", "fault", "recovered", "recovery s", "lost", "duplicated",
                                  "tables = oracle", "verdict", "error"], rows)


def _bench_run(run: Mapping[str, Any]) -> str:
    marks = run.get("benchmarks") or []
    if not marks:
        return '<p class="muted">no benchmark ran</p>'
    machine = run.get("machine_info") or {}
    commit = run.get("commit_info") or {}
    cpu = machine.get("cpu")
    cpu_name = cpu.get("brand_raw", "") if isinstance(cpu, dict) else ""
    head = (f'<p>{len(marks)} benchmark(s) on {_e(machine.get("node", "?"))} ({_e(cpu_name)}), '
            f'commit <code>{_e(str(commit.get("id", ""))[:12])}</code>'
            f'{" (dirty)" if commit.get("dirty") else ""}</p>')
    rows = []
    for m in marks:
        st = m.get("stats") or {}
        extra = m.get("extra_info") or {}
        rate = extra.get("rows_per_s")
        rows.append([_e(m.get("fullname") or m.get("name")), _e(_fmt(st.get("min"), 4)),
                     _e(_fmt(st.get("median"), 4)), _e(_fmt(st.get("max"), 4)), _e(st.get("rounds")),
                     _e(_fmt(rate, 0) if rate is not None else "")])
    rated = [(str(m.get("name")), (m.get("extra_info") or {}).get("rows_per_s")) for m in marks
             if (m.get("extra_info") or {}).get("rows_per_s") is not None]
    chart = (bar_chart(rated, unit="rows/s", title="rows/s per benchmark", colors=PALETTE) if rated else
             bar_chart([(str(m.get("name")), (m.get("stats") or {}).get("median")) for m in marks], unit="s",
                       title="median seconds per benchmark", color=PALETTE[4]))
    return head + chart + _table(["benchmark", "min (s)", "median (s)", "max (s)", "rounds", "rows/s"], rows,
                                 "num")


def _bench(b: Mapping[str, Any] | None) -> str:
    if not b:
        return ('<p class="muted">no benchmark comparison yet: <code>pipeline-props bench --compare REV</code>'
                " writes one</p>")
    thr = float(b.get("threshold", 0.1))
    items = [(x["name"].split("::")[-1], x.get("ratio")) for x in b.get("benchmarks", []) if x.get("ratio")]
    colors = [PALETTE[3] if x.get("regressed") else PALETTE[2] for x in b.get("benchmarks", []) if x.get("ratio")]
    rows = [[_e(x["name"]), _e(_fmt(x.get("median_a"), 4)), _e(_fmt(x.get("median_b"), 4)),
             _e(_fmt(x.get("ratio"), 3)), '<span class="bad">SLOWER</span>' if x.get("regressed") else "ok"]
            for x in b.get("benchmarks", [])]
    head = (f'<p>A = <code>{_e(b.get("rev_a"))}</code> ({_e(str(b.get("commit_a", ""))[:12])}), '
            f'B = <code>{_e(b.get("rev_b"))}</code> ({_e(str(b.get("commit_b", ""))[:12])}); '
            f'{_e(b.get("rounds"))} alternated round(s), threshold {thr:.0%}: '
            f'{"<b class=bad>FAILED</b>" if b.get("failed") else "<b class=ok>passed</b>"}</p>')
    return head + bar_chart(items, unit="x", title="median ratio B/A", colors=colors,
                            marker=(1 + thr, f"{1 + thr:.2f}")) + _table(
        ["benchmark", "median A (s)", "median B (s)", "B/A", "verdict"], rows, "num")


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:18px 28px;color:#fff}
header.HELD,header.RECOVERED,header.NO,header.BENCHMARKED{background:#2e7d32}
header.DIVERGED,header.VALIDATION,header.FAULTS,header.REGRESSED{background:#c62828}header.INCOMPLETE{background:#757575}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.9}
nav{padding:6px 28px;background:#eee;font-size:13px}nav a{margin-right:14px;color:#333}
main{padding:8px 28px 40px;max-width:1100px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:10px 18px 16px;margin:16px 0}
h2{font-size:17px;margin:6px 0 10px}h3{font-size:14px;margin:16px 0 6px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3;cursor:pointer}table.num td{text-align:right}table.num td:first-child{text-align:left}
.scroll{overflow-x:auto}.muted{color:#777}.ok{color:#2e7d32}.bad{color:#c62828}
mark{background:#ffe08a}.tag{font-size:11px;padding:0 4px;border-radius:3px;color:#fff}
.tag.missing{background:#c0504d}.tag.extra{background:#8064a2}.tag.changed{background:#e0803a}
.sev.high{color:#c62828;font-weight:bold}.sev.medium{color:#e0803a}.sev.low{color:#777}
svg.chart{display:block;margin:6px 0}svg .lbl{font-size:12px;fill:#333}svg .val{font-size:11px;fill:#555}
svg rect.bar-rect:hover{opacity:.75}
code{background:#f1f1f1;padding:0 3px;border-radius:3px}
"""

# Sort any table by a click on its header; count the charts (tests read data-charts).
JS = """
(function(){
  document.querySelectorAll('th').forEach(function(th){
    th.addEventListener('click',function(){
      var table=th.closest('table'),body=table.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th);
      var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[i]?a.cells[i].textContent:'',y=b.cells[i]?b.cells[i].textContent:'';
        var nx=parseFloat(x.replace(/,/g,'')),ny=parseFloat(y.replace(/,/g,''));
        var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  document.body.dataset.charts=String(document.querySelectorAll('svg.chart').length);
  document.body.dataset.rendered='yes';
})();
"""


def render_html(data: Mapping[str, Any]) -> str:
    """The whole page for the data :func:`collect` returned."""
    meta = data.get("metadata") or {}
    perf = data.get("perf") or {}
    verdict = verdict_of(data)
    run_id = meta.get("run_id") or perf.get("run_id") or Path(str(data.get("run_dir", "run"))).name
    files = ", ".join(f'{f["name"]} ({f["bytes"]:,} bytes)' for f in meta.get("files", []))
    sub = " &middot; ".join(_e(x) for x in (
        f"scenario {meta['scenario']}" if meta.get("scenario") else None,
        files or None, f"pipeline {meta['pipeline']}" if meta.get("pipeline") else None,
        meta.get("created_at")) if x)
    val = data.get("validation") or {}
    failed_checks = [[_e(s["stage"]), _e(c["check_name"]), _e(json.dumps(c.get("details"), default=str)[:400])]
                     for s in val.get("stage_results", []) for c in s.get("checks", []) if not c.get("passed")]
    checks = (_table(["stage", "check", "details"], failed_checks) if failed_checks else
              f'<p class="ok">all {sum(len(s.get("checks", [])) for s in val.get("stage_results", []))} '
              f'checks passed</p>' if val else '<p class="muted">no validation report</p>')
    reasons = data.get("reasons") or {}
    # A fault or benchmark run has no dataset of its own: its page leads with
    # its results and leaves out the per-run sections that would all be empty.
    pipeline_run = bool(meta or val or data.get("divergence") or data.get("audit"))
    sections: list[tuple[str, str, str, str]] = []  # (id, nav label, title, body)
    if data.get("faults") is not None:
        sections.append(("faults", "faults", "Fault scenarios", _faults(data["faults"])))
    if data.get("bench_here") is not None:
        sections.append(("bench", "benchmarks", "Benchmark comparison between commits", _bench(data["bench_here"])))
    if data.get("bench_run") is not None:
        sections.append(("bench_run", "benchmarks run", "Benchmarks of this run", _bench_run(data["bench_run"])))
    if pipeline_run or not sections:
        sections += [
            ("funnel", "counts", "Rows per stage", _funnel(data)),
            ("rejects", "rejects", "Rejected rows by reason",
             bar_chart(sorted(reasons.items(), key=lambda kv: -kv[1]), unit="rows", title="rejected by reason",
                       color=PALETTE[3]) if reasons else '<p class="muted">no rejected rows</p>'),
            ("diffs", "diffs", "Differences from the oracle", _diffs(data.get("divergence"))),
            *([("steps", "batches", "Each arrival batch against the oracle so far", _steps(data["steps"]))]
              if data.get("steps") else []),
            ("checks", "checks", "Validation checks", checks),
        ]
    if perf or pipeline_run:
        sections.append(("perf", "performance", "Performance", _performance(perf)))
    sections.append(("scaling", "scaling", "Scaling", _scaling(data.get("scaling"))))
    if data.get("bench_here") is None:
        sections.append(("bench", "benchmarks", "Benchmark comparison between commits", _bench(data.get("bench"))))
    nav = "".join(f'<a href="#{sid}">{_e(label)}</a>' for sid, label, _, _ in sections)
    body = "".join(_section(title, html_, sid) for sid, _, title, html_ in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>pipeline-props {_e(run_id)}: {_e(verdict)}</title><style>{CSS}</style></head><body>"
            f'<header class="{_e(verdict.split()[0])}"><h1 id="verdict">{_e(verdict)}</h1>'
            f"<p>run {_e(run_id)}</p><p>{sub}</p></header><nav>{nav}</nav><main>{body}</main>"
            f"<script>{JS}</script></body></html>")


def write_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write ``report.html`` (or ``output``) for the run in ``run_dir``; return its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        from pipeline_props.errors import InputError

        raise InputError(run_dir, "is not a run's artifacts folder")
    out = Path(output) if output else run_dir / "report.html"
    out.write_text(render_html(collect(run_dir)), encoding="utf-8")
    return out


__all__ = ["bar_chart", "collect", "line_chart", "render_html", "verdict_of", "write_report"]
