"""The DuckDB reference oracle: the five output tables computed from raw CSV bytes.

Independent of the pipeline under test by construction: it imports nothing
from ``pipeline_props.pipeline``, only the contract's constants and the error
types. Records are cut by :mod:`pipeline_props.oracles.splitter` (the exact
path) or, for files whose records are plain lines (no quote, no ``\\r``, valid
UTF-8), by vectorised Arrow compute (the fast path); both give the same
``records`` table, registered in DuckDB as an Arrow table (no row inserts).
Everything after that - typing, validation, duplicates, amounts, aggregation -
is SQL in ``oracles/sql/*.sql``, run in a private in-memory DuckDB.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from pipeline_props import contract
from pipeline_props.errors import InputError
from pipeline_props.oracles.fast_path import MAX_FAST_BYTES, fast_records
from pipeline_props.oracles.splitter import Header, needs_full_split, read_header, split_records, strip_bom
from pipeline_props.tables import TableSet

#: The records table both paths produce (registered in DuckDB as ``records``):
#: one row per counted record, the contract's fields unquoted and trimmed, all
#: NULL when the record is malformed. ``control`` is False only when the
#: record holds no control character (checked.sql then skips that search).
#: Text is Arrow string views: the fast path points them into the file's bytes.
_RECORDS_SCHEMA = pa.schema(
    [
        ("file_index", pa.int32()),
        ("record_number", pa.int64()),
        ("raw", pa.string_view()),
        ("malformed", pa.bool_()),
        ("control", pa.bool_()),
        *((column, pa.string_view()) for column in contract.COLUMNS),
    ]
)

#: A control character (U+0000-U+001F, U+007F), as checked.sql's [[:cntrl:]].
_CONTROL = re.compile("[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class OracleResult:
    """What the oracle computed for one dataset."""

    #: The five tables of contract section 5, rows in OUTPUT_TABLES column
    #: order, sorted by all columns with None first.
    tables: TableSet
    #: (file name, extra column) for every column outside the contract, by
    #: file (in dataset order, so a file listed twice appears twice) and then
    #: header order.
    schema_drift: tuple[tuple[str, str], ...]
    #: Wall-clock time of the run.
    seconds: float


def _literal(value: object) -> str:
    """A constant from the contract as a SQL literal."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (int, Decimal)):
        return str(value)
    raise TypeError(f"no SQL literal for {value!r}")


@functools.cache
def _placeholders() -> dict[str, str]:
    """``{{NAME}}`` -> SQL text, all taken from :mod:`pipeline_props.contract`."""
    values: dict[str, str] = {reason: _literal(reason) for reason in contract.REASONS}
    values.update(
        REGIONS=", ".join(map(_literal, contract.REGIONS)),
        CHANNELS=", ".join(map(_literal, contract.CHANNELS)),
        CURRENCIES=", ".join(map(_literal, contract.CURRENCIES)),
        QUANTITY_MIN=_literal(contract.QUANTITY_MIN),
        QUANTITY_MAX=_literal(contract.QUANTITY_MAX),
        UNIT_PRICE_MIN=_literal(contract.UNIT_PRICE_MIN),
        UNIT_PRICE_MAX=_literal(contract.UNIT_PRICE_MAX),
        DISCOUNT_MIN=_literal(contract.DISCOUNT_MIN),
        DISCOUNT_MAX=_literal(contract.DISCOUNT_MAX),
        YEAR_MIN=_literal(contract.YEAR_MIN),
        YEAR_MAX=_literal(contract.YEAR_MAX),
        MAX_OFFSET_MINUTES=_literal(contract.MAX_OFFSET_MINUTES),
        ID_MAX=_literal(contract.ID_MAX_CODE_POINTS),
        FX_RATE_OF_CURRENCY="(CASE currency "
        + " ".join(
            f"WHEN {_literal(code)} THEN CAST({_literal(str(rate))} AS DECIMAL(7, 6))"
            for code, rate in contract.FX_RATES_TO_USD.items()
        )
        + " END)",
    )
    return values


@functools.cache
def load_sql(name: str) -> str:
    """The text of ``oracles/sql/<name>`` with its contract placeholders filled in."""
    text = resources.files("pipeline_props.oracles").joinpath("sql", name).read_text("utf-8")
    for key, value in _placeholders().items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        start = text.index("{{")
        raise RuntimeError(f"unknown placeholder in {name}: {text[start:text.index('}}', start) + 2]}")
    return text


