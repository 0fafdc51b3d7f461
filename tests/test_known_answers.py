"""Known-answer tests: the real CLI (subprocess) vs the independent reference.

The expected figures come from tests/reference.py, which implements the figure
definitions and line-validation rules from the contract without touching the
code under toolctl/ or collector/.  A failure prints a per-group diff.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import reference as R  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE_LOGS = REPO / "sample_logs"
COUNT_FIELDS = ("attempts", "calls", "retries", "errors", "auth_failures")
FLOAT_FIELDS = ("error_rate", "p50_ms", "p95_ms", "p99_ms")
SUMMARY_FIELDS = ("files", "lines", "accepted", "duplicates", "rejected")
BUCKET_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
REL_TOL = 1e-9
# `rejects` lists at most 100 rows unless --limit is given
REJECTS_ALL = ("rejects", "--limit", "1000000")


# --------------------------------------------------------------------------- #
# CLI plumbing
# --------------------------------------------------------------------------- #
def _env():
    env = dict(os.environ)
    env.pop("TOOLCTL_DB", None)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_cli(db, *args, timeout=120, extra_env=None):
    cmd = [sys.executable, "-m", "toolctl", "--db", str(db), *map(str, args)]
    env = _env()
    env.update(extra_env or {})
    return subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, timeout=timeout)


def _describe(proc):
    return (f"$ {' '.join(map(str, proc.args))}\nexit={proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout.decode('utf-8', 'replace')[:3000]}\n"
            f"--- stderr ---\n{proc.stderr.decode('utf-8', 'replace')[-3000:]}")


def cli_json(db, *args, expect_rc=(0,), extra_env=None):
    proc = run_cli(db, *args, "--format", "json", extra_env=extra_env)
    assert proc.returncode in expect_rc, f"unexpected exit code (wanted {expect_rc})\n" + _describe(proc)
    try:
        return json.loads(proc.stdout.decode("utf-8")), proc
    except ValueError as e:
        pytest.fail(f"stdout is not ONE JSON document ({e})\n" + _describe(proc))


@pytest.fixture(scope="session")
def cli_available():
    if not (REPO / "toolctl" / "__main__.py").exists() and not (REPO / "toolctl" / "__init__.py").exists():
        pytest.skip("toolctl package not present yet")
    proc = subprocess.run([sys.executable, "-m", "toolctl", "--help"], cwd=str(REPO), env=_env(),
                          capture_output=True, timeout=60)
    if proc.returncode != 0:
        pytest.fail("`python -m toolctl --help` does not work\n" + _describe(proc))
    return True


# --------------------------------------------------------------------------- #
# comparison helpers (loud, diff-style failures)
# --------------------------------------------------------------------------- #
def _close(a, b):
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return False
    return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=1e-12)


def _row_key(row, by, every):
    key = []
    if every is not None:
        b = row.get("bucket")
        key.append(R.parse_ts_us(b) if isinstance(b, str) else ("<unparseable>", b))
    key.extend(row.get(d, "<missing key>") for d in by)
    return tuple(key)


def _fmt_key(key, by, every):
    names = (["bucket"] if every is not None else []) + list(by)
    parts = []
    for n, v in zip(names, key):
        if n == "bucket" and isinstance(v, int):
            v = R.us_to_iso(v)
        parts.append(f"{n}={v!r}")
    return "{" + ", ".join(parts) + "}" if parts else "{<all>}"


def _group_dump(events, key, by, every, since, until, filters, limit=12):
    groups = R.group_events(events, by, every, since, until, filters)
    evs = sorted(groups.get(key, []), key=lambda e: (str(e.get("call_id")), e["attempt"], e["ts_us"], e["event_id"]))
    lines = [f"      reference events in group ({len(evs)}):"]
    for e in evs[:limit]:
        lines.append(f"        {e['_source']}:{e['_line_no']} id={e['event_id']} call={e.get('call_id')} "
                     f"attempt={e['attempt']} ts={R.us_to_iso(e['ts_us'])} status={e['status']} "
                     f"lat={e['latency_ms']} http={e.get('http_status')} code={e.get('error_code')}")
    if len(evs) > limit:
        lines.append(f"        ... {len(evs) - limit} more")
    return lines


def compare_stats(ref_events, got_rows, *, by=(), every=None, since=None, until=None, filters=None,
                  label=""):
    by = list(by)
    expected = R.stats(ref_events, by=by, every=every, since=since, until=until, filters=filters)
    problems: list[str] = []
    if not isinstance(got_rows, list):
        pytest.fail(f"{label}: stats output is not a JSON list: {got_rows!r:.500}")
    required = set(by) | ({"bucket"} if every else set()) | set(COUNT_FIELDS) | set(FLOAT_FIELDS)
    for i, row in enumerate(got_rows):
        missing = required - set(row) if isinstance(row, dict) else required
        if missing:
            problems.append(f"  row {i} lacks keys {sorted(missing)}: {row!r:.300}")
        if every is not None and isinstance(row, dict) and not BUCKET_RE.match(str(row.get("bucket"))):
            problems.append(f"  row {i} bucket {row.get('bucket')!r} is not like 2026-11-24T06:05:00Z")
    if problems:
        pytest.fail(f"{label}: malformed rows\n" + "\n".join(problems[:20]))

    exp = {_row_key(r, by, every): r for r in expected}
    got: dict = {}
    for r in got_rows:
        k = _row_key(r, by, every)
        if k in got:
            problems.append(f"  duplicate group in CLI output: {_fmt_key(k, by, every)}")
        got[k] = r
    for k in sorted(set(exp) - set(got), key=repr):
        e = exp[k]
        problems.append(f"  MISSING group {_fmt_key(k, by, every)}: expected attempts={e['attempts']} "
                        f"calls={e['calls']} errors={e['errors']}")
    for k in sorted(set(got) - set(exp), key=repr):
        problems.append(f"  EXTRA group {_fmt_key(k, by, every)}: {got[k]!r:.300}")
    dumped = 0
    for k in sorted(set(exp) & set(got), key=repr):
        e, g = exp[k], got[k]
        diffs = []
        for f in COUNT_FIELDS:
            if isinstance(g[f], bool) or g[f] != e[f]:
                diffs.append(f"{f}: expected {e[f]!r} got {g[f]!r}")
        for f in FLOAT_FIELDS:
            if not _close(g[f], e[f]):
                diffs.append(f"{f}: expected {e[f]!r} got {g[f]!r}")
        if diffs:
            problems.append(f"  group {_fmt_key(k, by, every)}: " + "; ".join(diffs))
            if dumped < 3:
                dumped += 1
                problems.extend(_group_dump(ref_events, k, by, every, since, until, filters))
    if problems:
        head = (f"{label}: CLI stats disagree with the reference "
                f"(by={by} every={every} since={since} until={until} filters={filters}); "
                f"expected {len(expected)} rows, got {len(got_rows)}; {len(problems)} problem lines")
        pytest.fail(head + "\n" + "\n".join(problems[:80]))


# Loose keyword check that a CLI reject reason names the same problem as the
# reference category (the exact wording is not part of the contract).
_TYPE_WORDS = ("type", "must be", "expected", "expect", "not a", "invalid", "should be", "string",
               "number", "integer", "int", "bool", "object", "str")
_MISSING_WORDS = ("missing", "required", "null", "absent", "none")


def reason_matches(category: str, reason: str) -> bool:
    r = str(reason).lower()
    if category == R.INVALID_UTF8:
        return "utf" in r or "decode" in r or "encoding" in r
    if category == R.TOO_LONG:
        return any(w in r for w in ("long", "size", "mib", "1048576", "length", "exceed", "too large",
                                    "max", "bytes"))
    if category == R.INVALID_JSON:
        return "json" in r
    if category == R.NOT_OBJECT:
        return "object" in r or "dict" in r or "mapping" in r
    kind, _, field = category.partition(":")
    if field.lower() not in r:
        return False
    if kind == "missing":
        return any(w in r for w in _MISSING_WORDS)
    if kind == "wrong_type":
        return any(w in r for w in _TYPE_WORDS)
    return True  # bad_value:<field> -- naming the field is enough


def compare_rejects(ref_store: R.RefStore, got, label=""):
    assert isinstance(got, list), f"{label}: rejects output is not a list: {got!r:.300}"
    problems = []
    for i, g in enumerate(got):
        for k in ("source", "line_no", "reason", "raw"):
            if k not in g:
                problems.append(f"  reject {i} lacks key {k!r}: {g!r:.200}")
    if problems:
        pytest.fail(f"{label}: malformed rejects\n" + "\n".join(problems[:20]))
    exp = {(r["name"], r["line_no"]): r for r in ref_store.rejects}
    got_by = collections.defaultdict(list)
    for g in got:
        got_by[(os.path.realpath(os.path.join(REPO, str(g["source"]))), g["line_no"])].append(g)
    for k, lst in got_by.items():
        if len(lst) > 1:
            problems.append(f"  reject stored {len(lst)} times: {k}")
    for k in sorted(set(exp) - set(got_by)):
        raw = _raw_line(ref_store, k)
        problems.append(f"  NOT REJECTED by CLI: {k[0]}:{k[1]} expected category {exp[k]['category']!r} "
                        f"line={raw!r:.160}")
    for k in sorted(set(got_by) - set(exp)):
        g = got_by[k][0]
        problems.append(f"  UNEXPECTED reject {k[0]}:{k[1]} reason={g['reason']!r} raw={str(g['raw'])!r:.160}")
    # categories
    per_cat = collections.Counter()
    per_cat_ok = collections.Counter()
    for k in sorted(set(exp) & set(got_by)):
        cat = exp[k]["category"]
        per_cat[cat] += 1
        reason = got_by[k][0]["reason"]
        if reason_matches(cat, reason):
            per_cat_ok[cat] += 1
        else:
            problems.append(f"  reason/category mismatch at {k[0]}:{k[1]}: reference category {cat!r}, "
                            f"CLI reason {reason!r:.200}, line={_raw_line(ref_store, k)!r:.160}")
    if problems:
        table = "\n".join(f"    {c:32s} expected {per_cat[c]:3d}  reason-matched {per_cat_ok[c]:3d}"
                          for c in sorted(per_cat))
        pytest.fail(f"{label}: CLI rejects disagree with the reference "
                    f"(expected {len(exp)}, CLI stored {len(got)})\n" + "\n".join(problems[:80])
                    + "\n  per-category:\n" + table)


_RAW_CACHE: dict = {}


def _raw_line(ref_store, key):
    name, line_no = key
    for r in ref_store.rejects:
        if r["name"] == name and r["line_no"] == line_no:
            src = r["source"]
            if src not in _RAW_CACHE:
                _RAW_CACHE[src] = dict(R.iter_physical_lines(R.read_bytes(src)))
            return _RAW_CACHE[src].get(line_no, b"")[:200]
    return b""


def check_summary(got, expected, label):
    missing = [k for k in SUMMARY_FIELDS if k not in got]
    assert not missing, f"{label}: ingest summary lacks {missing}: {got!r}"
    assert got["accepted"] + got["duplicates"] + got["rejected"] == got["lines"], (
        f"{label}: accounting identity accepted+duplicates+rejected==lines broken: {got!r}")
    diff = {k: (expected[k], got[k]) for k in SUMMARY_FIELDS if got[k] != expected[k]}
    assert not diff, f"{label}: ingest summary differs (field: (expected, got)): {diff}\nfull: {got!r}"


# --------------------------------------------------------------------------- #
# fixtures
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def corpus(tmp_path_factory, cli_available):
    """Messy corpus ingested once by the CLI (directory form) and by the reference."""
    base = tmp_path_factory.mktemp("known")
    logdir = base / "logs"
    R.make_messy_corpus(logdir, seed=20261124, n_calls=900)
    ref = R.RefStore()
    expected_summary = ref.ingest([logdir])
    db = base / "store.duckdb"
    summary, proc = cli_json(db, "ingest", logdir, expect_rc=(3,))
    return {"dir": logdir, "db": db, "ref": ref, "expected": expected_summary, "summary": summary,
            "proc": proc}


# --------------------------------------------------------------------------- #
# ingest / rejects
# --------------------------------------------------------------------------- #
def test_ingest_summary_matches_reference(corpus):
    check_summary(corpus["summary"], corpus["expected"], "first ingest of messy corpus")


def test_rejects_match_reference(corpus):
    got, _ = cli_json(corpus["db"], *REJECTS_ALL)
    compare_rejects(corpus["ref"], got, "messy corpus")


def test_stored_attempts_equal_accepted(corpus):
    rows, _ = cli_json(corpus["db"], "stats")
    assert len(rows) == 1, rows
    assert rows[0]["attempts"] == corpus["summary"]["accepted"], (rows[0], corpus["summary"])


# --------------------------------------------------------------------------- #
# stats groupings / filters / windows
# --------------------------------------------------------------------------- #
GROUPINGS = [
    pytest.param(dict(), id="none"),
    pytest.param(dict(by=["tool"]), id="tool"),
    pytest.param(dict(by=["tool", "version"]), id="tool+version"),
    pytest.param(dict(by=["tenant"]), id="tenant"),
    pytest.param(dict(by=["status"]), id="status"),
    pytest.param(dict(by=["user", "error_code"]), id="user+error_code"),
    pytest.param(dict(by=["service"]), id="service"),
    pytest.param(dict(every="1h"), id="every1h"),
    pytest.param(dict(every="5m", by=["tool"]), id="every5m+tool"),
    pytest.param(dict(every="1d", by=["tenant"]), id="every1d+tenant"),
    # filters
    pytest.param(dict(filters={"tool": "検索"}), id="filter-tool-cjk"),
    pytest.param(dict(by=["version"], filters={"tool": "weather🌦"}, every="1h"), id="filter-tool-emoji-1h"),
    pytest.param(dict(by=["tool"], filters={"tenant": "ümlaut-corp"}), id="filter-tenant"),
    pytest.param(dict(by=["tool"], filters={"status": "error"}), id="filter-status-error"),
    pytest.param(dict(by=["tenant"], filters={"version": "v2", "service": "planner"}),
                 id="filter-version+service"),
    # half-open windows (boundary events exist at exactly 22:00Z, 00:00Z, 01:00Z)
    pytest.param(dict(by=["tool"], since="2026-11-24T22:00:00Z", until="2026-11-25T00:00:00Z"),
                 id="window-tool"),
    pytest.param(dict(filters={"tool": "boundary"}, since="2026-11-25T05:30:00+05:30",
                      until="2026-11-25T01:00:00Z"), id="window-boundary-offset"),
    pytest.param(dict(every="5m", since="2026-11-24T23:55:00Z", until="2026-11-25T00:10:00Z"),
                 id="window-5m"),
]


def _stats_args(by=(), every=None, since=None, until=None, filters=None):
    args = ["stats"]
    for d in by:
        args += ["--by", d]
    if every:
        args += ["--every", every]
    for k, v in (filters or {}).items():
        args += [f"--{k}", v]
    if since:
        args += ["--since", since]
    if until:
        args += ["--until", until]
    return args


@pytest.mark.parametrize("q", GROUPINGS)
def test_stats_match_reference(corpus, q):
    rows, _ = cli_json(corpus["db"], *_stats_args(**q))
    compare_stats(corpus["ref"].events, rows, label="messy corpus", **q)


def test_stats_no_match_is_empty_list(corpus):
    rows, _ = cli_json(corpus["db"], "stats", "--by", "tool", "--tool", "no-such-tool")
    assert rows == []


def test_window_boundaries_are_half_open(corpus):
    """Direct check on the boundary events so a failure is obvious."""
    rows, _ = cli_json(corpus["db"], "stats", "--tool", "boundary", "--since", "2026-11-25T00:00:00Z",
                       "--until", "2026-11-25T01:00:00Z")
    # boundary events: 22:00Z, 23:59:59.999999Z, 01:00Z, and three at 00:00Z spelled
    # ...T00:00:00+00:00, ...T05:30:00+05:30 and 2026-11-24T19:00:00-05:00
    exp = R.stats(corpus["ref"].events, filters={"tool": "boundary"}, since="2026-11-25T00:00:00Z",
                  until="2026-11-25T01:00:00Z")
    assert exp and exp[0]["attempts"] == 3  # sanity of the reference corpus
    assert rows and rows[0]["attempts"] == 3, (
        "expected exactly the 3 events at 2026-11-25T00:00:00Z (written as ...T00:00:00+00:00, "
        "...T05:30:00+05:30, 2026-11-24T19:00:00-05:00); 23:59:59.999999Z and 01:00:00Z are outside. "
        f"got {rows!r}")


@pytest.mark.parametrize("tz,q", [
    ("Asia/Kathmandu", dict(every="1h", since="2026-11-24T23:00:00+05:45")),
    ("America/St_Johns", dict(every="1d", by=["tool"])),
])
def test_buckets_and_windows_ignore_local_timezone(corpus, tz, q):
    """Buckets are UTC epoch multiples and windows are absolute instants, whatever the
    operator's TZ (+05:45 / -03:30 would shift local-time buckets)."""
    rows, _ = cli_json(corpus["db"], *_stats_args(**q), extra_env={"TZ": tz})
    compare_stats(corpus["ref"].events, rows, label=f"TZ={tz}", **q)


