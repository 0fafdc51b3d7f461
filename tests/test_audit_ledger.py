"""The ledger: every batch and control-plane change is chained; verify catches edits."""

from __future__ import annotations

import hashlib
import json

import duckdb
import pytest

from conftest import event, run_toolctl, write_jsonl
from toolctl.audit import ledger
from toolctl.store import Store


def _ingest(tmp_path, n=6, name="a.jsonl", start=0):
    db = tmp_path / "t.duckdb"
    docs = [event(i, call_id=f"c{i}") for i in range(start, start + n)] + ["{broken"]
    r = run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / name, docs))
    assert r.returncode == 3, r.stderr  # one reject
    return db


def _verify(db, env=None):
    return run_toolctl("--db", db, "audit", "verify", "--format", "json", env=env)


def test_fresh_ingests_verify_intact_and_ledger_lists_each_batch_and_source(tmp_path):
    db = _ingest(tmp_path)
    _ingest(tmp_path, name="b.jsonl", start=10)
    r = _verify(db)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["intact"] and doc["rows"] == 6 + 1 + 6 + 1 and doc["batches"] == 2
    log = json.loads(run_toolctl("--db", db, "audit", "log", "--format", "json").stdout)
    assert [e["kind"] for e in reversed(log)] == ["ingest_batch", "ingest_source"] * 2
    src = [e for e in log if e["kind"] == "ingest_source"][-1]
    assert src["source_sha256"] == hashlib.sha256((tmp_path / "a.jsonl").read_bytes()).hexdigest()
    # the chain: each entry's prev_hash is the previous entry's hash
    chain = list(reversed(log))
    assert chain[0]["prev_hash"] == "" and all(b["prev_hash"] == a["entry_hash"] for a, b in zip(chain, chain[1:]))


def test_batch_digest_is_sha256_of_ordered_row_hashes(tmp_path):
    db = _ingest(tmp_path, n=3)
    con = duckdb.connect(str(db), read_only=True)
    # an independent reading: sha256 over the concatenated per-row hashes, ordered by key
    keys = con.execute("SELECT 'e:' || event_id, sha256(to_json(struct_pack(event_id, ts, tool, status, latency_ms,"
                       " schema_version, trace_id, span_id, call_id, session_id, tenant, user_id, service, version,"
                       " stage, attempt, idempotency_key, timeout_ms, error_code, message, retryable, http_status,"
                       " confidence, args, data, extra, batch_id, source, line_no))) FROM events").fetchall()
    keys += con.execute("SELECT 'r:' || reject_key, sha256(to_json(struct_pack(reject_key, source, line_no, reason,"
                        " raw, raw_bytes, batch_id, rejected_at))) FROM rejects").fetchall()
    expected = hashlib.sha256("".join(h for _, h in sorted(keys)).encode()).hexdigest()
    stored = con.execute("SELECT rows_digest, row_count FROM ledger WHERE kind = 'ingest_batch'").fetchall()
    assert stored == [(expected, 4)]


def test_rows_hashed_while_parsing_digest_exactly_as_the_stored_rows_do(tmp_path, monkeypatch):
    # Ingest hashes each row on the parse connection, before the insert; verify hashes the
    # stored rows. Values whose text could differ between the two (floats, big integers,
    # unicode, nested JSON, unknown fields incl. a repeated key, redacted secrets, offsets,
    # in-batch and cross-batch duplicates, rejects) must give the same digest, and the
    # parse-time hashes must actually be used (not silently re-hashed from stored rows).
    from collector.pipeline import ingest_paths

    used = []
    real = ledger.batch_digest

    def spy(store, batch_id, event_hashes=None, span_hashes=None):
        used.append(event_hashes is not None)
        return real(store, batch_id, event_hashes, span_hashes)

    monkeypatch.setattr(ledger, "batch_digest", spy)
    from toolctl.store import writer

    redone, store_parsed = [], writer._store_parsed

    def spy_store(*args, skip_stored, **kw):
        redone.append(skip_stored)
        return store_parsed(*args, skip_stored=skip_stored, **kw)

    monkeypatch.setattr(writer, "_store_parsed", spy_store)
    lines = []
    for i in range(400):
        doc = event(i, call_id=f"c{i % 37}", tool=f"outil_é_{i % 5}_🔧", tenant="ténant",
                    latency_ms=[0.1, 1e-7, 1e300, 123456789012345678, 7][i % 5],
                    ts=f"2026-11-24T06:{i % 60:02d}:00.123456{'+05:30' if i % 2 else 'Z'}",
                    args={"q": "ü\u0000", "n": [i, 1.5, None, {"deep": [True]}],
                          "email": "ops@example.com"},
                    confidence=0.98 if i % 3 else None, retryable=bool(i % 2))
        doc["region"] = "eu-west-1"
        lines.append(json.dumps(doc))
        if i % 50 == 0:
            lines.append(json.dumps(doc))  # the same event twice in one batch
            lines.append('{"event_id": "x%d", "ts": "nope"}' % i)  # a reject
    lines.append('{"event_id":"rep","ts":"2026-11-24T06:00:00Z","tool":"t","status":"ok",'
                 '"latency_ms":1,"k":1,"k":2}')
    path = tmp_path / "nasty.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "t.duckdb"
    with Store.open(db, write=True) as store:
        ingest_paths(store, [str(path)], chunk_bytes=8 * 1024)  # many batches
        # a batch that hits a stored event_id (a duplicate split from its twin by a batch
        # boundary) is redone keeping a subset: only those hash the stored rows instead
        assert len(used) > 10 and used.count(False) == redone.count(True)
        used.clear()
        # again, plus a new line: every batch hits stored keys, its digest hashes what it kept
        path.write_text("\n".join(lines) + "\n" + json.dumps(event(9999)) + "\n", encoding="utf-8")
        summary = ingest_paths(store, [str(path)], chunk_bytes=8 * 1024)
        assert summary.accepted == 1 and used and not any(used)
    r = _verify(db)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["intact"]


