"""Model stage: build the marts of contract section 5 with dbt, in process.

The dbt project is the repository's ``dbt/`` folder (or ``$PIPELINE_PROPS_DBT_DIR``).
Each call writes a throwaway ``profiles.yml`` for one :class:`WarehouseTarget`
(the password reaches dbt only through an environment variable whose name
starts with ``DBT_ENV_SECRET_``, which dbt scrubs from its logs) and keeps
dbt's target and log folders in a temporary directory, so runs never collide.
dbt is not re-entrant, so invocations are serialised by a module-level lock.

``run_dbt(..., reuse_manifest=True)`` keeps one parsed manifest (and one work
folder) per target and hands it to later builds of the same target, which
skips dbt's parse (most of a small build's time). The property tests use it
with one fixed schema, whose staging tables they truncate between examples.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline_props.errors import ConfigError, PipelineStageError, UsageError

__all__ = ["DbtResult", "WarehouseTarget", "dbt_project_dir", "run_dbt"]

#: Environment variable that overrides the location of the dbt project.
DBT_DIR_ENV = "PIPELINE_PROPS_DBT_DIR"
#: The profile reads the password from this variable (DBT_ENV_SECRET_* is scrubbed from logs).
_PASSWORD_ENV = "DBT_ENV_SECRET_PIPELINE_PROPS_PASSWORD"
_PASSPHRASE_ENV = "DBT_ENV_SECRET_PIPELINE_PROPS_KEY_PASSPHRASE"
_PROFILE = "pipeline_props"
_TARGET = "run"
_COMMANDS = frozenset({"build", "run", "test", "compile", "parse", "debug"})
#: Commands whose target/ artifacts (manifest.json) callers read.
_WRITES_ARTIFACTS = frozenset({"compile", "parse", "debug"})
#: Node statuses that mean a failure (RunStatus/TestStatus values).
_FAILED = frozenset({"error", "fail", "runtime error"})

_dbt_lock = threading.Lock()
#: (target, threads, project dir) -> (work folder, parsed manifest); see run_dbt(reuse_manifest=True).
_parsed: dict[tuple[Any, ...], tuple[Path, Any]] = {}


def _forget_parsed() -> None:
    for work, _ in _parsed.values():
        shutil.rmtree(work, ignore_errors=True)
    _parsed.clear()


atexit.register(_forget_parsed)


@dataclass(frozen=True)
class WarehouseTarget:
    """Where the staging tables are and the marts go: one schema of one warehouse.

    ``kind="postgres"`` uses host/port/user/password/dbname; ``kind="duckdb"``
    uses ``path`` (the database file); ``kind="snowflake"`` uses account, user,
    password or private key, role, warehouse, dbname (the database) and, for
    the emulator, host/port/protocol. Secrets are kept out of ``repr``.
    """

    kind: Literal["postgres", "duckdb", "snowflake"]
    schema: str
    host: str = "127.0.0.1"
    port: int = 15432
    user: str = "postgres"
    password: str = field(default="", repr=False)
    dbname: str = "postgres"
    path: str | None = None
    account: str = ""
    role: str = ""
    warehouse: str = ""
    protocol: str = ""
    private_key_path: str = ""
    private_key_passphrase: str = field(default="", repr=False)


@dataclass(frozen=True)
class DbtResult:
    """Outcome of one dbt invocation.

    ``failures`` names every failed test (and every node skipped because of
    one) with dbt's message; it is empty when ``success`` is true.
    """

    success: bool
    seconds: float
    failures: list[str]


def dbt_project_dir() -> Path:
    """The dbt project folder: ``$PIPELINE_PROPS_DBT_DIR`` or the repository's ``dbt/``."""
    override = os.environ.get(DBT_DIR_ENV)
    if override:
        path = Path(override).expanduser().resolve()
        if not (path / "dbt_project.yml").is_file():
            raise ConfigError(
                DBT_DIR_ENV, override, "a folder holding dbt_project.yml", source="environment"
            )
        return path
    path = Path(__file__).resolve().parents[3] / "dbt"
    if not (path / "dbt_project.yml").is_file():
        raise PipelineStageError(
            "model",
            f"dbt project not found at {path}",
            hint=f"set {DBT_DIR_ENV} to the folder holding dbt_project.yml",
        )
    return path