# --------------------------------------------------------------------------- #
# idempotent re-ingest
# --------------------------------------------------------------------------- #
def test_reingest_is_idempotent(tmp_path, cli_available):
    logdir = tmp_path / "logs"
    R.make_messy_corpus(logdir, seed=99, n_calls=250)
    ref = R.RefStore()
    exp1 = ref.ingest([logdir])
    exp2 = ref.ingest([logdir])
    assert exp2["accepted"] == 0 and exp2["duplicates"] == exp1["accepted"] + exp1["duplicates"]
    db = tmp_path / "re.duckdb"
    s1, _ = cli_json(db, "ingest", logdir, expect_rc=(3,))
    check_summary(s1, exp1, "re-ingest test, first run")
    rej1, _ = cli_json(db, *REJECTS_ALL)
    stats1, _ = cli_json(db, "stats", "--by", "tool", "--every", "1h")
    s2, _ = cli_json(db, "ingest", logdir, expect_rc=(3,))
    check_summary(s2, exp2, "re-ingest test, second run")
    rej2, _ = cli_json(db, *REJECTS_ALL)
    assert len(rej2) == len(rej1), f"rejects stored twice: {len(rej1)} -> {len(rej2)}"
    stats2, _ = cli_json(db, "stats", "--by", "tool", "--every", "1h")
    compare_stats(ref.events, stats2, by=["tool"], every="1h", label="after re-ingest")
    assert sorted(map(json.dumps, stats1)) == sorted(map(json.dumps, stats2))


