"""Where schema-v1 JSON-line events go: a file (appended) or any text stream."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger("toolctl.instrument")


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

        from toolctl.models import ToolCallEvent

        try:
            ToolCallEvent.model_validate(event)
            line = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (ValidationError, ValueError, TypeError) as exc:
            self.dropped += 1
            log.warning("toolctl.instrument: dropped an invalid event for tool %r: %s",
                        event.get("tool"), str(exc).splitlines()[0])
            return False
        with self._lock:
            if self._stream is None:
                assert self._path is not None
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._stream = self._path.open("a", encoding="utf-8")
                self._owned = True
            self._stream.write(line + "\n")
            self._stream.flush()
            self.written += 1
        return True

    def close(self) -> None:
        with self._lock:
            if self._owned and self._stream is not None:
                self._stream.close()
                self._stream = None
                self._owned = False
