"""Secrets never reach the store: nested args, messages, unknown fields, rejects, spans."""

from __future__ import annotations

import json
from decimal import Decimal

import duckdb
import pytest

from conftest import event, run_toolctl, write_jsonl

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVlLXgx"
SECRETS = {
    "pw": "correct-horse-battery-9",
    "openai": "sk-proj-Zq9xLm2Vb8Nw4Tr6Yp1Hd3Kf",
    "github": "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "card": "4242 4242 4242 4242",
    "email": "alice.smith@example.org",
    "bearer": "Bearer tok_live_abcdefghijklmnop",
    "jwt": JWT,
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq\n-----END RSA PRIVATE KEY-----",
    "cookie": "sessionid=s3cr3tcookievalue",
}


def _file_bytes(db):
    con = duckdb.connect(str(db))
    con.execute("CHECKPOINT")
    con.close()
    return db.read_bytes()


def _needles(secret):
    # The store may hold a value as-is or JSON-escaped (the PEM's newline).
    return {secret.encode(), json.dumps(secret)[1:-1].encode(), secret.split("\n")[0].encode()
            if "PRIVATE" not in secret else b"MIIEpAIBAAKCAQEA7bq"}


def test_secrets_in_args_messages_unknown_fields_and_rejects_are_not_in_the_file(tmp_path):
    s = SECRETS
    docs = [
        event(1, args={"q": "weather", "auth": {"password": s["pw"], "headers": {"Authorization": s["bearer"]}},
                       "max_tokens": 256, "items": [{"note": f"key {s['openai']}"}]},
              message=f"user {s['email']} called with {s['jwt']}"),
        event(2, data={"card": s["card"], "deploy_key": s["pem"]}, gh=s["github"], cookie=s["cookie"]),
        event(3, message=f"aws {s['aws']}"),
        '{"event_id": "r1", "api_key": "' + s["openai"] + '", oops',
        "not json at all, password: " + s["github"],
    ]
    db = tmp_path / "t.duckdb"
    r = run_toolctl("--db", db, "ingest", "--format", "json", write_jsonl(tmp_path / "a.jsonl", docs))
    assert r.returncode == 3, r.stderr
    summary = json.loads(r.stdout)
    # pw, bearer, openai, email, jwt, card, pem, github, cookie, aws; rejects: openai, github
    assert summary["redacted"] == 12
    blob = _file_bytes(db)
    for name, secret in s.items():
        for needle in _needles(secret):
            assert needle not in blob, f"{name} secret stored"
    con = duckdb.connect(str(db), read_only=True)
    args = json.loads(con.execute("SELECT args FROM events WHERE event_id = 'e1'").fetchone()[0])
    assert args["max_tokens"] == 256 and args["q"] == "weather"  # not secrets: kept
    assert args["auth"]["password"].startswith("[REDACTED:password:")
    assert args["auth"]["headers"]["Authorization"].startswith("[REDACTED:authorization:")
    assert args["items"][0]["note"].startswith("key [REDACTED:api_key:")



def test_a_rejected_line_with_a_secret_and_half_an_emoji_is_kept_redacted(tmp_path):
    """Found by fuzzing: Python's JSON decoder keeps an unpaired surrogate escape, and the
    redacted raw text could not be stored, which stopped the whole ingest with a traceback."""
    docs = ['{"event_id": "u1", "ts": "2026-01-01T00:00:00Z", "tool": "t", "status": "ok",'
            ' "latency_ms": 1, "args": {"password": "hunter22", "q": "smile \\ud83d"}}',
            '{"api_key": "' + SECRETS["openai"] + '", "x": "\\udc00"',
            json.dumps(event(2))]
    db = tmp_path / "t.duckdb"
    r = run_toolctl("--db", db, "ingest", "--format", "json", write_jsonl(tmp_path / "a.jsonl", docs))
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["accepted"], summary["rejected"]) == (1, 2)
    con = duckdb.connect(str(db), read_only=True)
    raws = [row[0] for row in con.execute("SELECT raw FROM rejects ORDER BY line_no").fetchall()]
    con.close()
    assert "hunter22" not in raws[0] and "[REDACTED:password:" in raws[0] and "\\ud83d" in raws[0]
    assert SECRETS["openai"] not in raws[1] and "\\udc00" in raws[1]