@pytest.mark.parametrize("tamper, needle", [
    ("UPDATE events SET latency_ms = 1 WHERE event_id = 'e2'", "edited"),
    ("DELETE FROM events WHERE event_id = 'e3'", "deleted"),
    ("INSERT INTO events SELECT * REPLACE ('forged' AS event_id) FROM events WHERE event_id = 'e1'", "inserted"),
    ("UPDATE rejects SET raw = 'x'", "edited"),
])
def test_verify_fails_with_exit_5_naming_the_batch_entry_when_rows_change_behind_toolctl(tmp_path, tamper, needle):
    db = _ingest(tmp_path)
    entry = duckdb.connect(str(db), read_only=True).execute(
        "SELECT seq FROM ledger WHERE kind = 'ingest_batch'").fetchall()[0][0]
    con = duckdb.connect(str(db))
    con.execute(tamper)
    con.close()
    r = _verify(db)
    assert r.returncode == 5
    doc = json.loads(r.stdout)
    assert not doc["intact"] and doc["problems"][0]["seq"] == entry and needle in doc["problems"][0]["problem"]
    assert f"ledger broken at entry {entry}" in r.stderr


def test_rows_under_an_unknown_batch_id_are_reported(tmp_path):
    db = _ingest(tmp_path)
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO events SELECT * REPLACE ('forged' AS event_id, 999 AS batch_id) FROM events LIMIT 1")
    con.close()
    r = _verify(db)
    assert r.returncode == 5 and "batch 999" in r.stdout and "rows outside the ledger" in r.stderr


def test_altering_a_ledger_entry_or_deleting_one_breaks_the_chain(tmp_path):
    db = _ingest(tmp_path)
    _ingest(tmp_path, name="b.jsonl", start=10)
    con = duckdb.connect(str(db))
    con.execute("UPDATE ledger SET source = '/elsewhere' WHERE seq = 2")
    con.close()
    doc = json.loads(_verify(db).stdout)
    assert doc["problems"][0]["seq"] == 2 and "altered" in doc["problems"][0]["problem"]

    db2 = tmp_path / "second"
    db2.mkdir()
    db2 = _ingest(db2)
    _ingest(db2.parent, name="b.jsonl", start=10)
    con = duckdb.connect(str(db2))
    con.execute("DELETE FROM ledger WHERE seq = 2")
    con.close()
    r = _verify(db2)
    assert r.returncode == 5 and json.loads(r.stdout)["problems"][0]["seq"] == 3


def _edit_and_rewrite_chain(db, *, clear_hmacs: bool) -> int:
    """What someone holding only the file can do: edit every event's latency, then recompute
    each batch digest and the whole hash chain (and clear the HMACs, or leave them stale).
    Returns the newest entry's seq."""
    con = duckdb.connect(str(db))
    con.execute("UPDATE events SET latency_ms = 0")
    entries = con.execute("SELECT seq, kind, created_at, batch_id, source, source_sha256, row_count,"
                          " rows_digest, payload FROM ledger ORDER BY seq").fetchall()
    store = Store(con, None, read_only=False)
    prev = ""
    for seq, kind, created, bid, src, sha, cnt, dig, payload in entries:
        if bid is not None:
            cnt, dig = ledger.batch_digest(store, bid)
        e = dict(seq=seq, kind=kind, created_at=created, batch_id=bid, source=src, source_sha256=sha,
                 row_count=cnt, rows_digest=dig, payload=json.loads(payload), prev_hash=prev)
        h = ledger.entry_hash(e)
        con.execute("UPDATE ledger SET row_count = ?, rows_digest = ?, prev_hash = ?, entry_hash = ?"
                    + (", hmac = NULL" if clear_hmacs else "") + " WHERE seq = ?", [cnt, dig, prev, h, seq])
        prev = h
    con.close()
    return entries[-1][0]


