"""The cluster as `pipeline-props cluster up` started it: not local mode in disguise.

A module of its own that sorts before test_cluster_faults.py, so that it
checks the topology before any fault test has killed a worker or a broker.
After the worker-kill and master-kill scenarios the application was seen
left with one executor of two (docs/cluster.md, "Tests and their cost").
"""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.properties, pytest.mark.slow]

#: How long the check waits for executors and replicas still registering.
SETTLE_S = 60.0


def test_the_cluster_runs_what_it_says(cluster: Any, cluster_infra: Any, cluster_stream: Any) -> None:
    """Executors on both workers, topics with 3 in-sync replicas: not local mode in disguise."""
    spark = cluster_infra.spark
    assert spark.sparkContext.master == cluster.master_url
    topic = cluster_stream.topic(2)  # the shared topic the properties use

    def executors() -> int:
        return int(spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()) - 1

    # Executors and replicas may still be registering (bounded wait).
    deadline = time.monotonic() + SETTLE_S
    while True:
        replicas, isr = cluster.kafka.partition_replicas(topic)[0]
        if (executors() == 2 and len(isr) >= 2) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert executors() == 2, f"{executors()} executors registered after {SETTLE_S:g} s"
    assert len(replicas) == 3 and len(isr) >= 2, (replicas, isr)
