"""Cluster faults: the four scenarios (0 lost, 0 duplicated, tables = oracle) and the fault state machine.

``slow`` (each scenario 25-110 s here, the machine minutes): ci leaves them to
the thorough profile and ``pytest -m cluster``; the ci smoke test of this
package kills a partition leader mid-produce at the Kafka level.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from test_state_machine import _run, _settings

from pipeline_props.faults.cluster import cluster_pipeline
from pipeline_props.faults.cluster_scenarios import CLUSTER_SCENARIOS
from pipeline_props.faults.runner import run_scenario
from pipeline_props.testing.profiles import current_profile
from pipeline_props.testing.xdist import per_worker

from .machine import cluster_machine

pytestmark = [pytest.mark.cluster, pytest.mark.faults, pytest.mark.slow]

#: Faults the cluster machine draws from; followers paused costs a producer timeout (30 s) per batch.
CLUSTER_MENU: tuple[str, ...] = ("kafka_leader_kill", "kafka_leader_kill_mid_ingest",
                                 "kafka_leader_kill_mid_transform", "spark_worker_kill", "spark_master_kill",
                                 "spark_crash_after_write")
THOROUGH_EXTRA: tuple[str, ...] = ("kafka_followers_pause", "spark_crash_before_write")
#: (schedules, steps) per profile
BUDGET = {"dev": (1, 5), "ci": (1, 6), "thorough": (10, 8)}


@pytest.mark.parametrize("name", CLUSTER_SCENARIOS)
def test_cluster_scenario_loses_nothing(name: str, cluster_infra: Any, cluster_injector: Any) -> None:
    result = run_scenario(name, cluster_infra, injector=cluster_injector, rows=60, seed=1,
                          pipeline=cluster_pipeline(cluster_infra, cluster_injector))
    notes = "; ".join(result.notes)
    cluster_injector.notes.clear()
    assert result.passed, f"{name}: {result.error or result.findings} ({result.fault_observed}; {notes})"
    assert result.records_lost == 0 and result.records_duplicated == 0
    print(f"{name}: {result.seconds:.0f} s, recovery {result.recovery_seconds:.1f} s; {result.fault_observed}; "
          f"{notes}")


def test_pipeline_survives_cluster_fault_schedules(cluster_infra: Any, cluster_injector: Any) -> None:
    """Leader kills (now, mid-ingest, mid-transform), worker and master kills: every acked record once."""
    examples, steps = BUDGET[current_profile()]
    examples = int(os.environ.get("PP_FAULT_SCHEDULES", examples))
    menu = CLUSTER_MENU + (THOROUGH_EXTRA if current_profile() == "thorough" else ())
    _run(cluster_machine(menu, schema=per_worker("pp_cluster_fault_machine")), cluster_infra, cluster_injector,
         _settings(examples, steps))