def test_with_a_key_a_chain_recomputed_without_it_is_caught(tmp_path):
    key = {"TOOLCTL_LEDGER_KEY": "k3y-for-tests"}
    db = tmp_path / "t.duckdb"
    r = run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "a.jsonl", [event(1)]), env=key)
    assert r.returncode == 0, r.stderr
    assert _verify(db, env=key).returncode == 0
    # Someone with only the file edits a row and rewrites digest + hashes consistently.
    _edit_and_rewrite_chain(db, clear_hmacs=False)
    assert _verify(db).returncode == 0  # without the key the rewrite is undetectable…
    r = _verify(db, env=key)  # …with it, the HMAC no longer matches
    assert r.returncode == 5 and "HMAC" in r.stdout


def test_record_event_chains_control_plane_changes_and_a_prune_entry_keeps_verify_passing(tmp_path):
    db = _ingest(tmp_path)
    with Store.open(db, write=True) as store:
        e = ledger.record_event(store, "baseline_save", {"name": "v1"})
        assert e["kind"] == "baseline_save" and e["payload"] == {"name": "v1"}
        store.execute("DELETE FROM events WHERE event_id IN ('e0', 'e1')")
        assert not ledger.verify(store).intact  # a delete outside a prune is tampering
        ledger.record_prune(store, [1], {"older_than": "2026-01-01"})
        report = ledger.verify(store)
        assert report.intact, report.problems
        store.execute("DELETE FROM events WHERE event_id = 'e2'")
        assert "deleted" in ledger.verify(store).problems[0].what


def test_rows_stored_before_the_ledger_are_adopted_once_and_an_emptied_ledger_blesses_nothing(tmp_path):
    db = tmp_path / "t.duckdb"
    _ingest(tmp_path)
    con = duckdb.connect(str(db))  # simulate a store written before migration 0004
    con.execute("DELETE FROM ledger")
    con.execute("DELETE FROM audit_settings WHERE key = 'ledger_started'")
    con.close()
    with Store.open(db, write=True) as store:
        ledger.record_event(store, "config", {"retention_days": 30})
        kinds = [e["kind"] for e in ledger.list_entries(store)]
        assert kinds == ["config", "adopt"] and ledger.verify(store).intact
    con = duckdb.connect(str(db))  # now someone edits a row and empties the ledger
    con.execute("UPDATE events SET tool = 'forged' WHERE event_id = 'e1'")
    con.execute("DELETE FROM ledger")
    con.close()
    _ingest(tmp_path, name="b.jsonl", start=10)
    r = _verify(db)
    assert r.returncode == 5 and "no ledger entry records" in r.stdout


def test_gate_history_and_baselines_are_vouched_for_by_their_ledger_entries(tmp_path):
    """Found by fuzzing: a gate decision or baseline entry carried no digest, so editing the
    stored check outcomes flipped the next gate's verdict and `audit verify` said intact."""
    import shutil

    db = tmp_path / "t.duckdb"
    docs = [event(i, version="v1" if i % 2 else "v2", ts=f"2026-11-24T06:{i:02d}:00Z") for i in range(40)]
    assert run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "a.jsonl", docs)).returncode == 0
    gate = run_toolctl("--db", db, "gate", "--baseline", "v1", "--candidate", "v2",
                       "--until", "2026-11-24T07:00:00Z")
    assert gate.returncode in (0, 10, 30), gate.stderr
    assert run_toolctl("--db", db, "baseline", "save", "b1", "--version", "v1").returncode == 0
    assert _verify(db).returncode == 0
    cases = [
        ("UPDATE gate_check_results SET outcome = 'pass'", "gate evaluation 1: stored rows were edited"),
        ("UPDATE gate_evaluations SET verdict = 'promote'", "gate evaluation 1: stored rows were edited"),
        ("DELETE FROM gate_check_results", "gate evaluation 1: "),
        ("INSERT INTO gate_evaluations SELECT * REPLACE (99 AS evaluation_id) FROM gate_evaluations",
         "gate evaluation 99: no ledger entry records it"),
        ("UPDATE baseline_tools SET p95_ms = p95_ms * 100", "baseline 'b1': stored rows were edited"),
        ("DELETE FROM baseline_tools", "baseline 'b1': "),
    ]
    for sql, needle in cases:
        copy = tmp_path / "copy.duckdb"
        shutil.copyfile(db, copy)
        with Store.open(copy, write=True) as store:
            store.execute(sql)
            problems = [p.what for p in ledger.verify(store).problems]
        assert any(needle in p for p in problems), (sql, problems)
    # Deleting a baseline through toolctl is an entry too: still intact.
    assert run_toolctl("--db", db, "baseline", "delete", "b1").returncode == 0
    assert _verify(db).returncode == 0


