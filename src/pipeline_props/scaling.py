"""The whole pipeline's scaling (``pipeline-props scaling --component pipeline``): runs at each size.

Runner level: it runs datasets through :func:`pipeline_props.runner.run_dataset`,
so it lives above perf/ (which the runner uses) and not in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline_props.perf.analysis import scaling_analysis

__all__ = ["pipeline_scaling"]


def pipeline_scaling(workload_sizes: Sequence[int], *, settings: Any, infra: Any = None,
                     seed: int = 42) -> dict[str, Any]:
    """Run the whole pipeline at each size (scenario performance_benchmark) and analyse each stage.

    Returns ``{"component": "pipeline", "runs": [{rows, run_id, verdict, stages}],
    "stages": {stage: scaling_analysis}, "superlinear": [stages...]}``.
    """
    from pipeline_props.runner import run_dataset
    from pipeline_props.strategies import DataGenerationConfig, DataGenerator

    gen = DataGenerator(DataGenerationConfig(seed=seed))
    runs = []
    per_stage: dict[str, list[tuple[int, float]]] = {}
    for n in workload_sizes:
        files = list(gen.generate_test_scenario_data("performance_benchmark", n).files)
        result = run_dataset(files, settings=settings, infra=infra, seed=seed,
                             scenario=f"scaling_{n}")
        stages = {s: m["seconds"] for s, m in result.performance_metrics["stages"].items()}
        runs.append({"rows": n, "run_id": result.run_id, "verdict": result.verdict, "stages": stages})
        for stage, sec in stages.items():
            per_stage.setdefault(stage, []).append((n, sec))
    analysis = {stage: scaling_analysis(pts) for stage, pts in per_stage.items()}
    return {"component": "pipeline", "sizes": list(workload_sizes), "runs": runs, "stages": analysis,
            "superlinear": sorted(s for s, a in analysis.items() if a["superlinear"])}