def _fast_records(file_index: int, body: bytes, header: Header) -> pa.Table:
    """Records of a file with no quote, no ``\\r`` and valid UTF-8, vectorised
    (:mod:`pipeline_props.oracles.fast_path`)."""
    positions = [header.names.index(column) for column in contract.COLUMNS]
    batches = []
    for columns in fast_records(body, header.body_start, len(header.names), positions):
        count = len(columns["record_number"])
        fields = (columns[f"field{i}"] for i in range(len(positions)))
        batches.append(
            pa.record_batch(
                [
                    pa.array(np.full(count, file_index, dtype=np.int32)),
                    pa.array(columns["record_number"]),
                    columns["raw"],
                    pa.array(columns["malformed"]),
                    pa.array(columns["control"]),
                    *(pa.nulls(count, pa.string_view()) if f is None else f for f in fields),
                ],
                schema=_RECORDS_SCHEMA,
            )
        )
    return pa.Table.from_batches(batches, _RECORDS_SCHEMA)


def _split_records(file_index: int, name: str, body: bytes, header: Header) -> pa.Table:
    """Records of any file, cut by the splitter (the exact path)."""
    positions = [header.names.index(column) for column in contract.COLUMNS]
    numbers: list[int] = []
    raws: list[str] = []
    malformed: list[bool] = []
    control: list[bool] = []
    fields: list[list[str | None]] = [[] for _ in positions]
    for record in split_records(file_index, name, body, header):
        numbers.append(record.record_number)
        raws.append(record.raw)
        values = record.fields
        malformed.append(values is None)
        control.append(_CONTROL.search(record.raw) is not None)
        for out, at in zip(fields, positions, strict=True):
            out.append(None if values is None else values[at])
    return pa.table(
        [
            pa.array(np.full(len(numbers), file_index, dtype=np.int32)),
            pa.array(numbers, pa.int64()),
            pa.array(raws, pa.string_view()),
            pa.array(malformed, pa.bool_()),
            pa.array(control, pa.bool_()),
            *(pa.array(values, pa.string_view()) for values in fields),
        ],
        schema=_RECORDS_SCHEMA,
    )


def _files_table(names: Sequence[str]) -> pa.Table:
    return pa.table(
        {
            "file_index": pa.array(range(len(names)), pa.int32()),
            "source_file": pa.array(names, pa.string()),
        }
    )


#: Rows per Arrow record batch handed to DuckDB (a multiple of its 2048-row vectors).
_BATCH_ROWS = 64 * 2048
_INTERMEDIATE_VIEWS: tuple[str, ...] = ("checked", "candidates", "accepted")
_INTERMEDIATE_TABLES: tuple[str, ...] = ("repeated", "facts", "versions", "rejected")
_REGISTERED: tuple[str, ...] = ("records", "files")

# Each thread's in-memory DuckDB, by thread id, in a module dict and not a
# threading.local: a fork (subprocess with preexec_fn, as pyspark starts its
# JVM) deletes the other threads' states in the child, and with them their
# thread-locals, so a DuckDB held there was destroyed in the child, where its
# worker threads do not exist: the child crashed before exec (a segfault, and
# pyspark's JAVA_GATEWAY_EXITED). A dict entry is never freed by a fork.
_connections: dict[int, duckdb.DuckDBPyConnection] = {}
_connections_pid = os.getpid()
#: Connections of the parent, seen in a forked child: kept, never closed there.
_inherited: list[duckdb.DuckDBPyConnection] = []
_connections_lock = threading.Lock()


def _cached_connection() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB (connecting costs tens of ms per run)."""
    global _connections_pid
    me = threading.get_ident()
    with _connections_lock:
        if _connections_pid != os.getpid():  # a forked child: the parent's are not ours to close
            _inherited.extend(_connections.values())
            _connections.clear()
            _connections_pid = os.getpid()
        con = _connections.get(me)
        if con is None:
            alive = {thread.ident for thread in threading.enumerate()}
            for ident in [ident for ident in _connections if ident not in alive]:
                _connections.pop(ident).close()  # its thread has ended
            con = _connections[me] = duckdb.connect(":memory:")
        return con


def _forget_connection() -> None:
    """Close this thread's DuckDB (after an error left it in an unknown state)."""
    with _connections_lock:
        con = _connections.pop(threading.get_ident(), None) if _connections_pid == os.getpid() else None
    if con is not None:
        con.close()


