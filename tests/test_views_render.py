"""Snapshot tests of the rendered views: stats table, plot (ASCII fallback and terminal
charts), histogram, top frame, gate banner and checks table, and `audit trace` and `gate`
on the sample store.

Output is normalised (no colour codes, fixed width, tmp paths replaced, trailing blanks
dropped) and compared with tests/snapshots/NAME.txt. After an intended change of the
rendering, regenerate with ``UPDATE_SNAPSHOTS=1 pytest tests/test_views_render.py`` and
review the diff like code.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import run_toolctl
from tests.test_views_metrics import view_db  # noqa: F401 (fixture)

SNAPSHOTS = Path(__file__).parent / "snapshots"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def normalise(text: str, *paths: Path) -> str:
    text = ANSI.sub("", text)
    for p in paths:
        text = text.replace(str(p), "<TMP>")
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n") + "\n"


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, "utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with UPDATE_SNAPSHOTS=1 and review it"
    assert text == path.read_text("utf-8")


def terminal(width: int = 100):
    """A Rich console that renders as a terminal would, without colour, into a string."""
    from rich.console import Console

    return Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None,
                   highlight=False, legacy_windows=False)


def cli(db, *args) -> str:
    res = run_toolctl("--db", db, *args, env={"COLUMNS": "120"})
    assert res.returncode == 0, res.stderr
    return normalise(res.stdout, db.parent)


def test_stats_table_snapshot(view_db):
    check_snapshot("stats_by_tool", cli(view_db, "stats", "--by", "tool"))


def test_plot_falls_back_to_ascii_bars_when_stdout_is_not_a_terminal(view_db):
    out = cli(view_db, "stats", "--every", "10m", "--plot", "--by", "tool")
    check_snapshot("stats_plot_plain", out)
    assert "█" not in out and "#" in out  # plain text, no block glyphs
    # One line per bucket and group, with the very figures of `stats --every`.
    rows = json.loads(run_toolctl("--db", view_db, "stats", "--every", "10m", "--by", "tool",
                                  "--format", "json").stdout)
    for r in rows:
        assert re.search(rf"^{re.escape(r['bucket'])}\s+{r['calls']}\s+{r['error_rate'] * 100:.2f}%",
                         out, re.M), r


def test_plot_draws_column_charts_on_a_terminal(view_db):
    from toolctl.cli._views import render_plot

    rows = json.loads(run_toolctl("--db", view_db, "stats", "--every", "5m", "--tool", "fetch",
                                  "--format", "json").stdout)
    totals = json.loads(run_toolctl("--db", view_db, "stats", "--tool", "fetch", "--format", "json").stdout)
    con = terminal()
    render_plot(rows, totals, [], "5m", con)
    out = normalise(con.file.getvalue())
    check_snapshot("stats_plot_terminal", out)
    # The tallest error-rate column belongs to the bucket with the highest error rate.
    lines = out.splitlines()
    top_row = next(line for line in lines if "┤" in line and line.split("┤")[0].strip().endswith("%"))
    worst = max(range(len(rows)), key=lambda i: rows[i]["error_rate"])
    assert top_row.split("┤")[1][worst] == "█"


def test_plot_heading_counts_a_call_spanning_two_buckets_once(tmp_path):
    from tests.conftest import write_jsonl

    docs = [  # fetch's one call retries across the 06:05 bucket boundary
        {"event_id": "a1", "ts": "2026-11-24T06:04:59.500000Z", "tool": "fetch", "status": "error",
         "latency_ms": 10.0, "call_id": "c1", "attempt": 1},
        {"event_id": "a2", "ts": "2026-11-24T06:05:00.500000Z", "tool": "fetch", "status": "ok",
         "latency_ms": 12.0, "call_id": "c1", "attempt": 2},
        {"event_id": "s1", "ts": "2026-11-24T06:01:00Z", "tool": "search", "status": "ok", "latency_ms": 5.0},
        {"event_id": "s2", "ts": "2026-11-24T06:06:00Z", "tool": "search", "status": "ok", "latency_ms": 6.0},
    ]
    db = tmp_path / "s.duckdb"
    assert run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "s.jsonl", docs)).returncode == 0
    calls = {}  # distinct call ids per tool; an event without one is a call of its own
    for d in docs:
        calls.setdefault(d["tool"], set()).add(d.get("call_id", d["event_id"]))
    out = cli(db, "stats", "--every", "5m", "--plot", "--by", "tool")
    # Both tools have 2 calls in the per-bucket rows; search leads, fetch is one call.
    assert out.splitlines()[0] == f"tool=search: {len(calls['search'])} calls in 2 of 2 buckets of 5m"
    assert len(calls["fetch"]) == 1
    assert "tool=fetch: 1 call in 2 of 2 buckets of 5m" in out.splitlines()  # singular
    whole = cli(db, "stats", "--every", "5m", "--plot")
    assert whole.splitlines()[0] == f"all calls: {sum(map(len, calls.values()))} calls in 2 of 2 buckets of 5m"


def test_every_chart_helper_is_drawn_by_some_view():
    import inspect

    from toolctl.cli import _charts

    cli_dir = Path(_charts.__file__).parent
    users = "\n".join(f.read_text("utf-8") for f in cli_dir.glob("*.py") if f.name != "_charts.py")
    helpers = [name for name, obj in vars(_charts).items()
               if inspect.isfunction(obj) and obj.__module__ == _charts.__name__ and not name.startswith("_")]
    assert helpers and [h for h in helpers if not re.search(rf"\b{h}\(", users)] == []


@pytest.mark.parametrize("n_buckets", [1, 2])
def test_plot_x_labels_that_do_not_fit_under_few_buckets_are_dropped(n_buckets):
    from toolctl.cli._views import render_plot

    buckets = ["2026-11-24T06:00:00Z", "2026-11-24T06:05:00Z"][:n_buckets]
    rows = [{"bucket": b, "calls": 3, "error_rate": 0.5 * i, "p95_ms": 100.0 + i}
            for i, b in enumerate(buckets)]
    con = terminal(width=24)
    render_plot(rows, [{"calls": 3 * n_buckets}], [], "5m", con)
    lines = normalise(con.file.getvalue()).splitlines()
    axes = [i for i, line in enumerate(lines) if "└" in line]
    assert len(axes) == 2  # error rate and p95
    for i in axes:
        assert lines[i].endswith("└" + "─" * n_buckets)
        # The next line is the next chart's title or a blank: no x label past the columns.
        assert i + 1 == len(lines) or not lines[i + 1].startswith(" ")
    assert "06:0" not in "\n".join(lines)


@pytest.mark.parametrize("columns, labels", [
    (1, None), (2, None), (4, None), (5, "06:00"), (10, "06:00"), (11, "06:00 06:55"), (14, "06:00    06:55")])
def test_x_axis_labels_keep_within_the_columns(columns, labels):
    from toolctl.cli._charts import column_chart

    lines = column_chart([1.0] * columns, height=2, label="x", x_first="06:00", x_last="06:55")
    axis = lines[3]
    assert axis.endswith(" └" + "─" * columns)
    under_columns = " " * (len(axis) - columns)
    assert lines[4:] == ([] if labels is None else [under_columns + labels])


def test_histogram_snapshot_marks_percentiles_in_their_bins(view_db):
    out = cli(view_db, "stats", "--histogram", "--tool", "search", "--bins", "10")
    check_snapshot("stats_histogram_plain", out)
    doc = json.loads(run_toolctl("--db", view_db, "stats", "--histogram", "--tool", "search", "--bins", "10",
                                 "--format", "json").stdout)
    bars = [line for line in out.splitlines() if " – " in line]
    assert len(bars) == 10
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        [line] = [line for line in bars if key[:3] + " " in line.split("<-")[-1]]
        i = bars.index(line)
        b = doc["bins"][i]
        assert b["lower_ms"] <= doc[key] <= b["upper_ms"]


def test_histogram_on_a_terminal_uses_block_bars(view_db):
    from toolctl.cli._views import render_histogram

    doc = json.loads(run_toolctl("--db", view_db, "stats", "--histogram", "--tool", "search", "--bins", "10",
                                 "--format", "json").stdout)
    con = terminal()
    render_histogram(doc, con)
    out = normalise(con.file.getvalue())
    check_snapshot("stats_histogram_terminal", out)
    assert "◀ p95" in out and "#" not in out


def test_top_frame_snapshot(view_db):
    out = cli(view_db, "top", "--window", "15m", "--until", "2026-11-24T06:30:00Z")
    check_snapshot("top_frame", out)
    assert re.search(r"▲1 │ fetch", out)


# -- views of the sample store (sample_logs/, ingested through the real CLI) --------------------
@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    from tests.conftest import REPO

    db = tmp_path_factory.mktemp("sample") / "sample.duckdb"
    res = run_toolctl("--db", db, "ingest", REPO / "sample_logs", timeout=300)
    assert res.returncode == 3, res.stderr  # 3: the sample's intentionally bad lines were rejected
    return db


def _sample_lines(trace_id: str) -> list[dict]:
    import gzip

    from tests.conftest import REPO

    out = {}
    for path in sorted((REPO / "sample_logs").glob("*/*.jsonl.gz")):
        with gzip.open(path, "rb") as f:  # bytes: the sample holds deliberately broken lines
            for line in f:
                if trace_id.encode() in line:
                    doc = json.loads(line)
                    if doc.get("trace_id") == trace_id:
                        out[doc["event_id"]] = doc  # a re-sent line is stored once
    return list(out.values())


# A session with retried calls, a call that ends in an error and two calls of the same tool.
SAMPLE_TRACE = "6dbe7198a9df819f2000dda8da0d1811"


def test_audit_trace_snapshot_on_the_sample_store(sample_db):
    out = cli(sample_db, "audit", "trace", SAMPLE_TRACE)
    check_snapshot("audit_trace_sample", out)
    lines = _sample_lines(SAMPLE_TRACE)
    calls: dict[str, list[dict]] = {}
    for doc in lines:
        calls.setdefault(doc["call_id"], []).append(doc)
    assert out.splitlines()[0] == (f"trace {SAMPLE_TRACE}: 0 span(s), {len(calls)} call(s), "
                                   f"{len(lines)} event(s)")
    for call_id, attempts in calls.items():
        assert f"call {call_id} {attempts[0]['tool']}" in out
    finals = [max(a, key=lambda d: d["attempt"]) for a in calls.values()]
    assert out.count("final: error") == sum(f["status"] == "error" for f in finals) == 1
    assert out.count("attempt ") == len(lines)


def test_gate_snapshot_on_the_sample_store(sample_db, tmp_path):
    import shutil

    db = tmp_path / "gate.duckdb"
    shutil.copyfile(sample_db, db)  # gate records its run: each test starts at evaluation 1
    res = run_toolctl("--db", db, "gate", "--baseline", "v1.8.2", "--candidate", "v1.9.0-rc1",
                      "--until", "2026-11-24T12:00:00Z", env={"COLUMNS": "150"})
    assert res.returncode == 10, res.stderr  # hold
    out = normalise(res.stdout, tmp_path)
    check_snapshot("gate_sample", out)
    lines = out.splitlines()
    assert lines[0].startswith("VERDICT: HOLD  v1.9.0-rc1 vs v1.8.2  runbook canary-promotion  evaluation 1/6")
    assert lines[-1].startswith("Reason: ")


@pytest.mark.parametrize("columns", [100, 90])
def test_gate_on_a_narrow_terminal_shows_every_outcome_and_whole_reasons(sample_db, tmp_path, columns):
    import shutil

    db = tmp_path / "gate.duckdb"
    shutil.copyfile(sample_db, db)
    args = ("--db", db, "gate", "--baseline", "v1.8.2", "--candidate", "v1.9.0-rc1",
            "--until", "2026-11-24T12:00:00Z")
    report = json.loads(run_toolctl(*args, "--format", "json").stdout)
    shutil.copyfile(sample_db, db)  # the same evaluation (1/6) for the human run
    res = run_toolctl(*args, env={"COLUMNS": str(columns)})
    assert res.returncode == 10, res.stderr
    lines = res.stdout.splitlines()
    assert max(map(len, lines)) <= columns  # nothing runs past the edge (and is cropped)
    flat = " ".join(" ".join(lines).split())
    for c in report["checks"]:
        row = next(line for line in lines if line.startswith(f"│ {c['name']} "))
        assert c["outcome"] in row  # the outcome sits next to the name, never cropped
        assert " ".join(c["reason"].split()) in flat  # each reason whole, below the table


GATE_REPORT = {
    "verdict": "hold", "exit_code": 10, "reason": "p99-latency inconclusive: not enough evidence yet",
    "runbook": "canary-promotion", "baseline": "v1.8.2", "candidate": "v1.9.0-rc1",
    "since": "2026-11-24T06:00:00Z", "until": "2026-11-24T12:00:00Z", "evaluation": 1, "max_evaluations": 6,
    "checks": [
        {"name": "error-rate", "kind": "ratio_compare", "metric": "error_rate", "severity": "major",
         "estimate": -0.000947, "lower": -0.0045, "upper": 0.00313, "margin": 0.0151, "n_baseline": 32215,
         "n_candidate": 5990, "outcome": "pass", "dry_run": False, "reason": "within margin"},
        {"name": "p99-latency", "kind": "quantile_ratio", "metric": "p99_ms", "severity": "major",
         "estimate": 0.9895, "lower": 0.8203, "upper": 1.496, "margin": 1.3, "n_baseline": 34265,
         "n_candidate": 6345, "outcome": "inconclusive", "dry_run": False, "reason": "interval too wide"},
        {"name": "auth-failures", "kind": "ratio_compare", "metric": "auth_failure_rate", "severity": "critical",
         "estimate": None, "lower": None, "upper": None, "margin": 0.005, "n_baseline": None,
         "n_candidate": None, "outcome": "fail", "dry_run": True, "reason": "shadow check"},
    ],
}


def test_gate_banner_table_and_reason_snapshot():
    from toolctl.cli.gate import render_report

    con = terminal(width=140)
    render_report(GATE_REPORT, con)
    out = normalise(con.file.getvalue())
    check_snapshot("gate_hold", out)
    lines = out.splitlines()
    assert lines[0].startswith("VERDICT: HOLD  v1.9.0-rc1 vs v1.8.2")
    assert lines[-1] == "Reason: p99-latency inconclusive: not enough evidence yet."
    assert "Checks (1 pass, 1 inconclusive, 1 fail)" in out
    assert "[0.8203, 1.496]" in out and "fail (dry run)" in out


@pytest.mark.parametrize("verdict,style", [("promote", "on green"), ("rollback", "on red"), ("hold", "on yellow")])
def test_gate_banner_is_coloured_by_verdict(verdict, style):
    from rich.console import Console

    from toolctl.cli.gate import render_report

    con = Console(file=io.StringIO(), width=140, record=True, force_terminal=True, color_system="truecolor")
    render_report({**GATE_REPORT, "verdict": verdict}, con)
    first = con.export_text(styles=True).splitlines()[0]
    colour = {"on green": "42", "on red": "41", "on yellow": "43"}[style]
    assert f";{colour}m" in first or f"[{colour}m" in first or f"{colour};" in first, first
    assert ANSI.sub("", first).startswith(f"VERDICT: {verdict.upper()}")


@pytest.mark.slow
def test_readme_images_are_what_render_screenshots_draws_today(tmp_path):
    """docs/images/*.svg equal, byte for byte, a fresh run of scripts/render_screenshots.py,
    even from a shell whose terminal, colour and toolctl settings differ (the script
    renders in an environment of its own)."""
    import subprocess
    import sys

    from tests.conftest import REPO

    config = tmp_path / "elsewhere.toml"  # would send every command to a collector
    config.write_text('[collector]\nurl = "http://127.0.0.1:9"\n', "utf-8")
    env = {**os.environ, "TERM": "dumb", "COLUMNS": "50", "NO_COLOR": "1", "TOOLCTL_CONFIG": str(config)}
    out = tmp_path / "images"
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "render_screenshots.py"), "--out", str(out)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    committed = sorted(p.name for p in (REPO / "docs" / "images").glob("*.svg"))
    assert sorted(p.name for p in out.glob("*.svg")) == committed
    stale = [name for name in committed
             if (out / name).read_bytes() != (REPO / "docs" / "images" / name).read_bytes()]
    assert stale == [], f"regenerate with: python scripts/render_screenshots.py ({stale})"