def _profile(target: WarehouseTarget, threads: int) -> dict[str, Any]:
    output: dict[str, Any]
    if target.kind == "postgres":
        output = {
            "type": "postgres",
            "host": target.host,
            "port": int(target.port),
            "user": target.user,
            "password": "{{ env_var('" + _PASSWORD_ENV + "', '') }}",
            "dbname": target.dbname,
            "schema": target.schema,
            "threads": threads,
            "connect_timeout": 10,
        }
    elif target.kind == "duckdb":
        if not target.path:
            raise UsageError("a duckdb WarehouseTarget needs path (the database file)")
        output = {
            "type": "duckdb",
            "path": str(Path(target.path).resolve()),
            "schema": target.schema,
            "threads": threads,
            # release the file when dbt is done, so the caller can open it
            "keep_open": False,
        }
    elif target.kind == "snowflake":
        output = _snowflake_output(target, threads)
    else:
        raise UsageError(f"unknown warehouse kind {target.kind!r}: expected postgres, duckdb or snowflake")
    return {_PROFILE: {"target": _TARGET, "outputs": {_TARGET: output}}}


def _snowflake_output(target: WarehouseTarget, threads: int) -> dict[str, Any]:
    output: dict[str, Any] = {
        "type": "snowflake", "account": target.account, "user": target.user,
        "database": target.dbname, "schema": target.schema, "threads": threads,
        # one try: the caller bounds every connector call (docs/snowflake.md)
        "connect_retries": 0, "connect_timeout": 20,
    }
    if target.private_key_path:
        output["private_key_path"] = target.private_key_path
        output["private_key_passphrase"] = "{{ env_var('" + _PASSPHRASE_ENV + "', '') }}"
    else:
        output["password"] = "{{ env_var('" + _PASSWORD_ENV + "', '') }}"
    for key in ("role", "warehouse", "protocol"):
        if getattr(target, key):
            output[key] = getattr(target, key)
    if target.protocol == "http":  # the local emulator
        output.update(host=target.host, port=int(target.port))
    return output


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of one invocation, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def _describe(result: Any) -> str:
    node = getattr(result, "node", None)
    name = getattr(node, "unique_id", None) or getattr(node, "name", "?")
    status = str(getattr(result.status, "value", result.status))
    message = (getattr(result, "message", None) or "").strip()
    return f"{name} [{status}]: {message}" if message else f"{name} [{status}]"


def _write_profile(work: Path, target: WarehouseTarget, threads: int) -> None:
    (work / "profiles.yml").write_text(
        yaml.safe_dump(_profile(target, threads), sort_keys=False), encoding="utf-8"
    )


def _args(command: str, work: Path, project_dir: Path, select: str | None,
          dbt_vars: dict[str, Any] | None = None, full_refresh: bool = False) -> list[str]:
    args = [
        command,
        "--project-dir", str(project_dir),
        "--profiles-dir", str(work),
        "--profile", _PROFILE,
        "--target", _TARGET,
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "--no-use-colors",
        "--quiet",
    ]  # fmt: skip
    if command not in _WRITES_ARTIFACTS:
        # Writing manifest.json and run_results.json and listing the schema's
        # relations up front cost more than a small build itself; nothing here
        # reads them (results come back in process, relations are looked up on demand).
        args += ["--no-write-json", "--no-populate-cache"]
    if select:
        args += ["--select", select]
    if dbt_vars:
        args += ["--vars", json.dumps(dbt_vars, sort_keys=True)]
    if full_refresh:
        args.append("--full-refresh")
    return args


def _reset_compiled_state(manifest: Any) -> None:
    """Undo what one invocation compiled into the shared manifest.

    dbt marks a node's ephemeral CTEs as injected when it compiles it; on a
    reused manifest the next compile would then skip the injection and refer
    to a CTE that is not there (``__dbt__cte__staged_events``). Copying the
    manifest instead breaks its lookup caches, so reset the flags in place.
    """
    for node in manifest.nodes.values():
        if hasattr(node, "extra_ctes_injected"):
            node.extra_ctes_injected = False
            node.extra_ctes = []
            node.compiled = False
            node.compiled_code = None


