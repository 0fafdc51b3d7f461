"""``toolctl ingest`` while ``toolctl serve`` holds the store: send the lines to it.

The files are read exactly as a local ingest reads them (directories, ``-``, gzip by
magic bytes) and sent to ``POST /v1/tool-calls`` in chunks that end at a newline, each
naming its source path and first line number, so the stored rows (source, line_no,
rejects) are the same as a local ingest would store. Each chunk is one transaction on
the server; re-running after an interruption stores nothing twice.

OTLP trace files (``sniff_format``, as a local ingest decides) go to ``POST
/api/v1/ingest-otlp`` instead: a one-request-per-line OTLP/JSON file in chunks of lines
(line numbers kept), any other OTLP file whole (one request; the collector's
``--max-body-bytes`` bounds it).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Callable

from collector.parsers.jsonl import input_ended
from collector.pipeline import add_source, otlp_source_accounting
from collector.sources import FORMAT_JSONL, expand_paths, open_source, progress_callback, sniff_format
from toolctl.models import IngestSummary
from toolctl.remote import FORWARD_CHUNK_BYTES, RemoteStore, ServerInfo, chunk_lines


def forward_paths(server: ServerInfo, db_path: Path, paths: list[str], *,
                  chunk_bytes: int = FORWARD_CHUNK_BYTES, max_line_bytes: int | None = None,
                  progress: Callable[[int, int | None], None] | None = None) -> IngestSummary:
    """Send every line of ``paths`` to the collector; returns the same summary as ingest.

    Raises InputError for a missing path (before anything is sent) and RemoteError when
    the collector refuses or does not answer (what was acknowledged before is stored).
    """
    sources = expand_paths(paths)
    on_bytes = progress_callback(sources, progress)

    summary = IngestSummary()
    with RemoteStore(server, db_path) as remote:
        for source in sources:
            opened = open_source(source, on_bytes)
            fmt = sniff_format(opened.head)
            if fmt != FORMAT_JSONL:
                add_source(summary, _forward_otlp(remote, source, opened, fmt, chunk_bytes))
                summary.sources[-1]["forwarded_to"] = server.url
                continue
            counts = {"lines": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
            redacted, next_line = 0, 1

            def send(data: bytes, first_line: int, input_error: str | None = None) -> None:
                nonlocal redacted
                res = remote.send_lines(data, source=source.name, first_line=first_line,
                                        kind=source.kind, max_line_bytes=max_line_bytes,
                                        input_error=input_error)
                for key in counts:
                    counts[key] += res[key]
                redacted += res.get("redacted", 0)

            try:
                for first_line, data in chunk_lines(opened.stream, chunk_bytes):
                    send(data, first_line)
                    next_line = first_line + data.count(b"\n") + (not data.endswith(b"\n"))
            except (EOFError, OSError, zlib.error) as exc:
                broken: Exception | None = exc
            else:
                broken = opened.error
            finally:
                opened.close()
            if broken is not None:  # as a local ingest: what came before is stored, the break is a reject
                send(b"", next_line, input_ended(next_line - 1, broken))
            remote.record_source(source=source.name, sha256=opened.counter.sha256.hexdigest(),
                                 nbytes=opened.counter.nbytes, **counts)
            add_source(summary, {"source": source.name, "format": "jsonl",
                                 "bytes": opened.counter.nbytes,
                                 "sha256": opened.counter.sha256.hexdigest(),
                                 "compressed": opened.compressed, "forwarded_to": server.url,
                                 **counts, "redacted": redacted})
    return summary


def _forward_otlp(remote: RemoteStore, source, opened, fmt: str, chunk_bytes: int) -> dict:
    """Send one OTLP file to the collector; returns its summary entry (as a local ingest's)."""
    import io

    from collector.otlp import one_request_per_line, read_all

    try:
        data, broken = read_all(opened.stream, lambda: opened.error)
    finally:
        opened.close()
    totals = {"spans": 0, "duplicates": 0, "tool_calls": 0, "rejected": 0}

    def send(part: bytes, first_line: int | None, last: bool) -> None:
        res = remote.send_otlp_file(part, fmt=fmt, source=source.name, kind=source.kind,
                                    first_line=first_line, broken=broken if last else None)
        for key in totals:
            totals[key] += res[key]

    if fmt == "otlp_json" and one_request_per_line(data):
        parts = list(chunk_lines(io.BytesIO(data), chunk_bytes)) or [(1, b"")]
        for i, (first_line, part) in enumerate(parts):
            send(part, first_line, i == len(parts) - 1)
    else:
        send(data, None, True)
    counts, per = otlp_source_accounting(source, opened, fmt, **totals)
    remote.record_source(source=source.name, sha256=per["sha256"], nbytes=per["bytes"], **counts)
    return per
