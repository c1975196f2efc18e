"""Fixtures of the cluster tests: the cluster topology, a manager on it (external backend), its faults.

The ``cluster`` fixture reuses a healthy cluster that `pipeline-props cluster up`
started (and leaves it running), or brings one up for this package and takes
it down at the end. The Spark session of a process is bound to one master:
these fixtures start the cluster's and stop it when the package ends, so the
tests after them get a local one again.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The fault state machine of tests/faults, reused by the cluster machine.
sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))


@pytest.fixture(scope="package")
def cluster(pp_settings: Any) -> Iterator[Any]:
    """The running cluster (reused when `cluster up` runs one, else up for this package).

    Under pytest-xdist one worker at a time has it (cluster_turn, a lock held
    from before the lookup until after the package's `down`): the faults kill
    its processes, and one Spark application takes both executors.
    """
    from pipeline_props.infra.cluster import ClusterServices
    from pipeline_props.testing.xdist import cluster_turn

    with cluster_turn(pp_settings.infrastructure.home):
        found = ClusterServices.from_state(pp_settings)
        if found.kafka is not None and all(s.healthy for s in found.status()):
            yield found
            return
        svc = ClusterServices(pp_settings).up()
        try:
            yield svc
        finally:
            svc.down()


@pytest.fixture(scope="package")
def cluster_infra(cluster: Any) -> Iterator[Any]:
    """An InfrastructureManager on the cluster (external backend: 3 bootstrap servers, spark://, the DSN)."""
    from pipeline_props.infra import InfrastructureManager
    from pipeline_props.infra import spark as spark_mod

    if spark_mod.session_active():
        master = spark_mod.get_spark_session().sparkContext.master
        if master != cluster.master_url:
            pytest.skip(f"this process already runs a Spark session on {master}; run the cluster tests "
                        "in a process of their own: pytest -m cluster")
    mgr = InfrastructureManager(cluster.settings_for_pipeline())
    mgr.start_services()
    mgr.wait_for_readiness()
    try:
        yield mgr
    finally:
        spark_mod.stop_spark_session()


@pytest.fixture(scope="package")
def cluster_injector(cluster: Any, cluster_infra: Any) -> Iterator[Any]:
    """A ClusterInjector; every fault is healed (processes restarted) at the end."""
    from pipeline_props.faults.cluster import ClusterInjector

    inj = ClusterInjector(cluster, cluster_infra)
    try:
        yield inj
    finally:
        inj.restore_services()


@pytest.fixture(scope="package")
def cluster_stream(cluster_infra: Any) -> Iterator[Any]:
    """The shared streaming query on the cluster's Spark and Kafka."""
    from pipeline_props.pipeline.stream import SharedStream

    stream = SharedStream.from_infra(cluster_infra).start()
    try:
        yield stream
    finally:
        stream.stop()