def test_single_gz_file_and_explicit_files(tmp_path, cli_available):
    """Explicit file arguments (gz + CRLF) and a second ingest of a new file into the same DB."""
    logdir = tmp_path / "logs"
    paths = R.make_messy_corpus(logdir, seed=5, n_calls=150)
    gz = [p for p in paths if p.endswith(".gz")][0]
    crlf = [p for p in paths if "crlf" in p][0]
    ref = R.RefStore()
    db = tmp_path / "x.duckdb"
    for p in (gz, crlf):
        exp = ref.ingest([p])
        got, _ = cli_json(db, "ingest", p, expect_rc=(3,) if exp["rejected"] else (0,))
        check_summary(got, exp, f"ingest {Path(p).name}")
    rows, _ = cli_json(db, "stats", "--by", "tool", "--by", "tenant")
    compare_stats(ref.events, rows, by=["tool", "tenant"], label="gz+crlf explicit files")
    rej, _ = cli_json(db, *REJECTS_ALL)
    compare_rejects(ref, rej, "gz+crlf explicit files")


def test_rfc3339_offset_edges(tmp_path, cli_available):
    """RFC 3339 time-numoffset is [+-]HH:MM with HH 00-23 and MM 00-59; lower-case t/z
    and -00:00 are allowed by the RFC grammar."""
    b = '"tool":"t","status":"ok","latency_ms":1'
    p = tmp_path / "offsets.jsonl"
    p.write_text("".join(f'{{"event_id":"o{i}","ts":"{ts}",{b}}}\n' for i, ts in enumerate([
        "2026-11-24t06:00:00z",              # accepted (RFC 3339 5.6 NOTE)
        "2026-11-24T06:00:00-00:00",         # accepted (unknown local offset, still UTC)
        "2026-11-24T06:00:00.5+23:59",       # accepted (largest legal offset)
        "2026-11-24T06:00:00+24:00",         # rejected: offset hour 24
        "2026-11-24T06:00:00+05:60",         # rejected: offset minute 60
        "2026-11-24T06:00:00+2:00",          # rejected: one-digit hour
    ])), encoding="utf-8")
    ref = R.RefStore()
    exp = ref.ingest([p])
    db = tmp_path / "o.duckdb"
    got, _ = cli_json(db, "ingest", p, expect_rc=(3,))
    rej, _ = cli_json(db, *REJECTS_ALL)
    compare_rejects(ref, rej, "RFC 3339 offsets")
    check_summary(got, exp, "RFC 3339 offsets")
    rows, _ = cli_json(db, "stats", "--every", "1h")
    compare_stats(ref.events, rows, every="1h", label="RFC 3339 offsets")


