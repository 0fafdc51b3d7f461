"""Input sources: paths and stdin expanded, opened, gunzipped and hashed as they stream."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from toolctl.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
#: What a directory walk picks up (any file named explicitly is read whatever its name).
DIR_SUFFIXES = (".jsonl", ".ndjson", ".json", ".log", ".pb", ".binpb", ".otlp", ".protobuf")
STDIN = "-"


@dataclass(frozen=True)
class Source:
    name: str  # resolved path, or "<stdin>"
    path: Path | None  # None for stdin
    stream: bool = False  # a named pipe or device: no size, read once

    @property
    def kind(self) -> str:
        return "stdin" if self.path is None else "file"


def path_label(path: Path | str) -> str:
    """A path as text that can be stored and printed. File names are bytes on Linux: one
    that is not UTF-8 (a rotated log named in Latin-1) is labelled with each such byte
    written as its escape (``gw-\\xff.jsonl``) instead of stopping the ingest."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return text


def expand_paths(paths: list[str]) -> list[Source]:
    """Files as given, directories walked recursively in sorted order, ``-`` for stdin.

    Every path is checked before anything is read, so a typo fails the run up front
    instead of after half the inputs were stored; so is every file a directory walk
    would read (a dangling symbolic link or an unreadable file among them is an
    InputError, not a silent gap). Hidden files and directories are not walked.
    """
    sources: list[Source] = []
    for raw in paths:
        if raw == STDIN:
            if sys.stdin is None:  # started with fd 0 closed (`toolctl ingest - <&-`)
                raise InputError("cannot read stdin: it is closed",
                                 hint="pipe the logs in (… | toolctl ingest -), or name the files "
                                      "to ingest (nothing was ingested)")
            sources.append(Source("<stdin>", None))
            continue
        p = Path(raw).expanduser()
        if p.is_dir():
            found = sorted(f for f in _walk(p) if _wanted(f.name) and _readable_file(f))
            sources.extend(Source(path_label(f.resolve()), f.resolve()) for f in found)
        elif p.is_file():
            _readable_file(p)
            sources.append(Source(path_label(p.resolve()), p.resolve()))
        elif _a_stream(p):
            # A named pipe (`toolctl ingest <(zcat gw.jsonl.gz)`, a FIFO a shipper feeds) or
            # a character device (/dev/stdin): read like stdin, labelled with the path as
            # given (it resolves to "pipe:[…]"). A directory walk still passes over these.
            if not os.access(p, os.R_OK):
                raise InputError(f"cannot read {raw}: permission denied",
                                 hint="fix its permissions (nothing was ingested)")
            sources.append(Source(path_label(p), p, stream=True))
        elif p.exists():
            raise InputError(f"{raw} is neither a file nor a directory", hint="pass log files, directories, named pipes or - for stdin")
        else:
            raise InputError(f"no such file or directory: {raw}", hint="check the path (nothing was ingested)")
    if not sources:
        raise InputError(
            "no input files found in " + ", ".join(paths),
            hint="directories are searched for " + ", ".join(DIR_SUFFIXES) + " files (and .gz of them)",
        )
    return sources


def _a_stream(p: Path) -> bool:
    try:
        mode = p.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _walk(top: Path) -> Iterator[Path]:
    """Every non-hidden entry under ``top`` that is not a directory (symbolic links to
    directories are not followed). A directory that cannot be listed is an InputError:
    ``Path.rglob`` passes over it without a word, which would leave a silent gap."""

    def refuse(exc: OSError) -> None:
        reason = (exc.strerror or str(exc)).lower()
        raise InputError(f"cannot read directory {exc.filename or top}: {reason}",
                         hint="fix its permissions, or name the files to ingest (nothing was ingested)")

    for root, dirs, files in os.walk(top, onerror=refuse):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                yield Path(root, name)


def _readable_file(f: Path) -> bool:
    """Is ``f`` a file to read (False: a directory or other non-file a walk passes over)?
    Raises InputError when it should be read and cannot be."""
    if f.is_file():
        if not os.access(f, os.R_OK):
            raise InputError(f"cannot read {f}: permission denied",
                             hint="fix its permissions, or move it out of the way (nothing was ingested)")
        return True
    if f.is_symlink() and not f.exists():  # dangling, or a loop
        raise InputError(f"cannot read {f}: a symbolic link to nothing (its target is missing, or a loop)",
                         hint="remove the link, or name the files to ingest (nothing was ingested)")
    return False


def _wanted(name: str) -> bool:
    name = name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(DIR_SUFFIXES)


