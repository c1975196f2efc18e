"""Run one fault scenario end to end: prepare, inject, recover, catch up, dbt, check; every fault undone.

:func:`run_scenario` gives a :class:`ScenarioResult` and never raises for a
scenario that fails: a failure is a verdict. :func:`unsupported` says, before
anything starts, why a pipeline cannot run a scenario.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pipeline_props.errors import UsageError
from pipeline_props.faults.findings import Findings
from pipeline_props.faults.harness import FaultHarness
from pipeline_props.faults.injector import ErrorInjector
from pipeline_props.faults.registry import ScenarioContext
from pipeline_props.faults.scenarios import (
    FAULT_SCENARIOS,
    NEEDS_DRIVER_PROCESS,
    PREPARE_ARGS,
)
from pipeline_props.faults.stream_run import short_error
from pipeline_props.infra import InfrastructureManager
from pipeline_props.protocol import FaultHooks, missing_members, pipeline_name


@dataclass
class ScenarioResult:
    """What one scenario run showed."""

    name: str
    recovered: bool
    recovery_seconds: float
    records_lost: int
    records_duplicated: int
    records_phantom: int
    tables_equal: bool
    fault_observed: str
    seconds: float
    findings: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    notes: list[str] = field(default_factory=list)
    #: Why the scenario did not run for this pipeline ("skipped: ..."); empty when it ran.
    skipped: str = ""

    @property
    def passed(self) -> bool:
        """Recovered, tables equal to the oracle, nothing lost, duplicated or phantom, no error."""
        return (self.recovered and self.tables_equal and not self.error and self.records_lost == 0
                and self.records_duplicated == 0 and self.records_phantom == 0)



def unsupported(name: str, pipeline: object) -> str:
    """Why scenario ``name`` cannot run against ``pipeline`` ("skipped: ..."), or "" when it can."""
    from pipeline_props.pipeline.staging import StagingSink

    gaps = missing_members(pipeline, FaultHooks)
    if gaps:
        return (f"skipped: the fault harness needs the FaultHooks layer, and pipeline "
                f"{pipeline_name(pipeline)!r} offers no {', '.join(gaps)} (docs/own-pipeline.md)")
    sink = getattr(pipeline, "sink_factory", None)
    if name in NEEDS_DRIVER_PROCESS and sink is not StagingSink:
        return (f"skipped: the pipeline offers no driver process to kill: the separate driver runs the "
                f"reference transform and StagingSink, and pipeline {pipeline_name(pipeline)!r} "
                f"stages through {getattr(sink, '__name__', type(sink).__name__)}")
    return ""


def run_scenario(name: str, infra: InfrastructureManager, *, injector: ErrorInjector | None = None,
                 rows: int = 60, seed: int = 1, pipeline: FaultHooks | None = None) -> ScenarioResult:
    """Run one registered scenario end to end; every fault is undone in ``finally``.

    A ``pipeline`` that cannot run it (see :func:`unsupported`) gives a result
    whose ``skipped`` says why; nothing is started for it.
    """
    if name not in FAULT_SCENARIOS:
        raise UsageError(f"unknown scenario {name!r}; known: {', '.join(FAULT_SCENARIOS)}")
    why = unsupported(name, pipeline) if pipeline is not None else ""
    if why:
        return ScenarioResult(name=name, recovered=False, recovery_seconds=0.0, records_lost=0,
                              records_duplicated=0, records_phantom=0, tables_equal=False,
                              fault_observed="", seconds=0.0, skipped=why)
    scenario = FAULT_SCENARIOS[name]
    own = injector is None
    inj = injector or ErrorInjector(infra)
    h = FaultHarness(infra, inj, pipeline=pipeline)
    ctx = ScenarioContext(h, inj, rows, seed)
    t0 = time.monotonic()
    error = ""
    recovered = False
    findings: Findings | None = None
    try:
        h.prepare(**PREPARE_ARGS.get(name, {}))
        try:
            scenario.run(ctx)
        finally:
            inj.recover_all()
        start = ctx.recovery_started or time.monotonic()
        h.resend_unknown()
        out = h.catch_up()
        recovered = out.ok
        recovery_s = time.monotonic() - start
        if not out.ok:
            error = f"did not catch up after recovery: {out.error}"
        else:
            h.run_dbt()
        findings = h.check(marts=recovered)
    except Exception as exc:  # noqa: BLE001 - a scenario reports, never crashes the batch
        error = error or f"{type(exc).__name__}: {short_error(exc)}"
        recovery_s = time.monotonic() - (ctx.recovery_started or t0)
    finally:
        try:
            inj.recover_all()
        finally:
            h.cleanup()
            if own:
                inj.close()
    counts = findings.counts() if findings else {"lost": -1, "duplicated": -1, "phantom": -1}
    return ScenarioResult(
        name=name, recovered=recovered, recovery_seconds=round(recovery_s, 2),
        records_lost=counts["lost"], records_duplicated=counts["duplicated"],
        records_phantom=counts["phantom"],
        tables_equal=bool(findings and "marts" not in findings.stages and recovered),
        fault_observed="; ".join(ctx.observed), seconds=round(time.monotonic() - t0, 1),
        findings=findings.to_json() if findings else {},
        error=error if not findings or findings.ok else (error or findings.render()),
        notes=ctx.notes + h.log,
    )


__all__ = ["ScenarioResult", "run_scenario", "unsupported"]
