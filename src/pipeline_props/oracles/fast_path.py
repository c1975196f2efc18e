"""The oracle's fast path: records of a plain file cut by vectorised NumPy.

A file with no quote, no ``\\r`` and valid UTF-8 (see
:func:`pipeline_props.oracles.splitter.needs_full_split`) has records that are
exactly its non-empty ``\\n``-separated lines, and fields that are exactly the
comma-separated parts of a line; a line whose comma count is not the header's
is ``MALFORMED_ROW``. That is all this module implements: it finds the byte
ranges of lines and fields with array operations (no per-record Python step),
trims spaces and tabs, and hands the ranges to DuckDB as Arrow *string views*
that point into the file's own bytes, so no field text is copied.

The rules are the splitter's (contract section 1) restricted to such files;
tests/unit/test_oracle.py checks that both give the same records.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

_LF = 0x0A
_COMMA = 0x2C
_SPACE = 0x20
_TAB = 0x09
_DEL = 0x7F

#: Arrow string views keep a byte offset as int32; larger files use the splitter.
MAX_FAST_BYTES = 2**31 - 1
#: A view of at most this many bytes holds its text inline (Arrow format).
_INLINE = 12
_U32 = np.uint64(32)
#: Masks keeping the first k bytes (k = 0..8) of a little-endian 8-byte word.
_MASK8 = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
#: Masks keeping bytes 8..k-1 of a view's text, as a 4-byte word (k = 0..12).
_MASK4 = np.array([0] * 9 + [(1 << (8 * k)) - 1 for k in range(1, 5)], dtype=np.uint64)


class _Bytes:
    """A file's bytes with word-sized windows at every byte offset."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.array = np.frombuffer(data, dtype=np.uint8)
        self.buffer = pa.py_buffer(data)
        # overlapping windows (stride one byte): the 8 or 4 bytes from offset i
        self.words8 = np.ndarray((self.size - 7,), "<u8", data, 0, (1,))
        self.words4 = np.ndarray((self.size - 3,), "<u4", data, 0, (1,))

    def word8(self, at: np.ndarray) -> np.ndarray:
        """The 8 bytes from each offset, zero past the end of the file."""
        if not len(at) or int(at.max()) <= self.size - 8:
            return self.words8[at]  # the common case: no window runs past the end
        clipped = np.minimum(at, self.size - 8)
        return self.words8[clipped] >> ((at - clipped).astype(np.uint64) * np.uint64(8))

    def word4(self, at: np.ndarray) -> np.ndarray:
        """The 4 bytes from each offset (as uint64), zero past the end of the file."""
        clipped = np.minimum(at, self.size - 4)
        return self.words4[clipped].astype(np.uint64) >> ((at - clipped).astype(np.uint64) * np.uint64(8))

    def views(self, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
        """A string_view array of the byte ranges (start, length) of the file.

        Layout (Arrow columnar format): 16 bytes a value, the length then
        either the text itself (at most 12 bytes, zero padded) or its first 4
        bytes, buffer 0 and the offset.
        """
        count = len(starts)
        lengths64 = _unsigned(lengths)
        views = np.empty((count, 2), dtype=np.uint64)
        head = self.word8(starts)
        head &= _MASK8[np.minimum(lengths64, 8)]
        low = views[:, 0]
        np.left_shift(head, _U32, out=low)
        low |= lengths64
        inline = lengths64 <= _INLINE
        tail = np.right_shift(head, _U32, out=head)
        medium = np.flatnonzero(inline & (lengths64 > 8))
        if len(medium):
            rest = self.word4(starts[medium] + 8) & _MASK4[lengths[medium]]
            tail[medium] |= rest << _U32
        high = views[:, 1]
        np.left_shift(_unsigned(starts), _U32, out=high)
        np.copyto(high, tail, where=inline)
        return pa.Array.from_buffers(pa.string_view(), count, [None, pa.py_buffer(views), self.buffer])


def _unsigned(values: np.ndarray) -> np.ndarray:
    """Non-negative int64 offsets or lengths as uint64 (a view, not a copy, when they are int64)."""
    return values.view(np.uint64) if values.dtype == np.int64 else values.astype(np.uint64)


def _trim(array: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
    """Move ``starts`` and ``ends`` (in place) past leading and trailing spaces and tabs."""
    while True:
        first = array[np.minimum(starts, len(array) - 1)]
        move = (starts < ends) & ((first == _SPACE) | (first == _TAB))
        if not move.any():
            break
        starts += move
    while True:
        last = array[np.maximum(ends - 1, 0)]
        move = (starts < ends) & ((last == _SPACE) | (last == _TAB))
        if not move.any():
            break
        ends -= move


#: Bytes of a file cut at a time: the work arrays stay small (and in cache),
#: and every block gives DuckDB its own record batches to share out.
BLOCK_BYTES = 1 << 22


def fast_records(
    data: bytes, body_start: int, ncols: int, positions: Sequence[int]
) -> Iterator[dict[str, pa.Array | np.ndarray]]:
    """Cut the records of a plain file (see the module docstring), a block at a time.

    ``data`` is the BOM-less file, ``body_start`` the offset after its header,
    ``ncols`` the header's field count and ``positions`` the header position
    of each wanted column. Yields batches of records as columns:
    record_number, raw, malformed, control, then ``field<i>`` (a string view
    array, or None for a batch of malformed records) for each wanted position.
    ``control`` is True for a record containing a control character
    (U+0000-U+001F, U+007F).
    """
    file = _Bytes(data)
    blocks = []
    start = body_start
    while start < file.size:
        end = min(start + BLOCK_BYTES, file.size)
        if end < file.size:  # blocks end after a newline
            newline = data.find(b"\n", end)
            end = file.size if newline < 0 else newline + 1
        blocks.append((start, end))
        start = end
    before = 0  # records in the blocks before
    for block in _cut_blocks(file, blocks, ncols, positions):
        count = 0
        for batch in block:
            batch["record_number"] += before
            count += len(batch["record_number"])
            yield batch
        before += count


#: Threads cutting blocks side by side (NumPy releases the GIL in its loops).
CUT_THREADS = min(4, os.cpu_count() or 1)
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _cut_blocks(
    file: _Bytes, blocks: Sequence[tuple[int, int]], ncols: int, positions: Sequence[int]
) -> Iterator[list[dict[str, pa.Array | np.ndarray]]]:
    """Each block's batches, in block order; several blocks are cut at once."""
    if len(blocks) < 2 or CUT_THREADS < 2:
        for start, end in blocks:
            yield list(_cut(file, start, end, ncols, positions))
        return
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(CUT_THREADS, thread_name_prefix="pp-oracle-cut")
        pool = _pool
    yield from pool.map(lambda block: list(_cut(file, block[0], block[1], ncols, positions)), blocks)


def _cut(
    file: _Bytes, offset: int, stop: int, ncols: int, positions: Sequence[int]
) -> Iterator[dict[str, pa.Array | np.ndarray]]:
    """The records of ``file[offset:stop]`` (whole lines), numbered from 1."""
    body = file.array[offset:stop]
    newlines = np.flatnonzero(body == _LF)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(body)]))
    counted = ends > starts  # an empty line is skipped, not counted
    starts, ends = starts[counted], ends[counted]
    count = len(starts)
    numbers = np.arange(1, count + 1, dtype=np.int64)

    commas = np.flatnonzero(body == _COMMA)
    per_line = np.diff(np.searchsorted(commas, np.concatenate((starts[:1], ends))))
    good = per_line == ncols - 1
    all_good = bool(good.all())

    # control characters: any byte below 0x20 (a newline ends a line) or 0x7F
    control_at = np.flatnonzero((body < 0x20) | (body == _DEL))
    control_at = control_at[body[control_at] != _LF]
    control = np.zeros(count, dtype=bool)
    control[np.searchsorted(starts, control_at, side="right") - 1] = True

    if not all_good:
        bad = ~good
        yield {
            "record_number": numbers[bad],
            "raw": file.views(starts[bad] + offset, ends[bad] - starts[bad]),
            "malformed": np.ones(int(bad.sum()), dtype=bool),
            "control": control[bad],
            **{f"field{index}": None for index in range(len(positions))},
        }
        cuts = commas[np.repeat(good, per_line)].reshape(-1, ncols - 1)
        starts, ends, numbers, control = starts[good], ends[good], numbers[good], control[good]
    else:
        cuts = commas.reshape(count, ncols - 1)
    if not len(starts):
        return

    # lines where a space or tab touches a field's edge need trimming
    blanks = np.concatenate((np.flatnonzero(body == _SPACE), control_at[body[control_at] == _TAB]))
    before_blank = body[np.maximum(blanks - 1, 0)]
    after_blank = body[np.minimum(blanks + 1, len(body) - 1)]
    edge = (
        (blanks == 0) | (before_blank == _COMMA) | (before_blank == _LF)
        | (blanks == len(body) - 1) | (after_blank == _COMMA) | (after_blank == _LF)
    )
    trim_lines = np.unique(np.searchsorted(starts, blanks[edge], side="right") - 1)

    batch: dict[str, pa.Array | np.ndarray] = {
        "record_number": numbers,
        "raw": file.views(starts + offset, ends - starts),
        "malformed": np.zeros(len(starts), dtype=bool),
        "control": control,
    }
    for index, at in enumerate(positions):
        field_starts = starts if at == 0 else cuts[:, at - 1] + 1
        field_ends = ends if at == ncols - 1 else cuts[:, at]
        if len(trim_lines):
            field_starts, field_ends = field_starts.copy(), field_ends.copy()
            some_starts, some_ends = field_starts[trim_lines], field_ends[trim_lines]
            _trim(body, some_starts, some_ends)
            field_starts[trim_lines], field_ends[trim_lines] = some_starts, some_ends
        batch[f"field{index}"] = file.views(field_starts + offset, field_ends - field_starts)
    yield batch