def test_the_same_secret_gets_the_same_fingerprint_within_a_store_and_another_across_stores(tmp_path):
    docs = [event(1, args={"token": "abc-secret-1"}), event(2, args={"token": "abc-secret-1"}),
            event(3, args={"token": "other-secret"})]
    marks = []
    for name in ("one", "two"):
        db = tmp_path / f"{name}.duckdb"
        run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "a.jsonl", docs))
        con = duckdb.connect(str(db), read_only=True)
        marks.append([json.loads(a)["token"] for (a,) in con.execute("SELECT args FROM events ORDER BY event_id").fetchall()])
        con.close()
    one, two = marks
    assert one[0] == one[1] != one[2]
    assert one[0] != two[0] or one[2] != two[2]  # per-store salt (a 4-hex collision on both is ~1e-9)


def test_rules_file_adds_keys_and_patterns_allows_values_and_can_keep_emails(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[redaction]\nemails = false\nextra_keys = ["ssn"]\nallow_keys = ["csrf_token"]\n'
                     'allow_values = ["sk-test-0000000000000000"]\n'
                     '[[redaction.patterns]]\nname = "employee"\nregex = "EMP-[0-9]{6}"\n')
    docs = [event(1, args={"ssn": "078-05-1120", "csrf_token": "keep-me", "who": "bob@example.com",
                           "emp": "id EMP-123456", "demo": "sk-test-0000000000000000"})]
    db = tmp_path / "t.duckdb"
    r = run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "a.jsonl", docs),
                    env={"TOOLCTL_REDACTION_RULES": str(rules)})
    assert r.returncode == 0, r.stderr
    args = json.loads(duckdb.connect(str(db), read_only=True).execute("SELECT args FROM events").fetchone()[0])
    assert args["ssn"].startswith("[REDACTED:ssn:") and args["emp"].startswith("id [REDACTED:employee:")
    assert args["csrf_token"] == "keep-me" and args["who"] == "bob@example.com"
    assert args["demo"] == "sk-test-0000000000000000"


def test_a_rules_file_with_a_byte_order_mark_applies_and_one_not_utf8_is_a_usage_error(tmp_path):
    # As toolctl.toml: Windows editors save UTF-8 with a BOM ("not valid TOML, line 1, column 1");
    # a file in another encoding was a UnicodeDecodeError traceback.
    rules = tmp_path / "rules.toml"
    rules.write_bytes(b'\xef\xbb\xbf[redaction]\nextra_keys = ["ssn"]\n')
    db = tmp_path / "t.duckdb"
    src = write_jsonl(tmp_path / "a.jsonl", [event(1, args={"ssn": "078-05-1120"})])
    r = run_toolctl("--db", db, "ingest", src, env={"TOOLCTL_REDACTION_RULES": str(rules)})
    assert r.returncode == 0, r.stderr
    args = json.loads(duckdb.connect(str(db), read_only=True).execute("SELECT args FROM events").fetchone()[0])
    assert args["ssn"].startswith("[REDACTED:ssn:")
    rules.write_bytes(b'[redaction]\nextra_keys = ["n\xe9"]\n')  # Latin-1
    r = run_toolctl("--db", tmp_path / "u.duckdb", "ingest", src, env={"TOOLCTL_REDACTION_RULES": str(rules)})
    assert r.returncode == 2 and r.stderr.startswith(f"Error: redaction rules {rules}:2: not UTF-8"), r.stderr


def test_a_bad_rules_file_is_a_usage_error_and_stores_nothing(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[redaction.patterns]]\nregex = "(?<=x)y"\n')  # look-behind: not RE2
    db = tmp_path / "t.duckdb"
    r = run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "a.jsonl", [event(1)]),
                    env={"TOOLCTL_REDACTION_RULES": str(rules)})
    assert r.returncode == 2 and "not valid in both RE2 and Python" in r.stderr
    assert not db.exists()  # refused before the store was opened (or created)


