"""RESP commands of a whole batch, assembled column-wise with numpy.

A batch of commands is assembled as a byte matrix, one row per key: each "slot" (the
command name, the key, one feature's field and value, ...) owns a range of columns, and
a boolean mask marks the bytes each row actually uses. The row-major compaction
``wide[mask]`` is then the batch's RESP stream, commands in row order. Everything is
column-wise numpy: no Python work per key or per value (the materialization writer sends
millions of keys; redis-py encodes one argument at a time in Python).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

Slot = tuple[bytes, "np.ndarray | None", "np.ndarray | None"]
"""``(prefix, payload, lengths)``: the prefix bytes, then a RESP bulk string of
``payload[i, :lengths[i]]`` per row; a constant when ``payload`` is None."""


@cache
def bulk_headers(max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """RESP bulk headers (``$<n>`` and CRLF) for n in 0..max_len, as a padded byte
    matrix and their lengths."""
    headers = [b"$%d\r\n" % n for n in range(max_len + 1)]
    width = max(len(h) for h in headers)
    table = np.zeros((max_len + 1, width), np.uint8)
    for n, header in enumerate(headers):
        table[n, : len(header)] = np.frombuffer(header, np.uint8)
    return table, np.array([len(h) for h in headers], np.int64)


def place(dst: np.ndarray, offsets: np.ndarray, src: np.ndarray, lengths: np.ndarray) -> None:
    """``dst[i, offsets[i] + k] = src[i, k]`` for ``k < lengths[i]``, row by row."""
    rows = np.arange(dst.shape[0])
    for k in range(src.shape[1]):
        selected = lengths > k
        if not selected.any():
            break
        dst[rows[selected], offsets[selected] + k] = src[selected, k]


def slot_width(slot: Slot) -> int:
    prefix, payload, _ = slot
    if payload is None:
        return len(prefix)
    return len(prefix) + bulk_headers(payload.shape[1])[0].shape[1] + payload.shape[1] + 2


def fill(wide: np.ndarray, mask: np.ndarray, slot: Slot, known: Any) -> Any:
    """Write one slot into its columns of the batch matrix and mark the bytes used.

    Args:
        known: What the previous batch left in these columns (the state this returns),
            None if nothing. When every value of the slot has the same length in this
            batch and the last one, the prefix, header, line end and mask are already in
            place and only the values are written.

    Returns:
        The state of the columns for the next batch.
    """
    prefix, payload, lengths = slot
    start = len(prefix)
    if known is None and start:
        wide[:, :start] = np.frombuffer(prefix, np.uint8)
    if payload is None:
        if known is None:
            mask[:, :start] = True
        return "constant"
    if lengths is None:
        raise ValueError("a slot with a payload needs its lengths")
    rows, width = payload.shape
    if not rows:
        return known
    headers, header_lengths = bulk_headers(width)
    length = int(lengths[0])
    if np.all(lengths == length):
        header = int(header_lengths[length])
        end = start + header + length
        state = ("fixed", length)
        if known != state:
            wide[:, start : start + header] = headers[length, :header]
            wide[:, end : end + 2] = (13, 10)
            mask[:] = False
            mask[:, : end + 2] = True
        wide[:, start + header : end] = payload[:, :length]
        return state
    header_width = header_lengths[lengths]
    if np.all(header_width == header_width[0]):
        # Every length has the same number of digits: the values start in one column.
        first = int(header_width[0])
        wide[:, start : start + first] = headers[lengths, :first]
        wide[:, start + first : start + first + width] = payload
        ends = start + first + lengths
    else:
        wide[:, start : start + headers.shape[1]] = headers[lengths]
        offsets = start + header_width
        place(wide, offsets, payload, lengths)
        ends = offsets + lengths
    index = np.arange(rows)
    wide[index, ends] = 13
    wide[index, ends + 1] = 10
    mask[:] = np.arange(mask.shape[1])[None, :] < (ends + 2)[:, None]
    return "variable"


class Scratch:
    """The batch matrix and mask, allocated once and reused from batch to batch.

    A fresh 20 MB array per batch costs more in page faults than filling it, and with
    the same layout (slot widths) the constant bytes of a slot stay valid: a batch only
    writes what changed (see ``fill``).
    """

    def __init__(self) -> None:
        self._wide = np.empty((0, 0), np.uint8)
        self._mask = np.zeros((0, 0), bool)
        self._layout: tuple[int, ...] | None = None
        self._rows = 0
        self.states: list[Any] = []

    def take(self, rows: int, widths: list[int]) -> tuple[np.ndarray, np.ndarray]:
        width = sum(widths)
        if rows > self._wide.shape[0] or width > self._wide.shape[1]:
            shape = (max(rows, self._wide.shape[0]), max(width, self._wide.shape[1]))
            self._wide = np.empty(shape, np.uint8)
            self._mask = np.zeros(shape, bool)
            self._layout = None
        if self._layout != tuple(widths) or rows > self._rows:
            self._layout, self._rows = tuple(widths), rows
            self.states = [None] * len(widths)
        return self._wide[:rows, :width], self._mask[:rows, :width]


def assemble(
    slots: list[Slot], rows: int, scratch: Scratch | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The batch matrix and its mask of used bytes."""
    scratch = scratch or Scratch()
    widths = [slot_width(slot) for slot in slots]
    wide, mask = scratch.take(rows, widths)
    at = 0
    for i, (slot, width) in enumerate(zip(slots, widths, strict=True)):
        columns = slice(at, at + width)
        scratch.states[i] = fill(wide[:, columns], mask[:, columns], slot, scratch.states[i])
        at += width
    return wide, mask


def compact(wide: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The used bytes, row after row: the batch's RESP stream."""
    return wide[mask]
