"""Where schema-v1 JSON-line events go: a file (appended) or any text stream."""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger("toolctl.instrument")

#: A UTF-16 surrogate on its own: Python strings can hold one (os.listdir's undecodable
#: bytes, a truncated emoji), UTF-8 cannot, and `toolctl ingest` refuses its escape.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _line(event: dict[str, Any]) -> tuple[str, int]:
    """The event as one JSON line of valid UTF-8 (an unpaired surrogate becomes U+FFFD), and
    its size in bytes."""
    line = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return line, len(line.encode("utf-8"))
    except UnicodeEncodeError:
        line = _LONE_SURROGATE.sub("\ufffd", line)
        return line, len(line.encode("utf-8"))


class JsonLineSink:
    """Writes one schema-v1 event per line, validated by ``toolctl.models.ToolCallEvent``.

    ``target`` is a path (opened for append on first write, so several processes may share a
    file line-atomically as long as each line is below the OS pipe/append atomicity limit)
    or an open text stream (not closed by ``close()``). Thread-safe. Like an OpenTelemetry
    exporter it never breaks the code it observes: an event that does not validate (a bug)
    is logged and counted in ``dropped`` instead of raising.
    """

    def __init__(self, target: str | Path | TextIO):
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._stream: TextIO | None = None
        self._owned = False
        if isinstance(target, (str, Path)):
            self._path = Path(target)
        else:
            self._stream = target
        self.written = 0
        self.dropped = 0

    def write(self, event: dict[str, Any]) -> bool:
        """Validate and append one event; False when it was dropped."""
        from pydantic import ValidationError

        from toolctl.models import DEFAULT_MAX_LINE_BYTES, ToolCallEvent

        try:
            ToolCallEvent.model_validate(event)
            line, nbytes = _line(event)
            if nbytes > DEFAULT_MAX_LINE_BYTES:
                # `toolctl ingest` refuses a line over 1 MiB: keep the call, not its payloads.
                event = {k: v for k, v in event.items() if k not in ("args", "data")}
                line, nbytes = _line(event)
                log.warning("toolctl.instrument: tool %r: recorded without its arguments/result, "
                            "which would make the event line longer than %d bytes",
                            event.get("tool"), DEFAULT_MAX_LINE_BYTES)
                if nbytes > DEFAULT_MAX_LINE_BYTES:
                    raise ValueError(f"the event line is longer than {DEFAULT_MAX_LINE_BYTES} bytes")
        except (ValidationError, ValueError, TypeError, RecursionError) as exc:
            self.dropped += 1
            log.warning("toolctl.instrument: dropped an invalid event for tool %r: %s",
                        event.get("tool"), str(exc).splitlines()[0])
            return False
        with self._lock:
            try:
                if self._stream is None:
                    assert self._path is not None
                    self._path.parent.mkdir(parents=True, exist_ok=True)
                    self._stream = self._path.open("a", encoding="utf-8")
                    self._owned = True
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError) as exc:  # a full disk, a closed stream: never the tool's problem
                self.dropped += 1
                log.warning("toolctl.instrument: could not write an event for tool %r: %s",
                            event.get("tool"), exc)
                return False
            self.written += 1
        return True

    def close(self) -> None:
        with self._lock:
            if self._owned and self._stream is not None:
                self._stream.close()
                self._stream = None
                self._owned = False
