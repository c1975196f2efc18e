"""Export stage: read the five output tables back from the warehouse as a TableSet."""

from __future__ import annotations

from typing import Any

from pipeline_props.tables import TableSet, normalise_table
from pipeline_props.contract import OUTPUT_TABLES
from pipeline_props.errors import PipelineStageError


def export_postgres(dsn: str, schema: str) -> TableSet:
    """The five tables of ``schema`` in contract column order, normalised."""
    import psycopg
    from psycopg import sql

    out: TableSet = {}
    try:
        with psycopg.connect(dsn) as conn:
            for table, columns in OUTPUT_TABLES.items():
                query = sql.SQL("SELECT {} FROM {}.{}").format(
                    sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                    sql.Identifier(schema), sql.Identifier(table))
                out[table] = normalise_table(table, conn.execute(query).fetchall())
    except psycopg.Error as exc:
        raise PipelineStageError("export", f"cannot read the marts of schema {schema}: "
                                 f"{exc.diag.message_primary or exc}") from exc
    return out


def export_duckdb(path: str, schema: str) -> TableSet:
    """The five tables of ``schema`` in a DuckDB warehouse file, normalised."""
    import duckdb

    out: TableSet = {}
    try:
        with duckdb.connect(path, read_only=True) as conn:
            for table, columns in OUTPUT_TABLES.items():
                cols = ", ".join(f'"{c}"' for c in columns)  # contract constants, not user input
                rows = conn.execute(f'SELECT {cols} FROM "{schema}"."{table}"').fetchall()
                out[table] = normalise_table(table, rows)
    except duckdb.Error as exc:
        raise PipelineStageError("export", f"cannot read the marts of schema {schema}: {exc}") from exc
    return out


def export_snowflake(endpoint: Any, schema: str) -> TableSet:
    """The five tables of ``schema`` on a Snowflake target (emulator or account), normalised.

    ``endpoint`` is an :class:`~pipeline_props.infra.fakesnow.SnowflakeEndpoint`;
    identifiers are unquoted, as dbt-snowflake creates them (stored upper case).
    """
    import snowflake.connector

    out: TableSet = {}
    conn = endpoint.connect(schema=None)
    try:
        cur = conn.cursor()
        for table, columns in OUTPUT_TABLES.items():
            cur.execute(f"select {', '.join(columns)} from {schema}.{table}")  # contract constants
            out[table] = normalise_table(table, cur.fetchall())
    except snowflake.connector.errors.Error as exc:
        raise PipelineStageError("export", f"cannot read the marts of schema {schema} from "
                                 f"{endpoint.service}: {' '.join(str(exc).split())[:400]}") from None
    finally:
        conn.close()
    return out
