"""Bottleneck and scaling analysis of measured figures (pure functions, no services).

Bottleneck rules, per component (thresholds in :class:`Thresholds`):

* ``cpu_bound``: the component's processes averaged at least
  ``cpu_bound_percent`` of one core while it ran (a single-threaded stage
  cannot go faster without less work or more parallelism). Severity is high
  when it also takes at least ``dominant_share`` of the pipeline's wall time.
* ``memory``: peak RSS reached ``memory_fraction`` of the machine's memory.
* ``waiting``: it takes at least ``dominant_share`` of the wall time while
  averaging under ``waiting_cpu_percent`` of one core: it mostly waits (on
  I/O, another service, a trigger interval, a lock or start-up).

Scaling: for successive workload sizes n1 < n2 with seconds t1, t2 the
local exponent is ``log(t2/t1) / log(n2/n1)`` (1 = linear). A segment whose
exponent exceeds ``1 + superlinear_tolerance`` is flagged as growing faster
than linearly; a least-squares fit over all sizes gives the overall exponent.
Fixed costs (start-up) make small sizes look sub-linear, never super-linear.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psutil


@dataclass(frozen=True)
class Thresholds:
    """Where a figure becomes a bottleneck."""

    cpu_bound_percent: float = 85.0
    waiting_cpu_percent: float = 25.0
    dominant_share: float = 0.30
    memory_fraction: float = 0.25
    superlinear_tolerance: float = 0.15


def _severity(score: float) -> str:
    return "high" if score >= 2 else "medium" if score >= 1 else "low"


def find_bottlenecks(
    component_reports: Mapping[str, Mapping[str, Any]],
    *,
    total_seconds: float | None = None,
    thresholds: Thresholds = Thresholds(),
    total_memory_bytes: int | None = None,
) -> dict[str, Any]:
    """The ``bottleneck_analysis`` section: ``bottlenecks_found`` and the list of ``bottlenecks``.

    ``component_reports`` maps a component to a dict with ``seconds`` and
    ``resources`` (``cpu_avg_percent``, ``rss_max_mb``, ``samples``), as
    :class:`~pipeline_props.perf.monitor.PerformanceMonitor` writes it.
    """
    total_memory_bytes = total_memory_bytes or psutil.virtual_memory().total
    if total_seconds is None:
        total_seconds = sum(float(r.get("seconds") or 0) for r in component_reports.values())
    found: list[dict[str, Any]] = []
    for name, report in component_reports.items():
        seconds = float(report.get("seconds") or 0.0)
        share = seconds / total_seconds if total_seconds else 0.0
        res = report.get("resources") or {}
        measured = int(res.get("samples") or 0) > 0
        cpu = float(res.get("cpu_avg_percent") or 0.0)
        rss_mb = float(res.get("rss_max_mb") or 0.0)
        if measured and cpu >= thresholds.cpu_bound_percent:
            score = 1 + (share >= thresholds.dominant_share)
            found.append({"component": name, "type": "cpu_bound", "severity": _severity(score),
                          "value": round(cpu, 1), "unit": "cpu_percent_of_one_core",
                          "share_of_wall_time": round(share, 3),
                          "detail": f"{name} averaged {cpu:.0f}% of a core for {seconds:.2f} s"})
        if measured and rss_mb * 2**20 >= thresholds.memory_fraction * total_memory_bytes:
            frac = rss_mb * 2**20 / total_memory_bytes
            found.append({"component": name, "type": "memory",
                          "severity": _severity(frac / thresholds.memory_fraction),
                          "value": round(rss_mb, 1), "unit": "rss_max_mb",
                          "detail": f"{name} peaked at {rss_mb:.0f} MiB RSS ({frac:.0%} of memory)"})
        if measured and share >= thresholds.dominant_share and cpu < thresholds.waiting_cpu_percent:
            score = 1 + (share >= 2 * thresholds.dominant_share)
            found.append({"component": name, "type": "waiting", "severity": _severity(score),
                          "value": round(share, 3), "unit": "share_of_wall_time",
                          "cpu_avg_percent": round(cpu, 1),
                          "detail": f"{name} took {share:.0%} of the wall time at {cpu:.0f}% CPU"})
    order = {"high": 0, "medium": 1, "low": 2}
    found.sort(key=lambda b: (order[b["severity"]], -float(b["value"])))
    slowest = max(component_reports.items(), key=lambda kv: float(kv[1].get("seconds") or 0),
                  default=(None, {}))
    return {"bottlenecks_found": len(found), "bottlenecks": found,
            "slowest_component": slowest[0],
            "thresholds": {k: getattr(thresholds, k) for k in thresholds.__dataclass_fields__}}


def scaling_analysis(
    points: Sequence[tuple[int, float]], *, tolerance: float = Thresholds().superlinear_tolerance
) -> dict[str, Any]:
    """Rows/s at each size, the local exponents between sizes and the super-linear segments.

    ``points`` are (rows, seconds); sizes need not be sorted. Returns
    ``{"points": [{rows, seconds, rows_per_s}], "segments": [{from_rows,
    to_rows, exponent, superlinear}], "fitted_exponent", "superlinear"}``.
    """
    pts = sorted((int(n), float(t)) for n, t in points if n > 0 and t > 0)
    out_points = [{"rows": n, "seconds": round(t, 4), "rows_per_s": round(n / t, 1)} for n, t in pts]
    segments = []
    for (n1, t1), (n2, t2) in zip(pts, pts[1:]):
        if n2 == n1:
            continue
        k = math.log(t2 / t1) / math.log(n2 / n1)
        segments.append({"from_rows": n1, "to_rows": n2, "exponent": round(k, 3),
                         "superlinear": k > 1 + tolerance})
    fitted = None
    if len({n for n, _ in pts}) >= 2:
        xs = [math.log(n) for n, _ in pts]
        ys = [math.log(t) for _, t in pts]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        fitted = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return {"points": out_points, "segments": segments,
            "fitted_exponent": None if fitted is None else round(fitted, 3),
            "superlinear": any(s["superlinear"] for s in segments),
            "tolerance": tolerance}


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles ``p50``... plus ``max`` and ``count`` (empty input gives ``count`` 0)."""
    vals = sorted(values)
    if not vals:
        return {"count": 0}
    out: dict[str, float] = {"count": len(vals)}
    for q in qs:
        rank = max(1, math.ceil(q / 100 * len(vals)))
        out[f"p{q:g}"] = vals[rank - 1]
    out["max"] = vals[-1]
    out["min"] = vals[0]
    return out


__all__ = ["Thresholds", "find_bottlenecks", "percentiles", "scaling_analysis"]