@pytest.mark.parametrize("tamper", [
    "UPDATE ledger SET payload = '[]' WHERE seq = 1",
    "UPDATE ledger SET payload = '\"text\"' WHERE seq = 1",
    "UPDATE ledger SET row_count = NULL WHERE seq = 1",
    "UPDATE ledger SET payload = '{\"batch_digests\": 5}' WHERE seq = 1",
    "UPDATE ledger SET payload = '{\"batch_digests\": {\"1\": {}}}' WHERE seq = 1",
    "UPDATE ledger SET kind = 'gate_decision', payload = '{\"evaluation_id\": 1, \"rows\": 7}' WHERE seq = 1",
])
def test_an_entry_edited_into_the_wrong_shape_is_reported_as_altered_with_exit_5(tmp_path, tamper):
    """Found by fuzzing: a ledger entry whose payload or row_count was edited into a shape
    toolctl never writes made `audit verify` and `db prune` crash with a traceback (exit 1)
    instead of naming the altered entry (exit 5)."""
    db = _ingest(tmp_path)
    con = duckdb.connect(str(db))
    con.execute(tamper)
    con.close()
    r = _verify(db)
    assert r.returncode == 5, r.stderr
    assert "Traceback" not in r.stderr and "ledger broken at entry 1" in r.stderr
    problems = json.loads(r.stdout)["problems"]
    assert any(p["seq"] == 1 and "altered" in p["problem"] for p in problems)
    r = run_toolctl("--db", db, "db", "prune", "--older-than", "1d")
    assert r.returncode == 5 and "Traceback" not in r.stderr, r.stderr
    assert duckdb.connect(str(db), read_only=True).execute("SELECT count(*) FROM events").fetchone()[0] == 6


def test_with_a_key_a_chain_rewritten_unsigned_is_caught(tmp_path):
    """Found by fuzzing: someone holding only the file edited a row, recomputed the digests
    and the chain and cleared every HMAC; verify with the key said intact (0 signed entries
    checked), though a signed ledger promises a rewrite without the key is caught."""
    key = {"TOOLCTL_LEDGER_KEY": "k3y-for-tests"}
    db = tmp_path / "t.duckdb"
    r = run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "a.jsonl", [event(1), event(2)]), env=key)
    assert r.returncode == 0, r.stderr
    last_seq = _edit_and_rewrite_chain(db, clear_hmacs=True)
    assert _verify(db).returncode == 0  # without the key the rewrite is undetectable…
    r = _verify(db, env=key)  # …with it, a ledger with no signed entry is not intact
    assert r.returncode == 5, r.stdout
    assert f"ledger broken at entry {last_seq}" in r.stderr and "no entry is signed" in r.stderr


@pytest.mark.parametrize("tamper, missing", [
    ("DROP TABLE ledger", "table ledger"),
    ("ALTER TABLE ledger DROP COLUMN hmac", "column ledger.hmac"),
    ("DROP TABLE rejects", "table rejects"),
    ("DROP VIEW tool_calls; DROP TABLE events", "table events"),
    ("DROP TABLE gate_check_results", "table gate_check_results"),
])
def test_a_table_or_column_dropped_outside_toolctl_is_tampering_exit_5(tmp_path, tamper, missing):
    """Found by fuzzing: `audit verify` on a store whose ledger (or a table it digests) was
    dropped crashed with a DuckDB catalog traceback (exit 1) instead of exit 5."""
    db = _ingest(tmp_path)
    con = duckdb.connect(str(db))
    con.execute(tamper)
    con.close()
    r = _verify(db)
    assert r.returncode == 5 and "Traceback" not in r.stderr, r.stderr
    assert f"schema was changed outside toolctl: {missing} is missing" in r.stderr and "Hint:" in r.stderr


def test_every_problem_line_says_where_rows_no_entry_records_are(tmp_path):
    """Found by fuzzing: after the first problem, rows under batch ids no entry records were
    listed as "also: entry None: …"."""
    db = _ingest(tmp_path)
    con = duckdb.connect(str(db))
    for bid in (998, 999):
        con.execute("INSERT INTO events SELECT * REPLACE ('f' || $b AS event_id, $b AS batch_id)"
                    " FROM events LIMIT 1", {"b": bid})
    con.close()
    r = run_toolctl("--db", db, "audit", "verify")
    assert r.returncode == 5
    assert "entry None" not in r.stderr
    assert "  also: rows outside the ledger: batch 999" in r.stderr, r.stderr
