"""`toolctl db info|migrate|prune|vacuum|backup`: real stores, real subprocesses for exit codes.

Known answers come from the input files the tests write (how many events each file holds,
their times), never from the code under test.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, run_toolctl, write_jsonl
from tests.test_collector_server import serve  # noqa: F401 (fixture)

OLD_TS = "2026-01-01T00:00:00Z"  # far older than 30 days before any date these tests run


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ev(i: int, ts: str, **kw) -> dict:
    doc = {"event_id": f"e{i}", "ts": ts, "tool": "search" if i % 2 else "fetch", "status": "ok",
           "latency_ms": float(i % 97), "args": {"q": "x" * 200, "n": i}}
    doc.update(kw)
    return doc


@pytest.fixture(scope="module")
def _template(tmp_path_factory):
    """Three ingest batches (one file each): all old (+2 rejects), all recent, straddling.
    Ingested once through the real pipeline; each test gets its own copy of the file."""
    from collector.pipeline import ingest_paths
    from toolctl.store import Store

    base = tmp_path_factory.mktemp("upkeep")
    recent = _iso(datetime.now(timezone.utc) - timedelta(hours=1))
    old = [_ev(i, OLD_TS) for i in range(3000)] + ["{broken", '{"event_id": "x"}']
    new = [_ev(i, recent) for i in range(3000, 3040)]
    mixed = [_ev(3100, OLD_TS), _ev(3101, recent), _ev(3102, recent)]
    db = base / "template.duckdb"
    with Store.open(db, write=True) as st:
        for name, docs in (("old", old), ("new", new), ("mixed", mixed)):
            ingest_paths(st, [str(write_jsonl(base / f"{name}.jsonl", docs))])
    return db, {"old": (3000, 2), "new": (40, 0), "mixed": (3, 0), "recent": recent}


@pytest.fixture
def store(_template, tmp_path):
    import shutil

    template, known = _template
    db = tmp_path / "s.duckdb"
    shutil.copyfile(template, db)
    return db, known


def _json(*args):
    r = run_toolctl(*args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _counts(db: Path) -> dict[str, int]:
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]  # fixed names
                for t in ("events", "spans", "rejects", "batches", "ledger")}
    finally:
        conn.close()


def _batch_of(db: Path, event_id: str) -> int:
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return conn.execute("SELECT batch_id FROM events WHERE event_id = ?", [event_id]).fetchall()[0][0]
    finally:
        conn.close()


def _sql(db: Path, sql: str, params=None) -> None:
    conn = duckdb.connect(str(db))
    try:
        conn.execute(sql, params) if params else conn.execute(sql)
    finally:
        conn.close()


# -- info ---------------------------------------------------------------------------------------
def test_db_info_reports_the_known_row_counts_time_range_and_schema(store):
    db, known = store
    doc = _json("--db", db, "db", "info")
    assert doc["path"] == str(db) and doc["size_bytes"] == db.stat().st_size + (
        Path(str(db) + ".wal").stat().st_size if Path(str(db) + ".wal").exists() else 0)
    events = known["old"][0] + known["new"][0] + known["mixed"][0]
    assert doc["tables"]["events"] == events and doc["tables"]["rejects"] == known["old"][1]
    assert doc["tables"]["batches"] == 3 and doc["tables"]["spans"] == 0
    assert doc["attempts"]["count"] == events  # stored rows are attempts, not calls
    assert doc["attempts"]["first_ts"] == "2026-01-01T00:00:00Z"
    assert doc["attempts"]["last_ts"] == known["recent"]
    assert "tool_calls" not in doc
    # 3 batches + 3 fully read sources, as the ledger records ingests
    assert doc["ledger_entries"] == doc["tables"]["ledger"] == 6
    migrations = sorted((REPO / "toolctl/store/migrations").glob("[0-9][0-9][0-9][0-9]_*.sql"))
    assert doc["schema_version"] == doc["latest_schema_version"] == len(migrations)
    table = run_toolctl("--db", db, "db", "info")
    assert table.returncode == 0 and "schema   version" in table.stdout
    assert f"attempts {events:,}: 2026-01-01T00:00:00Z … {known['recent']} (UTC)" in table.stdout
    assert "calls" not in table.stdout


# -- migrate ------------------------------------------------------------------------------------
def _old_store(path: Path, upto: int) -> None:
    """A store as an older toolctl left it: only the first ``upto`` migrations applied."""
    files = sorted((REPO / "toolctl/store/migrations").glob("[0-9][0-9][0-9][0-9]_*.sql"))
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
                 " applied_at TIMESTAMP NOT NULL)")
    for f in files[:upto]:
        conn.execute(f.read_text())
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)",
                     [int(f.name[:4]), f.stem[5:]])
    conn.close()
    return [f.stem for f in files[upto:]]


def test_migrate_applies_the_pending_migrations_of_an_old_store_then_reports_current(tmp_path):
    db = tmp_path / "old.duckdb"
    pending = _old_store(db, 2)
    assert pending, "needs at least three migrations"
    refused = run_toolctl("--db", db, "db", "info")
    assert refused.returncode == 4 and "toolctl db migrate" in refused.stderr
    doc = _json("--db", db, "db", "migrate")
    assert doc["from_version"] == 2 and doc["to_version"] == 2 + len(pending)
    assert doc["applied"] == pending
    again = _json("--db", db, "db", "migrate")
    assert again["applied"] == [] and again["from_version"] == again["to_version"] == 2 + len(pending)
    assert _json("--db", db, "db", "info")["schema_version"] == 2 + len(pending)


# -- prune --------------------------------------------------------------------------------------
def test_prune_removes_only_whole_old_batches_and_verify_reports_them_pruned(store):
    db, known = store
    old_batch, mixed_batch = _batch_of(db, "e0"), _batch_of(db, "e3100")
    before = _counts(db)
    doc = _json("--db", db, "db", "prune", "--older-than", "30d")
    assert [b["batch_id"] for b in doc["batches"]] == [old_batch]
    assert (doc["events"], doc["rejects"]) == known["old"]
    assert [k["batch_id"] for k in doc["kept"]] == [mixed_batch]  # straddles: kept whole
    after = _counts(db)
    assert after["events"] == before["events"] - known["old"][0]
    assert after["rejects"] == before["rejects"] - known["old"][1]
    assert after["ledger"] == before["ledger"] + 1 and doc["ledger_seq"] == after["ledger"]
    verify = run_toolctl("--db", db, "audit", "verify", "--format", "json")
    assert verify.returncode == 0, verify.stderr
    report = json.loads(verify.stdout)
    assert report["pruned_batches"] == [{"batch_id": old_batch, "pruned_by": doc["ledger_seq"]}]
    human = run_toolctl("--db", db, "audit", "verify")
    assert human.returncode == 0 and f"pruned by entry {doc['ledger_seq']}" in human.stdout
    entry = json.loads(run_toolctl("--db", db, "audit", "log", "--kind", "prune", "--format", "json").stdout)[0]
    pruned = entry["payload"]["pruned_batches"][str(old_batch)]
    assert pruned["row_count"] == sum(known["old"]) and len(pruned["rows_digest"]) == 64


def test_rows_deleted_or_inserted_after_a_prune_without_an_entry_are_still_tampering(store):
    db, _ = store
    old_batch, new_batch = _batch_of(db, "e0"), _batch_of(db, "e3000")
    assert run_toolctl("--db", db, "db", "prune", "--older-than", "30d").returncode == 0
    _sql(db, "DELETE FROM events WHERE event_id = 'e3005'")
    r = run_toolctl("--db", db, "audit", "verify")
    assert r.returncode == 5 and f"batch {new_batch}: 1 stored row(s) deleted" in r.stderr
    _sql(db, "INSERT INTO events SELECT * REPLACE ('zz' AS event_id, ? AS batch_id) FROM events LIMIT 1",
         [old_batch])
    doc = json.loads(run_toolctl("--db", db, "audit", "verify", "--format", "json").stdout)
    assert any(f"batch {old_batch}:" in p["problem"] and "pruned by entry" in p["problem"]
               for p in doc["problems"])


def test_a_prune_entry_whose_digest_differs_from_the_ledger_does_not_excuse_the_deletion(store):
    """Someone edits rows, deletes the batch and writes a prune entry over the edited digest:
    the entry is chained correctly, but verify compares it with what the batch entry recorded."""
    from toolctl.audit import ledger
    from toolctl.store import Store

    db, _ = store
    old_batch = _batch_of(db, "e0")
    with Store.open(db, write=True) as st, st.transaction():
        st.execute("UPDATE events SET tool = 'edited' WHERE event_id = 'e7'").fetchall()
        count, digest = ledger.batch_digest(st, old_batch)
        st.execute("DELETE FROM events WHERE batch_id = ?", [old_batch]).fetchall()
        st.execute("DELETE FROM rejects WHERE batch_id = ?", [old_batch]).fetchall()
        ledger.record_pruned_batches(st, {old_batch: {"row_count": count, "rows_digest": digest,
                                                      "recorded_by": 1}}, {"cutoff": "forged"})
    r = run_toolctl("--db", db, "audit", "verify")
    assert r.returncode == 5
    assert f"prune entry's digest of batch {old_batch} differs from what entry" in r.stderr


def test_prune_keeps_batches_a_lake_of_this_store_has_not_received_unless_told(store, tmp_path):
    # A nightly prune after a week of failed `lake export` runs deleted rows the lake never got:
    # they were then in neither place.
    db, known = store
    lake = tmp_path / "lake"
    recent = _iso(datetime.now(timezone.utc) - timedelta(hours=3))
    assert run_toolctl("--db", db, "lake", "export", lake, "--since", recent).returncode == 0
    before = _counts(db)
    for dry in ((), ("--dry-run",)):
        r = run_toolctl("--db", db, "db", "prune", "--older-than", "30d", *dry)
        assert r.returncode == 2 and r.stdout == "", r.stderr
        error, hint = r.stderr.splitlines()
        assert error == (f"Error: {known['old'][0]:,} event(s) and 0 span(s) of the batches to prune are not "
                         f"in lake {lake.resolve()} yet; nothing was removed"), error
        assert hint == (f"Hint: run `toolctl lake export {lake.resolve()}` first, or pass --allow-unexported "
                        "to remove them anyway"), hint
    assert _counts(db) == before
    assert run_toolctl("--db", db, "lake", "export", lake).returncode == 0
    doc = _json("--db", db, "db", "prune", "--older-than", "30d")
    assert (doc["events"], doc["rejects"]) == known["old"]


def test_the_prune_hint_names_a_lake_path_with_spaces_so_it_can_be_pasted(store, tmp_path):
    db, _ = store
    lake = tmp_path / "my lake"
    recent = _iso(datetime.now(timezone.utc) - timedelta(hours=3))
    assert run_toolctl("--db", db, "lake", "export", lake, "--since", recent).returncode == 0
    r = run_toolctl("--db", db, "db", "prune", "--older-than", "30d")
    assert r.returncode == 2
    assert f"run `toolctl lake export '{lake.resolve()}'` first" in r.stderr, r.stderr


def test_prune_allow_unexported_removes_what_no_lake_has(store, tmp_path):
    db, known = store
    recent = _iso(datetime.now(timezone.utc) - timedelta(hours=3))
    assert run_toolctl("--db", db, "lake", "export", tmp_path / "lake", "--since", recent).returncode == 0
    doc = _json("--db", db, "db", "prune", "--older-than", "30d", "--allow-unexported")
    assert (doc["events"], doc["rejects"]) == known["old"]


def test_prune_refuses_a_batch_altered_before_the_prune_and_removes_nothing(store):
    db, _ = store
    _sql(db, "UPDATE events SET tool = 'edited' WHERE event_id = 'e7'")
    before = _counts(db)
    r = run_toolctl("--db", db, "db", "prune", "--older-than", "30d")
    assert r.returncode == 5 and "cannot be pruned" in r.stderr and "audit verify" in r.stderr
    assert _counts(db) == before


def test_prune_dry_run_lists_the_same_batches_and_changes_nothing(store):
    db, _ = store
    before, size = _counts(db), db.stat().st_size
    plan = _json("--db", db, "db", "prune", "--older-than", "30d", "--dry-run")
    assert plan["dry_run"] is True and plan["ledger_seq"] is None
    assert _counts(db) == before and db.stat().st_size == size
    done = _json("--db", db, "db", "prune", "--older-than", "30d")
    assert [b["batch_id"] for b in plan["batches"]] == [b["batch_id"] for b in done["batches"]]
    assert (plan["events"], plan["rejects"]) == (done["events"], done["rejects"])


def test_prune_twice_removes_nothing_the_second_time_and_writes_no_entry(store):
    db, _ = store
    _json("--db", db, "db", "prune", "--older-than", "30d")
    once = _counts(db)
    again = _json("--db", db, "db", "prune", "--older-than", "30d")
    assert again["batches"] == [] and again["events"] == 0 and again["ledger_seq"] is None
    assert _counts(db) == once
    assert run_toolctl("--db", db, "audit", "verify").returncode == 0


def test_prune_rejects_an_age_it_cannot_read(store):
    db, _ = store
    r = run_toolctl("--db", db, "db", "prune", "--older-than", "thirty days")
    assert r.returncode == 2 and "--older-than" in r.stderr and "30d" in r.stderr


# -- vacuum and backup ----------------------------------------------------------------------------
def test_vacuum_after_prune_shrinks_the_file_and_keeps_every_row_and_the_ledger(store):
    db, _ = store
    _json("--db", db, "db", "prune", "--older-than", "30d")
    kept = _counts(db)
    doc = _json("--db", db, "db", "vacuum")
    assert doc["size_after"] < doc["size_before"]
    assert doc["size_after"] == db.stat().st_size
    assert _counts(db) == kept
    assert run_toolctl("--db", db, "audit", "verify").returncode == 0
    # the store still takes writes after the swap (sequences survived the rewrite)
    r = run_toolctl("--db", db, "ingest", write_jsonl(db.parent / "more.jsonl", [_ev(9000, OLD_TS)]))
    assert r.returncode == 0, r.stderr
    assert _counts(db)["batches"] == kept["batches"] + 1
    assert run_toolctl("--db", db, "audit", "verify").returncode == 0


def test_backup_is_a_checked_copy_that_verifies_and_is_not_overwritten_without_force(store, tmp_path):
    db, _ = store
    copy = tmp_path / "backup.duckdb"
    doc = _json("--db", db, "db", "backup", copy)
    assert doc["path"] == str(copy) and copy.exists()
    assert _counts(copy) == _counts(db)
    assert doc["tables"]["events"] == _counts(db)["events"]
    assert run_toolctl("--db", copy, "audit", "verify").returncode == 0
    again = run_toolctl("--db", db, "db", "backup", copy)
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_toolctl("--db", db, "db", "backup", copy, "--force").returncode == 0
    assert not list(tmp_path.glob(".backup.duckdb.*"))  # no temporary file left behind


# -- while `toolctl serve` holds the store --------------------------------------------------------
@pytest.mark.slow
def test_while_serving_info_prune_and_backup_go_through_the_collector_and_vacuum_refuses(store, serve, tmp_path):
    db, known = store
    local_info = _json("--db", db, "db", "info")
    s = serve(db=db)
    served = _json("--db", db, "db", "info")
    assert served["tables"] == local_info["tables"]
    assert _json("--db", db, "db", "migrate")["applied"] == []
    plan = _json("--db", db, "db", "prune", "--older-than", "30d", "--dry-run")
    assert (plan["events"], plan["rejects"]) == known["old"] and plan["ledger_seq"] is None
    doc = _json("--db", db, "db", "prune", "--older-than", "30d")
    assert (doc["events"], doc["rejects"]) == known["old"]
    backup = _json("--db", db, "db", "backup", tmp_path / "hot.duckdb")
    assert backup["tables"]["events"] == local_info["tables"]["events"] - known["old"][0]
    r = run_toolctl("--db", db, "db", "vacuum")
    assert r.returncode == 4 and "toolctl serve" in r.stderr and "SIGTERM" in r.stderr
    assert run_toolctl("--db", db, "audit", "verify").returncode == 0
    assert s.stop() == 0
    assert _counts(tmp_path / "hot.duckdb") == _counts(db)
    assert run_toolctl("--db", tmp_path / "hot.duckdb", "audit", "verify").returncode == 0


@pytest.mark.parametrize("upgrade", [["db", "migrate"], ["db", "vacuum"], ["db", "backup", "{copy}"]])
def test_rows_of_a_store_older_than_the_ledger_verify_intact_right_after_migrate(tmp_path, upgrade):
    """Found by fuzzing: `db migrate` (or `db vacuum`, `db backup`, which migrate on opening)
    of a store written before the ledger (migration 0004) left its rows unadopted until the
    next write, so `audit verify` right after the upgrade exited 5 calling every batch
    "inserted outside toolctl"."""
    db = tmp_path / "old.duckdb"
    _old_store(db, 3)
    conn = duckdb.connect(str(db))
    conn.execute("INSERT INTO batches VALUES (1, 'file', 'a.jsonl', 1, 2, 2, 2, 0, 0, TIMESTAMP '2026-01-01')")
    conn.execute("INSERT INTO events (event_id, ts, tool, status, latency_ms, schema_version, attempt,"
                 " batch_id) VALUES ('e1', TIMESTAMP '2026-01-01', 'search', 'ok', 1, 1, 1, 1),"
                 " ('e2', TIMESTAMP '2026-01-01', 'search', 'ok', 2, 1, 1, 1)")
    conn.close()
    copy = tmp_path / "copy.duckdb"
    r = run_toolctl("--db", db, *[a.format(copy=copy) for a in upgrade])
    assert r.returncode == 0, r.stderr
    for store in [db] + ([copy] if "backup" in upgrade else []):
        r = run_toolctl("--db", store, "audit", "verify", "--format", "json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["intact"] and doc["rows"] == 2
        log = _json("--db", store, "audit", "log")
        assert [e["kind"] for e in log] == ["adopt"]
    conn = duckdb.connect(str(db))  # and the adopted rows are vouched for
    conn.execute("UPDATE events SET latency_ms = 9 WHERE event_id = 'e1'")
    conn.close()
    assert run_toolctl("--db", db, "audit", "verify").returncode == 5


def test_prune_asks_the_lake_now_at_a_path_not_one_deleted_and_recreated_there(store, tmp_path):
    # The lake was deleted and exported again, as the refusal's hint says: a new lake (new
    # lake_id) at the same path, holding every row. The old lake's lake_state row still lacked
    # them, so prune kept refusing with the same message and hint for ever.
    import shutil

    from toolctl.errors import UsageError
    from toolctl.lake.export import export_pending
    from toolctl.store import Store
    from toolctl.store.upkeep import prune_store

    db, known = store
    lake = tmp_path / "lake"
    cutoff = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=30)
    with Store.open(db, write=True) as st:
        export_pending(st, lake, since=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=3))
    shutil.rmtree(lake)
    with Store.open(db, write=True) as st:
        with pytest.raises(UsageError, match=f"not in lake {lake.resolve()} yet"):
            prune_store(st, cutoff=cutoff, dry_run=True)
        export_pending(st, lake)
        assert prune_store(st, cutoff=cutoff, dry_run=True)["events"] == known["old"][0]
