"""The incremental mode of the dbt project, compiled once and run as SQL in one transaction.

dbt renders an incremental model's ``is_incremental()`` branch only when the
model's relation exists at compile time, so one compile cannot give both
SQLs. :meth:`IncrementalProject.compile` compiles the project (``--vars
'{pp_incremental: true}'``) twice: once as it is (the first build, which is
also ``--full-refresh``), then, after building that SQL into a scratch schema
with empty staging tables, again against that schema, where every relation
exists (the incremental step). Both SQLs are the project's own, as dbt
compiled them.

:meth:`IncrementalProject.run` then does per model what dbt's incremental
materialization does on Postgres: the first-build SQL into a new table when
the table does not exist (or on a full refresh), otherwise the incremental SQL
into a temporary table and the model's strategy (``delete+insert`` as
dbt-postgres writes it: ``DELETE .. WHERE (key) IN (SELECT DISTINCT key ..)``
then ``INSERT``; ``merge``; ``append``), then the model's post-hooks. All
models run in one transaction, the data tests after it.
tests/integration/test_incremental_models.py holds this equal to ``dbt run``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pipeline_props.errors import PipelineStageError, UsageError
from pipeline_props.pipeline import model, staging
from pipeline_props.pipeline.compiled import CompiledProject, CompiledRun, ordered_models

__all__ = ["INCREMENTAL_VARS", "IncrementalModel", "IncrementalProject"]

STAGE = "model"
#: The dbt vars of the incremental mode.
INCREMENTAL_VARS: dict[str, Any] = {"pp_incremental": True}
_THIS = "{{ this }}"


@dataclass(frozen=True)
class IncrementalModel:
    """One model of the incremental project: its two SQLs and its materialization config."""

    name: str
    first_code: str
    incremental_code: str | None  # None: materialized as a table (rebuilt every run)
    unique_key: tuple[str, ...] = ()
    strategy: str = "delete+insert"
    post_hooks: tuple[str, ...] = ()
    unlogged: bool = False


class IncrementalProject:
    """The project in incremental mode as dbt compiled it, bound to a schema at run time."""

    PLACEHOLDER = CompiledProject.PLACEHOLDER

    def __init__(self, models: list[IncrementalModel], tests: list[tuple[str, str]], project_dir: Path) -> None:
        self.models = models
        self.tests = tests
        self.project_dir = project_dir

    @classmethod
    def compile(cls, target: model.WarehouseTarget, dsn: str, *, work: Path | None = None) -> IncrementalProject:
        """Compile the project of ``model.dbt_project_dir()`` in incremental mode for a Postgres ``target``.

        ``dsn`` reaches the same warehouse: the second compile needs the
        relations, built in a scratch schema that is dropped afterwards.
        """
        if target.kind != "postgres":
            raise UsageError(f"IncrementalProject runs on Postgres; target kind={target.kind!r}")
        project_dir = model.dbt_project_dir()
        own = work is None
        folder = Path(tempfile.mkdtemp(prefix="pp-dbt-inc-")) if work is None else work
        folder.mkdir(parents=True, exist_ok=True)
        scratch = f"pp_inc_scratch_{uuid.uuid4().hex[:10]}"
        try:
            first = _compile(folder, project_dir, replace(target, schema=cls.PLACEHOLDER))
            first_models, tests = _nodes(first)
            staging.create_staging(dsn, scratch)
            try:
                _build_first(dsn, scratch, first_models, cls.PLACEHOLDER)
                second = _compile(folder, project_dir, replace(target, schema=scratch))
            finally:
                staging.drop_schema(dsn, scratch)
            again, _ = _nodes(second)
        finally:
            if own:
                shutil.rmtree(folder, ignore_errors=True)
        incremental = {n["name"]: n for n in again}
        models = []
        for node in first_models:
            cfg = node["config"]
            later = incremental[node["name"]]
            is_incremental = cfg["materialized"] == "incremental"
            key = cfg.get("unique_key")
            models.append(IncrementalModel(
                name=node["name"], first_code=node["compiled_code"],
                incremental_code=(later["compiled_code"].replace(f'"{scratch}"', f'"{cls.PLACEHOLDER}"')
                                  if is_incremental else None),
                unique_key=tuple([key] if isinstance(key, str) else key or ()),
                strategy=cfg.get("incremental_strategy") or ("delete+insert" if key else "append"),
                post_hooks=tuple(h["sql"] for h in cfg.get("post-hook") or ()),
                unlogged=bool(cfg.get("unlogged"))))
        return cls(models, tests, project_dir)

    def run(self, dsn: str, schema: str, *, full_refresh: bool = False, tests: bool = True) -> CompiledRun:
        """Apply every model to ``schema`` in one transaction (see the module docstring), then the data tests.

        ``full_refresh`` rebuilds every model from scratch, as ``dbt run
        --full-refresh``. Raises PipelineStageError naming the model that fails
        (the transaction is rolled back: no model is half applied).
        """
        started = time.perf_counter()
        try:
            conn = psycopg.connect(dsn, autocommit=False)
        except psycopg.Error as exc:
            raise PipelineStageError(STAGE, f"cannot connect to Postgres: {exc}") from None
        with conn:
            quoted = sql.Identifier(schema).as_string(conn)

            def bind(code: str) -> str:
                return code.replace(f'"{self.PLACEHOLDER}"', quoted)

            for node in self.models:
                try:
                    self._apply(conn, schema, node, bind, full_refresh)
                except psycopg.Error as exc:
                    conn.rollback()
                    raise PipelineStageError(
                        STAGE, f"model {node.name} failed: {exc.diag.message_primary or exc}",
                        hint=f"the model's SQL is in {self.project_dir}; `dbt run --vars "
                             f"'{json.dumps(INCREMENTAL_VARS)}'` shows the same error") from None
            conn.commit()
            failures: list[str] = []
            if tests and self.tests:
                counts = sql.SQL(" UNION ALL ").join(
                    sql.SQL("SELECT {} AS test, count(*) AS n FROM (\n{}\n) AS {}").format(
                        sql.Literal(i), sql.SQL(bind(code)), sql.Identifier(f"t{i}"))
                    for i, (_, code) in enumerate(self.tests))
                try:
                    rows = conn.execute(counts).fetchall()
                except psycopg.Error as exc:
                    conn.rollback()
                    raise PipelineStageError(STAGE, f"data tests could not run: {exc.diag.message_primary or exc}") from None
                failures = [f"{self.tests[i][0]}: {n} failing row(s)" for i, n in sorted(rows) if n]
        return CompiledRun(seconds=time.perf_counter() - started, failures=failures)

    @staticmethod
    def _apply(conn: psycopg.Connection, schema: str, node: IncrementalModel, bind: Any,
               full_refresh: bool) -> None:
        table = sql.Identifier(schema, node.name)
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                              (table.as_string(conn),)).fetchone()[0]
        if node.incremental_code is None or full_refresh or not exists:
            create = sql.SQL("CREATE UNLOGGED TABLE" if node.unlogged else "CREATE TABLE")
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(table))
            conn.execute(sql.SQL("{} {} AS (\n{}\n)").format(create, table, sql.SQL(bind(node.first_code))))
        else:
            tmp = sql.Identifier(f"{node.name}__pp_tmp")
            conn.execute(sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS (\n{}\n)").format(
                tmp, sql.SQL(bind(node.incremental_code))))
            cur = conn.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(table))
            cols = sql.SQL(", ").join(sql.Identifier(d.name) for d in cur.description or ())
            for statement in _strategy(node, table, tmp, cols, [d.name for d in cur.description or ()]):
                conn.execute(statement)
        for hook in node.post_hooks:
            code = hook.replace(_THIS, table.as_string(conn))
            if "{{" in code or "{%" in code:
                raise UsageError(f"model {node.name}: post-hook {hook!r} uses Jinja beyond {_THIS}, which "
                                 "the compiled run cannot render (use dbt run)")
            conn.execute(sql.SQL(code))  # type: ignore[arg-type] - the project's own hook


def _strategy(node: IncrementalModel, table: sql.Identifier, tmp: sql.Identifier, cols: sql.Composable,
              names: list[str]) -> list[sql.Composable]:
    """The statements of the model's incremental strategy, as dbt's Postgres macros write them."""
    insert = sql.SQL("INSERT INTO {} ({}) (SELECT {} FROM {})").format(table, cols, cols, tmp)
    keys = sql.SQL(", ").join(sql.Identifier(k) for k in node.unique_key)
    if node.strategy == "append" or (node.strategy == "delete+insert" and not node.unique_key):
        return [insert]
    if node.strategy == "delete+insert":
        return [sql.SQL("DELETE FROM {} AS dbt_internal_dest WHERE ({}) IN (SELECT DISTINCT {} FROM {})").format(
            table, keys, keys, tmp), insert]
    if node.strategy == "merge":
        on = sql.SQL(" AND ").join(sql.SQL("s.{k} = t.{k}").format(k=sql.Identifier(k)) for k in node.unique_key)
        sets = sql.SQL(", ").join(sql.SQL("{c} = s.{c}").format(c=sql.Identifier(c)) for c in names)
        values = sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in names)
        return [sql.SQL("MERGE INTO {} AS t USING {} AS s ON ({}) WHEN MATCHED THEN UPDATE SET {} "
                        "WHEN NOT MATCHED THEN INSERT ({}) VALUES ({})").format(
            table, tmp, on if node.unique_key else sql.SQL("FALSE"), sets, cols, values)]
    raise UsageError(f"model {node.name}: incremental_strategy {node.strategy!r} is not supported by the "
                     "compiled run (append, delete+insert, merge); use dbt run")


def _compile(folder: Path, project_dir: Path, target: model.WarehouseTarget) -> dict[str, Any]:
    """``dbt compile`` in incremental mode for ``target``; the manifest."""
    with model._dbt_lock:
        model._write_profile(folder, target, 1)
        outcome, _ = model._invoke("compile", folder, project_dir, target, None, None,
                                   INCREMENTAL_VARS)
    if outcome.exception is not None or not outcome.success:
        failed = [model._describe(r) for r in getattr(outcome.result, "results", None) or []
                  if str(getattr(r.status, "value", r.status)) in ("error", "fail")]
        raise PipelineStageError(STAGE, "dbt compile (incremental mode) failed: "
                                 + ("; ".join(failed) or str(outcome.exception)))
    return json.loads((folder / "target" / "manifest.json").read_text(encoding="utf-8"))


def _nodes(manifest: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The project's non-ephemeral models in dependency order, and its data tests (name, SQL) by name."""
    nodes, ordered = ordered_models(manifest, ("table", "incremental"), "use dbt run")
    tests = sorted((n["name"], n["compiled_code"]) for n in nodes.values() if n["resource_type"] == "test")
    return ordered, tests


def _build_first(dsn: str, schema: str, models: list[dict[str, Any]], placeholder: str) -> None:
    """The first-build SQL of every model into ``schema`` (empty staging): the relations the second compile needs."""
    with psycopg.connect(dsn) as conn:
        quoted = sql.Identifier(schema).as_string(conn)
        for node in models:
            code = node["compiled_code"].replace(f'"{placeholder}"', quoted)
            conn.execute(sql.SQL("CREATE TABLE {} AS (\n{}\n)").format(
                sql.Identifier(schema, node["name"]), sql.SQL(code)))
