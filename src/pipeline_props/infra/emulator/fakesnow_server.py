"""Entry script of the Snowflake emulator: patch fakesnow, then serve Snowflake's HTTP API.

Runs with the emulator's own interpreter (``<home>/fakesnow-venv-<hash>/bin/python
fakesnow_server.py --port N``), never inside pipeline-props' venv: it imports
only fakesnow, uvicorn and the standard library. The patches are written
against fakesnow 0.12.1 exactly (requirements.txt beside this file) and the
script refuses to start on any other version rather than patch blindly.
docs/snowflake.md lists what each one changes.

Patch 1, failed statements: DuckDB aborts the whole transaction on a failed
statement, and fakesnow's server then answers HTTP 500 to every later query
of the session, which the Snowflake connector retries until its network
timeout (for ever without one). Here a statement error comes back as a SQL
error (no retry), and an aborted DuckDB transaction is rolled back so the
session goes on. Unlike Snowflake, where the failed statement alone is undone,
the statements already run in that transaction are undone too.

Patch 2, MERGE's insert values: in ``WHEN NOT MATCHED THEN INSERT (..) VALUES
("A", ..)`` Snowflake resolves a bare column against the source (the target
has no row there), which is how dbt-snowflake's merge writes them. fakesnow
copies the bare names into a SELECT over ``target FULL OUTER JOIN source``,
where DuckDB finds each in both tables ("Ambiguous reference to column
name"). Here they are qualified with the source's alias before fakesnow
rewrites the MERGE; already qualified names and other expressions are kept.

Patch 3, MERGE inside a transaction: fakesnow runs a MERGE as several
statements, the first creating its scratch table ``merge_candidates``; like
every CREATE TABLE with properties, that records the table's (empty) comment
in the ``_fs_global`` database. Inside ``begin`` .. ``commit`` (how
dbt-snowflake wraps its merge) DuckDB then refuses a second database written
in one transaction. Here the scratch table records no comment.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

PINNED_FAKESNOW = "0.12.1"
QUERY_PATH = "/queries/v1/query-request"
#: Snowflake's "SQL execution internal error" code, which the connector raises without retrying.
INTERNAL_SQL_ERROR = "000603"
#: The scratch table fakesnow's MERGE rewrite creates (fakesnow/transforms/merge.py).
MERGE_SCRATCH = "merge_candidates"

log = logging.getLogger("pipeline_props.fakesnow_server")


def check_version() -> None:
    """Refuse to patch any fakesnow but the pinned one."""
    from importlib.metadata import version

    found = version("fakesnow")
    if found != PINNED_FAKESNOW:
        raise SystemExit(f"fakesnow {found} installed, these patches are for {PINNED_FAKESNOW} only")


def _rollback_aborted(request: Any) -> None:
    """Roll back the session's DuckDB transaction when a failed statement aborted it."""
    import fakesnow.server as fs_server

    try:
        conn = fs_server.to_conn(fs_server.to_token(request))
        duck = conn._duck_conn  # noqa: SLF001 - the only handle on the aborted transaction
        duck.execute("ROLLBACK")
    except Exception:  # not in a transaction, or no session: nothing to undo
        pass


def error_response(message: str) -> Any:
    """A SQL error as Snowflake's query API returns it: HTTP 200, success false."""
    from starlette.responses import JSONResponse

    return JSONResponse({"data": {"errorCode": INTERNAL_SQL_ERROR, "sqlState": "XX000"},
                         "code": INTERNAL_SQL_ERROR, "message": message, "success": False})


def guard_query_request(original: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
    """Patch 1: wrap fakesnow's query endpoint (see the module docstring)."""

    async def query_request(request: Any) -> Any:
        response = await original(request)
        failed = response.status_code >= 500
        if not failed and response.status_code == 200:
            try:
                failed = json.loads(response.body).get("success") is False
            except ValueError:
                failed = False
        if failed:
            _rollback_aborted(request)
        if response.status_code >= 500:
            try:
                message = json.loads(response.body).get("message") or "fakesnow failed"
            except ValueError:
                message = "fakesnow failed"
            return error_response(f"fakesnow could not run the statement: {message}")
        return response

    return query_request


def qualify_insert_values(merge_expr: Any) -> Any:
    """Patch 2: bare columns in a MERGE's ``WHEN NOT MATCHED THEN INSERT`` values name the source's columns."""
    from sqlglot import exp

    if not isinstance(merge_expr, exp.Merge):
        return merge_expr
    source = merge_expr.args.get("using")
    alias = source.alias_or_name if source is not None else ""
    if not alias:
        return merge_expr
    for when in merge_expr.args.get("whens") or []:
        then = when.args.get("then")
        if when.args.get("matched") or not isinstance(then, exp.Insert) or then.expression is None:
            continue
        for value in then.expression.expressions:
            if isinstance(value, exp.Column) and not value.table:
                value.set("table", exp.to_identifier(alias))
    return merge_expr


def drop_scratch_comment(expression: Any) -> Any:
    """Patch 3: no comment row for the MERGE's scratch table (``merge_candidates``, no comment of its own)."""
    recorded = expression.args.get("table_comment")
    if recorded and recorded[1] is None and recorded[0].name.lower() == MERGE_SCRATCH:
        del expression.args["table_comment"]
    return expression


def install_patches() -> None:
    """Install patches 1-3 (module docstring): the guarded query route, then the two MERGE rewrites."""
    from starlette.routing import Route

    import fakesnow.server as fs_server
    import fakesnow.transforms as fs_transforms

    original_merge = fs_transforms.merge
    fs_transforms.merge = lambda expression: original_merge(qualify_insert_values(expression))
    original_comment = fs_transforms.extract_comment_on_table
    fs_transforms.extract_comment_on_table = lambda expression: drop_scratch_comment(original_comment(expression))

    routes = fs_server.app.router.routes
    for i, route in enumerate(routes):
        if isinstance(route, Route) and route.path == QUERY_PATH:
            routes[i] = Route(QUERY_PATH, guard_query_request(route.endpoint), methods=["POST"])
            return
    raise SystemExit(f"fakesnow {PINNED_FAKESNOW} has no route {QUERY_PATH}: the patches do not apply")


def main(argv: list[str] | None = None) -> int:
    """Check the version, patch, and serve on 127.0.0.1:PORT until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    check_version()
    install_patches()
    import uvicorn

    import fakesnow.server as fs_server

    print(f"fakesnow {PINNED_FAKESNOW} patched, serving on {args.host}:{args.port}", flush=True)
    uvicorn.run(fs_server.app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
