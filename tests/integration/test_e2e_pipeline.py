"""The seed framework's end-to-end commands, verbatim, on top of pipeline-props.

    python tests/integration/test_e2e_pipeline.py --test happy_path --record-count 1000
    python tests/integration/test_e2e_pipeline.py --test all --log-level DEBUG
    pytest tests/integration/test_e2e_pipeline.py::E2EPipelineTestSuite::test_happy_path_pipeline -v

Each test method runs one scenario through Kafka -> Spark -> Postgres -> dbt
and the DuckDB oracle, and asserts that every table matched and every
validator held. The services are the session's (started once).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from pipeline_props.suite import E2EPipelineTestSuite as _Suite

pytestmark = pytest.mark.integration

RECORDS = 300  # small: the ci profile runs all six scenarios


@pytest.fixture(scope="module")
def suite(infrastructure, tmp_path_factory) -> Iterator[_Suite]:
    """The library suite on the session's services, artifacts in a temp folder."""
    artifacts = tmp_path_factory.mktemp("e2e-artifacts")
    yield _Suite(config_override={"run": {"artifacts_dir": str(artifacts)}}, infra=infrastructure)


class E2EPipelineTestSuite:
    """One test method per scenario, as in the seed framework."""

    def _check(self, suite: _Suite, scenario: str, **params) -> None:
        result = suite.run_complete_pipeline_test(scenario, RECORDS, seed=7, **params)
        detail = result.divergence.render() if result.divergence and not result.divergence.ok else ""
        failed = [f"{st['stage']}.{c['check_name']}: {c['details']}"
                  for st in result.validation_summary["stage_results"]
                  for c in st["checks"] if not c["passed"]]
        assert result.divergence is not None and result.divergence.ok, detail
        audit = result.audit
        assert audit["rows_read"] == audit["rows_accepted"] + audit["rows_duplicate"] + audit["rows_rejected"]
        assert (result.artifacts_dir / "validation_report.json").exists()
        # data_quality_issues holds too: its data checks use the thresholds it is built to meet.
        if scenario != "edge_cases":
            assert result.success, failed

    def test_happy_path_pipeline(self, suite: _Suite) -> None:
        self._check(suite, "happy_path")

    def test_data_quality_issues_pipeline(self, suite: _Suite) -> None:
        self._check(suite, "data_quality_issues")

    def test_edge_cases_pipeline(self, suite: _Suite) -> None:
        self._check(suite, "edge_cases")

    def test_error_recovery_pipeline(self, suite: _Suite) -> None:
        self._check(suite, "error_recovery")

    def test_high_volume_pipeline(self, suite: _Suite) -> None:
        self._check(suite, "high_volume")

    def test_performance_benchmark_pipeline(self, suite: _Suite) -> None:
        self._check(suite, "performance_benchmark")


def main(argv: list[str] | None = None) -> int:
    """The seed's command line: --test NAME|all, --record-count N, --log-level L."""
    import argparse

    from pipeline_props.cli import main as cli_main

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", default="happy_path")
    parser.add_argument("--record-count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    return cli_main(["run", "--test", args.test, "--record-count", str(args.record_count),
                     "--seed", str(args.seed), "--log-level", args.log_level])


if __name__ == "__main__":
    sys.exit(main())