def test_a_misspelt_rules_file_is_refused_not_silently_ignored(tmp_path):
    # Found by running the docs: a typo left the SSN in the store in clear text, exit 0.
    docs = [event(1, args={"ssn": "078-05-1120"})]
    src = write_jsonl(tmp_path / "a.jsonl", docs)
    cases = {'[redaction]\nextra_key = ["ssn"]\n': "unknown key 'extra_key' in [redaction] (did you mean 'extra_keys'?)",
             '[redactoin]\nextra_keys = ["ssn"]\n': "unknown key 'redactoin' (did you mean 'redaction'?)",
             '[[redaction.patterns]]\nname = "x"\nregexp = "X-[0-9]+"\n':
                 "unknown key 'regexp' in [[redaction.patterns]] (did you mean 'regex'?)"}
    for i, (text, message) in enumerate(cases.items()):
        rules = tmp_path / f"rules{i}.toml"
        rules.write_text(text)
        db = tmp_path / f"t{i}.duckdb"
        r = run_toolctl("--db", db, "ingest", src, "--redaction-rules", rules)
        assert r.returncode == 2, r.stderr
        assert r.stderr.splitlines()[0] == f"Error: redaction rules {rules}: {message}"
        assert not db.exists() or duckdb.connect(str(db), read_only=True).execute(
            "SELECT count(*) FROM events").fetchone()[0] == 0


def test_card_numbers_must_pass_luhn_stand_alone_and_ids_that_contain_digit_runs_are_kept(tmp_path):
    # Luhn-valid 16-digit runs inside hex digests, trace ids and order ids are part of an
    # identifier, not a card number: masking them would corrupt the audit record.
    kept = {"b": "4242424242424241", "ts": "1732500000000",
            "sha": "5e4c1a4242424242424242f09d", "trace": "a4242424242424242b7ad6b7169203331",
            "order": "ORD4242424242424242", "long": "42424242424242424242424"}
    docs = [event(1, args={"a": "4242424242424242", "spaced": "card 4242 4242 4242 4242.",
                           "glued": "cc_4242424242424242", **kept})]
    db = tmp_path / "t.duckdb"
    run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "a.jsonl", docs))
    args = json.loads(duckdb.connect(str(db), read_only=True).execute("SELECT args FROM events").fetchone()[0])
    assert args["a"].startswith("[REDACTED:card:")
    assert args["spaced"].startswith("card [REDACTED:card:") and args["spaced"].endswith("].")
    assert args["glued"].startswith("cc_[REDACTED:card:")
    assert {k: args[k] for k in kept} == kept