# --------------------------------------------------------------------------- #
# exit codes
# --------------------------------------------------------------------------- #
def test_exit_codes(tmp_path, cli_available):
    clean = tmp_path / "clean.jsonl"
    clean.write_text(
        '{"event_id":"e1","ts":"2026-11-24T06:00:00+02:00","tool":"t","status":"ok","latency_ms":5}\n'
        '\n'
        '{"event_id":"e2","ts":"2026-11-24T06:00:01Z","tool":"t","status":"error","latency_ms":7,'
        '"call_id":"c","attempt":2}\n', encoding="utf-8")
    db = tmp_path / "e.duckdb"
    got, proc = cli_json(db, "ingest", clean, expect_rc=(0,))
    check_summary(got, {"files": 1, "lines": 2, "accepted": 2, "duplicates": 0, "rejected": 0}, "clean file")
    proc = run_cli(db, "ingest", tmp_path / "does-not-exist.jsonl", "--format", "json")
    assert proc.returncode == 1, "missing file should exit 1\n" + _describe(proc)
    proc = run_cli(db, "stats", "--by", "bogus_dimension", "--format", "json")
    assert proc.returncode == 2, "unknown --by dimension should be a usage error (exit 2)\n" + _describe(proc)
    rows, _ = cli_json(db, "stats")
    assert rows[0]["attempts"] == 2 and rows[0]["calls"] == 2 and rows[0]["errors"] == 1, rows
    # empty and blank-only files: nothing counted, exit 0
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\n  \t\n\r\n")
    got, _ = cli_json(db, "ingest", empty, blank, expect_rc=(0,))
    check_summary(got, {"files": 2, "lines": 0, "accepted": 0, "duplicates": 0, "rejected": 0},
                  "empty + blank-only files")


# --------------------------------------------------------------------------- #
# the repo's sample_logs/
# --------------------------------------------------------------------------- #
def test_sample_logs_match_reference(tmp_path, cli_available):
    if not SAMPLE_LOGS.is_dir() or not R.expand_paths([SAMPLE_LOGS]):
        pytest.skip("sample_logs/ not present")
    ref = R.RefStore()
    exp = ref.ingest([SAMPLE_LOGS])
    db = tmp_path / "sample.duckdb"
    got, _ = cli_json(db, "ingest", SAMPLE_LOGS, expect_rc=(3,) if exp["rejected"] else (0,))
    check_summary(got, exp, "sample_logs")
    rej, _ = cli_json(db, *REJECTS_ALL)
    compare_rejects(ref, rej, "sample_logs")
    for q in (dict(by=["tool", "version"]), dict(by=["tenant"], filters={"status": "error"}),
              dict(every="5m", by=["tool"])):
        rows, _ = cli_json(db, *_stats_args(**q))
        compare_stats(ref.events, rows, label="sample_logs", **q)
