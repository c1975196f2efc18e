"""Running a pipeline under test on one dataset, in a namespace of its own.

:func:`fresh_namespace` names a namespace (Kafka topic, checkpoint, schema);
:func:`run_pipeline` prepares it, ingests the files, waits until the pipeline
has caught up, reads the tables and cleans the namespace up. On the example
Hypothesis reports (its final, shrunk one) and outside Hypothesis, a pipeline
with a ``full_build()`` runs its full build (e.g. a real ``dbt build``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from pipeline_props.compare import TableSet
from pipeline_props.protocol import Files, PipelineUnderTest

__all__ = ["fresh_namespace", "run_pipeline"]


def fresh_namespace(prefix: str = "pp_p") -> str:
    """A new namespace name (topic, checkpoint, schema): lower case, digits, underscores."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def _writes_repros() -> bool:
    """True outside Hypothesis, and on the final (shrunk, reported) example inside it."""
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:  # not inside a Hypothesis test: always write
        return True


@contextmanager
def _reported_build(pipeline: PipelineUnderTest) -> Iterator[None]:
    """The pipeline's full build (``full_build()``, e.g. a real ``dbt build``) on the reported example.

    A pipeline that builds its marts a cheaper way while searching (the
    reference pipeline runs the compiled dbt SQL) runs the real thing on the
    example Hypothesis reports and outside Hypothesis.
    """
    full = getattr(pipeline, "full_build", None)
    with full() if callable(full) and _writes_repros() else nullcontext():
        yield


def run_pipeline(pipeline: PipelineUnderTest, namespace: str, files: Files, *, cleanup: bool = True,
                 **ingest_options: Any) -> TableSet:
    """prepare, ingest, wait, read the tables; then clean the namespace up (unless ``cleanup`` is off).

    ``ingest_options`` go to ``pipeline.ingest`` (the reference pipeline takes
    ``arrival_order``, for instance); the protocol itself needs none.
    """
    pipeline.prepare(namespace)
    try:
        pipeline.ingest(namespace, list(files), **ingest_options)
        with _reported_build(pipeline):
            pipeline.wait_until_caught_up(namespace)
        return pipeline.read_tables(namespace)
    finally:
        if cleanup:
            pipeline.cleanup(namespace)
