"""The store owns its schema, migrates on write, and fails clearly when it cannot open."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from toolctl.errors import SchemaVersionError, StoreBusyError
from toolctl.store import Store, latest_schema_version, migrations


def test_migrations_are_numbered_without_gaps():
    versions = [v for v, _, _ in migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_opening_for_write_creates_and_migrates(tmp_path):
    path = tmp_path / "nested" / "s.duckdb"
    with Store.open(path, write=True) as store:
        assert store.schema_version() == latest_schema_version()
        names = [r[0] for r in store.execute("SELECT name FROM schema_migrations ORDER BY version").fetchall()]
    assert names[0] == "initial"
    with Store.open(path, write=True) as store:  # idempotent
        assert store.schema_version() == latest_schema_version()


def test_read_of_missing_store_is_empty_not_an_error(tmp_path):
    with Store.open(tmp_path / "absent.duckdb", write=False) as store:
        assert store.scalar("SELECT count(*) FROM events") == 0
    assert not (tmp_path / "absent.duckdb").exists()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store.open(path, write=True) as store:
        store.execute("INSERT INTO schema_migrations VALUES (999, 'future', now()::TIMESTAMP)")
    with pytest.raises(SchemaVersionError) as info:
        Store.open(path, write=True)
    assert "upgrade toolctl" in info.value.hint
    with pytest.raises(SchemaVersionError):
        Store.open(path, write=False)


def _hold_lock(path, ready, release):
    import duckdb

    conn = duckdb.connect(path)
    ready.set()
    release.wait(30)
    conn.close()


def test_busy_store_fails_with_the_holder_named(tmp_path):
    path = str(tmp_path / "s.duckdb")
    Store.open(path, write=True).close()
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(path, ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        started = time.monotonic()
        with pytest.raises(StoreBusyError) as info:
            Store.open(path, write=False, wait_seconds=0.3)
        assert time.monotonic() - started < 10
        assert "locked" in info.value.message and info.value.hint
    finally:
        release.set()
        proc.join(30)


def test_bulk_load_and_collectors_space_checkpoints_and_ingest_restores_the_default(tmp_path):
    # A checkpoint serializes indexes that grow with the store (benchmarks/writes_at_scale.py):
    # ingest spaces them for the load only; `toolctl serve` for as long as it holds the store.
    from collector.server import ServerConfig, create_app

    def threshold(store):
        return store.scalar("SELECT current_setting('checkpoint_threshold')")

    with Store.open(tmp_path / "s.duckdb", write=True) as store:
        default = threshold(store)
        with store.bulk_load():
            assert threshold(store) != default
        assert threshold(store) == default
        create_app(store, ServerConfig(db_path=tmp_path / "s.duckdb"))
        assert threshold(store) != default


def test_closing_a_store_cancels_a_busy_companion_instead_of_failing(tmp_path):
    # An error in the main thread closes the store while a helper thread (ingest's parser,
    # the gate's latency fetch) may still run a statement on its companion connection.
    # DuckDB refuses to close a busy connection; the store must cancel and wait instead,
    # so the caller sees its own error, not "connection is busy".
    import threading

    store = Store.open(tmp_path / "s.duckdb", write=True)
    other = store.companion()
    started, outcome = threading.Event(), {}

    def busy():
        started.set()
        try:
            other.execute("SELECT count(*) FROM (SELECT md5(i::VARCHAR) m FROM range(200000000) t(i) ORDER BY m)")
            outcome["finished"] = True
        except Exception as exc:  # interrupted
            outcome["error"] = type(exc).__name__
        finally:
            other.close()

    worker = threading.Thread(target=busy)
    worker.start()
    assert started.wait(5)
    time.sleep(0.3)  # let the statement start
    began = time.monotonic()
    store.close()  # must not raise
    worker.join(10)
    assert not worker.is_alive() and "error" in outcome and time.monotonic() - began < 5
