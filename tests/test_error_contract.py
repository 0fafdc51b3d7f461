"""The error contract (README "Exit codes"): bad input is one `Error:` line and a `Hint:` on
stderr, the documented exit code, no traceback, nothing on stdout, nothing stored lost or
doubled. Cases found by a systematic sweep of every command's options and arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import event, run_toolctl, write_jsonl


def assert_error(proc, code, needle=""):
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode("utf-8", "replace")
    out = proc.stdout if isinstance(proc.stdout, str) else proc.stdout.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    assert proc.returncode == code, (proc.returncode, err)
    lines = err.splitlines()
    assert lines[0].startswith("Error: ") and needle in lines[0], err
    assert any(line.startswith("Hint: ") for line in lines[1:]), err
    assert out == "", out


def _stored(db):
    proc = run_toolctl("--db", db, "db", "info", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["tables"]


def test_ingest_from_a_closed_stdin_is_an_input_error_before_anything_is_stored(tmp_path):
    db = tmp_path / "s.duckdb"
    good = write_jsonl(tmp_path / "a.jsonl", [event(1)])
    proc = subprocess.run([sys.executable, "-m", "toolctl", "--db", str(db), "ingest", str(good), "-"],
                          capture_output=True, text=True, preexec_fn=lambda: os.close(0))
    assert_error(proc, 1, "stdin")
    assert _stored(db)["events"] == 0


def test_top_on_a_terminal_with_stdin_closed_prints_one_frame_not_a_traceback(tmp_path):
    import pty

    db = tmp_path / "s.duckdb"
    run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "a.jsonl", [event(1)]))
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "toolctl", "--db", str(db), "top",
                               "--until", "2026-11-24T06:01:00Z"],
                              stdout=slave, stderr=subprocess.PIPE, text=True, timeout=60,
                              preexec_fn=lambda: os.close(0))
    finally:
        os.close(slave)
        os.close(master)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("command", [["rejects"], ["audit", "search"], ["audit", "log"],
                                     ["audit", "duplicates"], ["gate", "history"]])
def test_a_limit_beyond_64_bits_means_all_rows_not_a_traceback(tmp_path, command):
    db = tmp_path / "s.duckdb"
    write_jsonl(tmp_path / "a.jsonl", [event(1, version="v1", idempotency_key="k", call_id="c1"),
                                       event(2, version="v2", idempotency_key="k", call_id="c2"), "oops"])
    assert run_toolctl("--db", db, "ingest", tmp_path / "a.jsonl").returncode == 3
    run_toolctl("--db", db, "gate", "--baseline", "v1", "--candidate", "v2")
    everything = run_toolctl("--db", db, *command, "--format", "json")
    assert everything.returncode == 0 and json.loads(everything.stdout), everything.stderr
    for limit in (2 ** 63, 2 ** 64, 10 ** 30):
        proc = run_toolctl("--db", db, *command, "--limit", limit, "--format", "json")
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.returncode == 0 and proc.stdout == everything.stdout, proc.stderr


@pytest.mark.parametrize("size", ["1TiB", "99999999999999999999999", "1000000T", "2GiB"])
def test_a_batch_size_no_read_can_allocate_is_a_usage_error_before_anything_is_stored(tmp_path, size):
    db = tmp_path / "s.duckdb"
    proc = run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "a.jsonl", [event(1)]),
                       "--batch-bytes", size)
    assert_error(proc, 2, "--batch-bytes")
    assert "1GiB" in proc.stderr
    assert not db.exists()


def test_the_largest_batch_size_is_accepted(tmp_path):
    proc = run_toolctl("--db", tmp_path / "s.duckdb", "ingest", write_jsonl(tmp_path / "a.jsonl", [event(1)]),
                       "--batch-bytes", "1GiB")
    assert proc.returncode == 0, proc.stderr


def _unwritable_file(tmp_path):
    """A path whose directory exists but where no file can be created, even by root."""
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ro / "report.xml"
    if os.path.isdir("/sys"):
        return "/sys/toolctl-report.xml"
    pytest.skip("no directory root cannot write to")


def test_a_junit_path_that_cannot_be_created_costs_no_evaluation(tmp_path):
    db = tmp_path / "s.duckdb"
    run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "a.jsonl", [event(1, version="v1"), event(2, version="v2")]))
    before = _stored(db)
    for fmt in ("table", "json"):
        proc = run_toolctl("--db", db, "gate", "--baseline", "v1", "--candidate", "v2",
                           "--junit", _unwritable_file(tmp_path), "--format", fmt)
        assert_error(proc, 1, "cannot write the JUnit report")
    assert _stored(db) == before
    assert json.loads(run_toolctl("--db", db, "gate", "history", "--format", "json").stdout) == []


def test_a_store_path_under_a_file_is_an_error_line_and_a_hint(tmp_path):
    (tmp_path / "afile").write_text("x")
    good = write_jsonl(tmp_path / "a.jsonl", [event(1)])
    for args in (["--db", tmp_path / "afile" / "s.duckdb", "ingest", good],
                 ["--db", tmp_path / "afile" / "sub" / "s.duckdb", "baseline", "save", "b"]):
        assert_error(run_toolctl(*args), 4, "cannot open store")
    proc = run_toolctl("ingest", good, env={"TOOLCTL_DB": str(tmp_path / "afile" / "s.duckdb")})
    assert_error(proc, 4, "cannot open store")


def test_a_store_path_that_is_not_utf8_is_a_usage_error_not_a_traceback(tmp_path):
    db = os.fsencode(tmp_path) + b"/s\xff.duckdb"
    good = write_jsonl(tmp_path / "a.jsonl", [event(1)])
    with open(db, "wb"):
        pass  # it exists: the argument check lets an existing path through
    env = {k: v for k, v in os.environ.items() if k != "TOOLCTL_DB"}
    for argv, extra in (([b"--db", db, b"stats"], {}), ([b"--db", db, b"ingest", os.fsencode(good)], {}),
                        ([b"stats"], {"TOOLCTL_DB": os.fsdecode(db)})):
        proc = subprocess.run([sys.executable, "-m", "toolctl", *argv], capture_output=True,
                              env={**env, **extra})
        assert_error(proc, 2, "not valid UTF-8")
        assert "\\xff" in proc.stderr.decode()


def test_a_token_file_that_is_not_utf8_is_a_usage_error_not_a_traceback(tmp_path):
    token = tmp_path / "token"
    token.write_bytes(b"\x90\xff\x00secret")
    proc = run_toolctl("--db", tmp_path / "s.duckdb", "serve", "--port", "0", "--token-file", token, timeout=60)
    assert_error(proc, 2, "token file")
    proc = run_toolctl("--db", tmp_path / "s.duckdb", "stats", env={"TOOLCTL_TOKEN_FILE": str(token),
                                                                    "TOOLCTL_URL": "http://127.0.0.1:9"})
    assert "Traceback" not in proc.stderr, proc.stderr


def test_a_backup_into_a_directory_that_refuses_files_is_an_error_line_and_leaves_nothing(tmp_path):
    db = tmp_path / "s.duckdb"
    run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "a.jsonl", [event(1)]))
    dest = _unwritable_file(tmp_path)
    proc = run_toolctl("--db", db, "db", "backup", dest)
    assert_error(proc, 1, "cannot write")
    assert not [p for p in os.listdir(os.path.dirname(dest)) if "toolctl-report" in p or p.startswith(".report")]


def test_a_lake_option_naming_a_regular_file_says_it_is_a_file(tmp_path):
    # It said "the directory does not exist" about a file that plainly exists.
    f = tmp_path / "events.parquet"
    f.write_bytes(b"PAR1")
    r = run_toolctl("--db", tmp_path / "s.duckdb", "stats", "--lake", f)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines()[0] == f"Error: {f} is not a toolctl lake: it is a file, not a directory"