def _parsed_project(target: WarehouseTarget, threads: int, project_dir: Path,
                    dbt_vars: dict[str, Any] | None = None) -> tuple[Path, Any]:
    """The work folder and parsed manifest of ``target`` (parsed on first use). Holds _dbt_lock."""
    key = (target, threads, str(project_dir), json.dumps(dbt_vars or {}, sort_keys=True))
    if key not in _parsed:
        work = Path(tempfile.mkdtemp(prefix="pp-dbt-"))
        _write_profile(work, target, threads)
        outcome, _ = _invoke("parse", work, project_dir, target, None, None, dbt_vars)
        if outcome.exception is not None or not outcome.success or outcome.result is None:
            shutil.rmtree(work, ignore_errors=True)
            raise PipelineStageError("model", f"dbt parse could not run: {outcome.exception}")
        _parsed[key] = (work, outcome.result)
    work, manifest = _parsed[key]
    _reset_compiled_state(manifest)
    return work, manifest


def _invoke(command: str, work: Path, project_dir: Path, target: WarehouseTarget,
            select: str | None, manifest: Any, dbt_vars: dict[str, Any] | None = None,
            full_refresh: bool = False) -> tuple[Any, float]:
    from dbt.cli.main import dbtRunner  # imported late: dbt is slow to import

    env = {_PASSWORD_ENV: target.password, _PASSPHRASE_ENV: target.private_key_passphrase,
           "DO_NOT_TRACK": "1"}
    started = time.perf_counter()
    with _environment(env):
        try:
            outcome = dbtRunner(manifest=manifest).invoke(
                _args(command, work, project_dir, select, dbt_vars, full_refresh))
        except Exception as exc:  # dbt should report, not raise; be safe anyway
            raise PipelineStageError("model", f"dbt {command} crashed: {exc}") from exc
    return outcome, time.perf_counter() - started


def run_dbt(
    target: WarehouseTarget,
    *,
    command: str = "build",
    select: str | None = None,
    threads: int = 2,
    reuse_manifest: bool = False,
    dbt_vars: dict[str, Any] | None = None,
    full_refresh: bool = False,
) -> DbtResult:
    """Run one dbt command (default ``build``) of the project against ``target``.

    Returns ``DbtResult(success=False, failures=[...])`` when dbt ran but data
    tests failed (the nodes they made dbt skip are listed too). Raises
    :class:`PipelineStageError` (stage ``model``) when dbt cannot run or a
    model fails to build, naming the failing nodes.

    With ``reuse_manifest`` the project is parsed once per (target, threads)
    in this process and later calls reuse that manifest (a 200-row build went
    from 9-17 s to 4-6 s on this loaded 2-core machine, and to about 2-2.5 s
    once build/run/test stopped writing JSON artifacts and pre-listing the
    schema); edit the project and the process must restart to see it.

    ``dbt_vars`` go to ``--vars`` (``{"pp_incremental": True}``: the
    incremental mode); ``full_refresh`` adds ``--full-refresh``.
    """
    if command not in _COMMANDS:
        raise UsageError(f"dbt command {command!r} is not supported: use one of {sorted(_COMMANDS)}")
    if threads < 1:
        raise UsageError(f"threads must be at least 1, got {threads}")
    project_dir = dbt_project_dir()
    with _dbt_lock:
        if reuse_manifest:
            work, manifest = _parsed_project(target, threads, project_dir, dbt_vars)
            outcome, seconds = _invoke(command, work, project_dir, target, select, manifest,
                                       dbt_vars, full_refresh)
        else:
            with tempfile.TemporaryDirectory(prefix="pp-dbt-") as tmp:
                work = Path(tmp)
                _write_profile(work, target, threads)
                outcome, seconds = _invoke(command, work, project_dir, target, select, None,
                                           dbt_vars, full_refresh)

    if outcome.exception is not None:
        raise PipelineStageError("model", f"dbt {command} could not run: {outcome.exception}")
    results = list(getattr(outcome.result, "results", None) or [])
    broken = [
        r
        for r in results
        if str(getattr(r.status, "value", r.status)) in _FAILED
        and getattr(getattr(r, "node", None), "resource_type", None) is not None
        and str(getattr(r.node.resource_type, "value", r.node.resource_type)) != "test"
    ]
    if broken:
        raise PipelineStageError(
            "model",
            f"dbt {command} failed on {len(broken)} node(s): "
            + "; ".join(_describe(r) for r in broken),
        )
    failures = [
        _describe(r)
        for r in results
        if str(getattr(r.status, "value", r.status)) in _FAILED | {"skipped"}
    ]
    success = bool(outcome.success) and not failures
    if not success and not failures:
        failures = [f"dbt {command} reported failure without a failing node"]
    return DbtResult(success=success, seconds=seconds, failures=failures)
