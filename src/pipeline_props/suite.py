"""E2EPipelineTestSuite: the seed framework's Python API on top of the runner.

    suite = E2EPipelineTestSuite(config_override={"run": {"artifacts_dir": "out"}})
    result = suite.run_complete_pipeline_test("happy_path", 1000)
    assert result.success, result.verdict
    suite.close()

Subclass it for custom scenarios: override :meth:`generate_scenario_data`
(return the dataset's files) and call ``run_complete_pipeline_test`` with your
scenario's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_props.config import Settings, load_settings
from pipeline_props.runner import RunResult, run_dataset


class E2EPipelineTestSuite:
    """Runs scenarios end to end against one set of services, started once and reused."""

    __test__ = False  # a library class, not a pytest test class

    def __init__(self, config_override: Mapping[str, Mapping[str, Any]] | None = None,
                 *, infra: Any = None, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings(overrides=config_override)
        self._infra = infra
        self._owns_infra = infra is None
        self.results: list[RunResult] = []

    @property
    def infra(self) -> Any:
        """The InfrastructureManager (services started on first use)."""
        if self._infra is None:
            from pipeline_props.infra import InfrastructureManager

            self._infra = InfrastructureManager(self.settings).start_services()
            self._infra.wait_for_readiness()
        return self._infra

    def generate_scenario_data(self, scenario_name: str, record_count: int,
                               **params: Any) -> list[tuple[str, bytes]]:
        """The dataset of a scenario as (file name, bytes). ``params`` go to DataGenerationConfig."""
        from pipeline_props.strategies import DataGenerationConfig, DataGenerator

        generator = DataGenerator(DataGenerationConfig(**params))
        return list(generator.generate_test_scenario_data(scenario_name, record_count).files)

    def run_complete_pipeline_test(self, scenario_name: str, record_count: int,
                                   **params: Any) -> RunResult:
        """Generate the scenario, run it through pipeline and oracle, validate, write artifacts.

        The result has ``success``, ``verdict``, ``validation_summary``,
        ``performance_metrics`` and ``artifacts_dir``.
        """
        keep = bool(params.pop("keep", False))
        files = self.generate_scenario_data(scenario_name, record_count, **params)
        result = run_dataset(files, settings=self.settings, infra=self.infra,
                             seed=params.get("seed"), scenario=scenario_name, keep=keep)
        self.results.append(result)
        return result

    def close(self) -> None:
        """Stop the services this suite started."""
        if self._owns_infra and self._infra is not None:
            self._infra.cleanup()
            self._infra = None

    def __enter__(self) -> E2EPipelineTestSuite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
