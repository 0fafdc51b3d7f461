"""Time windows and durations as operators type them: ``15m``, ``2h``, ``7d`` or RFC 3339."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from toolctl.errors import UsageError

# RFC 3339 date-time: the offset is mandatory; 't'/'z' are allowed lowercase (RFC 3339 §5.6 note).
# (Here, not in toolctl.models, so commands that parse --since do not import pydantic's models.)
RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, *, option: str = "duration") -> timedelta:
    """``5m`` → 5 minutes. Raises UsageError naming the option on anything else."""
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise UsageError(
            f"invalid {option} {text!r}",
            hint="use a positive number and a unit: 30s, 5m, 1h, 1d, 1w",
        )
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (offset required) to an aware UTC datetime (µs precision)."""
    if not RFC3339.match(value):
        raise ValueError("expected RFC 3339 with an offset, e.g. 2026-11-24T06:00:00Z")
    text = value.upper().replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python parses at most 6 fractional digits: truncate (not round) nanoseconds, as DuckDB does.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def parse_time(text: str | None, *, option: str, now: datetime | None = None) -> datetime | None:
    """A point in time as naive UTC: RFC 3339 (offset required) or ``15m`` meaning 15 minutes ago."""
    if text is None:
        return None
    text = text.strip()
    if _DURATION.match(text):
        return (now or utcnow()) - parse_duration(text, option=option)
    try:
        return parse_rfc3339(text).replace(tzinfo=None)
    except ValueError:
        raise UsageError(
            f"invalid {option} {text!r}",
            hint="use RFC 3339 with an offset (2026-11-24T06:00:00Z) or a relative age (15m, 2h, 7d)",
        ) from None


def iso_utc(value: datetime | None) -> str | None:
    """Naive-UTC datetime → ``2026-11-24T06:00:00Z`` (fraction kept when non-zero)."""
    if value is None:
        return None
    text = value.replace(tzinfo=None).isoformat()
    return text + "Z"
