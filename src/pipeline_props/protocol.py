"""What a pipeline under test offers the checks, in layers (docs/own-pipeline.md).

1. :class:`PipelineUnderTest`, five methods and a name: ``prepare``,
   ``ingest``, ``wait_until_caught_up``, ``read_tables``, ``cleanup``. Enough
   for every differential and metamorphic property (testing/properties.py),
   for ``replay`` and for :func:`pipeline_props.runner.run_dataset` (which
   then compares the tables and validates the warehouse stage only).
2. :class:`StagedPipeline`, optional: the stages one at a time
   (``transform``, ``model``, ``staging_counts``), the produced messages
   (``messages_out``), ``partitions`` and per-stage ``timings``. With it,
   ``run_dataset`` times each stage, writes kafka_messages.jsonl and runs the
   Kafka and Spark validators.
3. :class:`FaultHooks`, optional: what the fault harness
   (faults/harness.py) drives. The harness sends the reference message
   format through the reference ingest and runs the reference transform, so
   this layer fits pipelines that keep those interfaces and swap the rest
   (producer settings, the staging sink, the model stage).

Smaller optional hooks: :class:`FullBuild` (a costlier, real build on the
example Hypothesis reports) and :class:`FullRefresh` (incremental marts).

Every caller checks the layer with :func:`missing_members` or
:func:`require`, and names what it cannot run and why instead of failing
with an AttributeError. :data:`TableSet` is defined once, in
:mod:`pipeline_props.tables`, and re-exported here. This module sits low in
the package (it imports only errors and tables), so pipelines, the fault
tier, the runner and the checks share it; ``pipeline_props.testing.protocol``
re-exports it for test suites.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from pipeline_props.errors import UsageError
from pipeline_props.tables import TableSet

__all__ = [
    "BatchSink",
    "FaultHooks",
    "Files",
    "FullBuild",
    "FullRefresh",
    "IngestReport",
    "MissingLayerError",
    "PipelineUnderTest",
    "SinkFactory",
    "StageTimingsReport",
    "StagedPipeline",
    "TableSet",
    "TransformReport",
    "layers_of",
    "missing_members",
    "pipeline_name",
    "require",
]

#: One dataset as the protocol takes it: (file name, bytes) in dataset order.
Files = Sequence[tuple[str, bytes]]


@runtime_checkable
class PipelineUnderTest(Protocol):
    """Layer 1: a pipeline the property checks can drive. One namespace holds one dataset."""

    name: str

    def prepare(self, namespace: str) -> None:
        """Create whatever one dataset needs (topic, schema...). Idempotent."""

    def ingest(self, namespace: str, files: Files) -> object:
        """Send the dataset's files (name, bytes), in order, into the pipeline.

        Must raise :class:`pipeline_props.errors.InputError` for a refused
        file before sending anything.
        """

    def wait_until_caught_up(self, namespace: str, timeout: float = 600.0) -> object:
        """Return once everything ingested so far is in the warehouse tables (bounded by ``timeout``)."""

    def read_tables(self, namespace: str) -> TableSet:
        """The five output tables of the contract, as a TableSet."""

    def cleanup(self, namespace: str) -> None:
        """Drop everything the namespace holds."""


class IngestReport(Protocol):
    """What a staged pipeline's ``ingest`` returns (``pipeline.ingest.IngestStats`` has it)."""

    records: int
    acked: int
    #: One dict per file for the raw validator (validators/pipeline.py, key "raw").
    per_file: list[dict[str, object]]


class TransformReport(Protocol):
    """What a staged pipeline's ``transform`` returns (``pipeline.streaming_query.TransformStats``)."""

    rows: int
    batches: int


class StageTimingsReport(Protocol):
    """Seconds per stage of one namespace (``pipeline.reference.StageTimings``)."""

    seconds: dict[str, float]


@runtime_checkable
class StagedPipeline(PipelineUnderTest, Protocol):
    """Layer 2: the stages one at a time, for ``pipeline-props run`` and its report."""

    partitions: int
    #: Where ``ingest`` writes one JSON line per produced message (None: nowhere).
    messages_out: IO[str] | None
    #: Per-namespace stage seconds, filled by the stages.
    timings: Mapping[str, StageTimingsReport]

    def ingest(self, namespace: str, files: Files) -> IngestReport:
        """As layer 1, returning what was produced."""

    def transform(self, namespace: str) -> TransformReport:
        """Run the stream/batch job until the namespace's messages are staged."""

    def model(self, namespace: str) -> object:
        """Build the marts from the staging tables (dbt)."""

    def staging_counts(self, namespace: str) -> Mapping[str, int]:
        """Rows in the staging tables: ``{"stg_events": n, "stg_rejects": m}``."""


