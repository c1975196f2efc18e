"""The registry of fault scenarios: what a scenario is, what it works with, and where it is registered.

The built-in scenarios register themselves in faults/scenarios.py, the
cluster ones in faults/cluster_scenarios.py; import those modules (or
``pipeline_props.faults``) to have them in :data:`FAULT_SCENARIOS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline_props.errors import UsageError
from pipeline_props.faults.harness import FaultHarness
from pipeline_props.faults.injector import ErrorInjector


@dataclass(frozen=True)
class ErrorScenario:
    """One named fault scenario (the seed's shape) and the function that runs it."""

    name: str
    description: str
    error_type: str  # service | network | data | resource
    component: str
    failure_point: str
    expected_behavior: str
    recovery_mechanism: str
    run: Callable[[ScenarioContext], None] = field(repr=False, compare=False, default=lambda ctx: None)


@dataclass
class ScenarioContext:
    """What a scenario function works with."""

    harness: FaultHarness
    injector: ErrorInjector
    rows: int
    seed: int
    notes: list[str] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)
    recovery_started: float | None = None

    def dataset(self, k: int) -> bytes:
        """The scenario's k-th seeded dataset (``rows`` records, some of them invalid)."""
        from pipeline_props.strategies import DataGenerationConfig, DataGenerator

        gen = DataGenerator(DataGenerationConfig(seed=self.seed * 100 + k, num_customers=20,
                                                 num_products=10, error_rate=0.1))
        return gen.generate_csv_data(self.rows)

    def recover(self, error_id: str) -> None:
        """Undo one injected fault; the first recovery starts the recovery clock."""
        if self.recovery_started is None:
            self.recovery_started = time.monotonic()
        self.injector.recover_from_error(error_id)

    def expect_failure(self, what: str, ok: bool, error: str = "") -> None:
        """Record whether the fault was visible (a failure under a fault is the loud, wanted outcome)."""
        self.observed.append(f"{what}: {'succeeded' if ok else 'failed: ' + error[:300]}")


#: Every registered fault scenario by name (not the data scenarios of strategies.SCENARIOS).
FAULT_SCENARIOS: dict[str, ErrorScenario] = {}


def register(scenario: ErrorScenario) -> ErrorScenario:
    """Add a scenario to the registry (name must be new)."""
    if scenario.name in FAULT_SCENARIOS:
        raise UsageError(f"scenario {scenario.name!r} is already registered")
    FAULT_SCENARIOS[scenario.name] = scenario
    return scenario


def scenario(name: str, description: str, error_type: str, component: str, failure_point: str,
             expected: str, recovery: str) -> Callable[[Callable[[ScenarioContext], None]], Callable]:
    """Decorator: register the decorated function as the run of a new :class:`ErrorScenario`."""
    def deco(fn: Callable[[ScenarioContext], None]) -> Callable[[ScenarioContext], None]:
        register(ErrorScenario(name, description, error_type, component, failure_point, expected,
                               recovery, fn))
        return fn

    return deco


__all__ = ["FAULT_SCENARIOS", "ErrorScenario", "ScenarioContext", "register", "scenario"]
