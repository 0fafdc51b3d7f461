"""Byte-size options take what operators write (64MiB, 1GB, 512k) and refuse the rest with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_toolctl
from toolctl.sizes import format_size, parse_size

SAMPLE = Path(__file__).resolve().parents[1] / "sample_logs"


@pytest.mark.parametrize("text, n", [
    ("16777216", 16777216), ("64MiB", 64 * 2**20), ("64mib", 64 * 2**20), ("64 MiB", 64 * 2**20),
    ("512k", 512 * 1024), ("16M", 16 * 2**20), ("1G", 2**30), ("2TiB", 2 * 2**40), ("100B", 100),
    ("1kB", 1000), ("1KB", 1000), ("1.5MB", 1_500_000), ("1.5MiB", 3 * 2**19), (".5KiB", 512),
    ("0.1B", 0), ("1.0000001KiB", 1024), (" 4096 ", 4096),
])
def test_sizes_parse_binary_and_decimal_units_exactly(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "MiB", "-1", "1e6", "64Mb2", "1.2.3", "64 MiBs", "0x10", "½MiB", "٤KiB", "{x}"])
def test_what_is_not_a_size_is_refused_with_the_accepted_forms(text):
    with pytest.raises(ValueError, match="is not a size: use bytes"):
        parse_size(text)


def test_sizes_format_in_the_largest_dividing_binary_unit():
    assert [format_size(n) for n in (16 * 2**20, 4096, 1000, 0, 3 * 2**30)] == ["16MiB", "4KiB", "1000", "0", "3GiB"]


def test_ingest_batch_bytes_with_a_unit_stores_what_the_default_stores(tmp_path):
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    # ~50 batches of the sample (64KiB made ~400 and took 25 s of the suite's 10 minutes)
    small = run_toolctl("--db", a, "ingest", SAMPLE, "--batch-bytes", "512KiB", "--max-line-bytes", "1MiB",
                        "--format", "json")
    default = run_toolctl("--db", b, "ingest", SAMPLE, "--format", "json")
    assert small.returncode == default.returncode == 3, small.stderr  # the sample's rejected lines
    keys = ("lines", "accepted", "duplicates", "rejected")
    assert [json.loads(small.stdout)[k] for k in keys] == [json.loads(default.stdout)[k] for k in keys]
    assert run_toolctl("--db", a, "audit", "verify").returncode == 0


@pytest.mark.parametrize("args, message", [
    (("ingest", "x.jsonl", "--batch-bytes", "1KiB"), "1KiB is below the minimum of 4KiB (4096 bytes)"),
    (("ingest", "x.jsonl", "--max-line-bytes", "lots"), "'lots' is not a size"),
    (("serve", "--max-body-bytes", "512"), "512 is below the minimum of 1KiB (1024 bytes)"),
    (("serve", "--queue-max-bytes", "1.5 GiBs"), "'1.5 GiBs' is not a size"),
])
def test_a_bad_size_is_a_usage_error_naming_the_option_and_stores_nothing(tmp_path, args, message):
    db = tmp_path / "s.duckdb"
    res = run_toolctl("--db", db, *args)
    assert res.returncode == 2
    assert "Invalid value for '--" in res.stderr and message in res.stderr
    assert "Traceback" not in res.stderr and "Value error" not in res.stderr
    assert not db.exists()
