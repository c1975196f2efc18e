"""The seed framework's fault-scenario commands, verbatim, on top of pipeline-props.

    python tests/integration/error_scenario_tests.py --all
    python tests/integration/error_scenario_tests.py --scenario kafka_service_stop

Each scenario runs a dataset through Kafka -> Spark -> Postgres -> dbt, injects
its fault into the real services at its failure point, recovers, and checks
nothing was lost or duplicated and every table equals the DuckDB oracle (see
docs/faults.md). The file name does not match pytest's ``test_*.py`` pattern, so
a plain ``pytest`` run does not collect these heavy runs; name the file
explicitly to run them under pytest (class ErrorScenarioTests, marker faults).
"""

from __future__ import annotations

import sys

import pytest

from pipeline_props.testing.xdist import alone_scope

pytestmark = [pytest.mark.faults, pytest.mark.slow]

#: The scenarios the pytest class runs (cheap ones; the CLI's --all runs every one).
PYTEST_SCENARIOS = ("kafka_service_stop", "spark_crash_after_write", "producer_crash", "corrupt_messages")


class ErrorScenarioTests:
    """One test per scenario, as in the seed framework."""

    @pytest.fixture(scope=alone_scope("class"))  # under xdist one per test: its proxies' ports
    def injector(self, infrastructure):
        from pipeline_props.faults import ErrorInjector

        with ErrorInjector(infrastructure) as inj:
            yield inj

    @pytest.mark.parametrize("name", PYTEST_SCENARIOS)
    def test_scenario(self, name: str, infrastructure, injector) -> None:
        from pipeline_props.faults import run_scenario

        r = run_scenario(name, infrastructure, injector=injector, rows=30)
        assert r.passed, (f"{name}: recovered={r.recovered} lost={r.records_lost} "
                          f"duplicated={r.records_duplicated} tables_equal={r.tables_equal}\n{r.error}")


def main(argv: list[str] | None = None) -> int:
    """The seed's command line: --all | --scenario NAME [--rows N] [--seed S]."""
    import argparse

    from pipeline_props.cli import main as cli_main

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true")
    group.add_argument("--scenario", action="append")
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    cmd = ["errors", "--rows", str(args.rows), "--seed", str(args.seed)]
    cmd += ["--all"] if args.all else [x for s in args.scenario for x in ("--scenario", s)]
    return cli_main(cmd)


if __name__ == "__main__":
    sys.exit(main())