def test_what_holds_no_secret_is_stored_as_written_whatever_shares_its_batch(tmp_path):
    # Found by fuzzing: once one row of a batch was redacted, every row the candidate scan
    # flagged (here a digit run that fails Luhn) was re-serialised: 1.50 became 1.5, 1e400
    # became Infinity (not JSON), a reject's raw text and size changed, and re-ingesting
    # with other batch boundaries stored the same rejected line twice.
    lines = [
        '{"event_id": "r1",  "ts": "2026-03-01T00:00:00Z", "tool": "t", "status": "BAD", '
        '"latency_ms": 1.50, "order": "4111 1111 1111 1112"}',
        '{"event_id": "a1", "ts": "2026-03-01T00:00:00Z", "tool": "t", "status": "ok", "latency_ms": 1, '
        '"message": "order 4111 1111 1111 1112", "args": {"n": 1.50, "e": 1E2, "big": 1e400}}',
        '{"event_id": "v1", "ts": "2026-03-01T00:00:00Z", "tool": "t", "status": "ok", "latency_ms": 1, '
        '"message": "key sk-abcdefghijklmnopqrstuv", "args": {"n": 1.50, "big": 1e400, "api_key": 2.50}}',
        '{"event_id": "r2", "status": "BAD",  "token": "sk-abcdefghijklmnopqrstuv"}',
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    db = tmp_path / "t.duckdb"
    assert run_toolctl("--db", db, "ingest", src).returncode == 3
    con = duckdb.connect(str(db), read_only=True)
    args = dict(con.execute("SELECT event_id, args::VARCHAR FROM events").fetchall())

    def exact(text):  # every number's value as written; NaN/Infinity tokens are not JSON
        return json.loads(text, parse_float=Decimal, parse_constant=lambda c: pytest.fail(f"{c} in {text}"))

    assert exact(args["a1"]) == {"n": Decimal("1.50"), "e": Decimal("1E2"), "big": Decimal("1e400")}
    v1 = exact(args["v1"])
    assert (v1["n"], v1["big"]) == (Decimal("1.50"), Decimal("1e400"))
    assert v1["api_key"].startswith("[REDACTED:api_key:")
    (r1, r2) = con.execute("SELECT raw, raw_bytes FROM rejects ORDER BY line_no").fetchall()
    assert r1 == (lines[0], len(lines[0]))
    assert "[REDACTED:" in r2[0] and "sk-" not in r2[0] and r2[1] == len(lines[3])  # the size as read
    con.close()
    assert run_toolctl("--db", db, "ingest", "--batch-bytes", "4096", src).returncode == 3
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM rejects").fetchone()[0] == 2


def test_args_nested_deeper_than_python_reads_neither_stop_an_ingest_nor_leak_a_secret(tmp_path):
    # Found by a helper: a line whose args nest 3,000 levels (valid JSON, DuckDB takes it)
    # made redaction's json.loads raise RecursionError, and the whole ingest stopped with a
    # traceback; `audit search` of such a row crashed the same way.
    deep_secret = '{"a":' * 3000 + '{"password":"hunter2"}' + "}" * 3000
    deep_plain = '{"a":' * 3000 + "1" + "}" * 3000
    head = '{"event_id": "%s", "ts": "2026-11-24T06:00:00Z", "tool": "t", "status": "ok", "latency_ms": 1, "args": '
    src = tmp_path / "deep.jsonl"
    mid_plain = '{"a":' * 600 + "1" + "}" * 600  # Python reads it, orjson does not write it
    src.write_text(head % "d1" + deep_secret + "}\n" + head % "d2" + deep_plain + "}\n" + json.dumps(event(3)) + "\n"
                   + head % "d4" + mid_plain + "}\n")
    db = tmp_path / "t.duckdb"
    r = run_toolctl("--db", db, "ingest", src, "--format", "json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert (json.loads(r.stdout)["accepted"], json.loads(r.stdout)["redacted"]) == (4, 1)
    con = duckdb.connect(str(db), read_only=True)
    args = dict(con.execute("SELECT event_id, args::VARCHAR FROM events").fetchall())
    con.close()
    assert "hunter2" not in args["d1"] and args["d1"].startswith('"[REDACTED:too_deep:')
    assert args["d2"].count("{") == 3000  # no secret-like text: stored as written
    found = run_toolctl("--db", db, "audit", "search", "--format", "json")
    assert found.returncode == 0, found.stderr
    rows = {x["event_id"]: x for x in json.loads(found.stdout)}
    assert rows["d2"]["args"] == args["d2"]  # deeper than Python decodes: its JSON text
    assert rows["d4"]["args"] == args["d4"]  # deeper than orjson writes: likewise
    assert rows["e3"]["args"] is None or isinstance(rows["e3"]["args"], dict)


def test_span_attributes_are_redacted_before_storing(tmp_path):
    secret = "sk-ant-api03-QWERTYUIOPASDFGHJKLZX"
    span = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
            "name": "execute_tool search", "kind": 1, "startTimeUnixNano": "1764000000000000000",
            "endTimeUnixNano": "1764000000100000000",
            "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                           {"key": "gen_ai.tool.name", "value": {"stringValue": "search"}},
                           {"key": "http.request.header.authorization", "value": {"stringValue": "Basic dXNlcjpwYXNz"}},
                           {"key": "gen_ai.tool.call.arguments", "value": {"stringValue": json.dumps({"key": secret})}}],
            "status": {}}
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gw"}}]},
                              "scopeSpans": [{"spans": [span]}]}]}
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(doc))
    db = tmp_path / "t.duckdb"
    r = run_toolctl("--db", db, "ingest", path)
    assert r.returncode == 0, r.stderr
    blob = _file_bytes(db)
    assert secret.encode() not in blob and b"dXNlcjpwYXNz" not in blob
    con = duckdb.connect(str(db), read_only=True)
    attrs = json.loads(con.execute("SELECT attributes FROM spans").fetchone()[0])
    assert attrs["http.request.header.authorization"].startswith("[REDACTED:authorization:")
    assert run_toolctl("--db", db, "audit", "verify").returncode == 0


