"""JSON lines: a byte stream in, Arrow batches of raw lines out.

The reader does only what DuckDB cannot do for us, chunk by chunk and never per line on
the common path: find the newlines (one numpy pass), hand DuckDB the chunk itself as an
Arrow string array (zero-copy: the offsets point into the chunk, each value keeps its
``\\n``, which the SQL ignores), number the lines, find lines over the size limit without
holding them (a longer line is skipped as it streams past), and catch bytes that are not
UTF-8 (one ``cast`` per chunk validates the lot). Only a chunk with an over-long line or
bad UTF-8 is split into Python ``bytes`` and examined line by line. JSON parsing and the
schema rules run in DuckDB (``toolctl/store/sql/parse_batch.sql``).
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
# The chunk-wide scan, without a regex (a character-class regex over every byte runs at
# ~40 MB/s): one C pass lower-cases the chunk and deletes JSON whitespace; then literal
# finds locate `nan`/`inf` after `:` `[` `,` (optionally `-`) and `,}` / `,]`.
_LOWER_SQUEEZE = bytes(range(256)).lower()
_JSON_SPACE = b" \t\r"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


class ChunkBatch:
    """Consecutive lines of one source, kept as the chunk they were read in.

    ``body`` ends with a newline; ``ends`` are the positions of its newlines (numpy int64).
    ``rejects`` maps line index -> (reason, raw bytes, size) for lines refused before
    parsing (non-standard JSON). ``to_arrow`` hands the chunk to Arrow without copying it.
    """

    def __init__(self, first_line: int, body: bytes, ends, rejects: dict[int, tuple[str, bytes, int]]):
        self.first_line = first_line
        self.body = body
        self.ends = ends
        self.rejects = rejects

    @property
    def count(self) -> int:
        return len(self.ends)

    def to_lines(self) -> "LineBatch":
        return LineBatch(self.first_line, self.body[:-1].split(b"\n"), dict(self.rejects))

    def to_arrow(self, raw_cap: int):
        import numpy as np
        import pyarrow as pa

        n = self.count
        large = len(self.body) >= 2**31
        offsets = np.empty(n + 1, np.int64 if large else np.int32)
        offsets[0] = 0
        offsets[1:] = self.ends + 1  # each value keeps its newline; parse_batch.sql ignores it
        arr = pa.Array.from_buffers(pa.large_binary() if large else pa.binary(), n,
                                    [None, pa.py_buffer(offsets), pa.py_buffer(self.body)])
        try:
            text = arr.cast(pa.large_string() if large else pa.string())
        except pa.ArrowInvalid:  # some line is not UTF-8: examine this chunk line by line
            return self.to_lines().to_arrow(raw_cap)
        reasons: list[str | None] | None = None
        sizes: list[int | None] | None = None
        if self.rejects:
            reasons, sizes = [None] * n, [None] * n
            for i, (reason, _data, size) in self.rejects.items():
                reasons[i], sizes[i] = reason, size
        return pa.table({
            "line_no": pa.array(np.arange(self.first_line, self.first_line + n, dtype=np.int64)),
            "line": text,
            "pre_reason": pa.nulls(n, pa.string()) if reasons is None else pa.array(reasons, pa.string()),
            "raw_bytes": pa.nulls(n, pa.int64()) if sizes is None else pa.array(sizes, pa.int64()),
        })


def _chunk_batch(first_line: int, body: bytes, limit: int, head_cap: int, too_long):
    """A batch for ``body`` (whole lines, ending with a newline)."""
    import numpy as np

    view = np.frombuffer(body, np.uint8)
    ends = np.flatnonzero(view == 10)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts
    if int(lengths.max()) > limit:  # rare: the per-line path keeps the heads of long lines
        batch = LineBatch(first_line, body[:-1].split(b"\n"))
        _mark_long_lines(batch, limit, head_cap, too_long)
        _mark_nonstandard_json(batch)
        return batch
    rejects: dict[int, tuple[str, bytes, int]] = {}
    for i in _lenient_candidates(body, ends):
        data = body[starts[i]:ends[i]]
        try:
            json.loads(data, parse_constant=_reject_constant)
        except UnicodeDecodeError:
            continue  # reported as not UTF-8 later
        except ValueError as exc:
            rejects[i] = (f"invalid JSON: {exc}", data, _content_size(data))
    return ChunkBatch(first_line, body, ends, rejects)


def _lenient_candidates(body: bytes, ends) -> list[int]:
    """Indexes of the lines of ``body`` that may hold NaN/Infinity or a trailing comma."""
    import numpy as np

    squeezed = body.translate(_LOWER_SQUEEZE, _JSON_SPACE)
    hits: list[int] = []
    for word in (b"nan", b"inf"):
        pos = squeezed.find(word)
        while pos >= 0:
            before = squeezed[pos - 1:pos]
            if before == b"-":
                before = squeezed[pos - 2:pos - 1]
            if before and before in b":[,":
                hits.append(pos)
            pos = squeezed.find(word, pos + 3)
    for pair in (b",}", b",]"):
        pos = squeezed.find(pair)
        while pos >= 0:
            hits.append(pos)
            pos = squeezed.find(pair, pos + 2)
    if not hits:
        return []
    newlines = np.flatnonzero(np.frombuffer(squeezed, np.uint8) == 10)
    return sorted(set(np.searchsorted(newlines, hits).tolist()))


@dataclass
class LineBatch:
    """Consecutive lines of one source. ``rejects`` are lines refused before parsing."""

    first_line: int
    lines: list[bytes]
    rejects: dict[int, tuple[str, bytes, int]] = field(default_factory=dict)  # idx -> (reason, head, size)

    @property
    def count(self) -> int:
        return len(self.lines)

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
                    f"not valid UTF-8 (byte 0x{bad} at offset {exc.start})", data, _content_size(data)
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
    # State while skipping an over-long line: its head, its size so far, its last byte.
    skip_head: bytes | None = None
    skip_size = 0
    skip_last = b""

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
                skip_last = chunk[-1:]
                continue
            skip_size += nl
            if (chunk[nl - 1:nl] if nl else skip_last) == b"\r":
                skip_size -= 1  # the line ending's CR
            yield LineBatch(next_line, [b""], {0: (too_long(skip_size), skip_head, skip_size)})
            next_line += 1
            skip_head, skip_size = None, 0
            chunk = chunk[nl + 1:]
        buf = carry + chunk if carry else chunk
        last_nl = buf.rfind(b"\n")
        if last_nl < 0:
            carry = buf
        else:
            carry = buf[last_nl + 1:]
            batch = _chunk_batch(next_line, buf[:last_nl + 1], max_line_bytes, head_cap, too_long)
            yield batch
            next_line += batch.count
        if len(carry) > max_line_bytes + 1:  # +1: a CR may still precede the newline
            skip_head, skip_size, skip_last, carry = carry[:head_cap], len(carry), carry[-1:], b""
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
            batch.rejects[i] = (f"invalid JSON: {exc}", data, _content_size(data))


def input_ended(last_line: int, broken: BaseException) -> str:
    """The reason a source that broke off after ``last_line`` (a truncated or corrupt gzip)
    counts as one rejected line for: what came before it is stored."""
    return f"input ended abnormally after line {last_line}: {broken or type(broken).__name__}"


def reason_line(line_no: int, reason: str) -> LineBatch:
    """A batch of one line refused with ``reason`` and no content (``input_ended``'s)."""
    return LineBatch(line_no, [b""], {0: (reason, b"", 0)})


def _content_size(data: bytes) -> int:
    """A line's size as a reject reports it: its bytes without the line ending (LF or CRLF),
    as DuckDB measures the lines it rejects itself."""
    return len(data) - data.endswith(b"\r")


def _mark_long_lines(batch: LineBatch, limit: int, head_cap: int, too_long) -> None:
    lines = batch.lines
    if max(map(len, lines), default=0) <= limit:
        return
    for i, data in enumerate(lines):
        # The limit and the size reported apply to the content (a CR before the newline
        # is part of the line ending), as on the streaming path.
        size = _content_size(data)
        if size > limit:
            batch.rejects[i] = (too_long(size), data[:head_cap], size)
            lines[i] = b""
