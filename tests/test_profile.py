"""--profile / TOOLCTL_PROFILE: a timeline on stderr, stdout unchanged, nothing when off."""

from __future__ import annotations

import json
import re

from conftest import event, run_toolctl, write_jsonl
from toolctl import profile

# Latencies 1..9 ms, one tool, one error: figures known without running toolctl.
DOCS = [event(i, latency_ms=float(i), call_id=f"c{i}", status="error" if i == 9 else "ok")
        for i in range(1, 10)]
LINE = re.compile(r"^\s+(\d+\.\d{3}) s  (.*)$")


def timeline(err: str) -> list[float]:
    """The durations of the timeline's own lines: not the queries indented under a phase
    (they are inside its time) nor the other threads' totals listed after it."""
    main = err.split("  at the same time, on other threads")[0]
    return [float(m.group(1)) for line in main.splitlines()
            if (m := LINE.match(line)) and not m.group(2).startswith(" ")]


def _store(tmp_path):
    db = tmp_path / "s.duckdb"
    log = write_jsonl(tmp_path / "a.jsonl", DOCS)
    proc = run_toolctl("--db", db, "ingest", log)
    assert proc.returncode == 0, proc.stderr
    return db


def test_profile_flag_prints_phases_and_queries_and_leaves_stdout_alone(tmp_path):
    db = _store(tmp_path)
    plain = run_toolctl("--db", db, "stats", "--by", "tool", "--format", "json")
    prof = run_toolctl("--profile", "--db", db, "stats", "--by", "tool", "--format", "json")
    assert plain.returncode == prof.returncode == 0, prof.stderr
    assert json.loads(prof.stdout) == json.loads(plain.stdout)  # one JSON document, same figures
    rows = json.loads(prof.stdout)
    assert (rows[0]["calls"], rows[0]["errors"], rows[0]["p50_ms"]) == (9, 1, 5.0)
    assert plain.stderr == ""
    err = prof.stderr
    assert err.startswith("profile: ")
    assert "start-up: interpreter and imports" in err
    assert "store open read-only" in err
    assert re.search(r"query stats  \(1 rows\)", err), err  # the stats query, with its row count
    assert "rendering the output" in err
    # Every timed line is a non-negative duration, and together they make up the wall time.
    wall = float(re.match(r"profile: (\d+\.\d+) s wall", err).group(1))
    top = timeline(err)
    assert top and all(t >= 0 for t in top)
    assert abs(sum(top) - wall) < 0.05 + 0.02 * wall


def test_ingest_profile_names_commits_and_the_wait_for_the_parse_thread(tmp_path):
    # The writer's idle time used to show as "python" time: it is waiting for the batch the
    # parse thread is still validating; a commit (which can checkpoint) gets its own line.
    log = write_jsonl(tmp_path / "a.jsonl", DOCS)
    prof = run_toolctl("--profile", "--db", tmp_path / "s.duckdb", "ingest", log)
    assert prof.returncode == 0, prof.stderr
    err = prof.stderr
    assert re.search(r"^\s+\d+\.\d{3} s  waiting for the parse thread$", err, re.M), err
    assert re.search(r"^\s+\d+\.\d{3} s  query COMMIT$", err, re.M), err
    wall = float(re.search(r"profile: (\d+\.\d+) s wall", err).group(1))
    top = timeline(err)
    assert abs(sum(top) - wall) < 0.05 + 0.02 * wall  # still one timeline that adds up


def test_env_var_enables_profile_and_level_2_adds_duckdb_operators(tmp_path):
    db = _store(tmp_path)
    one = run_toolctl("--db", db, "stats", "--format", "json", env={"TOOLCTL_PROFILE": "1"})
    two = run_toolctl("--db", db, "stats", "--format", "json", env={"TOOLCTL_PROFILE": "2"})
    assert one.returncode == two.returncode == 0
    assert "query stats" in one.stderr and "DuckDB operator profile" not in one.stderr
    assert "DuckDB operator profile of the slowest query" in two.stderr
    assert "SEQ_SCAN" in two.stderr or "TABLE_SCAN" in two.stderr
    assert json.loads(one.stdout) == json.loads(two.stdout)


def test_profile_off_records_nothing_and_zero_env_values_mean_off():
    profile.disable()
    with profile.phase("x"):
        pass
    profile.mark("y")
    assert profile.events() == [] and not profile.ENABLED
    for value in ("", "0", "false", "no", "off"):
        assert profile.env_level({"TOOLCTL_PROFILE": value}) == 0
    assert profile.env_level({}) == 0
    assert profile.env_level({"TOOLCTL_PROFILE": "1"}) == 1
    assert profile.env_level({"TOOLCTL_PROFILE": "2"}) == 2


def test_profile_report_nests_queries_run_inside_a_phase():
    profile.disable()
    profile.enable()
    try:
        with profile.phase("store open"):
            profile.query("-- migrate: x\nSELECT 1", lambda: [1])
        profile.query("SELECT 2 -- no name comment", lambda: [1, 2])
        text = profile.report()
    finally:
        profile.disable()
    lines = text.splitlines()
    assert any(re.search(r"s  store open$", ln) for ln in lines)
    assert any(re.search(r"s    query migrate  \(1 rows\)$", ln) for ln in lines)  # indented
    assert any(re.search(r"s  query SELECT 2 -- no name comment  \(2 rows\)$", ln) for ln in lines)
    assert "1 queries" in text  # only top-level queries are summed (no double counting)


def test_queries_of_helper_threads_are_summed_apart_from_the_timeline():
    # ingest parses the next batch on a helper thread while the main thread stores this one:
    # those queries overlap the timeline, so they are listed after it, per statement.
    import threading

    profile.disable()
    profile.enable()
    try:
        profile.query("SELECT 1", lambda: [1])
        worker = threading.Thread(target=lambda: [profile.query("-- parse_batch: x\nSELECT 2", lambda: [])
                                                  for _ in range(3)], name="toolctl-prefetch")
        worker.start()
        worker.join()
        text = profile.report()
    finally:
        profile.disable()
    timeline, _, helpers = text.partition("at the same time, on other threads")
    assert "parse_batch" not in timeline and "1 queries" in timeline
    assert re.search(r"s  query parse_batch  \(3x, thread toolctl-prefetch\)", helpers)