def _build(
    files: Sequence[tuple[str, bytes]],
    *,
    full_split: bool = False,
    con: duckdb.DuckDBPyConnection | None = None,
) -> tuple[duckdb.DuckDBPyConnection, list[tuple[str, Header]]]:
    """Check every header, then load the records into DuckDB.

    Builds the macro checked_rows, the views checked, candidates and
    accepted, and the tables repeated, facts, versions and rejected (records
    and files are registered Arrow tables) in ``con``, or in a new in-memory DuckDB that
    the caller closes. ``full_split`` sends every file through the splitter
    (tests compare it with the fast path).
    """
    headers: list[tuple[str, Header]] = []
    bodies: list[bytes] = []
    for name, data in files:
        body = strip_bom(data)
        headers.append((name, read_header(name, body)))
        bodies.append(body)

    tables: list[pa.Table] = []
    for index, ((name, header), body) in enumerate(zip(headers, bodies, strict=True)):
        if full_split or len(body) > MAX_FAST_BYTES or needs_full_split(body):
            tables.append(_split_records(index, name, body, header))
        else:
            tables.append(_fast_records(index, body, header))

    own = con is None
    con = duckdb.connect(":memory:") if con is None else con
    try:
        # DuckDB pushes a join's key range into the scan of the other side;
        # for an Arrow table that becomes a pyarrow filter, which has no
        # kernel for string views. Without it, callers may still join records.
        con.execute("SET disabled_optimizers = 'join_filter_pushdown'")
        # every output query sorts; unordered inserts let facts be written by
        # both threads without reassembling records' order
        con.execute("SET preserve_insertion_order = false")
        records = pa.concat_tables(tables) if tables else _RECORDS_SCHEMA.empty_table()
        # rid: the record's row in records, the key the SQL joins on
        records = records.add_column(0, "rid", pa.array(np.arange(len(records), dtype=np.int64)))
        # batches of a bounded size, so that every DuckDB thread gets some
        records = pa.Table.from_batches(records.to_batches(max_chunksize=_BATCH_ROWS), records.schema)
        con.register("records", records)
        con.register("files", _files_table([name for name, _ in headers]))
        con.execute(load_sql("checked.sql"))
        for script in ("facts.sql", "versions.sql", "events.sql"):
            con.execute(load_sql(script))
    except BaseException:
        if own:
            con.close()
        raise
    return con, headers


def run_oracle(files: Sequence[tuple[str, bytes]]) -> OracleResult:
    """Compute the contract's five output tables for a dataset.

    ``files`` are (name, bytes) in dataset order; a file's index is its
    position. Raises :class:`pipeline_props.errors.InputError` (before
    computing anything) when a file must be refused for its header.
    """
    started = time.perf_counter()
    con = _cached_connection()
    try:
        _, headers = _build(files, con=con)
        tables: TableSet = {
            table: con.execute(load_sql(f"{table}.sql")).fetchall() for table in contract.OUTPUT_TABLES
        }
        con.execute("DROP MACRO TABLE IF EXISTS checked_rows")
        for view in _INTERMEDIATE_VIEWS:
            con.execute(f"DROP VIEW IF EXISTS {view}")
        for table in _INTERMEDIATE_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        for view in _REGISTERED:
            con.unregister(view)
    except InputError:
        raise  # refused before anything was loaded: the connection is clean
    except BaseException:
        _forget_connection()
        raise
    drift = tuple((name, column) for name, header in headers for column in header.extra_columns)
    return OracleResult(tables, drift, time.perf_counter() - started)


def accepted_daily_totals(files: Sequence[tuple[str, bytes]]) -> list[tuple[Any, ...]]:
    """Per sale_date over the accepted events: (sale_date, gross, returns, units sold, units returned, lines).

    One query grouped by sale_date alone, not by daily_sales' grain: the
    partition property compares the two groupings.
    """
    con, _ = _build(files)
    try:
        return con.execute(
            """SELECT sale_date,
                      coalesce(sum(amount_usd) FILTER (WHERE quantity > 0), 0),
                      coalesce(-sum(amount_usd) FILTER (WHERE quantity < 0), 0),
                      coalesce(sum(quantity) FILTER (WHERE quantity > 0), 0),
                      coalesce(-sum(quantity) FILTER (WHERE quantity < 0), 0),
                      count(*)
               FROM accepted GROUP BY sale_date"""
        ).fetchall()
    finally:
        con.close()


def run_oracle_on_paths(paths: Sequence[str | Path]) -> OracleResult:
    """:func:`run_oracle` on files read from disk; a file's name is its base name."""
    return run_oracle([(Path(p).name, Path(p).read_bytes()) for p in paths])
