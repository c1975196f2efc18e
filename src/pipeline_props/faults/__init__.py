"""Fault injection and recovery testing against the real running services.

Public API:

- :class:`ErrorInjector`: ``inject_service_failure(service, mode)``,
  ``inject_network_failure(target, mode)``, ``inject_disk_full``, ``inject_cpu_hog``,
  ``inject(kind)`` -> error id; ``recover_from_error(error_id)``, ``recover_all()``,
  ``restore_services()``; ``tmpfs_tablespace`` (staging tables on a small tmpfs);
- :func:`run_killed_dbt`: ``dbt run`` of the incremental marts in a process of its own,
  SIGKILLed between two models (faults/dbt_kill.py);
- :func:`run_separate_driver`: the transform in a driver process of its own, SIGKILLed
  at a kill point of the micro-batch or squeezed for memory;
- :class:`FaultProxy`: the loopback TCP fault proxy (delay, loss, cut, lost Kafka acks);
- :class:`ErrorScenario`, :data:`SCENARIOS`, :func:`run_scenario`, :func:`write_report`;
- :class:`FaultHarness`: one namespace of the pipeline driven batch by batch under faults;
- :func:`classify`, :class:`Findings`: lost / duplicated / phantom records and their stage.
"""

from pipeline_props.faults.dbt_kill import DbtKill, run_killed_dbt
from pipeline_props.faults.driver import DriverRun, run_separate_driver
from pipeline_props.faults.findings import Findings, StageFindings, classify
from pipeline_props.faults.injector import FAULT_KINDS, ErrorInjector, InjectedCrash
from pipeline_props.faults.proxy import FaultProxy
from pipeline_props.faults.scenarios import (
    SCENARIOS,
    ErrorScenario,
    FaultHarness,
    ScenarioResult,
    run_scenario,
    write_report,
)

__all__ = [
    "FAULT_KINDS",
    "SCENARIOS",
    "DbtKill",
    "DriverRun",
    "ErrorInjector",
    "ErrorScenario",
    "FaultHarness",
    "FaultProxy",
    "Findings",
    "InjectedCrash",
    "ScenarioResult",
    "StageFindings",
    "classify",
    "run_killed_dbt",
    "run_scenario",
    "run_separate_driver",
    "write_report",
]
