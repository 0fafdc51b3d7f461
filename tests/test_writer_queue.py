"""The serve writer commits a burst of requests in one transaction, and isolates failures."""

from __future__ import annotations


import pytest

from collector.writer_queue import WriteQueue
from toolctl.store import Store
from tests.conftest import submit_burst


def _insert(value):
    def run(store):
        with store.transaction():
            store.execute("INSERT INTO t VALUES (?)", [value])
        return value
    return run


def _fail(store):
    with store.transaction():
        store.execute("INSERT INTO t VALUES (-1)")
        raise RuntimeError("bad request")


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "q.duckdb", write=True)
    s.execute("CREATE TABLE t (v INTEGER)")
    yield s
    s.close()




def test_a_burst_of_requests_commits_as_one_transaction(store):
    queue = WriteQueue(store)
    queue.start()
    futures = submit_burst(queue, [_insert(i) for i in range(20)])
    assert [f.result(10) for f in futures] == list(range(20))
    queue.close(10)
    assert queue.group_commits >= 1 and queue.committed_jobs == 21
    assert store.scalar("SELECT count(*) FROM t") == 20


def test_one_failing_request_does_not_lose_the_rest_of_its_burst(store):
    queue = WriteQueue(store)
    queue.start()
    futures = submit_burst(queue, [_insert(1), _fail, _insert(2)])
    assert futures[0].result(10) == 1 and futures[2].result(10) == 2
    with pytest.raises(RuntimeError, match="bad request"):
        futures[1].result(10)
    queue.close(10)
    assert sorted(r[0] for r in store.execute("SELECT v FROM t").fetchall()) == [1, 2]
