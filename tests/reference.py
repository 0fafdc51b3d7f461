"""Independent reference implementation of toolctl's line validation and figures.

Written from the written contract only (event schema v1 + figure definitions);
it deliberately does NOT import or mirror anything under ``toolctl/`` or
``collector/`` so that the known-answer tests compare the real CLI against an
independently computed answer.  Pure Python + numpy.

Public API
----------
parse_file(path) -> (events, rejects)
    events:  list of normalised event dicts, in file order (no dedupe here)
    rejects: list of (line_no, reason_category); line_no is the 1-based physical
             line number (blank lines counted)
RefStore().ingest(paths) -> summary dict shaped like ``toolctl ingest --format json``
stats(events, by=[...], every=None, since=None, until=None, filters={}) -> rows
make_messy_corpus(directory, seed) -> list of written paths (seeded generator)
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import os
import random
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

MAX_LINE_BYTES = 1048576  # 1 MiB, newline excluded

REQUIRED = ("event_id", "ts", "tool", "status", "latency_ms")
OPTIONAL_STR = (
    "trace_id",
    "span_id",
    "call_id",
    "session_id",
    "tenant",
    "user",
    "service",
    "version",
    "idempotency_key",
    "error_code",
    "message",
)
STATUSES = ("ok", "error")
STAGES = ("validate", "authorize", "execute")
DIMENSIONS = ("tool", "tenant", "version", "service", "user", "error_code", "status")
FILTERS = ("tool", "tenant", "version", "service", "status")
AUTH_CODES = ("UNAUTHENTICATED", "PERMISSION_DENIED")
AUTH_HTTP = (401, 403)
EVERY = {"5m": 300, "1h": 3600, "1d": 86400}

# Reject reason categories.  Field-specific ones are "<kind>:<field>".
INVALID_UTF8 = "invalid_utf8"
TOO_LONG = "line_too_long"
INVALID_JSON = "invalid_json"
NOT_OBJECT = "not_object"
# "missing:<f>", "wrong_type:<f>", "bad_value:<f>" (the latter covers: unparseable
# ts, negative latency_ms, status/stage outside set, confidence outside [0,1],
# attempt < 1, schema_version != 1, empty required string)

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)

_TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$",
    re.ASCII,
)  # RFC 3339 section 5.6 grammar ("T"/"Z" may be lower case); the space separator is not accepted


class _Reject(Exception):
    def __init__(self, category: str):
        super().__init__(category)
        self.category = category


# --------------------------------------------------------------------------- #
# timestamps
# --------------------------------------------------------------------------- #
def parse_ts_us(text: str) -> int | None:
    """RFC 3339 timestamp with mandatory offset -> integer microseconds since the
    UTC epoch, or None when unparseable.  Fractions beyond 6 digits truncate."""
    if not isinstance(text, str):
        return None
    m = _TS_RE.match(text)
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, off = m.groups()
    try:
        base = _dt.datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss),
                            tzinfo=_dt.timezone.utc)
    except ValueError:
        return None
    if off in ("Z", "z"):
        off_s = 0
    else:
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        off_s = (oh * 3600 + om * 60) * (1 if off[0] == "+" else -1)
    delta = base - _EPOCH
    us = (delta.days * 86400 + delta.seconds) * 1_000_000
    if frac:
        us += int((frac + "000000")[:6])
    return us - off_s * 1_000_000


def us_to_iso(us: int) -> str:
    """Microseconds since epoch -> 'YYYY-MM-DDTHH:MM:SSZ' (+ fraction if any)."""
    secs, rem = divmod(us, 1_000_000)
    t = _EPOCH + _dt.timedelta(seconds=secs)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if rem:
        s += "." + f"{rem:06d}".rstrip("0")
    return s + "Z"


def render_ts(us: int, offset_minutes: int, frac_digits: int | None = None,
              zulu: bool = True) -> str:
    """Render UTC micros as RFC 3339 local time with the given offset (generator).
    Offset 0 renders as 'Z' when ``zulu`` else '+00:00'."""
    local = _EPOCH + _dt.timedelta(microseconds=us + offset_minutes * 60_000_000)
    s = local.strftime("%Y-%m-%dT%H:%M:%S")
    micro = local.microsecond
    if frac_digits is None:
        frac_digits = 0 if micro == 0 else (3 if micro % 1000 == 0 else 6)
    if frac_digits:
        digits = f"{micro:06d}"
        assert digits[frac_digits:].strip("0") == "", "fraction would lose precision"
        s += "." + (digits + "000")[:frac_digits]
    if offset_minutes == 0 and zulu:
        return s + "Z"
    sign = "+" if offset_minutes >= 0 else "-"
    a = abs(offset_minutes)
    return f"{s}{sign}{a // 60:02d}:{a % 60:02d}"


# --------------------------------------------------------------------------- #
# line validation
# --------------------------------------------------------------------------- #
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _reject_constant(name: str):
    raise ValueError(f"non-JSON constant {name}")


def validate_line(raw: bytes) -> dict:
    """Validate one physical line (newline and trailing CR already removed).
    Returns the normalised event or raises _Reject(category)."""
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise _Reject(INVALID_UTF8)
    if len(raw) > MAX_LINE_BYTES:
        raise _Reject(TOO_LONG)
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise _Reject(INVALID_JSON)
    if not isinstance(obj, dict):
        raise _Reject(NOT_OBJECT)

    for f in REQUIRED:
        if obj.get(f) is None:
            raise _Reject(f"missing:{f}")
    for f in ("event_id", "ts", "tool", "status"):
        if not isinstance(obj[f], str):
            raise _Reject(f"wrong_type:{f}")
    if not _is_number(obj["latency_ms"]):
        raise _Reject("wrong_type:latency_ms")
    if obj["event_id"] == "":
        raise _Reject("bad_value:event_id")
    if obj["tool"] == "":
        raise _Reject("bad_value:tool")
    ts_us = parse_ts_us(obj["ts"])
    if ts_us is None:
        raise _Reject("bad_value:ts")
    if obj["latency_ms"] < 0:
        raise _Reject("bad_value:latency_ms")
    if obj["status"] not in STATUSES:
        raise _Reject("bad_value:status")

    def opt(name):
        return obj.get(name)

    for f in OPTIONAL_STR:
        v = opt(f)
        if v is not None and not isinstance(v, str):
            raise _Reject(f"wrong_type:{f}")
    v = opt("schema_version")
    if v is not None:
        if not _is_int(v):
            raise _Reject("wrong_type:schema_version")
        if v != 1:
            raise _Reject("bad_value:schema_version")
    v = opt("stage")
    if v is not None:
        if not isinstance(v, str):
            raise _Reject("wrong_type:stage")
        if v not in STAGES:
            raise _Reject("bad_value:stage")
    v = opt("attempt")
    if v is not None:
        if not _is_int(v):
            raise _Reject("wrong_type:attempt")
        if v < 1:
            raise _Reject("bad_value:attempt")
    v = opt("timeout_ms")
    if v is not None:
        if not _is_number(v):
            raise _Reject("wrong_type:timeout_ms")
        if v < 0:  # schema says number >= 0 (the generator never produces this)
            raise _Reject("bad_value:timeout_ms")
    v = opt("retryable")
    if v is not None and not isinstance(v, bool):
        raise _Reject("wrong_type:retryable")
    v = opt("http_status")
    if v is not None and not _is_int(v):
        raise _Reject("wrong_type:http_status")
    v = opt("confidence")
    if v is not None:
        if not _is_number(v):
            raise _Reject("wrong_type:confidence")
        if not (0 <= v <= 1):
            raise _Reject("bad_value:confidence")
    for f in ("args", "data"):
        v = opt(f)
        if v is not None and not isinstance(v, dict):
            raise _Reject(f"wrong_type:{f}")

    ev = {
        "event_id": obj["event_id"],
        "ts_us": ts_us,
        "tool": obj["tool"],
        "status": obj["status"],
        "latency_ms": obj["latency_ms"],
        "attempt": obj.get("attempt") if obj.get("attempt") is not None else 1,
        "http_status": obj.get("http_status"),
    }
    for f in OPTIONAL_STR:
        ev[f] = obj.get(f)
    return ev


def read_bytes(path: str | os.PathLike) -> bytes:
    p = str(path)
    if p.endswith(".gz"):
        with gzip.open(p, "rb") as fh:
            return fh.read()
    with open(p, "rb") as fh:
        return fh.read()


def iter_physical_lines(data: bytes) -> Iterable[tuple[int, bytes]]:
    """Yield (1-based line_no, line bytes without LF / CRLF).  A final segment
    after the last newline is a line only if non-empty."""
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    for i, line in enumerate(parts, start=1):
        if line.endswith(b"\r"):
            line = line[:-1]
        yield i, line


def parse_file(path) -> tuple[list[dict], list[tuple[int, str]]]:
    """Parse one .jsonl / .jsonl.gz file.  Returns (events in file order, rejects)."""
    events: list[dict] = []
    rejects: list[tuple[int, str]] = []
    for line_no, line in iter_physical_lines(read_bytes(path)):
        if line.strip(b" \t\r\n\x0b\x0c") == b"":
            continue
        try:
            ev = validate_line(line)
        except _Reject as r:
            rejects.append((line_no, r.category))
            continue
        ev["_line_no"] = line_no
        events.append(ev)
    return events, rejects


def count_nonblank_lines(path) -> int:
    return sum(1 for _, ln in iter_physical_lines(read_bytes(path))
               if ln.strip(b" \t\r\n\x0b\x0c") != b"")


def expand_paths(paths) -> list[str]:
    out: list[str] = []
    for p in paths:
        p = str(p)
        if os.path.isdir(p):
            # recursive; processing order = sorted full path string
            names = sorted(
                os.path.join(root, n) for root, _dirs, files in os.walk(p) for n in files
                if n.endswith(".jsonl") or n.endswith(".jsonl.gz")
            )
            out.extend(names)
        else:
            out.append(p)
    return out


class RefStore:
    """Reference for the store: dedupe by event_id (first wins), reject log."""

    def __init__(self):
        self.events: list[dict] = []
        self._ids: set[str] = set()
        self.rejects: list[dict] = []  # {"source","name","line_no","category"}
        self._reject_keys: set[tuple[str, int]] = set()

    def ingest(self, paths) -> dict:
        files = expand_paths(paths)
        summary = {"files": len(files), "lines": 0, "accepted": 0, "duplicates": 0,
                   "rejected": 0}
        for f in files:
            events, rejects = parse_file(f)
            summary["lines"] += count_nonblank_lines(f)
            summary["rejected"] += len(rejects)
            for line_no, cat in rejects:
                key = (os.path.abspath(f), line_no)
                if key not in self._reject_keys:
                    self._reject_keys.add(key)
                    self.rejects.append({"source": f, "name": os.path.realpath(f),
                                         "line_no": line_no, "category": cat})
            for ev in events:
                if ev["event_id"] in self._ids:
                    summary["duplicates"] += 1
                    continue
                self._ids.add(ev["event_id"])
                ev = dict(ev, _source=os.path.relpath(f, os.path.dirname(os.path.dirname(os.path.abspath(f)))))
                self.events.append(ev)
                summary["accepted"] += 1
        return summary


# --------------------------------------------------------------------------- #
# figures
# --------------------------------------------------------------------------- #
def _bound_us(t) -> int | None:
    if t is None:
        return None
    if isinstance(t, int):
        return t
    us = parse_ts_us(t)
    if us is None:
        raise ValueError(f"bad window bound {t!r}")
    return us


def is_auth_failure(ev: dict) -> bool:
    return ev.get("http_status") in AUTH_HTTP or ev.get("error_code") in AUTH_CODES


def figures(group: list[dict]) -> dict:
    """The figure definitions for one group of stored attempts."""
    attempts = len(group)
    finals: dict[tuple, dict] = {}
    for ev in group:
        key = ("call", ev["call_id"]) if ev.get("call_id") is not None else ("event", ev["event_id"])
        rank = (ev.get("attempt") or 1, ev["ts_us"], ev["event_id"])
        cur = finals.get(key)
        if cur is None or rank > cur[0]:
            finals[key] = (rank, ev)
    calls = len(finals)
    errors = sum(1 for _, ev in finals.values() if ev["status"] == "error")
    lat = np.array([float(ev["latency_ms"]) for ev in group], dtype=float)
    p50, p95, p99 = (float(x) for x in np.quantile(lat, [0.5, 0.95, 0.99]))
    return {
        "attempts": attempts,
        "calls": calls,
        "retries": attempts - calls,
        "errors": errors,
        "error_rate": errors / calls,
        "auth_failures": sum(1 for ev in group if is_auth_failure(ev)),
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
    }


def group_events(events, by=(), every=None, since=None, until=None, filters=None):
    """Apply window + filters and group.  Returns {key: [events]} where key is
    (bucket_us?,) + dimension values in ``by`` order."""
    by = list(by or [])
    filters = dict(filters or {})
    for d in by:
        if d not in DIMENSIONS:
            raise ValueError(f"unknown dimension {d!r}")
    for k in filters:
        if k not in FILTERS:
            raise ValueError(f"unknown filter {k!r}")
    step_us = None if every is None else EVERY[every] * 1_000_000
    lo, hi = _bound_us(since), _bound_us(until)
    groups: dict[tuple, list[dict]] = {}
    for ev in events:
        if lo is not None and ev["ts_us"] < lo:
            continue
        if hi is not None and ev["ts_us"] >= hi:  # half-open [since, until)
            continue
        if any(ev.get(k) != v for k, v in filters.items()):
            continue
        key = tuple(ev.get(d) for d in by)
        if step_us is not None:
            key = ((ev["ts_us"] // step_us) * step_us,) + key
        groups.setdefault(key, []).append(ev)
    return groups


def _sort_key(key):
    return tuple((v is None, v if v is not None else "") for v in key)


def stats(events, by=(), every=None, since=None, until=None, filters=None) -> list[dict]:
    """Rows like ``toolctl stats --format json`` (ordered by group key, nulls last).
    No matching events -> []."""
    by = list(by or [])
    groups = group_events(events, by, every, since, until, filters)
    rows = []
    for key in sorted(groups, key=_sort_key):
        row: dict[str, Any] = {}
        vals = list(key)
        if every is not None:
            row["bucket"] = us_to_iso(vals.pop(0))
        for d, v in zip(by, vals):
            row[d] = v
        row.update(figures(groups[key]))
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- #
# seeded messy-corpus generator
# --------------------------------------------------------------------------- #
TOOLS = ["search", "検索", "café_lookup", "weather🌦", "db.query", "Ünïcødé-tool", "http_get"]
TENANTS = ["acme", "globex", "initech", "ümlaut-corp", None]
VERSIONS = ["v1", "v2", "v3-beta", None]
SERVICES = ["agent-gw", "planner", "retriever", None]
USERS = ["alice", "bob", "chloé", "大樹", None]
OFFSETS_MIN = [0, 0, 0, 120, -300, 330, 345, -210, 840, -720, 60, -60]
ERR_CODES = ["TIMEOUT", "UNAUTHENTICATED", "PERMISSION_DENIED", "INTERNAL", "RATE_LIMITED",
             "unauthenticated", None]

# window used by the tests; the corpus spans 2026-11-24T21:00Z .. 2026-11-25T03:00Z
CORPUS_START_US = parse_ts_us("2026-11-24T21:00:00Z")
CORPUS_SPAN_US = 6 * 3600 * 1_000_000


class _Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)
        self.n = 0
        self.ncall = 0

    def eid(self) -> str:
        self.n += 1
        return f"evt-{self.n}"

    def cid(self) -> str:
        self.ncall += 1
        return f"call-{self.ncall:05d}"

    def latency(self):
        r = self.r
        x = r.random()
        if x < 0.05:
            return 0
        if x < 0.35:
            return r.randint(1, 3000)
        return round(r.lognormvariate(4.5, 1.1), 3)

    def put_opt(self, d: dict, key: str, value):
        """Optional field: absent, explicit null, or value (null == absent)."""
        if value is None:
            if self.r.random() < 0.5:
                d[key] = None
            return
        d[key] = value

    def base_ts(self) -> int:
        r = self.r
        if r.random() < 0.15:
            # land a call right before a 5m / 1h boundary so retries straddle it
            step = 300 if r.random() < 0.7 else 3600
            k = r.randrange(1, CORPUS_SPAN_US // (step * 1_000_000))
            return CORPUS_START_US + k * step * 1_000_000 - r.randint(0, 400) * 1000
        ms = r.randrange(0, CORPUS_SPAN_US // 1000 - 120_000)
        us = CORPUS_START_US + ms * 1000
        if r.random() < 0.1:
            us += r.randint(1, 999)  # microsecond precision
        if r.random() < 0.1:
            us -= us % 1_000_000  # whole second
        return us

    def call(self) -> list[dict]:
        """One logical call: 1..4 attempts, sometimes ties / version changes."""
        r = self.r
        tool = r.choice(TOOLS)
        tenant = r.choice(TENANTS)
        user = r.choice(USERS)
        service = r.choice(SERVICES)
        version = r.choice(VERSIONS)
        has_cid = r.random() < 0.8
        cid = self.cid() if has_cid else None
        n = r.choices([1, 2, 3, 4], weights=[60, 25, 10, 5])[0] if has_cid else 1
        ts = self.base_ts()
        out = []
        attempt = 1
        for i in range(n):
            last = i == n - 1
            status = ("ok" if r.random() < 0.7 else "error") if last else \
                ("error" if r.random() < 0.85 else "ok")
            ev: dict[str, Any] = {"event_id": self.eid(), "ts": ts, "tool": tool,
                                  "status": status, "latency_ms": self.latency()}
            # attempt 1 is sometimes implicit even in multi-attempt calls, so an absent
            # attempt (default 1) can tie with an explicit attempt=1 hedge
            explicit_attempt = (n > 1 and attempt > 1) or r.random() < 0.5
            if explicit_attempt:
                ev["attempt"] = attempt
            if cid is not None:
                ev["call_id"] = cid
            self.put_opt(ev, "tenant", tenant)
            self.put_opt(ev, "user", user)
            self.put_opt(ev, "service", service)
            self.put_opt(ev, "version", version)
            if status == "error":
                code = r.choice(ERR_CODES)
                self.put_opt(ev, "error_code", code)
                hs = r.choice([401, 403, 500, 429, 503, None])
                self.put_opt(ev, "http_status", hs)
                if r.random() < 0.3:
                    ev["retryable"] = r.random() < 0.5
                    ev["message"] = r.choice(["timeout after 30s", "déni d'accès", "⚠ upstream"])
            else:
                if r.random() < 0.5:
                    ev["http_status"] = 200
                if r.random() < 0.02:
                    ev["http_status"] = 403  # odd but possible: ok + 403 counts as auth failure
            if r.random() < 0.3:
                ev["stage"] = r.choice(STAGES)
            if r.random() < 0.2:
                ev["schema_version"] = 1
            if r.random() < 0.2:
                ev["confidence"] = r.choice([0, 1, 0.5, 0.999, round(r.random(), 4)])
            if r.random() < 0.2:
                ev["args"] = {"q": r.choice(["weather", "日本", "x" * 5]), "n": r.randint(1, 9)}
            if r.random() < 0.1:
                ev["timeout_ms"] = r.choice([0, 1500, 30000.5])
            if r.random() < 0.1:
                ev["x_unknown_field"] = {"kept": True}
            if r.random() < 0.2:
                ev["trace_id"] = f"{r.getrandbits(128):032x}"
                ev["span_id"] = f"{r.getrandbits(64):016x}"
            out.append(ev)
            # next attempt
            tie = r.random()
            if tie < 0.08 and not last:
                # hedged duplicate attempt number, same ts -> event_id breaks the tie
                pass
            elif tie < 0.16 and not last:
                # same attempt number, later ts -> ts breaks the tie
                ts += r.randint(1, 900) * 1000
            elif tie < 0.24 and not last:
                # clock skew: the next (higher) attempt carries an EARLIER ts, so
                # "highest attempt" and "latest ts" pick different finals
                attempt += 1
                ts -= r.randint(1, 5_000) * 1000
            else:
                attempt += 1
                ts += r.randint(5, 90_000) * 1000
            if r.random() < 0.1:
                version = r.choice(VERSIONS)  # deploy between retries
        if len(out) > 1 and r.random() < 0.4:
            # decorrelate event_id order from attempt/ts order (ids are unpadded, so
            # string order differs from numeric order: "evt-99" > "evt-100")
            ids = [e["event_id"] for e in out]
            r.shuffle(ids)
            for e, i in zip(out, ids):
                e["event_id"] = i
        return out

    def render(self, ev: dict, ensure_ascii=None) -> bytes:
        d = dict(ev)
        if isinstance(d["ts"], int):
            d["ts"] = render_ts(d["ts"], self.r.choice(OFFSETS_MIN),
                                zulu=self.r.random() < 0.6)
        if ensure_ascii is None:
            ensure_ascii = self.r.random() < 0.2
        keys = list(d)
        if self.r.random() < 0.3:
            self.r.shuffle(keys)
        d = {k: d[k] for k in keys}
        s = json.dumps(d, ensure_ascii=ensure_ascii,
                       separators=(",", ":") if self.r.random() < 0.5 else (", ", ": "))
        return s.encode("utf-8")


def _good_template(g: _Gen, **over) -> dict:
    ev = {"event_id": g.eid(), "ts": g.base_ts(), "tool": g.r.choice(TOOLS), "status": "ok",
          "latency_ms": 12.5, "tenant": "acme"}
    ev.update(over)
    return ev


def _bad_lines(g: _Gen) -> list[bytes]:
    """Each entry violates exactly one rule."""
    def enc(d):
        return json.dumps(d, ensure_ascii=False).encode("utf-8")

    def mk(**over):
        d = _good_template(g)
        d["ts"] = render_ts(d["ts"], 0)  # overrides below may replace it with a bad ts
        d.update(over)
        return d

    def without(field):
        d = mk()
        d.pop(field)
        return enc(d)

    out: list[bytes] = []
    # invalid UTF-8
    for bad in (b"\xff", b"caf\xc3", b"\xed\xa0\x80", b"\xc0\xaf"):
        out.append(enc(mk(message="PLACEHOLDER")).replace(b"PLACEHOLDER", bad))
    # invalid JSON
    full = enc(mk())
    out.append(full[: len(full) // 2])                          # truncated
    out.append(full[:-1] + b",}")                                # trailing comma
    nan_line = enc(mk(latency_ms=1)).replace(b'"latency_ms": 1', b'"latency_ms": NaN')
    assert b"NaN" in nan_line
    out.append(nan_line)
    out.append(b"{'event_id': 'x', 'ts': '2026-11-24T21:00:00Z'}")  # single quotes
    out.append(b"not json at all")
    # not an object
    out += [b"[1, 2, 3]", b'"just a string"', b"42", b"null"]
    # required missing / null
    for f in REQUIRED:
        out.append(without(f))
        out.append(enc(mk(**{f: None})))
    # wrong types
    for f, v in [("latency_ms", "12"), ("latency_ms", True), ("event_id", 123),
                 ("tool", ["x"]), ("status", True), ("ts", 1795467600),
                 ("tenant", 5), ("attempt", "2"), ("attempt", True), ("http_status", "401"),
                 ("retryable", "yes"), ("confidence", "0.5"), ("args", [1]), ("data", "x"),
                 ("schema_version", "1"), ("call_id", 7), ("timeout_ms", "100"),
                 ("version", 2.0), ("stage", 3), ("user", {"id": 1})]:
        out.append(enc(mk(**{f: v})))
    # bad values
    for f, v in [("ts", "2026-11-24T21:30:00"), ("ts", "2026-11-24"),
                 ("ts", "2026-02-30T00:00:00Z"), ("ts", "yesterday"),
                 ("ts", "2026-11-24T25:00:00Z"),
                 ("latency_ms", -1), ("latency_ms", -0.001),
                 ("status", "OK"), ("status", "failed"), ("status", ""),
                 ("confidence", 1.5), ("confidence", -0.1),
                 ("attempt", 0), ("attempt", -1),
                 ("stage", "run"), ("stage", "Execute"),
                 ("schema_version", 2), ("schema_version", 0),
                 ("event_id", ""), ("tool", "")]:
        out.append(enc(mk(**{f: v})))
    return out


def _sized_line(g: _Gen, size: int) -> bytes:
    d = _good_template(g, message="")
    d["ts"] = render_ts(d["ts"], 0)
    base = len(json.dumps(d, ensure_ascii=False).encode("utf-8"))
    d["message"] = "m" * (size - base)
    b = json.dumps(d, ensure_ascii=False).encode("utf-8")
    assert len(b) == size
    return b


def make_messy_corpus(directory, seed: int = 20261124, n_calls: int = 900) -> list[str]:
    """Write a seeded messy corpus into ``directory``; returns the file paths.

    Files (sorted order = processing order):
      a_main.jsonl      LF, blank lines, duplicates (exact + conflicting), rejects
      b_crlf.jsonl      CRLF endings incl. blank CRLF lines
      c_batch.jsonl.gz  gzip; conflicting duplicates of a_main ids (must lose)
      d_tail.jsonl      1 MiB boundary lines; no trailing newline; truncated last line
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    g = _Gen(seed)
    r = g.r
    calls = [g.call() for _ in range(n_calls)]
    # spread the attempts of calls over files (retries of one call may land in different files)
    buckets: dict[str, list[bytes]] = {"a": [], "b": [], "c": [], "d": []}
    rendered: list[tuple[dict, bytes]] = []
    for call in calls:
        for ev in call:
            line = g.render(ev)
            rendered.append((ev, line))
            buckets[r.choices("abcd", weights=[50, 25, 20, 5])[0]].append(line)

    # duplicates: exact repeats and conflicting content with a reused event_id
    sample = r.sample(rendered, min(120, len(rendered)))
    n_exact = len(sample) // 3
    for ev, line in sample[:n_exact]:
        buckets[r.choice("abcd")].append(line)  # exact repeat (maybe before original!)
    for ev, _ in sample[n_exact:]:
        clone = dict(ev, tool=r.choice(TOOLS), status=r.choice(STATUSES),
                     latency_ms=99999.0, tenant="DUPLICATE-TENANT")
        buckets[r.choice("abcd")].append(g.render(clone))

    # a rejected line whose id is later used by a valid line (valid one must be stored),
    # and an invalid line carrying an already-stored id (must count as rejected)
    resurrect = _good_template(g, tenant="resurrected")
    bad_first = dict(resurrect, status="broken")
    buckets["a"].append(g.render(bad_first))
    buckets["b"].append(g.render(resurrect))
    some_id = rendered[0][0]["event_id"]
    buckets["c"].append(g.render(dict(rendered[0][0], event_id=some_id, latency_ms=-5)))

    # edge-but-valid lines
    edge = [
        g.render(_good_template(g, tool="café_lookup"), ensure_ascii=True),  # \u00e9 escaped
        b"   " + g.render(_good_template(g)) + b"\t ",                        # padded JSON
        g.render(_good_template(g, latency_ms=0, confidence=0, timeout_ms=0)),
        g.render(_good_template(g, latency_ms=1e3, confidence=1, stage="execute",
                                schema_version=1, data={"nested": {"x": [1, 2, {}]}})),
        g.render(_good_template(g, tenant=None, version=None, call_id=None, attempt=None)),
        g.render(_good_template(g, message="line\nbreak \u2028 \"quoted\" \\ tab\t")),
    ]
    for b in edge:
        buckets[r.choice("abc")].append(b)

    # hand-made tricky calls, one set per tool (finals hand-checkable)
    t0 = CORPUS_START_US + 3 * 3600 * 1_000_000 + 120_000_000  # 00:02Z
    for k, tool in enumerate(TOOLS):
        base = t0 + k * 7_000_000
        c = [g.cid() for _ in range(5)]
        tricky = [
            # 1. null attempt (== 1) with later ts beats explicit attempt 1 -> error
            dict(event_id=f"trk-{k}-a1", call_id=c[0], ts=base + 2000, status="error", attempt=None),
            dict(event_id=f"trk-{k}-a2", call_id=c[0], ts=base, status="ok", attempt=1),
            # 2. attempt 2 with EARLIER ts beats absent attempt -> ok
            dict(event_id=f"trk-{k}-b1", call_id=c[1], ts=base + 5000, status="error"),
            dict(event_id=f"trk-{k}-b2", call_id=c[1], ts=base + 1000, status="ok", attempt=2),
            # 3. same attempt + same ts: "trk-k-c9" > "trk-k-c10" as strings -> error
            dict(event_id=f"trk-{k}-c9", call_id=c[2], ts=base, status="error", attempt=3),
            dict(event_id=f"trk-{k}-c10", call_id=c[2], ts=base, status="ok", attempt=3),
            # 4. one call_id across two tools (splits when grouped by tool)
            dict(event_id=f"trk-{k}-d1", call_id=c[3], ts=base, status="error", attempt=1,
                 tool=TOOLS[(k + 1) % len(TOOLS)]),
            dict(event_id=f"trk-{k}-d2", call_id=c[3], ts=base + 10, status="ok", attempt=2),
            # 5. same attempt, same ts, different offsets spelled; id decides -> ok
            dict(event_id=f"trk-{k}-e1", call_id=c[4], ts=base + 3000, status="error", attempt=2),
            dict(event_id=f"trk-{k}-e2", call_id=c[4], ts=base + 3000, status="ok", attempt=2),
        ]
        for d in tricky:
            ev = {"tool": tool, "latency_ms": g.latency(), "tenant": TENANTS[k % len(TENANTS)],
                  "version": VERSIONS[k % len(VERSIONS)]}
            ev.update(d)  # a1 carries an explicit "attempt": null, b1 omits the key
            buckets[r.choice("abc")].append(g.render(ev))

    # window-boundary events (exact UTC instants written with different offsets)
    for iso in ("2026-11-24T22:00:00Z", "2026-11-25T00:00:00+00:00",
                "2026-11-25T05:30:00+05:30", "2026-11-24T23:59:59.999999Z",
                "2026-11-25T01:00:00.000+00:00",
                "2026-11-24T19:00:00-05:00"):
        ev = _good_template(g, tool="boundary", latency_ms=7, call_id=g.cid())
        ev["ts"] = iso
        buckets["a"].append(json.dumps(ev).encode())

    # rejects
    for b in _bad_lines(g):
        buckets[r.choice("abc")].append(b)

    for k in buckets:
        r.shuffle(buckets[k])

    def with_blanks(lines: list[bytes]) -> list[bytes]:
        out = []
        for ln in lines:
            out.append(ln)
            x = r.random()
            if x < 0.02:
                out.append(b"")
            elif x < 0.03:
                out.append(b"   \t ")
        return out

    paths = []
    p = directory / "a_main.jsonl"
    p.write_bytes(b"\n".join(with_blanks(buckets["a"])) + b"\n")
    paths.append(str(p))

    p = directory / "b_crlf.jsonl"
    p.write_bytes(b"\r\n".join(with_blanks(buckets["b"])) + b"\r\n")
    paths.append(str(p))

    p = directory / "c_batch.jsonl.gz"
    with gzip.open(p, "wb") as fh:
        fh.write(b"\n".join(with_blanks(buckets["c"])) + b"\n")
    paths.append(str(p))

    d_lines = [b"", b"  "] + buckets["d"][:]
    d_lines.insert(3, _sized_line(g, MAX_LINE_BYTES))        # exactly 1 MiB -> accepted
    d_lines.insert(5, _sized_line(g, MAX_LINE_BYTES + 1))    # 1 byte over -> rejected
    trunc = g.render(_good_template(g))
    d_lines.append(trunc[: len(trunc) - 7])                  # truncated last line, no newline
    p = directory / "d_tail.jsonl"
    p.write_bytes(b"\n".join(d_lines))
    paths.append(str(p))
    return paths