#: A foreachBatch sink: (Spark DataFrame, batch id) -> None.
BatchSink = Callable[[object, int], None]
#: Builds the staging sink for (Postgres DSN, schema).
SinkFactory = Callable[[str, str], BatchSink]


@runtime_checkable
class FaultHooks(Protocol):
    """Layer 3: the hooks the fault harness uses (faults/harness.py ``FaultHarness``).

    The harness produces the reference message format to a topic named after
    the namespace, runs the reference transform on ``checkpoint_dir`` with the
    sink ``sink_factory`` builds, reads the reference staging tables
    (stg_events, stg_rejects) in ``schema_for(namespace)``, then calls
    ``model`` and ``read_tables``.
    """

    #: Producer settings merged over the harness' own (None: none).
    producer_config: Mapping[str, object] | None
    sink_factory: SinkFactory

    def prepare(self, namespace: str) -> None:
        """As layer 1."""

    def cleanup(self, namespace: str) -> None:
        """As layer 1."""

    def read_tables(self, namespace: str) -> TableSet:
        """As layer 1."""

    def checkpoint_dir(self, namespace: str) -> Path:
        """The Spark checkpoint folder of the namespace."""

    def schema_for(self, namespace: str) -> str:
        """The warehouse schema that holds the namespace's staging tables."""

    def model(self, namespace: str) -> object:
        """Build the marts from the staging tables."""


@runtime_checkable
class FullBuild(Protocol):
    """Optional: the real build, run on the example Hypothesis reports (testing/runs.py)."""

    def full_build(self) -> AbstractContextManager[None]:
        """A context in which ``wait_until_caught_up`` builds the marts the costly, real way."""


@runtime_checkable
class FullRefresh(Protocol):
    """Optional: rebuild incremental marts from scratch (testing/incremental.py)."""

    def full_refresh(self, namespace: str) -> object:
        """Rebuild the namespace's marts from the staging tables."""


LAYERS: dict[str, type] = {
    "PipelineUnderTest": PipelineUnderTest,
    "StagedPipeline": StagedPipeline,
    "FaultHooks": FaultHooks,
}


def _members(layer: type) -> list[str]:
    names: dict[str, None] = {}
    for base in reversed(layer.__mro__):
        if not getattr(base, "_is_protocol", False) or base.__module__ == "typing":
            continue
        for name in (*getattr(base, "__annotations__", {}), *vars(base)):
            if not name.startswith("_"):
                names[name] = None
    return list(names)


def missing_members(pipeline: object, layer: type) -> list[str]:
    """The members of ``layer`` (a protocol of this module) that ``pipeline`` lacks; [] when it has all."""
    return [name for name in _members(layer) if not hasattr(pipeline, name)]


def layers_of(pipeline: object) -> list[str]:
    """Names of the layers ``pipeline`` offers, lowest first."""
    return [name for name, layer in LAYERS.items() if not missing_members(pipeline, layer)]


def pipeline_name(pipeline: object) -> str:
    """The pipeline's ``name``, or its class name."""
    return str(getattr(pipeline, "name", type(pipeline).__name__))


class MissingLayerError(UsageError):
    """A check needs a layer of the protocol that the pipeline does not offer."""

    def __init__(self, pipeline: object, layer: type, what: str, missing: Sequence[str]) -> None:
        self.layer = layer.__name__
        self.what = what
        self.missing = list(missing)
        super().__init__(
            f"skipped: {what} needs the {layer.__name__} layer, and pipeline {pipeline_name(pipeline)!r} "
            f"offers no {', '.join(self.missing)}",
            hint="docs/own-pipeline.md lists what each property and fault needs")


def require(pipeline: object, layer: type, what: str) -> None:
    """Raise :class:`MissingLayerError` (exit 2) naming ``what`` unless ``pipeline`` offers ``layer``."""
    missing = missing_members(pipeline, layer)
    if missing:
        raise MissingLayerError(pipeline, layer, what, missing)
