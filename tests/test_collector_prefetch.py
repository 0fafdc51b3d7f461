"""collector.pipeline.prefetch: the reader runs one batch ahead without changing what is stored."""

from __future__ import annotations

import threading

import pytest

from collector.pipeline import prefetch


def test_prefetch_yields_every_item_in_order():
    assert list(prefetch(iter(range(1000)), depth=2)) == list(range(1000))


def test_a_producer_error_is_raised_at_its_place_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise EOFError("truncated")

    got = []
    with pytest.raises(EOFError, match="truncated"):
        for x in prefetch(items()):
            got.append(x)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer():
    produced = []
    finished = threading.Event()

    def items():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            finished.set()

    with pytest.raises(RuntimeError):
        for x in prefetch(items(), depth=1):
            if x == 3:
                raise RuntimeError("store refused the batch")
    assert finished.wait(5)  # the producer was not left reading the rest of the input
    assert len(produced) <= 3 + 1 + 2  # at most depth items beyond the one in hand (+ in flight)


def test_the_producer_runs_ahead_of_the_consumer():
    first_taken = threading.Event()
    second_made = threading.Event()

    def items():
        yield 1
        second_made.set()
        yield 2

    it = prefetch(items(), depth=1)
    assert next(it) == 1
    first_taken.set()
    assert second_made.wait(5)  # made while the consumer still holds item 1
    assert list(it) == [2]
