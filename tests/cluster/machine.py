"""The fault state machine of tests/faults on the cluster, with the cluster's faults (used by the cluster tests)."""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule
from test_state_machine import BATCHES, PipelineFaultMachine

from pipeline_props.faults import FaultHarness
from pipeline_props.faults.cluster import STREAM_FAULTS, cluster_pipeline


class ClusterFaultMachine(PipelineFaultMachine):
    """The fault state machine of tests/faults on the cluster, with the cluster's faults."""

    pipeline_kwargs: ClassVar[dict[str, Any]] = {}
    harness_cls: ClassVar[type[FaultHarness]] = FaultHarness

    def __init__(self) -> None:
        RuleBasedStateMachine.__init__(self)
        self.tally.schedules += 1
        pipeline = cluster_pipeline(self.infra, self.injector, **self.pipeline_kwargs)
        self.h = self.harness_cls(self.infra, self.injector, pipeline=pipeline)
        self.active: list[tuple[str, str]] = []
        self.dbt_runs = 0
        self.abandoned = False
        with self._services("prepare"):
            self.h.prepare()
        self.injector.topic = self.h.ns

    def _stream(self) -> None:
        if self.abandoned:
            return
        kafka_down = any(k.startswith("kafka_") for k, _ in self.active)
        with self.tally.timed("stream"), self._services("run_stream"):
            # a stopped broker in the bootstrap list makes the Kafka source's admin calls time out
            self.h.run_stream(timeout_s=30 if kafka_down else None)

    def _inject(self, kind: str, run_now: bool = True) -> None:
        PipelineFaultMachine._inject(self, kind, run_now)
        if kind in STREAM_FAULTS and run_now:  # they fire inside a micro-batch
            self._stream()

    def _produce_under_fault(self, kind: str, dataset: Any) -> None:
        PipelineFaultMachine._produce_under_fault(self, kind, dataset)
        if kind in STREAM_FAULTS:
            self._stream()


def cluster_machine(menu: tuple[str, ...], *, first: tuple[str, ...] | None = None,
                    **pipeline_kwargs: Any) -> type[ClusterFaultMachine]:
    """The cluster machine drawing its faults from ``menu`` (the first fault from ``first``, default ``menu``)."""
    attrs = {
        "fault_menu": menu, "dbt_budget": 0, "pipeline_kwargs": pipeline_kwargs,
        "first_batch": initialize(dataset=BATCHES, kind=st.sampled_from(first or menu))(
            PipelineFaultMachine._first_batch),
        "inject": precondition(lambda self: len(self.active) < 2)(
            rule(kind=st.sampled_from(menu))(ClusterFaultMachine._inject)),
        "produce_under_fault": rule(kind=st.sampled_from(menu), dataset=BATCHES)(
            ClusterFaultMachine._produce_under_fault),
    }
    return type("ClusterFaultMachine", (ClusterFaultMachine,), attrs)
