"""A Spark driver process SIGKILLed mid-batch, before or after the warehouse write (faults)."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline_props.faults import FaultHarness
from pipeline_props.faults.driver import KILL_POINTS, run_separate_driver
from pipeline_props.strategies import DataGenerationConfig, DataGenerator


@pytest.mark.faults
@pytest.mark.parametrize("kill_at", [
    "after_write",
    pytest.param("before_write", marks=pytest.mark.slow),
])
def test_a_killed_driver_loses_nothing_and_the_replay_writes_once(infrastructure, fault_injector,
                                                                   kill_at: str) -> None:
    """SIGKILL of the driver's process group (Python and JVM) while a batch is in flight.

    after_write: the batch is in the warehouse, not in Spark's commit log; the rerun on
    the same checkpoint replays it and the sink's ledger makes that a no-op.
    before_write: nothing is staged; the rerun writes the batch once.
    """
    h = FaultHarness(infrastructure, fault_injector)
    h.prepare()
    try:
        data = DataGenerator(DataGenerationConfig(seed=7, num_customers=5, num_products=5,
                                                  error_rate=0.1)).generate_csv_data(25)
        batch = h.produce(data)
        assert batch.status == "acked", batch.error
        eid = fault_injector.inject(f"spark_driver_kill_{kill_at}")
        try:
            killed = h.run_stream()
        finally:
            fault_injector.recover_from_error(eid)
        assert not killed.ok and killed.error.startswith("driver process SIGKILLed"), killed
        assert f"spark_driver_kill_{kill_at}" in fault_injector.armed.fired
        staged, _ = h.staging_positions()
        if kill_at == "after_write":  # the kill came after the COMMIT: the whole batch is there
            assert Counter(staged) == Counter(batch.positions)
        else:
            assert staged == []
        out = h.catch_up()
        assert out.ok, out.error
        h.run_dbt()
        findings = h.check(marts=True)
        assert findings.ok, findings.render()
    finally:
        h.cleanup()


@pytest.mark.unit
def test_an_unknown_kill_point_is_refused() -> None:
    from pipeline_props.errors import UsageError

    with pytest.raises(UsageError, match="kill_at='mid_air'"):
        run_separate_driver(bootstrap="x", topic="t", checkpoint="c", dsn="d", schema="s", kill_at="mid_air")
    assert KILL_POINTS == ("before_write", "after_write")
