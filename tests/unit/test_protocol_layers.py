"""The protocol's layers, and callers that name what a pipeline cannot run instead of crashing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pipeline_props.compare as compare_module
from pipeline_props import contract as C
from pipeline_props.faults.harness import FaultHarness
from pipeline_props.faults.runner import run_scenario, unsupported
from pipeline_props.faults.scenarios import NEEDS_DRIVER_PROCESS
from pipeline_props.repro import replay, write_repro
from pipeline_props import protocol as P

pytestmark = pytest.mark.unit


class FiveMethods:
    """Layer 1 only, as a team's first adapter is."""

    name = "five-methods"

    def prepare(self, namespace: str) -> None: ...
    def ingest(self, namespace: str, files: Any) -> None: ...
    def wait_until_caught_up(self, namespace: str, timeout: float = 600.0) -> None: ...
    def read_tables(self, namespace: str) -> P.TableSet:
        return {t: [] for t in C.OUTPUT_TABLES}
    def cleanup(self, namespace: str) -> None: ...


class WithHooks(FiveMethods):
    """Layer 3 with a sink of its own (so no separate driver process)."""

    name = "own-sink"
    producer_config = None

    @staticmethod
    def sink_factory(dsn: str, schema: str) -> Any:
        return lambda df, batch_id: None

    def checkpoint_dir(self, namespace: str) -> Path:
        return Path("/nonexistent") / namespace

    def schema_for(self, namespace: str) -> str:
        return namespace

    def model(self, namespace: str) -> None: ...


def test_tableset_has_one_definition() -> None:
    assert P.TableSet is compare_module.TableSet


def test_layers_of_a_five_method_pipeline_and_of_the_reference_class() -> None:
    from pipeline_props.pipeline.reference import ReferencePipeline

    assert P.layers_of(FiveMethods()) == ["PipelineUnderTest"]
    assert isinstance(FiveMethods(), P.PipelineUnderTest)
    assert P.missing_members(FiveMethods(), P.StagedPipeline) == [
        "partitions", "messages_out", "timings", "transform", "model", "staging_counts"]
    # the reference pipeline's class offers every method of every layer
    methods = {n for n in dir(ReferencePipeline) if not n.startswith("_")}
    attrs = {"name", "partitions", "messages_out", "timings", "producer_config", "sink_factory"}
    for layer in (P.PipelineUnderTest, P.StagedPipeline, P.FaultHooks):
        assert not set(P.missing_members(ReferencePipeline, layer)) - attrs
        assert not set(P._members(layer)) - methods - attrs  # noqa: SLF001


def test_require_names_the_check_and_the_missing_members() -> None:
    with pytest.raises(P.MissingLayerError) as info:
        P.require(FiveMethods(), P.FaultHooks, "the fault scenario kafka_pause")
    text = str(info.value)
    assert text.startswith("skipped: the fault scenario kafka_pause needs the FaultHooks layer")
    assert "'five-methods' offers no producer_config, sink_factory, checkpoint_dir" in text
    assert info.value.exit_code == 2


def test_fault_scenarios_are_skipped_with_the_reason_not_an_attribute_error() -> None:
    result = run_scenario("kafka_pause", None, pipeline=FiveMethods())  # type: ignore[arg-type]
    assert result.skipped.startswith("skipped: the fault harness needs the FaultHooks layer")
    assert not result.passed
    with pytest.raises(P.MissingLayerError):
        FaultHarness(None, None, pipeline=FiveMethods())  # type: ignore[arg-type]


def test_driver_kill_needs_the_reference_sink() -> None:
    for name in NEEDS_DRIVER_PROCESS:
        why = unsupported(name, WithHooks())
        assert why.startswith("skipped: the pipeline offers no driver process to kill")
    assert unsupported("kafka_pause", WithHooks()) == ""


def test_replay_refuses_an_object_that_is_no_pipeline(tmp_path: Path) -> None:
    folder = write_repro({"": (("a.csv", ",".join(C.COLUMNS).encode() + b"\n"),)}, property_name="p",
                         divergence_text="", dataset_repr="", root=tmp_path)
    with pytest.raises(P.MissingLayerError, match="replay needs the PipelineUnderTest layer"):
        replay(folder, settings=None, pipeline=object())  # type: ignore[arg-type]
