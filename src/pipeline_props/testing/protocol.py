"""The small protocol every pipeline under test implements, ours or a team's.

The properties, the fault state machine and ``pipeline-props run`` only talk
to a pipeline through these five methods, so a team plugs in its own topic
and message format, its own Spark job and its own warehouse schema by writing
one class (see docs/own-pipeline.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pipeline_props.compare import TableSet


@runtime_checkable
class PipelineUnderTest(Protocol):
    """A pipeline the checks can drive. One namespace holds one dataset."""

    name: str

    def prepare(self, namespace: str) -> None:
        """Create whatever one dataset needs (topic, schema...). Idempotent."""

    def ingest(self, namespace: str, files: Sequence[tuple[str, bytes]]) -> Any:
        """Send the dataset's files (name, bytes), in order, into the pipeline.

        Must raise :class:`pipeline_props.errors.InputError` for a refused
        file before sending anything.
        """

    def wait_until_caught_up(self, namespace: str, timeout: float = 600.0) -> Any:
        """Return once everything ingested so far is in the warehouse tables."""

    def read_tables(self, namespace: str) -> TableSet:
        """The five output tables of the contract, as a TableSet."""

    def cleanup(self, namespace: str) -> None:
        """Drop everything the namespace holds."""
