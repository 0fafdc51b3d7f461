"""A compactor that dies mid-way: the next one finishes or undoes its journalled work."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pyarrow.parquet as pq
import pytest

from collector.pipeline import ingest_paths
from tests.conftest import event, write_jsonl
from toolctl.lake import compact as compact_mod
from toolctl.lake.compact import compact, compaction_records
from toolctl.lake.export import export_pending
from toolctl.lake.layout import COLUMNS, list_files
from toolctl.lake.verify import verify_lake
from toolctl.store import Store


class Crash(Exception):
    pass


def _ingest(store, docs, path):
    ingest_paths(store, [str(write_jsonl(path, docs))])


@pytest.fixture
def lake_with_small_files(tmp_path):
    store = Store.open(tmp_path / "s.duckdb", write=True)
    lake = tmp_path / "lake"
    for rnd in range(3):
        _ingest(store, [event(100 * rnd + i, ts=f"2026-03-01T0{i % 2}:{i:02d}:00Z", latency_ms=float(i))
                        for i in range(30)], tmp_path / f"f{rnd}.jsonl")
        export_pending(store, lake)
    yield store, lake
    store.close()


def figures(lake):
    return duckdb.connect().sql(
        f"SELECT count(*), count(DISTINCT event_id), sum(latency_ms), quantile_cont(latency_ms, 0.9)"
        f" FROM read_parquet('{lake}/events/**/*.parquet')").fetchall()


def test_a_crash_after_the_output_appeared_is_finished_by_the_next_compactor(lake_with_small_files, monkeypatch):
    store, lake = lake_with_small_files
    before = figures(lake)
    real_finish = compact_mod._finish
    monkeypatch.setattr(compact_mod, "_finish", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        compact(store, lake, before=compact_mod.datetime(2026, 3, 2))
    pending = compaction_records(lake, pending=True)
    assert len(pending) == 1 and (lake / pending[0]["output"]["path"]).exists()
    monkeypatch.setattr(compact_mod, "_finish", real_finish)
    result = compact(store, lake, before=compact_mod.datetime(2026, 3, 2))
    assert result.recovered == [pending[0]["output"]["path"]]
    assert compaction_records(lake, pending=True) == []
    assert figures(lake) == before
    assert {f.partition for f in list_files(lake)} == {"events/dt=2026-03-01/hour=00", "events/dt=2026-03-01/hour=01"}
    assert len(list_files(lake)) == 2
    assert verify_lake(store, lake)["intact"]
    outputs = [json.loads(p)["output"]["path"] for (p,) in
               store.execute("SELECT payload FROM ledger WHERE kind = 'lake_compact'").fetchall()]
    assert pending[0]["output"]["path"] in outputs and len(outputs) == 2


def test_a_crash_before_the_output_appeared_is_undone(lake_with_small_files, monkeypatch):
    store, lake = lake_with_small_files
    before = figures(lake)
    files_before = sorted(f.path for f in list_files(lake))

    def no_publish(*a, **k):
        raise Crash()

    monkeypatch.setattr(compact_mod, "publish", no_publish)
    with pytest.raises(Crash):
        compact(store, lake, before=compact_mod.datetime(2026, 3, 2))
    assert sorted(f.path for f in list_files(lake)) == files_before  # inputs untouched
    assert figures(lake) == before and verify_lake(store, lake)["intact"]
    monkeypatch.undo()
    result = compact(store, lake, before=compact_mod.datetime(2026, 3, 2))
    assert len(result.recovered) == 1 and len(result.compacted) == 2
    assert compaction_records(lake, pending=True) == []
    assert list(lake.rglob("*.tmp")) == []
    assert figures(lake) == before and verify_lake(store, lake)["intact"]


def test_the_v1_file_schema_is_the_stores_columns(tmp_path):
    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        for table in ("events", "spans"):
            got = [tuple(r) for r in store.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?"
                " ORDER BY ordinal_position", [table]).fetchall()]
            assert got == list(COLUMNS[table])


def test_compaction_merges_files_before_and_after_a_nullable_column_was_appended(tmp_path, monkeypatch):
    """docs/lake.md: a nullable column added at the end keeps version 1; compaction must merge a
    partition whose older file lacks it (its rows get NULL there)."""
    from toolctl.lake import export as export_mod

    lake = tmp_path / "lake"
    v1_columns = [c for c, _ in COLUMNS["events"]]
    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        _ingest(store, [event(i, ts=f"2026-03-01T00:{i:02d}:00Z") for i in range(5)], tmp_path / "old.jsonl")
        export_pending(store, lake)  # written before the column existed
        _ingest(store, [event(10 + i, ts=f"2026-03-01T00:{30 + i:02d}:00Z") for i in range(3)], tmp_path / "new.jsonl")
        # What a newer toolctl does: a migration appends the column, the export writes it.
        store.execute("ALTER TABLE events ADD COLUMN region VARCHAR").fetchall()
        store.execute("UPDATE events SET region = 'eu' WHERE event_id IN ('e10', 'e11', 'e12')").fetchall()
        monkeypatch.setitem(export_mod.COLUMNS, "events", COLUMNS["events"] + (("region", "VARCHAR"),))
        export_pending(store, lake)
        files = list_files(lake, "events")
        assert len(files) == 2
        assert "region" not in pq.read_schema(lake / files[0].path).names
        assert pq.read_schema(lake / files[1].path).names[-1] == "region"

        done = compact(store, lake, before=datetime(2026, 3, 2))
        assert [c["partition"] for c in done.compacted] == ["events/dt=2026-03-01/hour=00"]
        [out] = list_files(lake, "events")
        table = pq.read_table(lake / out.path)
        assert table.schema.names == v1_columns + ["region"]
        assert dict(zip(table.column("event_id").to_pylist(), table.column("region").to_pylist())) == {
            **{f"e{i}": None for i in range(5)}, **{f"e{10 + i}": "eu" for i in range(3)}}
        assert verify_lake(store, lake)["intact"]
