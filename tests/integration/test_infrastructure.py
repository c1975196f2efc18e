"""The real services: broker, warehouse, Spark through the Kafka connector and JDBC, up/down."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import psycopg
import pytest
from confluent_kafka import Consumer, Producer

from pipeline_props.config import load_settings
from pipeline_props.errors import InfrastructureError
from pipeline_props.infra import InfrastructureManager
from pipeline_props.infra._process import port_open

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_produce_and_consume_on_the_real_broker(infrastructure: InfrastructureManager) -> None:
    topic = f"pp_smoke_{uuid.uuid4().hex[:8]}"
    infrastructure.setup_kafka_topics(topic, partitions=2)
    producer = Producer({"bootstrap.servers": infrastructure.kafka_bootstrap, "acks": "all",
                         "enable.idempotence": True})
    producer.produce(topic, key=b"k1", value=b"hello")
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": infrastructure.kafka_bootstrap,
                         "group.id": f"g{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        got = None
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                got = msg
                break
        assert got is not None, "no message consumed within 60 s"
        assert (got.key(), got.value()) == (b"k1", b"hello")
    finally:
        consumer.close()
        infrastructure.delete_kafka_topics(topic)


def test_select_one_on_the_real_postgres(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        version = conn.execute("SHOW server_version").fetchone()[0]
    assert int(version.split(".")[0]) >= 13


def test_spark_reads_the_topic_and_writes_postgres_over_jdbc(
    infrastructure: InfrastructureManager, spark, namespace: str
) -> None:
    topic = namespace
    infrastructure.setup_kafka_topics(topic)
    producer = Producer({"bootstrap.servers": infrastructure.kafka_bootstrap, "acks": "all"})
    producer.produce(topic, key=b"e1", value=b"from-kafka")
    assert producer.flush(30) == 0
    df = (spark.read.format("kafka")
          .option("kafka.bootstrap.servers", infrastructure.kafka_bootstrap)
          .option("subscribe", topic).option("startingOffsets", "earliest").load()
          .selectExpr("CAST(key AS STRING) AS k", "CAST(value AS STRING) AS v"))
    rows = df.collect()
    assert [(r.k, r.v) for r in rows] == [("e1", "from-kafka")]

    infrastructure.setup_databases(namespace)
    pg = infrastructure.postgres
    url = f"jdbc:postgresql://127.0.0.1:{pg.port}/{pg.dbname}"
    (df.write.format("jdbc").option("url", url).option("user", pg.user)
     .option("dbtable", f"{namespace}.smoke").option("driver", "org.postgresql.Driver")
     .mode("overwrite").save())
    with psycopg.connect(infrastructure.postgres_dsn) as conn:
        got = conn.execute(psycopg.sql.SQL("SELECT k, v FROM {}.smoke").format(
            psycopg.sql.Identifier(namespace))).fetchall()
    assert got == [("e1", "from-kafka")]
    infrastructure.drop_schema(namespace)
    infrastructure.delete_kafka_topics(topic)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _isolated_settings(tmp_path: Path, **ports: int):
    return load_settings(env={}, overrides={"infrastructure": {"home": str(tmp_path / "home"), **ports}})


def test_up_twice_is_a_noop_and_down_leaves_nothing_behind(tmp_path: Path) -> None:
    kport, cport, pport = _free_port(), _free_port(), _free_port()
    settings = _isolated_settings(tmp_path, kafka_port=kport, kafka_controller_port=cport,
                                  postgres_port=pport)
    # Share the jar cache of the default home instead of resolving it again.
    default_home = Path(load_settings().infrastructure.home)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "jars").symlink_to(default_home / "jars")

    first = InfrastructureManager(settings).start_services()
    pids = {first.kafka.pid, first.postgres.pid}
    try:
        first.wait_for_readiness()
        # An emulator on record whose process is gone (a reboot) must not hold up readiness.
        state_file = tmp_path / "home" / "services.json"
        state = json.loads(state_file.read_text())
        state["fakesnow"] = {"pid": _dead_pid(), "create_time": 1.0, "port": _free_port()}
        state_file.write_text(json.dumps(state))
        second = InfrastructureManager(settings).start_services()
        assert second._started == set(), "a second up must reuse the running services"
        assert {second.kafka.pid, second.postgres.pid} == pids
        assert [s.name for s in second.wait_for_readiness(timeout=5)] == ["kafka", "postgres"]
        assert "fakesnow" not in json.loads(state_file.read_text())
    finally:
        InfrastructureManager.from_state(settings).cleanup(stop_all=True)
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    for port in (kport, cport, pport):
        assert not port_open(port), f"port {port} still listening after down"
    assert not (tmp_path / "home" / "services.json").exists()


def test_a_taken_port_gives_an_error_naming_it_and_the_fix(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        settings = _isolated_settings(tmp_path, postgres_port=taken, kafka_port=_free_port(),
                                      kafka_controller_port=_free_port())
        mgr = InfrastructureManager(settings)
        with pytest.raises(InfrastructureError) as info:
            mgr.start_services()
    msg = str(info.value)
    assert f"port {taken} is already in use" in msg
    assert "E2E_POSTGRES_PORT" in msg and "infrastructure.postgres_port" in msg
    assert info.value.exit_code == 2
