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


def install_patches() -> None:
    """Replace the query route of fakesnow's Starlette app with the guarded endpoint."""
    from starlette.routing import Route

    import fakesnow.server as fs_server

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
