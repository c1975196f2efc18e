"""Shared pieces of the mutation suite: one compiled dbt project, the report, the summary table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mutants import dbt_variant
from pipeline_props.infra.locks import file_lock
from pipeline_props.pipeline.compiled import CompiledProject
from pipeline_props.pipeline import model

_RESULTS: list[dict[str, Any]] = []


@dataclass
class MutationEnv:
    """Services, the work folder for dbt variants and the unmutated compiled project."""

    infra: Any
    work: Path
    baseline: CompiledProject
    report: Path
    target: model.WarehouseTarget

    def compile(self, edits: tuple[tuple[str, str, str], ...], monkeypatch: pytest.MonkeyPatch) -> CompiledProject:
        """Compile a patched copy of the dbt project, selected with PIPELINE_PROPS_DBT_DIR."""
        project = dbt_variant(model.dbt_project_dir(), self.work / "project", edits)
        monkeypatch.setenv(model.DBT_DIR_ENV, str(project))
        return CompiledProject.compile(self.target, work=self.work)

    def record(self, entry: dict[str, Any]) -> None:
        """Add one mutant's outcome to report.json (merged with earlier runs' entries)."""
        _RESULTS.append(entry)
        self.report.parent.mkdir(parents=True, exist_ok=True)
        # pytest -n 2: the other worker may be merging its mutant into the same file.
        with file_lock(self.report.with_suffix(".lock"), timeout=60, what="mutation report"):
            try:
                data = json.loads(self.report.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {"mutants": {}}
            data.setdefault("mutants", {})[entry["mutant"]] = entry
            tmp = self.report.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
            tmp.replace(self.report)


@pytest.fixture(scope="session")
def mutation_env(infrastructure: Any, tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> Iterator[MutationEnv]:
    """Services up, Spark started, the unmutated dbt project compiled (from a copy, for partial parsing)."""
    work = tmp_path_factory.mktemp("mutations-dbt")
    infrastructure.spark  # noqa: B018 - start Spark now, not inside the first timed search
    original = model.dbt_project_dir()
    project = dbt_variant(original, work / "project", ())
    pg = infrastructure.postgres
    infra = infrastructure.infra
    target = model.WarehouseTarget(
        kind="postgres", schema=CompiledProject.PLACEHOLDER,
        host="127.0.0.1" if pg else infra.postgres_host, port=pg.port if pg else infra.postgres_port,
        user=pg.user if pg else infra.postgres_user, password="" if pg else infra.postgres_password,
        dbname=pg.dbname if pg else infra.postgres_db)
    mp = pytest.MonkeyPatch()
    mp.setenv(model.DBT_DIR_ENV, str(project))
    try:
        baseline = CompiledProject.compile(target, work=work)
    finally:
        mp.undo()
    report = Path(request.config.rootpath) / "artifacts" / "mutations" / "report.json"
    yield MutationEnv(infrastructure, work, baseline, report, target)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.section("mutation suite")
    tr.write_line(f"{'mutant':30} {'path':7} {'caught':6} {'catch s':>8} {'total s':>8} "
                  f"{'examples':>8} {'rows':>4}")
    for r in _RESULTS:
        tr.write_line(f"{r['mutant']:30} {r['path']:7} {str(r['caught']):6} "
                      f"{r['seconds_to_catch'] if r['seconds_to_catch'] is not None else '-':>8} "
                      f"{r['seconds_total']:>8} {r['pipeline_runs']:>8} "
                      f"{r['shrunk_rows'] if r['shrunk_rows'] is not None else '-':>4}")
