"""The fault proxy and the injector's guards (unit), and service faults on the real services (faults)."""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid
from pathlib import Path

import pytest

from pipeline_props.errors import UsageError
from pipeline_props.faults import FaultProxy
from pipeline_props.faults.disk import is_tmpfs
from pipeline_props.faults.injector import FAULT_KINDS


class _Echo:
    """A loopback echo server; with ``kafka`` it answers each framed request with its correlation id."""

    def __init__(self, kafka: bool = False) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.kafka = kafka
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            self._answer(conn)
        except OSError:  # the proxy reset the connection: that is the test
            pass

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            while True:
                if not self.kafka:
                    data = conn.recv(4096)
                    if not data:
                        return
                    conn.sendall(data)
                    continue
                head = _recv(conn, 4)
                if head is None:
                    return
                body = _recv(conn, struct.unpack(">i", head)[0])
                if body is None:
                    return
                self.requests.append(body)
                cid = body[4:8]
                conn.sendall(struct.pack(">i", 4 + 2) + cid + b"ok")

    def close(self) -> None:
        self.sock.close()


def _recv(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


@pytest.fixture
def echo():
    server = _Echo()
    yield server
    server.close()


@pytest.mark.unit
def test_proxy_forwards_and_adds_latency(echo: _Echo) -> None:
    with FaultProxy(echo.port) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c:
            c.sendall(b"hello")
            assert _recv(c, 5) == b"hello"
            proxy.set_delay(0.3)
            t0 = time.monotonic()
            c.sendall(b"again")
            assert _recv(c, 5) == b"again"
            assert time.monotonic() - t0 >= 0.55  # delayed both ways
        proxy.heal()
        assert proxy.delay_s == 0


@pytest.mark.unit
def test_proxy_cut_resets_and_refuses_until_healed(echo: _Echo) -> None:
    with FaultProxy(echo.port) as proxy:
        c = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        c.sendall(b"x")
        assert _recv(c, 1) == b"x"
        proxy.cut()
        with pytest.raises(OSError):
            c.sendall(b"y" * 100000)
            if not c.recv(1):
                raise ConnectionResetError
        c.close()
        with pytest.raises(OSError):  # reset on connect, on send or at the first read
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c2:
                c2.sendall(b"z")
                if not c2.recv(1):
                    raise ConnectionResetError
        proxy.heal()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c3:
            c3.sendall(b"ok")
            assert _recv(c3, 2) == b"ok"


@pytest.mark.unit
@pytest.mark.parametrize("reset", [True, False])
def test_a_dropped_connection_reaches_a_client_that_is_only_reading(reset: bool) -> None:
    """Both ends see the end of a dropped connection while the proxy's pumps are blocked reading.

    A client waiting for a response (a Postgres session mid-query) never writes again, so only
    the proxy can tell it; before the fix it waited forever (close() from another thread does
    not wake a recv() blocked on the same socket).
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        with FaultProxy(server.getsockname()[1]) as proxy:
            c = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            upstream, _ = server.accept()
            upstream.settimeout(10)
            c.sendall(b"query")
            assert _recv(upstream, 5) == b"query"  # both pumps are now blocked in recv()
            conn = next(iter(proxy._conns))  # noqa: SLF001
            conn.close(reset=reset)
            for end in (c, upstream):
                try:
                    assert end.recv(1) == b""  # FIN
                except ConnectionResetError:  # RST; a TimeoutError fails the test
                    assert reset
            c.close()
            upstream.close()
    finally:
        server.close()


@pytest.mark.unit
def test_proxy_replays_produce_requests_and_swallows_the_second_ack() -> None:
    server = _Echo(kafka=True)
    try:
        with FaultProxy(server.port, kafka_framing=True) as proxy:
            proxy.replay_produce = True
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c:
                produce = struct.pack(">hhi", 0, 9, 77) + b"payload"
                metadata = struct.pack(">hhi", 3, 12, 78) + b"meta"
                for req in (produce, metadata):
                    c.sendall(struct.pack(">i", len(req)) + req)
                first = _recv(c, 10)
                second = _recv(c, 10)
                assert first is not None and second is not None
                assert struct.unpack(">i", first[4:8])[0] == 77
                assert struct.unpack(">i", second[4:8])[0] == 78  # the duplicate ack of 77 was swallowed
            time.sleep(0.2)
            assert [r[4:8] for r in server.requests].count(struct.pack(">i", 77)) == 2
            assert [r[4:8] for r in server.requests].count(struct.pack(">i", 78)) == 1
            assert proxy.stats.replayed_requests == 1 and proxy.stats.swallowed_responses == 1
    finally:
        server.close()


@pytest.mark.unit
def test_proxy_packet_loss_stalls_are_seeded(echo: _Echo) -> None:
    with FaultProxy(echo.port, seed=3) as proxy:
        proxy.set_loss(1.0, retransmit_s=0.1)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c:
            c.sendall(b"a")
            assert _recv(c, 1) == b"a"
        assert proxy.stats.delayed_chunks >= 2


@pytest.mark.unit
@pytest.mark.parametrize("host", ["10.0.0.1", "192.168.1.1", "example.com", "0.0.0.0"])
def test_proxy_refuses_anything_but_loopback(host: str) -> None:
    with pytest.raises(UsageError, match="loopback"):
        FaultProxy(5432, target_host=host)


@pytest.mark.unit
def test_disk_full_refuses_a_directory_that_is_not_a_tmpfs(tmp_path: Path) -> None:
    from pipeline_props.faults.injector import ErrorInjector

    assert not is_tmpfs(tmp_path)
    inj = ErrorInjector.__new__(ErrorInjector)  # guards only: no services needed
    with pytest.raises(UsageError, match="tmpfs"):
        inj.inject_disk_full(tmp_path)


@pytest.mark.unit
def test_fault_kinds_cover_every_fault_family() -> None:
    kinds = set(FAULT_KINDS)
    assert {"kafka_kill", "kafka_pause", "postgres_stop", "spark_crash_after_write", "producer_crash",
            "kafka_cut", "postgres_cut", "kafka_latency", "kafka_packet_loss", "kafka_ack_loss",
            "cpu_hog"} <= kinds


# ------------------------------------------------------------------ on the real services


@pytest.mark.faults
def test_service_faults_are_visible_and_undone(infrastructure, fault_injector) -> None:
    """Postgres crash and Kafka pause are seen by clients, and recovery brings both back."""
    import psycopg

    inj = fault_injector
    pg_id = inj.inject_service_failure("postgres", "stop")
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(inj.postgres_dsn, connect_timeout=3).close()
    finally:
        inj.recover_from_error(pg_id)
    assert infrastructure.postgres.healthy()
    k_id = inj.inject_service_failure("kafka", "pause")
    try:
        assert not infrastructure.kafka.healthy(timeout=2)
    finally:
        inj.recover_from_error(k_id)
    assert infrastructure.kafka.healthy(timeout=10)
    assert not inj.active


@pytest.mark.faults
def test_recover_all_heals_even_when_the_test_body_fails(infrastructure, fault_injector) -> None:
    inj = fault_injector
    with pytest.raises(RuntimeError):
        try:
            inj.inject_network_failure("postgres", "cut")
            inj.inject_cpu_hog(seconds=30)
            raise RuntimeError("the test failed mid-fault")
        finally:
            inj.recover_all()
    assert not inj.active and not inj.postgres_proxy.is_cut
    import psycopg

    with psycopg.connect(inj.postgres_dsn, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.faults
def test_a_stalled_postgres_read_fails_the_batch_and_its_replay_writes_it_once(
        infrastructure, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sink's answer never comes (a stall that never ends, mid-COPY, ledger row claimed).

    The sink's watchdog cuts its connection and the batch fails loudly; the server ends the
    orphaned transaction (statement / idle-in-transaction timeout), so the replay of the same
    batch_id is not blocked by its ledger row lock and writes the rows exactly once.
    """
    import psycopg
    import pyarrow as pa
    from psycopg import sql

    from pipeline_props.errors import PipelineStageError
    from pipeline_props.pipeline import staging

    schema = f"pp_t{uuid.uuid4().hex[:12]}"
    pg = infrastructure.postgres
    staging.create_staging(pg.dsn, schema)
    rejects = pa.table({"file_index": pa.array([0], pa.int32()), "source_file": ["a.csv"],
                        "record_number": pa.array([1], pa.int64()), "event_id": ["e1"],
                        "reason": ["MISSING_FIELD"], "raw_record": ["x"]})
    valid = pa.table({c: pa.array([], pa.string()) for c in staging.EVENT_COLUMNS})
    copy = staging._copy  # noqa: SLF001
    try:
        with FaultProxy(pg.port) as proxy:
            dsn = f"host=127.0.0.1 port={proxy.port} user={pg.user} dbname={pg.dbname}"

            def stalled_copy(*args: object) -> None:
                proxy.set_delay(3600)  # from here on nothing gets through: the answer never comes
                copy(*args)

            monkeypatch.setattr(staging, "_copy", stalled_copy)
            with pytest.raises(PipelineStageError, match="no answer from Postgres within 2 s"):
                staging.StagingSink(dsn, schema, write_timeout_s=2)._write(7, valid, rejects)
            monkeypatch.setattr(staging, "_copy", copy)
            proxy.heal()
            replay = staging.StagingSink(dsn, schema, write_timeout_s=30)
            assert replay._write(7, valid, rejects)  # noqa: SLF001 - blocked on the row lock without the fix
            assert not replay._write(7, valid, rejects)  # noqa: SLF001 - a second replay is skipped
        with psycopg.connect(pg.dsn) as conn:
            s = sql.Identifier(schema)
            assert conn.execute(sql.SQL("SELECT count(*) FROM {}.stg_rejects").format(s)).fetchone() == (1,)
            assert conn.execute(sql.SQL("SELECT batch_id FROM {}.batch_ledger").format(s)).fetchall() == [(7,)]
    finally:
        staging.drop_schema(pg.dsn, schema)


@pytest.mark.faults
def test_a_killed_producer_sends_nothing_once_it_is_gone(infrastructure, fault_injector) -> None:
    """The producer crash is a process death: its queue dies with it, nothing arrives after the heal.

    A producer merely abandoned mid-file keeps its queue and delivers it as soon as the
    network is back, after the harness has written the batch off as unknown; a check
    running then sees a record in Kafka that the stream was never given a chance to stage.
    """
    from pipeline_props.faults.harness import HEADER_ONLY
    from pipeline_props.faults.injector import PRODUCER_FAULT_CONFIG
    from pipeline_props.pipeline.ingest import count_topic_messages, ingest_files

    inj = fault_injector
    topic = f"pp_t{uuid.uuid4().hex[:12]}"
    infrastructure.setup_kafka_topics(topic)
    try:
        cut = inj.inject_network_failure("kafka", "cut")
        try:
            stats = ingest_files([("a.csv", HEADER_ONLY + b"x,y\n" * 3)], bootstrap_servers=inj.kafka_bootstrap,
                                 topic=topic, run_id="r", producer_config=PRODUCER_FAULT_CONFIG,
                                 retry_rounds=0, stop_after=2)
        finally:
            inj.recover_from_error(cut)
        assert stats.records == 2
        # a live producer reconnects within reconnect.backoff.max.ms (1 s) and delivers
        time.sleep(5)
        assert count_topic_messages(infrastructure.kafka_bootstrap, topic) == 0
    finally:
        infrastructure.delete_kafka_topics(topic)


@pytest.mark.faults
def test_a_batch_the_sink_committed_survives_a_postgres_crash_right_after(infrastructure) -> None:
    """The sink's COMMIT is durable even on a server that commits asynchronously by default.

    Spark commits its checkpoint right after the sink returns, so a batch whose COMMIT a
    Postgres crash then takes back is lost for good. With ``synchronous_commit=off`` (a
    common speed setting, and what the throwaway cluster used to run with) a COMMIT
    returns before its WAL is written; the WAL writer here is made lazy (10 s) so the
    window is wide open. ``pipeline-props errors --scenario postgres_restart`` lost its
    staging tables that way.
    """
    import psycopg
    import pyarrow as pa
    from psycopg import sql

    from pipeline_props.pipeline import staging

    pg = infrastructure.postgres
    schema = f"pp_t{uuid.uuid4().hex[:12]}"
    staging.create_staging(pg.dsn, schema)
    valid = pa.table({c: pa.array([], pa.string()) for c in staging.EVENT_COLUMNS})
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET wal_writer_delay = '10s'")
        conn.execute("SELECT pg_reload_conf()")
    try:
        time.sleep(1)  # the WAL writer takes the new delay at its next wake-up
        dsn = f"{pg.dsn} options='-c synchronous_commit=off'"  # the server's default, as it were
        sink = staging.StagingSink(dsn, schema, write_timeout_s=30)
        for b in range(5):
            rejects = pa.table({"file_index": pa.array([b], pa.int32()), "source_file": ["a.csv"],
                                "record_number": pa.array([1], pa.int64()), "event_id": [f"e{b}"],
                                "reason": ["MISSING_FIELD"], "raw_record": ["x"]})
            assert sink._write(b, valid, rejects)  # noqa: SLF001 - returned: Spark would commit now
        pg.stop(mode="immediate")
        assert _process_gone(pg)
        pg.start()
        with psycopg.connect(pg.dsn) as conn:
            s = sql.Identifier(schema)
            ledger = conn.execute(sql.SQL("SELECT batch_id FROM {}.batch_ledger ORDER BY 1").format(s)).fetchall()
            staged = conn.execute(sql.SQL("SELECT count(*) FROM {}.stg_rejects").format(s)).fetchone()
        assert [b for (b,) in ledger] == [0, 1, 2, 3, 4] and staged == (5,), (ledger, staged)
    finally:
        if not pg.running():
            pg.start()
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM RESET wal_writer_delay")
            conn.execute("SELECT pg_reload_conf()")
        staging.drop_schema(pg.dsn, schema)


def _process_gone(pg) -> bool:
    from pipeline_props.infra import _process

    return _process.wait_until(lambda: not pg.running(), 30)
