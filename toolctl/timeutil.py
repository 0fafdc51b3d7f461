"""Time windows and durations as operators type them: ``15m``, ``2h``, ``7d`` or RFC 3339."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from toolctl.errors import UsageError

# RFC 3339 date-time: the offset is mandatory; 't'/'z' are allowed lowercase (RFC 3339 §5.6 note).
# Hours 00-23 (24:00:00 is ISO 8601's end of day, not RFC 3339), no leap second.
# (Here, not in toolctl.models, so commands that parse --since do not import pydantic's models.)
# parse_batch.sql checks the same pattern (tests/test_models_parity.py).
RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)
#: What a time must fall in once it is UTC: the years every layer can hold and print.
OUT_OF_RANGE = "ts out of range: it must fall within the years 0001-9999 in UTC"

_PAST_MICRO = re.compile(r"(\.\d{6})(\d+)")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, *, option: str = "duration") -> timedelta:
    """``5m`` → 5 minutes. Raises UsageError naming the option on anything else."""
    m = _DURATION.match(text.strip())
    try:
        if m and int(m.group(1)) > 0:
            return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    except OverflowError:  # beyond timedelta's 999,999,999 days
        raise UsageError(f"invalid {option} {text!r}: too long",
                         hint="durations go up to 999,999,999 days") from None
    raise UsageError(
        f"invalid {option} {text!r}",
        hint="use a positive number and a unit: 30s, 5m, 1h, 30d, 2w",
    )


def before(when: datetime, delta: timedelta, *, option: str, text: str | None = None) -> datetime:
    """``when - delta``: the start of a window that long, or an age's time. UsageError naming
    ``option`` when that falls before the year 1 (datetime cannot hold it)."""
    try:
        return when - delta
    except OverflowError:
        given = f" {text!r}" if text is not None else ""
        raise UsageError(f"invalid {option}{given}: the window would start before the year 1",
                         hint="use a shorter age or a later time") from None


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def parse_rfc3339(value: str, *, round_up: bool = False) -> datetime:
    """Parse an RFC 3339 timestamp (offset required) to an aware UTC datetime (µs precision).

    Digits past the microsecond are truncated, as DuckDB does for stored times; with
    ``round_up`` (a window's bound) a time between two microseconds becomes the later one,
    so that ``ts >= since`` and ``ts < until`` hold exactly for µs timestamps.
    Raises ValueError (OUT_OF_RANGE) for a time outside the years 0001-9999 in UTC.
    """
    if not RFC3339.match(value):
        raise ValueError("expected RFC 3339 with an offset, e.g. 2026-11-24T06:00:00Z")
    text = value.upper().replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python parses at most 6 fractional digits: the rest is cut (and remembered for round_up).
    m = _PAST_MICRO.search(text)
    past_micro = m is not None and m.group(2).strip("0") != ""
    if m is not None:
        text = text[:m.start(2)] + text[m.end(2):]
    try:
        parsed = datetime.fromisoformat(text).astimezone(timezone.utc)
        if round_up and past_micro:
            parsed += timedelta(microseconds=1)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise ValueError(OUT_OF_RANGE) from None
    return parsed


def parse_time(text: str | None, *, option: str, now: datetime | None = None) -> datetime | None:
    """A point in time as naive UTC: RFC 3339 (offset required) or ``15m`` meaning 15 minutes ago."""
    if text is None:
        return None
    text = text.strip()
    if _DURATION.match(text):
        return before(now or utcnow(), parse_duration(text, option=option), option=option, text=text)
    try:
        return parse_rfc3339(text, round_up=True).replace(tzinfo=None)
    except ValueError as exc:
        detail = f": {exc}" if str(exc) == OUT_OF_RANGE else ""
        raise UsageError(
            f"invalid {option} {text!r}{detail}",
            hint="use RFC 3339 with an offset (2026-11-24T06:00:00Z) or a relative age (15m, 2h, 7d)",
        ) from None


def iso_utc(value: datetime | None) -> str | None:
    """Naive-UTC datetime → ``2026-11-24T06:00:00Z`` (fraction kept when non-zero)."""
    if value is None:
        return None
    text = value.replace(tzinfo=None).isoformat()
    return text + "Z"