class _CountingReader(io.RawIOBase):
    """Wraps a binary stream; hashes and counts the bytes as they are read. A read that
    fails (an I/O error of the disk or of a special file) is an InputError naming it."""

    def __init__(self, raw: BinaryIO, on_bytes: Callable[[int], None] | None, name: str = "input"):
        self._raw = raw
        self._name = name
        self.sha256 = hashlib.sha256()
        self.nbytes = 0
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        try:
            data = self._raw.read(len(b))
        except OSError as exc:
            raise InputError(f"cannot read {self._name}: {exc.strerror or exc}",
                             hint="check the file or device; batches stored before this point are "
                                  "kept, and running the command again stores nothing twice") from exc
        n = len(data)
        b[:n] = data
        if n:
            self.sha256.update(data)
            self.nbytes += n
            if self._on_bytes:
                self._on_bytes(n)
        return n


class _TolerantGzip(io.RawIOBase):
    """Gunzips (multi-member too); a truncated or corrupt stream ends it instead of raising.

    Everything decompressible before the damage is delivered, so a log cut off mid-write
    still yields its complete lines; ``error`` says what ended it. (gzip.GzipFile would
    raise instead, and its internal buffer drops the partly filled read.)
    """

    _CHUNK = 256 * 1024

    def __init__(self, fileobj: BinaryIO):
        self._src = fileobj
        self._d = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        self._pending = b""
        self._done = False
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._pending and not self._done:
            self._fill(len(b))
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _fill(self, want: int) -> None:
        if self._d.eof:  # a member ended: another may follow
            data = self._d.unused_data or self._src.read(self._CHUNK)
            # Zero bytes after a member are padding (tape and block devices add it), which
            # gzip and Python's gzip skip: not the start of a corrupt member.
            data = data.lstrip(b"\x00")
            while not data:
                more = self._src.read(self._CHUNK)
                if not more:
                    self._done = True
                    return
                data = more.lstrip(b"\x00")
            self._d = zlib.decompressobj(wbits=31)
        else:
            data = self._d.unconsumed_tail or self._src.read(self._CHUNK)
            if not data:
                self.error = EOFError("compressed stream ended before its end marker (truncated gzip)")
                self._done = True
                return
        before = self._d.copy()  # the state this chunk starts from, to salvage it if corrupt
        try:
            self._pending = self._d.decompress(data, max(want, 64 * 1024))
        except zlib.error as exc:
            self._pending = _salvage(before, data)
            self.error = exc
            self._done = True


#: Compressed bytes fed at a time when salvaging a corrupt chunk, and the most it delivers.
_SALVAGE_STEP = 1024
_SALVAGE_MAX = 64 * 1024 * 1024


def _salvage(d: Any, data: bytes) -> bytes:
    """What ``d`` decompresses from ``data`` before the corruption in it, a slice at a time.

    zlib raises for the whole call, dropping output it had produced: a chunk of 256 KiB
    could lose thousands of lines before a bad byte, and a damaged CRC trailer every
    line of the last chunk (a small file: all of them).
    """
    out: list[bytes] = []
    size, step, i = 0, _SALVAGE_STEP, 0
    while i < len(data) and size < _SALVAGE_MAX and not d.eof:
        start = d.copy()
        try:
            piece = d.decompress(data[i:i + step], _SALVAGE_MAX - size)
        except zlib.error:
            if step == 1:
                break
            d, step = start, 1  # the bad byte is in this slice: go through it one byte at a time
            continue
        out.append(piece)
        size += len(piece)
        i += step
    return b"".join(out)


@dataclass
class OpenedSource:
    stream: BinaryIO  # decompressed bytes
    counter: _CountingReader  # the bytes as stored on disk (hash, size)
    head: bytes  # the first decompressed bytes, for format sniffing
    compressed: bool
    gunzip: _TolerantGzip | None = None

    @property
    def error(self) -> Exception | None:
        """Why the (compressed) stream ended early, or None."""
        return self.gunzip.error if self.gunzip else None

    def close(self) -> None:
        self.stream.close()


