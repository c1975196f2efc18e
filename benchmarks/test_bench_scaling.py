"""Scaling of the in-process components: rows/s at 10k and 100k rows (1M with PP_SCALING_1M=1).

Run: .venv/bin/pytest benchmarks/test_bench_scaling.py --benchmark-only -s
Fails when a component's time grows faster than linearly between two sizes
(local exponent above 1.15, see pipeline_props.perf.analysis). The whole
pipeline's scaling (through the services) is ``pipeline-props scaling``
(``--with-1m`` for the 1M-row run).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from pipeline_props.perf import PerformanceMonitor

SIZES = [10_000, 100_000] + ([1_000_000] if os.environ.get("PP_SCALING_1M") == "1" else [])


@pytest.mark.parametrize("component", ["reader", "oracle"])
def test_scaling_is_at_most_linear(benchmark: Any, component: str) -> None:
    monitor = PerformanceMonitor()
    result = benchmark.pedantic(monitor.run_throughput_benchmark, args=(component, SIZES),
                                kwargs={"rounds": 2}, rounds=1, iterations=1)
    benchmark.extra_info["scaling"] = result
    print(json.dumps({component: [(p["rows"], p["rows_per_s"]) for p in result["points"]],
                      "exponent": result["fitted_exponent"]}))
    assert not result["superlinear"], result["segments"]