def test_redaction_rules_option_applies_the_file_and_a_bad_one_stores_nothing(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[redaction.patterns]]\nname = "employee"\nregex = "EMP-[0-9]{6}"\n')
    db = tmp_path / "t.duckdb"
    src = write_jsonl(tmp_path / "a.jsonl", [event(1, args={"emp": "id EMP-123456"})])
    r = run_toolctl("--db", db, "ingest", src, "--redaction-rules", rules)
    assert r.returncode == 0, r.stderr
    args = json.loads(duckdb.connect(str(db), read_only=True).execute("SELECT args FROM events").fetchone()[0])
    assert args["emp"].startswith("id [REDACTED:employee:")
    other = tmp_path / "other.duckdb"
    bad = run_toolctl("--db", other, "ingest", src, "--redaction-rules", tmp_path / "missing.toml")
    assert bad.returncode == 2 and "cannot read redaction rules" in bad.stderr
    assert not other.exists()


def test_the_email_pattern_anchored_at_a_run_start_finds_exactly_what_the_plain_one_finds():
    # Python's re retried the plain pattern from every character of a long word (25 s for a
    # 128k-character argument, found by fuzzing; benchmarks/redaction.py measures the growth).
    # The anchored form may only skip starts inside a run, where no match can begin.
    import random
    import re

    from toolctl.audit.redact import _EMAIL_AT_RUN_START, EMAIL_PATTERN

    rng = random.Random(7)
    alphabet = "ab.x_%+-@1 .,;:<>()\"'\n" + "é"
    plain, anchored = re.compile(EMAIL_PATTERN), re.compile(_EMAIL_AT_RUN_START)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        text += rng.choice(["", " john.doe+x@example.co.uk", "a@b.io", "@c.de", "x@y"])
        assert [m.span() for m in plain.finditer(text)] == [m.span() for m in anchored.finditer(text)], text


def test_redacted_counts_the_values_this_run_stored_not_those_found_stored_already(tmp_path):
    # A re-ingest printed "0 accepted …; 1,870 values redacted" (sample_logs/): redaction runs
    # before the insert finds the lines stored, so the count covered lines nothing was done with,
    # and the ledger's batch entry said so too.
    db = tmp_path / "s.duckdb"
    pw = {"password": SECRETS["pw"]}
    first = write_jsonl(tmp_path / "a.jsonl", [event(1, args=pw), event(2), "oops " + SECRETS["aws"]])
    run = lambda *p: json.loads(run_toolctl("--db", db, "ingest", *p, "--format", "json").stdout)
    assert run(first)["redacted"] == 2
    again = run(first)
    assert (again["accepted"], again["duplicates"], again["redacted"]) == (0, 2, 0)
    # Half new: only the new line's secret counts; an event_id twice in one batch, once.
    more = write_jsonl(tmp_path / "b.jsonl", [event(1, args=pw), event(3, args=pw), event(3, args=pw),
                                             event(4, args={"token": "x", "api_key": "y"})])
    out = run(more)
    assert (out["accepted"], out["duplicates"], out["redacted"]) == (2, 2, 3)
    con = duckdb.connect(str(db), read_only=True)
    ledger = [json.loads(x)["redacted"] for (x,) in con.execute(
        "SELECT payload FROM ledger WHERE kind = 'ingest_batch' ORDER BY seq").fetchall()]
    con.close()
    assert ledger == [2, 0, 3]
