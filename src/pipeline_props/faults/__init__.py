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
- :class:`FaultHarness` (harness.py): one namespace of the pipeline driven batch by batch
  under faults; a stream run under faults (stream_run.py); its reads of topic and staging
  (observe.py);
- :class:`ErrorScenario`, :data:`FAULT_SCENARIOS` (registry.py; the built-in scenarios are
  scenarios.py), :func:`run_scenario` (runner.py), :func:`write_fault_report` (report.py);
- :func:`classify`, :class:`Findings`: lost / duplicated / phantom records and their stage.
"""

from pipeline_props.faults.dbt_kill import DbtKill, run_killed_dbt
from pipeline_props.faults.driver import DriverRun, run_separate_driver
from pipeline_props.faults.findings import Findings, StageFindings, classify
from pipeline_props.faults.harness import FaultHarness
from pipeline_props.faults.injector import FAULT_KINDS, ErrorInjector, InjectedCrash
from pipeline_props.faults.proxy import FaultProxy
from pipeline_props.faults.registry import ErrorScenario
from pipeline_props.faults.report import write_fault_report
from pipeline_props.faults.runner import ScenarioResult, run_scenario
from pipeline_props.faults.scenarios import FAULT_SCENARIOS

__all__ = [
    "FAULT_KINDS",
    "FAULT_SCENARIOS",
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
    "write_fault_report",
]
