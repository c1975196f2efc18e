"""The oracle's cached DuckDB connections and fork (unit): a child started after the
oracle ran in other threads must reach its exec.

subprocess with ``preexec_fn`` (pyspark starts its JVM that way) runs Python in
the forked child, where the other threads' states are deleted. DuckDB
connections held in those threads' thread-locals were destroyed there, and the
child died of SIGSEGV before exec: pyspark then reported JAVA_GATEWAY_EXITED.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline_props import contract
from pipeline_props.oracles import duckdb_oracle, run_oracle

_ROW = b"e1,o1,c1,p1,toys,NA,online,2,10.00,,USD,2024-01-01T00:00:00Z"
_FILES = [("a.csv", ",".join(contract.COLUMNS).encode() + b"\n" + _ROW + b"\n")]


@pytest.mark.unit
def test_a_child_forked_after_the_oracle_ran_in_other_threads_reaches_exec() -> None:
    pools = [ThreadPoolExecutor(1) for _ in range(3)]
    try:
        for pool in pools:
            assert pool.submit(run_oracle, _FILES).result().tables[contract.INGESTION_AUDIT]
        codes = [subprocess.run(["true"], preexec_fn=lambda: None, timeout=30).returncode for _ in range(3)]
        assert codes == [0, 0, 0], f"the forked child died: return codes {codes} (-11 is SIGSEGV)"
    finally:
        for pool in pools:
            pool.shutdown()


@pytest.mark.unit
def test_a_connection_whose_thread_ended_is_closed_when_another_thread_connects() -> None:
    import duckdb

    ended = duckdb.connect(":memory:")
    gone = -1  # no thread has this id (a real ended thread's id may be reused at once)
    with duckdb_oracle._connections_lock:
        duckdb_oracle._connections[gone] = ended
    with ThreadPoolExecutor(1) as pool:
        pool.submit(duckdb_oracle._forget_connection).result()  # so that it connects anew
        pool.submit(duckdb_oracle._cached_connection).result()
    assert gone not in duckdb_oracle._connections
    with pytest.raises(duckdb.ConnectionException, match="(?i)closed"):
        ended.execute("SELECT 1")
