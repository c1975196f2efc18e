"""The cluster topology's layout and settings, without starting anything (docs/cluster.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_props.config import load_settings
from pipeline_props.errors import InfrastructureError
from pipeline_props.infra import _process
from pipeline_props.infra.cluster import ClusterServices
from pipeline_props.infra.kafka_cluster import _CLUSTER_PROPERTIES, KafkaCluster
from pipeline_props.infra.postgres import PostgresServer
from pipeline_props.infra.spark import check_master, cluster_conf
from pipeline_props.infra.spark_cluster import SparkStandalone

pytestmark = pytest.mark.unit


def test_three_brokers_with_their_own_ports_and_one_quorum(tmp_path: Path) -> None:
    kafka = KafkaCluster(home=tmp_path, root=tmp_path / "k", base_port=27092)
    assert [(b.node_id, b.port, b.controller_port) for b in kafka.brokers] == [
        (1, 27092, 27093), (2, 27094, 27095), (3, 27096, 27097)]
    assert {b.voters for b in kafka.brokers} == {"1@127.0.0.1:27093,2@127.0.0.1:27095,3@127.0.0.1:27097"}
    assert kafka.bootstrap_servers == "127.0.0.1:27092,127.0.0.1:27094,127.0.0.1:27096"
    assert len({b.cluster_id for b in kafka.brokers}) == 1


def test_replication_defaults_are_the_safe_ones() -> None:
    props = dict(line.split("=", 1) for line in _CLUSTER_PROPERTIES.splitlines() if "=" in line)
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["unclean.leader.election.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["transaction.state.log.min.isr"] == "2"


def test_spark_master_and_two_one_core_workers(tmp_path: Path) -> None:
    spark = SparkStandalone(root=tmp_path, base_port=27077)
    assert spark.master_url == "spark://127.0.0.1:27077"
    assert [(d.role, d.port, d.ui_port) for d in spark.daemons] == [
        ("master", 27077, 27080), ("worker1", 27078, 27081), ("worker2", 27079, 27082)]
    for w in spark.workers:
        assert w.args[w.args.index("--cores") + 1] == "1" and w.args[-1] == spark.master_url
    env = spark.env()
    assert "spark.deploy.recoveryMode=FILESYSTEM" in env["SPARK_DAEMON_JAVA_OPTS"]
    assert env["PYSPARK_PYTHON"].endswith("python") or "python" in env["PYSPARK_PYTHON"]


def test_the_pipeline_reaches_the_cluster_through_the_external_backend(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"infrastructure": {"home": str(tmp_path)}})
    svc = ClusterServices(settings)
    svc.kafka = KafkaCluster(home=tmp_path, root=tmp_path / "k", base_port=27092)
    svc.spark = SparkStandalone(root=tmp_path / "s", base_port=27077)
    svc.postgres = PostgresServer(home=tmp_path, data_dir=tmp_path / "pg", port=25432)
    infra = svc.settings_for_pipeline().infrastructure
    assert infra.backend == "external"
    assert infra.kafka_bootstrap_servers.count(",") == 2
    assert infra.spark_master == "spark://127.0.0.1:27077" and infra.postgres_port == 25432
    env = svc.environment()
    assert env["E2E_BACKEND"] == "external" and env["E2E_SPARK_MASTER"] == infra.spark_master
    conf = cluster_conf()  # what spark_conf adds for a spark:// master
    assert conf["spark.executor.cores"] == "1" and conf["spark.cores.max"] == "2"
    assert conf["spark.executorEnv.PYSPARK_PYTHON"] == conf["spark.pyspark.python"]
    ports = svc.ports()
    assert len(ports) == len(set(ports)) == 13 and not {29092, 29093, 15432} & set(ports)


def test_a_cluster_nobody_started_has_no_pids_and_says_so(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"infrastructure": {"home": str(tmp_path)}})
    svc = ClusterServices.from_state(settings)
    assert svc.kafka is None and svc.pids() == []
    [status] = svc.status()
    assert not status.healthy and "cluster up" in status.detail


def test_a_master_that_does_not_answer_is_named() -> None:
    port = next(p for p in range(27990, 28000) if not _process.port_open(p))
    with pytest.raises(InfrastructureError) as info:
        check_master(f"spark://127.0.0.1:{port}", timeout=1)
    assert f"spark://127.0.0.1:{port}" in str(info.value) and "cluster status" in str(info.value)
    check_master("local[2]")  # not a standalone master: nothing to check
