"""Reference oracles: compute the contract's expected output tables independently."""

from pipeline_props.oracles.duckdb_oracle import (
    OracleResult,
    TableSet,
    accepted_daily_totals,
    run_oracle,
    run_oracle_on_paths,
)

__all__ = ["OracleResult", "TableSet", "accepted_daily_totals", "run_oracle", "run_oracle_on_paths"]
