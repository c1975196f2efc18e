"""Hypothesis strategies for sales CSV datasets, and the deterministic generator.

Public surface:

- :class:`SalesDataset`: files as ``(name, bytes)``, a readable ``repr`` (the
  minimal repro a person reads), ``write()`` and ``row_count``;
- :func:`sales_records`: one valid record (the twelve values as written);
- :func:`sales_datasets`: whole datasets with edge cases, formatting,
  corruptions and duplicates, each labelled with ``hypothesis.event()``;
- :func:`corrupted_records` / :func:`malformed_records`: one strategy per
  reason code and column, and per malformation (:data:`CORRUPTIONS`,
  :data:`MALFORMATIONS`), yielding :class:`CorruptRecord`;
- :class:`DataGenerator` (alias ``TestDataGenerator``), :class:`DataGenerationConfig`
  and :data:`SCENARIOS`: fast seeded data without Hypothesis;
- :data:`PLAIN_HEADER`: the contract's header record as written (no terminator).
"""

from pipeline_props.strategies._corruptions import (
    CORRUPTIONS,
    MALFORMATIONS,
    CorruptRecord,
    corrupted_records,
    malformed_records,
)
from pipeline_props.strategies._datasets import SalesDataset, sales_datasets, sales_records
from pipeline_props.strategies._render import PLAIN_HEADER
from pipeline_props.strategies.generator import (
    SCENARIOS,
    DataGenerationConfig,
    DataGenerator,
    TestDataGenerator,
)

__all__ = [
    "CORRUPTIONS",
    "MALFORMATIONS",
    "PLAIN_HEADER",
    "SCENARIOS",
    "CorruptRecord",
    "DataGenerationConfig",
    "DataGenerator",
    "SalesDataset",
    "TestDataGenerator",
    "corrupted_records",
    "malformed_records",
    "sales_datasets",
    "sales_records",
]
