"""The CLI contract: store location, exit codes, output formats, help for every command."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, event, run_toolctl, write_jsonl


def test_db_path_precedence_option_then_env_then_user_dir(tmp_path):
    default = run_toolctl("db", "path", env={"XDG_DATA_HOME": str(tmp_path / "d")})
    assert default.stdout.strip() == str(tmp_path / "d" / "toolctl" / "toolctl.duckdb")
    env = run_toolctl("db", "path", env={"TOOLCTL_DB": str(tmp_path / "env.duckdb")})
    assert env.stdout.strip() == str(tmp_path / "env.duckdb")
    opt = run_toolctl("--db", tmp_path / "opt.duckdb", "db", "path", env={"TOOLCTL_DB": "x"})
    assert opt.stdout.strip() == str(tmp_path / "opt.duckdb")


def test_an_empty_db_option_is_a_usage_error_not_the_default_store(tmp_path):
    # A script's `--db "$UNSET"` would otherwise ingest into the operator's own store.
    home = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    for args in (["--db", "", "db", "path"], ["--db", "", "ingest", tmp_path / "x.jsonl"]):
        proc = run_toolctl(*args, env=home, unset=("TOOLCTL_DB",))
        assert proc.returncode == 2 and proc.stderr.startswith("Error: --db is empty"), proc.stderr
    assert not (tmp_path / "data").exists()

def test_ingest_exit_codes_clean_partial_fatal_usage(tmp_path):
    db = tmp_path / "s.duckdb"
    clean = write_jsonl(tmp_path / "clean.jsonl", [event(1), event(2)])
    dirty = write_jsonl(tmp_path / "dirty.jsonl", [event(3), "{not json"])
    assert run_toolctl("--db", db, "ingest", clean).returncode == 0
    partial = run_toolctl("--db", db, "ingest", dirty)
    assert partial.returncode == 3
    assert "rejected" in partial.stderr and "toolctl rejects" in partial.stderr
    missing = run_toolctl("--db", db, "ingest", tmp_path / "nope.jsonl")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: no such file or directory") and "Hint:" in missing.stderr
    assert run_toolctl("--db", db, "ingest").returncode == 2


def test_missing_input_stores_nothing_even_next_to_good_files(tmp_path):
    db = tmp_path / "s.duckdb"
    good = write_jsonl(tmp_path / "good.jsonl", [event(1)])
    proc = run_toolctl("--db", db, "ingest", good, tmp_path / "typo.jsonl")
    assert proc.returncode == 1
    rows = json.loads(run_toolctl("--db", db, "stats", "--format", "json").stdout)
    assert rows == []


def test_a_file_a_directory_walk_cannot_read_fails_the_run_before_anything_is_stored(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    write_jsonl(logs / "a.jsonl", [event(1)])
    (logs / "current.jsonl").symlink_to(tmp_path / "rotated-away.jsonl")  # dangling
    (logs / "loop.jsonl").symlink_to(logs / "loop.jsonl")
    db = tmp_path / "s.duckdb"
    proc = run_toolctl("--db", db, "ingest", logs)
    assert proc.returncode == 1 and proc.stderr.startswith("Error: cannot read"), proc.stderr
    (logs / "current.jsonl").unlink()
    proc = run_toolctl("--db", db, "ingest", logs)
    assert proc.returncode == 1 and "loop.jsonl" in proc.stderr, proc.stderr
    (logs / "loop.jsonl").unlink()
    stats = run_toolctl("--db", db, "stats", "--format", "json")
    assert json.loads(stats.stdout) == []  # nothing was stored by the refused runs
    assert run_toolctl("--db", db, "ingest", logs).returncode == 0


def test_a_subdirectory_the_walk_cannot_list_is_an_input_error_not_a_silent_gap(tmp_path, monkeypatch):
    import os

    from collector.sources import expand_paths
    from toolctl.errors import InputError

    logs = tmp_path / "logs"
    (logs / "eu" / "locked").mkdir(parents=True)
    (logs / ".cache").mkdir()
    write_jsonl(logs / "a.jsonl", [event(1)])
    write_jsonl(logs / "eu" / "b.jsonl", [event(2)])
    write_jsonl(logs / "eu" / "locked" / "c.jsonl", [event(3)])
    real = os.scandir

    def scandir(path="."):  # root reads any directory, so refuse the way a mode 000 one does
        if os.fspath(path).endswith(("locked", ".cache")):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(InputError) as err:
        expand_paths([str(logs)])
    assert err.value.exit_code == 1
    assert err.value.message == f"cannot read directory {logs / 'eu' / 'locked'}: permission denied"
    monkeypatch.setattr(os, "scandir", real)
    assert [Path(s.name).name for s in expand_paths([str(logs)])] == ["a.jsonl", "b.jsonl", "c.jsonl"]


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_an_input_that_fails_while_read_is_an_error_not_a_traceback(tmp_path):
    proc = run_toolctl("--db", tmp_path / "s.duckdb", "ingest", "/proc/self/mem")
    assert proc.returncode == 1 and proc.stderr.startswith("Error: cannot read"), proc.stderr
    assert "Traceback" not in proc.stderr

def test_paths_and_ages_found_by_fuzzing_are_usage_errors_not_tracebacks(tmp_path):
    db = tmp_path / "s.duckdb"
    write_jsonl(tmp_path / "a.jsonl", [event(1, version="v1"), event(2, version="v2")])
    assert run_toolctl("--db", db, "ingest", tmp_path / "a.jsonl").returncode == 0
    (tmp_path / "dir").mkdir()
    cases = [
        (["gate", "--baseline", "v1", "--candidate", "v2", "--junit", tmp_path / "dir"], "is a directory"),
        (["gate", "--baseline", "v1", "--candidate", "v2", "--junit", tmp_path / "no" / "x.xml"], "does not exist"),
        (["db", "backup", "--force", tmp_path / "dir"], "is a directory"),
        (["db", "prune", "--older-than", "800000d", "--dry-run"], "before the year 1"),
        (["db", "prune", "--older-than", "99999999999d"], "too long"),
        (["runbook", "run", "latency-slo", "--until", "0001-01-01T00:30:00Z"], "before the year 1"),
        (["regress", "--baseline", "b", "--until", "0001-01-01T00:10:00Z"], "before the year 1"),
        (["top", "--window", "3000000d"], "before the year 1"),
    ]
    for args, needle in cases:
        proc = run_toolctl("--db", db, *args)
        assert proc.returncode == 2 and proc.stderr.startswith("Error:") and needle in proc.stderr, (args, proc.stderr)
    # An export that cannot be written is an error line (DuckDB's IOException escaped as a
    # traceback: its class lives in `_duckdb`).
    proc = run_toolctl("--db", db, "audit", "export", "-o", tmp_path / "dir")
    assert proc.returncode == 1 and proc.stderr.startswith("Error: cannot write"), proc.stderr
    # The refused gates were not recorded: no evaluation counts towards K.
    history = run_toolctl("--db", db, "gate", "history", "--format", "json")
    assert json.loads(history.stdout) == []
    # A path with brackets is printed as it is (it was read as Rich markup: "[x]" vanished).
    backup = tmp_path / "bk [x].duckdb"
    proc = run_toolctl("--db", db, "db", "backup", backup)
    assert proc.returncode == 0 and str(backup) in proc.stdout, proc.stdout

def test_ingest_reads_stdin_plain_and_gzip(tmp_path):
    db = tmp_path / "s.duckdb"
    plain = json.dumps(event(1)) + "\n"
    proc = run_toolctl("--db", db, "ingest", "-", "--format", "json", input=plain)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accepted"] == 1
    import subprocess
    import sys

    data = gzip.compress((json.dumps(event(2)) + "\r\n").encode())
    proc = subprocess.run([sys.executable, "-m", "toolctl", "--db", str(db), "ingest", "-", "-f", "json"],
                          input=data, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accepted"] == 1


def test_directory_ingest_is_recursive_and_idempotent(tmp_path):
    db = tmp_path / "s.duckdb"
    (tmp_path / "logs" / "a" / "b").mkdir(parents=True)
    write_jsonl(tmp_path / "logs" / "one.jsonl", [event(1), event(2)])
    with gzip.open(tmp_path / "logs" / "a" / "b" / "two.jsonl.gz", "wt") as f:
        f.write(json.dumps(event(3)) + "\n" + "oops\n")
    (tmp_path / "logs" / "notes.md").write_text("not a log")
    first = run_toolctl("--db", db, "ingest", tmp_path / "logs", "--format", "json")
    assert first.returncode == 3
    s1 = json.loads(first.stdout)
    assert (s1["files"], s1["lines"], s1["accepted"], s1["rejected"]) == (2, 4, 3, 1)
    second = json.loads(run_toolctl("--db", db, "ingest", tmp_path / "logs", "--format", "json").stdout)
    assert (second["accepted"], second["duplicates"], second["rejected"]) == (0, 3, 1)
    rejects = json.loads(run_toolctl("--db", db, "rejects", "--format", "json").stdout)
    assert len(rejects) == 1 and rejects[0]["line_no"] == 2 and rejects[0]["raw"] == "oops"


def test_a_reject_without_a_line_number_shows_a_dash_not_none(tmp_path):
    # Seen on spans refused by `toolctl serve`: the rejects table printed "None" in the line
    # column, where every other table shows an absent value as "–".
    from collector.otlp import ingest_otlp_traces
    from toolctl.store import Store

    bad = {"traceId": "zz", "spanId": "cd" * 8, "startTimeUnixNano": 5, "endTimeUnixNano": 9}
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [bad]}]}]}).encode()
    db = tmp_path / "s.duckdb"
    with Store.open(db, write=True) as store:
        assert ingest_otlp_traces(store, body, encoding="json", source="otlp-http:/v1/traces").rejected_spans == 1
    proc = run_toolctl("--db", db, "rejects", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "otlp-http" in line)
    assert [cell.strip() for cell in row.split("│")[1:3]] == ["otlp-http:/v1/traces", "–"]
    assert "None" not in proc.stdout


def test_stats_json_on_empty_store_is_an_empty_list(tmp_path):
    proc = run_toolctl("--db", tmp_path / "absent.duckdb", "stats", "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == []


def test_stats_table_shows_groups_and_a_total_line(tmp_path):
    db = tmp_path / "s.duckdb"
    write_jsonl(tmp_path / "a.jsonl", [event(1, tool="alpha"), event(2, tool="beta", status="error"),
                                       event(3, tool="beta")])
    run_toolctl("--db", db, "ingest", tmp_path / "a.jsonl")
    out = run_toolctl("--db", db, "stats", "--by", "tool").stdout
    assert "alpha" in out and "beta" in out
    assert "Total: 3 calls" in out and "1 errors (33.33%)" in out
    # sorted by calls: beta (2 calls) before alpha (1)
    assert out.index("beta") < out.index("alpha")


def test_stats_csv_has_a_header_and_group_keys(tmp_path):
    db = tmp_path / "s.duckdb"
    write_jsonl(tmp_path / "a.jsonl", [event(1, version="v1"), event(2, version="v2")])
    run_toolctl("--db", db, "ingest", tmp_path / "a.jsonl")
    lines = run_toolctl("--db", db, "stats", "--by", "version", "--format", "csv").stdout.splitlines()
    assert lines[0].startswith("version,attempts,calls,retries,errors,error_rate,auth_failures,p50_ms")
    assert len(lines) == 3



def test_csv_quotes_a_group_key_holding_a_carriage_return(tmp_path):
    db = tmp_path / "s.duckdb"
    tools = ["\r\rover", "a,b", 'say "hi"', "two\nlines", "plain"]
    write_jsonl(tmp_path / "a.jsonl", [event(i, tool=t) for i, t in enumerate(tools)])
    run_toolctl("--db", db, "ingest", tmp_path / "a.jsonl")
    proc = subprocess.run([sys.executable, "-m", "toolctl", "--db", str(db), "stats", "--by", "tool",
                           "--format", "csv"], capture_output=True)  # bytes: no newline translation
    assert proc.returncode == 0
    rows = list(csv.reader(io.StringIO(proc.stdout.decode("utf-8"), newline="")))
    assert rows[0][0] == "tool" and sorted(r[0] for r in rows[1:]) == sorted(tools)
    assert proc.stdout.endswith(b"\n") and not proc.stdout.endswith(b"\r\n")


def test_log_data_never_reaches_the_terminal_as_control_sequences(tmp_path):
    """A tool name or message from a log could retitle, recolour or rewrite the operator's
    terminal; human output shows such characters as escapes instead."""
    db = tmp_path / "s.duckdb"
    evil = "\x1b[31mRED\x1b]0;pwned\x07\u202eexe.txt"
    write_jsonl(tmp_path / "a.jsonl", [event(1, tool=evil, message=evil, status="error", call_id="c1",
                                             error_code=evil, version=evil)])
    assert run_toolctl("--db", db, "ingest", tmp_path / "a.jsonl").returncode == 0
    for env in ({}, {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}):  # piped, and as on a terminal
        for args in (["stats", "--by", "tool"], ["audit", "search", "--tool", evil],
                     ["stats", "--histogram", "--tool", evil], ["audit", "call", "c1"]):
            proc = run_toolctl("--db", db, *args, env=env)
            assert proc.returncode == 0, (args, proc.stderr)
            for raw in ("\x1b[31mRED", "\x1b]0;", "\x07", "\u202e"):
                assert raw not in proc.stdout, (args, env)
            assert "\\x1b[31mRED" in proc.stdout and "\\x07" in proc.stdout, (args, proc.stdout)
            assert "\\[" not in proc.stdout  # markup is off: no escaping backslash shows
    # Machine formats keep the data exact.
    doc = json.loads(run_toolctl("--db", db, "stats", "--by", "tool", "--format", "json").stdout)
    assert doc[0]["tool"] == evil

def test_human_output_shows_a_huge_latency_compactly(tmp_path):
    # A valid 1.7e308 ms latency printed as 309 digits with separators: every p95/p99 cell and
    # the Total line wrapped over dozens of lines.
    db = tmp_path / "s.duckdb"
    write_jsonl(tmp_path / "a.jsonl", [event(1, latency_ms=12), event(2, latency_ms=1.7e308)])
    assert run_toolctl("--db", db, "ingest", tmp_path / "a.jsonl").returncode == 0
    for args in (["stats"], ["stats", "--by", "tool"], ["stats", "--every", "1h", "--plot"],
                 ["stats", "--histogram"], ["audit", "search"]):
        proc = run_toolctl("--db", db, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "e+308" in proc.stdout and "000,000,000,000" not in proc.stdout, (args, proc.stdout)
    out = " ".join(run_toolctl("--db", db, "stats").stdout.split())  # the caption wraps to the table
    assert ("Total: 2 calls, 2 attempts (0 retries), 0 errors (0.00%), 0 auth failures, "
            "p95 1.61e+308 ms, p99 1.68e+308 ms") in out


@pytest.mark.parametrize("args, needle", [
    (["--since", "yesterday"], "invalid --since"),
    (["--every", "5x"], "invalid --every"),
    (["--by", "colour"], "cannot group by 'colour'"),
    (["--since", "2026-11-25T00:00:00Z", "--until", "2026-11-24T00:00:00Z"], "empty window"),
    # Found by fuzzing: each was a traceback (OverflowError), exit 1.
    (["--since", "99999999d"], "invalid --since"),
    (["--since", "99999999999999999999999d"], "invalid --since"),
    (["--until", "999999999w"], "invalid --until"),
    (["--every", "99999999999d"], "invalid --every"),
    (["--since", "0001-01-01T00:00:00+01:00"], "years 0001-9999"),
    (["--until", "9999-12-31T23:59:59-01:00"], "years 0001-9999"),
    (["--since", "2024-01-01T24:00:00Z"], "invalid --since"),
])
def test_stats_bad_options_are_usage_errors_with_a_hint(tmp_path, args, needle):
    proc = run_toolctl("--db", tmp_path / "s.duckdb", "stats", *args)
    assert proc.returncode == 2
    assert needle in proc.stderr and "Hint:" in proc.stderr


@pytest.mark.parametrize("every", [
    "999999999d",  # parses, but DuckDB's time_bucket cannot hold it: was a traceback, exit 1
    "3652060d",    # one day wider than the years 0001-9999
    "",            # --every "$UNSET": was ignored, unbucketed rows and exit 0
])
def test_stats_every_that_cannot_bucket_is_a_usage_error_over_stored_data(tmp_path, every):
    db = tmp_path / "s.duckdb"
    write_jsonl(tmp_path / "a.jsonl", [event(1, ts="0001-01-01T00:00:00Z"), event(2)])
    assert run_toolctl("--db", db, "ingest", tmp_path / "a.jsonl").returncode == 0
    proc = run_toolctl("--db", db, "stats", "--every", every, "--format", "json")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("Error: invalid --every") and "Hint:" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    widest = run_toolctl("--db", db, "stats", "--every", "3652059d", "--format", "json")
    assert widest.returncode == 0, widest.stderr
    assert sum(r["attempts"] for r in json.loads(widest.stdout)) == 2


def test_window_bounds_finer_than_a_microsecond_round_up_so_the_window_stays_half_open(tmp_path):
    db = tmp_path / "s.duckdb"
    write_jsonl(tmp_path / "a.jsonl", [event(1, ts="2024-01-01T00:00:00Z"),
                                       event(2, ts="2024-01-01T01:00:00.000001Z")])
    run_toolctl("--db", db, "ingest", tmp_path / "a.jsonl")

    def attempts(*window):
        proc = run_toolctl("--db", db, "stats", "--format", "json", *window)
        assert proc.returncode == 0, proc.stderr
        return sum(r["attempts"] for r in json.loads(proc.stdout))

    # e1 is 100 ns before since: out. e2 is 100 ns before until: in.
    assert attempts("--since", "2023-12-31T16:00:00.0000001-08:00") == 1
    assert attempts("--until", "2024-01-01T01:00:00.0000011Z") == 2
    assert attempts("--until", "2024-01-01T01:00:00.000001Z") == 1  # exactly e2: out
    for args in (["audit", "search", "--since", "0001-01-01T00:00:00+01:00"], ["stats", "--since", "1e9999d"]):
        proc = run_toolctl("--db", db, *args)
        assert proc.returncode == 2 and proc.stderr.startswith("Error: invalid --since"), proc.stderr

def test_schema_prints_the_event_json_schema():
    proc = run_toolctl("schema")
    doc = json.loads(proc.stdout)
    assert set(doc["required"]) == {"event_id", "ts", "tool", "status", "latency_ms"}
    assert doc["additionalProperties"] is True


def test_every_command_has_help_text():
    import typer.main

    from toolctl.cli import app

    group = typer.main.get_command(app)

    def walk(cmd, path):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, path + [name])

    missing = [" ".join(p) for p, cmd in walk(group, ["toolctl"]) if not (cmd.help or "").strip()]
    assert not missing, f"commands without help: {missing}"


def test_a_mistyped_option_is_one_error_line_and_a_hint_exit_2(tmp_path):
    # README: errors are one `Error:` line and a `Hint:`; option parsing printed Click's
    # usage block (Usage / Try … / blank / Error) instead.
    db = tmp_path / "s.duckdb"
    cases = [(("stats", "--bogus"), "Error: No such option: --bogus", "toolctl stats"),
             (("stats", "--since"), "Error: Option '--since' requires an argument.", "toolctl stats"),
             (("ingest", "--batch-bytes", "12XB", "x"), "Error: Invalid value for '--batch-bytes'", "toolctl ingest"),
             (("audit", "serch"), "Error: No such command 'serch'.", "toolctl audit"),
             (("gate", "--format", "yaml"), "Error: Invalid value for '--format' / '-f'", "toolctl gate")]
    for args, error, command in cases:
        r = run_toolctl("--db", db, *args)
        assert r.returncode == 2 and r.stdout == "", (args, r.stderr)
        lines = r.stderr.splitlines()
        assert len(lines) == 2 and lines[0].startswith(error), (args, r.stderr)
        assert lines[1] == f"Hint: see `{command} --help`", (args, r.stderr)
    r = run_toolctl("--db", db, "db")  # a group without a command still shows its help
    assert r.returncode == 2 and "Commands" in r.stderr + r.stdout
    r = run_toolctl("--db", db, "stats", "--help")
    assert r.returncode == 0 and r.stdout.startswith("Usage: toolctl stats")


def test_gzip_padded_with_zero_bytes_is_whole_as_gzip_reads_it(tmp_path):
    # Found by fuzzing: `gzip -dc` (and Python's gzip) skip zero padding after the last
    # member (tape and block devices add it); ingest counted a phantom rejected line, exit 3.
    body = "".join(json.dumps(event(i)) + "\n" for i in range(5)).encode()
    padded = tmp_path / "padded.jsonl.gz"
    padded.write_bytes(gzip.compress(body[:100]) + gzip.compress(body[100:]) + bytes(4096))
    assert gzip.decompress(padded.read_bytes()) == body
    proc = run_toolctl("--db", tmp_path / "s.duckdb", "ingest", padded, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert (json.loads(proc.stdout)["accepted"], json.loads(proc.stdout)["rejected"]) == (5, 0)
    garbage = tmp_path / "garbage.jsonl.gz"  # anything else after a member is still damage
    garbage.write_bytes(gzip.compress(body) + bytes(10) + b"junk")
    proc = run_toolctl("--db", tmp_path / "t.duckdb", "ingest", garbage, "--format", "json")
    assert proc.returncode == 3 and json.loads(proc.stdout)["rejected"] == 1


@pytest.mark.parametrize("events", [3, 30000])
def test_truncated_gzip_keeps_complete_lines_and_counts_the_break(tmp_path, events):
    db = tmp_path / "s.duckdb"
    body = "".join(json.dumps(event(i, args={"pad": "x" * 50})) + "\n" for i in range(events)).encode()
    whole = gzip.compress(body)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    proc = run_toolctl("--db", db, "ingest", cut, "--format", "json")
    assert proc.returncode == 3, proc.stderr
    summary = json.loads(proc.stdout)
    # the cut-off last line (if any came through) is a reject of its own, plus the break
    assert 1 <= summary["rejected"] <= 2 and summary["accepted"] < events
    if events > 1000:
        assert summary["accepted"] > events // 3  # everything before the damage is kept
    assert summary["accepted"] + summary["rejected"] == summary["lines"]
    rejects = json.loads(run_toolctl("--db", db, "rejects", "--format", "json").stdout)
    assert any(r["reason"].startswith("input ended abnormally after line") for r in rejects)


def test_a_rejects_size_is_its_line_without_the_line_ending_whatever_refused_it(tmp_path):
    # Found by fuzzing: lines refused before DuckDB parsed them (not UTF-8, NaN, too long)
    # counted the CR of a CRLF ending, the others did not.
    lines = [b'{"event_id": "a", "ts": "2026-11-24T06:00:00Z"}',           # schema
             b'{"event_id": "b", "latency_ms": NaN}',                       # not standard JSON
             b'{"event_id": "c", "tool": "\xff"}',                        # not UTF-8
             b'{"event_id": "d", "pad": "' + b"x" * 300 + b'"}',            # too long
             b"{truncated"]                                                 # not JSON
    src = tmp_path / "crlf.jsonl"
    src.write_bytes(b"".join(line + b"\r\n" for line in lines))
    db = tmp_path / "s.duckdb"
    proc = run_toolctl("--db", db, "ingest", src, "--max-line-bytes", "200")
    assert proc.returncode == 3, proc.stderr
    rejects = json.loads(run_toolctl("--db", db, "rejects", "--format", "json").stdout)
    assert {r["line_no"]: r["raw_bytes"] for r in rejects} == {i + 1: len(line) for i, line in enumerate(lines)}

def _decodable_lines(data: bytes) -> int:
    """Complete lines zlib yields before the damage, fed one byte at a time (the reference)."""
    import zlib

    d, out = zlib.decompressobj(wbits=31), []
    for i in range(len(data)):
        try:
            out.append(d.decompress(data[i:i + 1]))
        except zlib.error:
            break
    return b"".join(out).count(b"\n")


@pytest.mark.parametrize("damage", ["crc", "middle"])
def test_a_corrupt_gzip_keeps_every_line_decodable_before_the_damage(tmp_path, damage):
    # Found by fuzzing: zlib's error dropped the output of the whole chunk it came in, so a
    # bad CRC trailer lost every line of a small file, and damage at 90% lost up to 256 KiB.
    events = 3 if damage == "crc" else 20000
    body = "".join(json.dumps(event(i, args={"pad": f"{i * 7919 % 10007:05d}" * 8})) + "\n"
                   for i in range(events)).encode()
    data = bytearray(gzip.compress(body))
    where = len(data) - 6 if damage == "crc" else len(data) * 9 // 10
    data[where] ^= 0xFF
    src = tmp_path / "bad.jsonl.gz"
    src.write_bytes(bytes(data))
    proc = run_toolctl("--db", tmp_path / "s.duckdb", "ingest", src, "--format", "json")
    assert proc.returncode == 3, proc.stderr
    summary = json.loads(proc.stdout)
    expected = _decodable_lines(bytes(data))
    assert expected > 0
    assert summary["accepted"] >= expected - 1 and summary["accepted"] <= expected, (summary, expected)
    if damage == "crc":
        assert summary["accepted"] == events


def _run_into_closed_pipe(*args):
    """The CLI with its stdout a pipe whose reader is already gone (`toolctl … | head -1`
    after head exited): every write gets EPIPE, deterministically."""
    import os

    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run([sys.executable, "-m", "toolctl", *map(str, args)], stdout=w,
                              stderr=subprocess.PIPE, text=True, timeout=120,
                              env={**os.environ, "COLUMNS": "200"})
    finally:
        os.close(w)
    return proc


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_closed_stdout_keeps_the_verdict_exit_code_without_noise(tmp_path, fmt):
    db = tmp_path / "s.duckdb"
    docs = [event(i, version="v2" if i % 2 else "v1", call_id=f"c{i}", latency_ms=100 + i % 50,
                  ts=f"2026-11-24T06:{i % 60:02d}:{i % 7:02d}Z") for i in range(400)]
    assert run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "e.jsonl", docs)).returncode == 0
    window = ("--since", "2026-11-24T06:00:00Z", "--until", "2026-11-24T07:00:00Z", "--format", fmt)
    gate = ("--db", db, "gate", "--baseline", "v1", "--candidate", "v2", *window)
    expected = run_toolctl(*gate).returncode
    assert expected in (0, 10, 20, 30)
    piped = _run_into_closed_pipe(*gate)
    assert (piped.returncode, piped.stderr) == (expected, "")
    # the verdict was recorded although nobody read it
    history = json.loads(run_toolctl("--db", db, "gate", "history", "--format", "json").stdout)
    assert len(history) == 2
    runbook = ("--db", db, "runbook", "run", "retry-storm", *window)
    expected = run_toolctl(*runbook).returncode
    piped = _run_into_closed_pipe(*runbook)
    assert (piped.returncode, piped.stderr) == (expected, "")


@pytest.mark.parametrize("args", [("--help",), ("stats", "--format", "csv"), ("stats",), ("db", "path")])
def test_every_command_writing_into_a_closed_stdout_exits_as_it_would_have(tmp_path, args):
    db = tmp_path / "s.duckdb"
    assert run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "e.jsonl", [event(1)])).returncode == 0
    piped = _run_into_closed_pipe("--db", db, *args)
    assert (piped.returncode, piped.stderr) == (0, "")


def test_every_error_line_escapes_control_characters_from_the_data():
    # gate, regress and runbook run print their store errors beside a verdict, through
    # error_lines() rather than fail(): the escaping lives there for every caller.
    from toolctl.cli._output import error_lines
    from toolctl.errors import ToolctlError

    exc = ToolctlError("cannot read lake file /l/\x1b]0;pwned\x07.parquet", hint="tool \x1b[31mred")
    assert error_lines(exc) == ["Error: cannot read lake file /l/\\x1b]0;pwned\\x07.parquet",
                                "Hint: tool \\x1b[31mred"]


def test_every_error_toolctl_raises_says_what_to_do():
    # README: errors are `Error: what went wrong` and `Hint: what to do`. Found by fuzzing:
    # `audit search --status maybe` and two redaction-rules errors had no hint.
    import ast

    errors = {"UsageError", "InputError", "StoreError", "ToolctlError", "RunbookError",
              "NotFoundError", "RemoteError", "StoreBusyError", "SchemaVersionError",
              "LakeFileError", "OTLPDecodeError"}
    missing, seen = [], 0
    for path in sorted((REPO / "toolctl").rglob("*.py")) + sorted((REPO / "collector").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name in errors:
                    seen += 1
                    if not any(k.arg == "hint" for k in node.exc.keywords) and len(node.exc.args) < 2:
                        missing.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert seen > 50 and not missing, missing
    r = run_toolctl("audit", "search", "--status", "maybe")
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "Error: --status must be ok or error, got 'maybe'", "Hint: use --status ok or --status error"]


def test_a_log_file_whose_name_is_not_utf8_is_ingested_under_an_escaped_name(tmp_path):
    # Linux file names are bytes: a rotated log named with a Latin-1 byte must not stop a
    # directory walk (its source label is stored as text, the byte written as \xff).
    logs = tmp_path / "logs"
    logs.mkdir()
    name = os.fsdecode(b"gw-\xff.jsonl")
    write_jsonl(logs / name, [event(1), event(2)])
    (logs / name).open("a").write("oops\n")
    db = tmp_path / "s.duckdb"
    first = run_toolctl("--db", db, "ingest", logs, "--format", "json")
    assert first.returncode == 3, first.stderr
    assert (json.loads(first.stdout)["accepted"], json.loads(first.stdout)["rejected"]) == (2, 1)
    again = subprocess.run([sys.executable, "-m", "toolctl", "--db", str(db), "ingest",
                            os.fsencode(logs / name), "--format", "json"], capture_output=True)
    assert again.returncode == 3, again.stderr
    assert json.loads(again.stdout)["duplicates"] == 2
    rejects = json.loads(run_toolctl("--db", db, "rejects", "--format", "json").stdout)
    assert [r["source"] for r in rejects] == [str(logs / "gw-\\xff.jsonl")]


@pytest.mark.parametrize("args", [
    [b"stats", b"--tool", b"\xff"],
    [b"gate", b"--baseline", b"v\xff", b"--candidate", b"v1"],
    [b"audit", b"search", b"--tool", b"s\xffx"],
])
def test_an_argument_that_is_not_utf8_is_a_usage_error_not_a_traceback(tmp_path, args):
    db = tmp_path / "s.duckdb"
    run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "e.jsonl", [event(1, version="v1")]))
    proc = subprocess.run([sys.executable, "-m", "toolctl", "--db", str(db), *args], capture_output=True)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "Traceback" not in err and err.startswith("Error: ") and "not valid UTF-8" in err
    assert "\\xff" in err and "Hint: " in err


def test_ingest_reads_a_named_pipe_and_process_substitution(tmp_path):
    # Operators write `toolctl ingest <(zcat gw-*.jsonl.gz)` or name a FIFO a shipper feeds;
    # both were "neither a file nor a directory" (exit 1, nothing ingested).
    import shutil
    import threading

    db = tmp_path / "s.duckdb"
    src = write_jsonl(tmp_path / "a.jsonl", [event(1), event(2), "oops"])
    fifo = tmp_path / "feed.fifo"
    os.mkfifo(fifo)
    feeder = threading.Thread(target=lambda: fifo.write_bytes(gzip.compress(src.read_bytes())),
                              daemon=True)
    feeder.start()
    proc = run_toolctl("--db", db, "ingest", fifo, "--format", "json")
    if feeder.is_alive():  # the CLI never opened the pipe: release the writer
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    feeder.join(timeout=30)
    assert proc.returncode == 3, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["lines"], out["accepted"], out["rejected"]) == (3, 2, 1)
    assert out["sources"][0]["source"] == str(fifo) and out["sources"][0]["compressed"] is True

    bash = shutil.which("bash")
    if bash:
        more = write_jsonl(tmp_path / "b.jsonl", [event(2), event(3)])
        cmd = f'"{sys.executable}" -m toolctl --db "{db}" ingest <(cat "{more}") --format json'
        proc = subprocess.run([bash, "-c", cmd], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert (out["accepted"], out["duplicates"]) == (1, 1), out
