"""The dbt project compiled once, then run per example as plain SQL in one transaction.

``dbt build`` costs about 2.5 s even with a reused manifest (start-up, adapter
connection, one transaction per model, one query per test): more than all the
rest of a small property example. :class:`CompiledProject` asks dbt to compile
the project once per process for a placeholder schema, and then runs exactly
that SQL (every non-ephemeral model in dependency order, ephemeral ones already
inlined by dbt as CTEs, then every data test) against any schema, in one
transaction, in a few tens of milliseconds. The SQL stays the project's own:
edit a model and the next compile picks it up.

What it leaves out of ``dbt build``: hooks (the project's set work_mem and,
on int_duplicate_events, ANALYZE: resources and planner statistics, neither
changes a row) and dbt's own materialization steps (temporary
relation, rename, grants). The e2e tests, ``pipeline-props run`` and the example
a property reports still run the real ``dbt build`` (pipeline/model.py), and
tests/integration holds the two equal on the same staging tables.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pipeline_props.errors import PipelineStageError, UsageError
from pipeline_props.pipeline import model

__all__ = ["CompiledProject", "CompiledRun"]

STAGE = "model"


@dataclass(frozen=True)
class CompiledRun:
    """One run of the compiled project: seconds, and the data tests that failed (name: rows)."""

    seconds: float
    failures: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class _Node:
    name: str
    code: str
    unlogged: bool = False


class CompiledProject:
    """The project's models and data tests as dbt compiled them, bound to a schema at run time."""

    #: The schema dbt compiles for; :meth:`run` puts the real one in its place.
    PLACEHOLDER = "pp_compiled_placeholder"

    def __init__(self, models: list[_Node], tests: list[_Node], project_dir: Path) -> None:
        self.models = models
        self.tests = tests
        self.project_dir = project_dir
        self._built: set[str] = set()  # schemas whose tables this object created

    @classmethod
    def compile(cls, target: model.WarehouseTarget, *, work: Path | None = None) -> CompiledProject:
        """Compile the project that ``model.dbt_project_dir()`` names for a Postgres ``target``.

        ``work`` keeps dbt's target folder between calls (partial parsing: a
        second compile of an edited copy re-reads only what changed); by
        default a temporary folder is used and removed.
        """
        if target.kind != "postgres":
            raise UsageError(f"CompiledProject runs on Postgres; target kind={target.kind!r}")
        project_dir = model.dbt_project_dir()
        placeholder = replace(target, schema=cls.PLACEHOLDER)
        own = work is None
        folder = Path(tempfile.mkdtemp(prefix="pp-dbt-compile-")) if work is None else work
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with model._dbt_lock:  # noqa: SLF001 - dbt is not re-entrant
                model._write_profile(folder, placeholder, 1)  # noqa: SLF001
                outcome, _ = model._invoke("compile", folder, project_dir, placeholder, None, None)  # noqa: SLF001
            if outcome.exception is not None or not outcome.success:
                failed = [model._describe(r) for r in getattr(outcome.result, "results", None) or []  # noqa: SLF001
                          if str(getattr(r.status, "value", r.status)) in ("error", "fail")]
                raise PipelineStageError(STAGE, "dbt compile failed: " + ("; ".join(failed) or str(outcome.exception)))
            manifest = json.loads((folder / "target" / "manifest.json").read_text(encoding="utf-8"))
        finally:
            if own:
                shutil.rmtree(folder, ignore_errors=True)
        return cls(*_nodes(manifest), project_dir)

    def _refill(self, conn: psycopg.Connection, schema: str, bind: Any) -> bool:
        """Empty and refill the tables this object built in ``schema`` before; False if that failed.

        DELETE and INSERT .. SELECT instead of DROP and CREATE: for a few rows
        the catalog work and file unlinks of DROP cost more than the query.
        A failure (a table dropped or rebuilt by someone else meanwhile, or a
        model error) rolls back, and the caller rebuilds from scratch, which
        reports a model's own error by name.
        """
        try:
            for node in self.models:
                table = sql.Identifier(schema, node.name)
                conn.execute(sql.SQL("DELETE FROM {}").format(table))
                conn.execute(sql.SQL("INSERT INTO {} (\n{}\n)").format(table, sql.SQL(bind(node.code))))
        except psycopg.Error:
            conn.rollback()
            self._built.discard(schema)
            return False
        return True

    def _rebuild(self, conn: psycopg.Connection, schema: str, bind: Any) -> None:
        for node in self.models:
            table = sql.Identifier(schema, node.name)
            create = sql.SQL("CREATE UNLOGGED TABLE" if node.unlogged else "CREATE TABLE")
            try:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(table))
                conn.execute(sql.SQL("{} {} AS (\n{}\n)").format(create, table, sql.SQL(bind(node.code))))
            except psycopg.Error as exc:
                conn.rollback()
                raise PipelineStageError(
                    STAGE, f"model {node.name} failed: {exc.diag.message_primary or exc}",
                    hint=f"the model's SQL is in {self.project_dir}; `dbt build` shows the same error") from None

    def run(self, dsn: str, schema: str, *, tests: bool = True) -> CompiledRun:
        """Build every model in ``schema`` in one transaction, then run the data tests.

        Raises PipelineStageError naming the model when one fails to build (the
        transaction is rolled back: no half-built marts remain). A data test
        that returns rows is a failure in the result, as in dbt build.
        """
        started = time.perf_counter()
        ident = sql.Identifier(schema)
        try:
            conn = psycopg.connect(dsn, autocommit=False)
        except psycopg.Error as exc:
            raise PipelineStageError(STAGE, f"cannot connect to Postgres: {exc}") from None
        with conn:
            quoted = ident.as_string(conn)

            def bind(code: str) -> str:
                return code.replace(f'"{self.PLACEHOLDER}"', quoted)

            if schema not in self._built or not self._refill(conn, schema, bind):
                self._rebuild(conn, schema, bind)
                self._built.add(schema)
            conn.commit()
            failures: list[str] = []
            if tests and self.tests:
                counts = sql.SQL(" UNION ALL ").join(
                    sql.SQL("SELECT {} AS test, count(*) AS n FROM (\n{}\n) AS {}").format(
                        sql.Literal(i), sql.SQL(bind(node.code)), sql.Identifier(f"t{i}"))
                    for i, node in enumerate(self.tests))
                try:
                    rows = conn.execute(counts).fetchall()
                except psycopg.Error as exc:
                    conn.rollback()
                    raise PipelineStageError(STAGE, f"data tests could not run: {exc.diag.message_primary or exc}") from None
                failures = [f"{self.tests[i].name}: {n} failing row(s)" for i, n in sorted(rows) if n]
        return CompiledRun(seconds=time.perf_counter() - started, failures=failures)