def open_source(source: Source, on_bytes: Callable[[int], None] | None = None) -> OpenedSource:
    """Open a source for reading; gzip is recognised by its magic bytes, not its name."""
    try:
        raw = sys.stdin.buffer if source.path is None else open(source.path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {source.name}: {exc.strerror}", hint="check permissions") from exc
    counter = _CountingReader(raw, on_bytes, source.name)
    buffered = io.BufferedReader(counter, buffer_size=1024 * 1024)
    compressed = buffered.peek(2)[:2] == GZIP_MAGIC
    gunzip = _TolerantGzip(buffered) if compressed else None
    stream: BinaryIO = io.BufferedReader(gunzip, buffer_size=1024 * 1024) if gunzip else buffered
    try:
        head = stream.peek(4096)[:4096]  # type: ignore[attr-defined]
    except OSError as exc:
        raise InputError(f"cannot read {source.name}: {exc}", hint="check the file") from exc
    return OpenedSource(stream, counter, head, compressed, gunzip)


#: Formats ``sniff_format`` tells apart (the ``format`` of an ingest summary's source).
FORMAT_JSONL, FORMAT_OTLP_JSON, FORMAT_OTLP_PROTOBUF = "jsonl", "otlp_json", "otlp_protobuf"
_FIRST_KEY = re.compile(rb'\A(?:\xef\xbb\xbf)?\s*\{\s*"(\w+)"\s*:')


def sniff_format(head: bytes) -> str:
    """Which format a source is, from its first decompressed bytes.

    OTLP/JSON: a JSON object whose first key is ``resourceSpans`` (a pretty-printed
    document, or the first of one-per-line documents as the Collector's file exporter
    writes them) unless that first line is a whole event (it has ``event_id``, or its
    ``resourceSpans`` is no list), or a first line that holds a ``"resourceSpans"`` key and
    no ``"event_id"``. OTLP protobuf: bytes that start like a serialized
    ExportTraceServiceRequest (field 1, length-delimited, holding a ResourceSpans field)
    and are not text, with no line that is a JSON object. Anything else is tool-call JSON
    lines (whose own rules then reject what is not): misreading lines as OTLP would
    lose every valid event among them, misreading OTLP as lines only rejects it.
    """
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
    m = _FIRST_KEY.match(head)
    if m:
        if m.group(1) not in (b"resourceSpans", b"resource_spans"):
            return FORMAT_JSONL
        return FORMAT_JSONL if _an_event_line(first) else FORMAT_OTLP_JSON
    if (first.startswith(b"{") and (b'"resourceSpans"' in first or b'"resource_spans"' in first)
            and b'"event_id"' not in first):
        return FORMAT_OTLP_JSON
    if _starts_like_a_trace_request(head) and _looks_binary(head) and not _holds_a_json_line(head):
        return FORMAT_OTLP_PROTOBUF
    return FORMAT_JSONL


def _an_event_line(line: bytes) -> bool:
    """A whole first line that is a tool-call event which happens to start with a
    ``resourceSpans`` key (an unknown field, kept in ``extra``), not an OTLP request."""
    try:
        doc = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False  # a pretty-printed request's "{" line, or cut at the head's end
    if not isinstance(doc, dict):
        return False
    spans = doc.get("resourceSpans", doc.get("resource_spans"))
    return "event_id" in doc or not isinstance(spans, list)


def _starts_like_a_trace_request(head: bytes) -> bool:
    """Field 1 (resource_spans, length-delimited, non-empty) holding a ResourceSpans field
    (resource 0x0a, scope_spans 0x12 or schema_url 0x1a) first. A text file that starts
    with a blank line starts with 0x0a too."""
    if head[:1] != b"\x0a":
        return False
    try:
        length, i = read_varint(head, 1)
    except ValueError:
        return False
    return length > 0 and i < len(head) and head[i] in (0x0A, 0x12, 0x1A)


def read_varint(data: bytes, i: int) -> tuple[int, int]:
    """The protobuf varint at ``data[i:]`` and the offset after it; ValueError when it is
    cut off or longer than 64 bits."""
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def _holds_a_json_line(head: bytes) -> bool:
    """Does a whole line of the head parse as a JSON object (tool-call lines after a
    binary first line)?"""
    for line in head.split(b"\n")[:-1]:
        line = line.strip()
        if line.startswith(b"{") and line.endswith(b"}"):
            try:
                if isinstance(json.loads(line), dict):
                    return True
            except (ValueError, UnicodeDecodeError, RecursionError):
                continue
    return False


def _looks_binary(head: bytes) -> bool:
    if any(b < 0x20 and b not in (9, 10, 13) for b in head[:64]):
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 3  # a character cut at the end of the head is still text
    return False


def total_size(sources: list[Source]) -> int | None:
    """Bytes on disk of all sources, or None when one is a stream (no known size)."""
    total = 0
    for s in sources:
        if s.path is None or s.stream:
            return None
        total += os.path.getsize(s.path)
    return total


def progress_callback(sources: list[Source], progress: Callable[[int, int | None], None] | None
                      ) -> Callable[[int], None]:
    """An ``on_bytes`` callback for ``open_source`` that reports (bytes done, total) to ``progress``."""
    total = total_size(sources)
    done = 0

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    return on_bytes
