"""JSON lines: a byte stream in, Arrow batches of raw lines out.

The reader does only what DuckDB cannot do for us, chunk by chunk and never per line on
the common path: split on ``\\n`` (C speed via ``bytes.split``), number the lines, find
lines over the size limit without holding them (a longer line is skipped as it streams
past), and catch bytes that are not UTF-8 (one ``cast`` per chunk validates the lot;
only a failing chunk is examined line by line). JSON parsing and the schema rules run in
DuckDB (``toolctl/store/sql/parse_batch.sql``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

#: Bytes read per chunk: large enough that per-chunk overhead vanishes, small enough
#: that memory stays flat (a batch is at most this plus one maximal line).
DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024


# DuckDB's JSON parser is lenient where RFC 8259 is not: it takes NaN/Infinity/inf/nan as
# numbers and trailing commas. Such lines are invalid JSON to every other consumer, so a
# chunk-wide scan finds candidates and a strict parse decides, for those lines only.
_LENIENT_JSON = re.compile(rb"[:\[,]\s*-?(?i:nan|inf)|,\s*[}\]]")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


@dataclass
class LineBatch:
    """Consecutive lines of one source. ``rejects`` are lines refused before parsing."""

    first_line: int
    lines: list[bytes]
    rejects: dict[int, tuple[str, bytes, int]] = field(default_factory=dict)  # idx -> (reason, head, size)

    def to_arrow(self, raw_cap: int):
        """An Arrow table for ``toolctl.store.writer.write_line_batch``."""
        import pyarrow as pa

        n = len(self.lines)
        line_no = pa.array(range(self.first_line, self.first_line + n), type=pa.int64())
        if not self.rejects:
            try:
                text = pa.array(self.lines, type=pa.binary()).cast(pa.string())
            except pa.ArrowInvalid:
                self._reject_bad_utf8()
            else:
                return pa.table({
                    "line_no": line_no,
                    "line": text,
                    "pre_reason": pa.nulls(n, pa.string()),
                    "raw_bytes": pa.nulls(n, pa.int64()),
                })
        self._reject_bad_utf8()
        lines, reasons, sizes = [], [], []
        for i, data in enumerate(self.lines):
            rej = self.rejects.get(i)
            if rej is None:
                lines.append(data.decode("utf-8"))
                reasons.append(None)
                sizes.append(None)
            else:
                reason, head, size = rej
                lines.append(head[:raw_cap].decode("utf-8", "backslashreplace"))
                reasons.append(reason)
                sizes.append(size)
        return pa.table({
            "line_no": line_no,
            "line": pa.array(lines, type=pa.string()),
            "pre_reason": pa.array(reasons, type=pa.string()),
            "raw_bytes": pa.array(sizes, type=pa.int64()),
        })

    def _reject_bad_utf8(self) -> None:
        for i, data in enumerate(self.lines):
            if i in self.rejects:
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = data[exc.start:exc.start + 1].hex()
                self.rejects[i] = (
                    f"not valid UTF-8 (byte 0x{bad} at offset {exc.start})", data, len(data)
                )


def iter_line_batches(
    stream: BinaryIO,
    *,
    max_line_bytes: int,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    raw_cap: int = 64 * 1024,
) -> Iterator[LineBatch]:
    """Yield batches of consecutive lines from ``stream`` (line numbers start at 1).

    A line longer than ``max_line_bytes`` (newline and a trailing CR excluded) becomes a
    reject that keeps its first ``raw_cap`` bytes; the rest of it is read and dropped.
    """
    # The kept head of an over-long line must not depend on where chunks happened to end
    # (it is part of the reject's identity): at most one limit's worth, on every path.
    head_cap = min(raw_cap, max_line_bytes)
    next_line = 1  # number of the first line not yet yielded
    carry = b""
    # State while skipping an over-long line: its head and its size so far.
    skip_head: bytes | None = None
    skip_size = 0

    def too_long(size: int) -> str:
        return f"line too long: {size} bytes > limit {max_line_bytes} (--max-line-bytes)"

    while True:
        chunk = stream.read(chunk_bytes)
        if not chunk:
            break
        if skip_head is not None:
            nl = chunk.find(b"\n")
            if nl < 0:
                skip_size += len(chunk)
                continue
            skip_size += nl
            yield LineBatch(next_line, [b""], {0: (too_long(skip_size), skip_head, skip_size)})
            next_line += 1
            skip_head, skip_size = None, 0
            chunk = chunk[nl + 1:]
        buf = carry + chunk if carry else chunk
        last_nl = buf.rfind(b"\n")
        if last_nl < 0:
            carry = buf
        else:
            lines = buf[:last_nl].split(b"\n")
            carry = buf[last_nl + 1:]
            batch = LineBatch(next_line, lines)
            _mark_long_lines(batch, max_line_bytes, head_cap, too_long)
            if _LENIENT_JSON.search(buf, 0, last_nl):
                _mark_nonstandard_json(batch)
            yield batch
            next_line += len(lines)
        if len(carry) > max_line_bytes + 1:  # +1: a CR may still precede the newline
            skip_head, skip_size, carry = carry[:head_cap], len(carry), b""
    if skip_head is not None:
        yield LineBatch(next_line, [b""], {0: (too_long(skip_size), skip_head, skip_size)})
    elif carry:
        batch = LineBatch(next_line, [carry])
        _mark_long_lines(batch, max_line_bytes, head_cap, too_long)
        _mark_nonstandard_json(batch)
        yield batch


def _mark_nonstandard_json(batch: LineBatch) -> None:
    for i, data in enumerate(batch.lines):
        if i in batch.rejects or not _LENIENT_JSON.search(data):
            continue
        try:
            json.loads(data, parse_constant=_reject_constant)
        except UnicodeDecodeError:
            continue  # reported as not UTF-8 later
        except ValueError as exc:
            batch.rejects[i] = (f"invalid JSON: {exc}", data, len(data))


def _mark_long_lines(batch: LineBatch, limit: int, head_cap: int, too_long) -> None:
    lines = batch.lines
    if max(map(len, lines), default=0) <= limit:
        return
    for i, data in enumerate(lines):
        # The limit applies to the content (a CR before the newline is not content); the
        # size reported counts every byte before the newline, as the streaming path does.
        if len(data) - data.endswith(b"\r") > limit:
            batch.rejects[i] = (too_long(len(data)), data[:head_cap], len(data))
            lines[i] = b""