def ordered_models(manifest: dict[str, Any], materializations: tuple[str, ...],
                   hint: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The project's own manifest nodes, and its non-ephemeral models in dependency order.

    Raises PipelineStageError naming the models materialized otherwise than
    ``materializations`` (``hint`` says what to use instead), or a cycle.
    """
    package = manifest["metadata"].get("project_name") or "pipeline_props"
    nodes = {k: n for k, n in manifest["nodes"].items() if n["package_name"] == package}
    built = {k: n for k, n in nodes.items()
             if n["resource_type"] == "model" and n["config"]["materialized"] != "ephemeral"}
    odd = sorted(n["name"] for n in built.values() if n["config"]["materialized"] not in materializations)
    if odd:
        raise PipelineStageError(STAGE, f"models {odd} are not materialized as {' or '.join(materializations)}: "
                                 f"the compiled run cannot build them ({hint})")
    done: list[str] = []
    while len(done) < len(built):
        ready = sorted(k for k, n in built.items() if k not in done
                       and all(d in done or d not in built for d in n["depends_on"]["nodes"]))
        if not ready:
            raise PipelineStageError(STAGE, "dependency cycle in the compiled project")
        done.extend(ready)
    return nodes, [built[k] for k in done]


def _nodes(manifest: dict[str, Any]) -> tuple[list[_Node], list[_Node]]:
    """The project's table models in dependency order, and its data tests by name."""
    nodes, ordered = ordered_models(manifest, ("table",), "use dbt build")
    models = [_Node(n["name"], n["compiled_code"], bool(n["config"].get("unlogged"))) for n in ordered]
    tests = sorted((_Node(n["name"], n["compiled_code"]) for n in nodes.values() if n["resource_type"] == "test"),
                   key=lambda n: n.name)
    return models, tests
