"""Datasets as the property checks take them, and the rearrangements of one.

* :data:`Dataset`: a :class:`~pipeline_props.strategies.SalesDataset` (any
  :class:`HasFiles`) or its (file name, bytes) in dataset order;
* :func:`split_dataset` and :func:`shuffle_dataset`: the same records cut
  into more files, or in another order (the split- and order-invariance
  properties compare the two runs with
  :func:`~pipeline_props.testing.properties.check_same_marts`).

Records are cut with the oracle's record splitter (``record_slices``, exported
here too), so they keep their bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pipeline_props.oracles.splitter import record_slices
from pipeline_props.protocol import Files

__all__ = ["Dataset", "Files", "HasFiles", "record_slices", "shuffle_dataset", "split_dataset"]


class HasFiles(Protocol):
    """A dataset object with its files (:class:`~pipeline_props.strategies.SalesDataset`)."""

    @property
    def files(self) -> Files: ...


#: What the checks take as a dataset: a SalesDataset, or its (file name, bytes) in dataset order.
Dataset = HasFiles | Files


def _files_of(dataset: Dataset) -> tuple[tuple[str, bytes], ...]:
    files = getattr(dataset, "files", dataset)
    return tuple((str(name), bytes(data)) for name, data in files)


def _repr_of(dataset: Dataset) -> str:
    if hasattr(dataset, "files"):
        return repr(dataset)
    from pipeline_props.strategies import SalesDataset

    return repr(SalesDataset(files=_files_of(dataset)))


def _terminated(record: bytes) -> bytes:
    """``record`` ending in a terminator (a last record may have none)."""
    return record if record.endswith((b"\n", b"\r")) else record + b"\n"


def split_dataset(files: Files, cuts: Sequence[int]) -> list[tuple[str, bytes]]:
    """Each file cut into consecutive parts before the given record indexes (same header each).

    Part ``k`` of ``sales.csv`` is named ``sales.part<k>.csv``. Records keep
    their bytes and order; only their file and number change.
    """
    out: list[tuple[str, bytes]] = []
    for name, data in files:
        head, records = record_slices(data)
        bounds = sorted({c for c in cuts if 0 < c < len(records)})
        stem, dot, suffix = name.rpartition(".")
        starts = [0, *bounds]
        ends = [*bounds, len(records)]
        for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
            part = f"{stem}.part{k}.{suffix}" if dot else f"{name}.part{k}"
            body = b"".join(_terminated(r) if i < len(records) - 1 else r
                            for i, r in zip(range(a, b), records[a:b]))
            out.append((part if bounds else name, _terminated(head) + body))
    return out


def shuffle_dataset(files: Files, order: Sequence[int], file_order: Sequence[int]) -> list[tuple[str, bytes]]:
    """Records of every file permuted by ``order`` (cycled over each file), files by ``file_order``.

    A record left open by an unclosed quote runs to the end of its file, so
    it stays last; every other record gets a terminator so none can merge.
    """
    shuffled: list[tuple[str, bytes]] = []
    for name, data in files:
        head, records = record_slices(data)
        # An unclosed quote may end the file, terminators inside it: a last
        # record holding any quote stays last (a conservative test for it).
        tail = [records.pop()] if records and b'"' in records[-1] else []
        keyed = sorted(range(len(records)), key=lambda i: (order[i % len(order)] if order else 0, i))
        body = b"".join(_terminated(records[i]) for i in keyed) + b"".join(tail)
        shuffled.append((name, _terminated(head) + body if records or tail else data))
    if file_order and len(shuffled) > 1:
        ranks = sorted(range(len(shuffled)), key=lambda i: (file_order[i % len(file_order)], i))
        shuffled = [shuffled[i] for i in ranks]
    return shuffled
