"""`toolctl gate`: the canary gate (promote / hold / rollback) and its history."""

from __future__ import annotations

import re
from typing import Annotated, Any, List, Optional

import typer

from toolctl.cli._engine import Engine, EngineOpt, LakeOpt, SparkMasterOpt, lake_source
from toolctl.cli._output import DocFormat, label, print_json, stdout, table

FormatOpt = Annotated[DocFormat, typer.Option("--format", "-f", help="Output format.")]

#: Exit codes of `toolctl gate` (contract for scripts; also in toolctl.gate.verdict).
GATE_EXIT = {"promote": 0, "hold": 10, "rollback": 20, "inconclusive": 30, "error": 40}

app = typer.Typer(help="Canary gate: compare a candidate version with a baseline. "
                  "Exit 0 promote, 10 hold, 20 rollback, 30 inconclusive, 40 error, 2 usage.",
                  invoke_without_command=True, no_args_is_help=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="gate")


@app.callback(invoke_without_command=True)
def gate(
    ctx: typer.Context,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Baseline version (events' `version`).")] = None,
    candidate: Annotated[Optional[str], typer.Option("--candidate", help="Candidate version.")] = None,
    runbook: Annotated[Optional[str], typer.Option("--runbook", help="Runbook file or built-in name (default: canary-promotion).")] = None,
    since: Annotated[Optional[str], typer.Option(help="Window start (default: the candidate's first event).")] = None,
    until: Annotated[Optional[str], typer.Option(help="Window end, exclusive (default: now); burn-rate windows end here.")] = None,
    tool: Annotated[Optional[List[str]], typer.Option("--tool", help="Only these tools (repeatable).")] = None,
    fmt: FormatOpt = DocFormat.table,
    junit: Annotated[Optional[str], typer.Option("--junit", metavar="FILE", help="Also write a JUnit XML report (one test case per check).")] = None,
    engine: EngineOpt = Engine.duckdb,
    lake: LakeOpt = None,
    spark_master: SparkMasterOpt = None,
) -> None:
    """Gate a canary: exit 0 promote, 10 hold, 20 rollback, 30 inconclusive, 40 error, 2 usage.

    Example: toolctl gate --baseline v1.8.2 --candidate v1.9.0-rc1 --until 2026-11-24T12:00:00Z
    """
    if ctx.invoked_subcommand is not None:
        return
    from toolctl.errors import LakeError, StoreError, UsageError

    if not baseline or not candidate:
        raise UsageError("toolctl gate needs --baseline and --candidate",
                         hint="e.g. toolctl gate --baseline v1.8.2 --candidate v1.9.0-rc1")
    from toolctl import api
    from toolctl.gate.runbook import load_runbook
    from toolctl.timeutil import parse_time, utcnow

    if junit:  # before the gate runs: a bad path must not cost an evaluation in the history
        _check_report_path(junit)
    now = utcnow()
    rb = load_runbook(runbook or ctx.obj.setting("gate.runbook"))  # flag > env > toolctl.toml
    req = api.request_model("gate", "write")(
        baseline=baseline, candidate=candidate, runbook=rb, now=now,
        since=parse_time(since, option="--since", now=now),
        until=parse_time(until, option="--until", now=now), tools=tool or None)
    try:
        source = lake_source(engine, lake, spark_master)
        if source is not None:
            # A lake is read-only: the evaluation is not recorded in the store's gate history.
            from toolctl.gate import GateRequest, run_gate

            with source:
                report = api.jsonable(run_gate(source, GateRequest(**dict(req), record=False)))
        else:
            # While `toolctl serve` holds the store, the collector's writer runs the gate.
            with ctx.obj.open_write_or_remote() as store:
                report = api.write(store, "gate", req)
    except (StoreError, LakeError) as exc:  # the store or the lake cannot be read
        # The store unreadable → verdict `error` (exit 40), still one JSON document.
        from toolctl.cli._output import print_error

        report = {"verdict": "error", "exit_code": GATE_EXIT["error"], "reason": exc.message,
                  "baseline": baseline, "candidate": candidate, "runbook": rb.name, "checks": []}
        print_error(exc)
    if fmt is DocFormat.json:
        print_json(report)
    else:
        render_report(report)
    if junit:
        try:
            write_junit(report, junit)
        except OSError as exc:
            from toolctl.errors import InputError

            raise InputError(f"cannot write the JUnit report to {junit}: {exc.strerror or exc}",
                             hint="the verdict above stands and is recorded; fix the path or the "
                                  "disk and run the gate again for the report") from None
    raise typer.Exit(GATE_EXIT[report["verdict"]])


def _check_report_path(path: str) -> None:
    from pathlib import Path

    from toolctl.errors import UsageError

    p = Path(path)
    if p.is_dir():
        raise UsageError(f"--junit {path} is a directory", hint="name a file, e.g. --junit gate-report.xml")
    if not p.parent.is_dir():
        raise UsageError(f"--junit {path}: directory {p.parent} does not exist", hint="create it first")
    # A directory that refuses the file (permissions, a read-only or pseudo file system) is
    # found by creating it now (and removing it again): the report is written after the
    # evaluation is recorded, too late to refuse the run.
    existed = p.exists()
    try:
        with open(p, "ab"):
            pass
    except OSError as exc:
        from toolctl.errors import InputError

        raise InputError(f"cannot write the JUnit report to {path}: {exc.strerror or exc}",
                         hint="fix the path or its permissions (the gate did not run)") from None
    if not existed:
        p.unlink(missing_ok=True)


_STYLE = {"promote": "bold green", "hold": "bold yellow", "rollback": "bold red",
          "inconclusive": "bold yellow", "error": "bold red",
          "pass": "green", "fail": "red", "warn": "yellow"}


def _num(x, pct: bool) -> str:
    if x is None:
        return "–"
    return f"{x * 100:.3g}%" if pct else f"{x:.4g}"


def check_rows(checks: list[dict]) -> list[list]:
    from rich.text import Text

    rows = []
    for c in checks:
        pct = c["kind"] in ("ratio_compare", "abandoned", "retry_budget") or (
            c["kind"] == "threshold" and not str(c.get("metric", "")).endswith("_ms"))
        pct = pct and c["kind"] != "burn_rate"
        interval = "–" if c["lower"] is None and c["upper"] is None else \
            f"[{_num(c['lower'], pct)}, {_num(c['upper'], pct)}]"
        outcome = c["outcome"] + (" (dry run)" if c["dry_run"] else "")
        rows.append([c["name"], Text(outcome, style=_STYLE.get(c["outcome"], "")), c["severity"],
                     _num(c["estimate"], pct), interval, _num(c["margin"], pct),
                     f"{c['n_baseline'] if c['n_baseline'] is not None else '–'}/"
                     f"{c['n_candidate'] if c['n_candidate'] is not None else '–'}",
                     c["reason"]])
    return rows


# The outcome comes right after the name: on a narrow terminal the right edge is what gives.
CHECK_COLUMNS = [("check", "left"), ("outcome", "left"), ("severity", "left"), ("estimate", "right"),
                 ("interval", "right"), ("margin", "right"), ("n base/cand", "right"),
                 ("reason", "left", "prose")]
REASON_MIN_WIDTH = 30  # narrower than this, the reasons go below the table instead


_BANNER = {"promote": "bold black on green", "hold": "bold black on yellow",
           "rollback": "bold white on red", "inconclusive": "bold black on yellow",
           "error": "bold white on red"}


def render_report(report: dict, console=None) -> None:
    """Verdict banner, the checks with their evidence, and the reason in one sentence."""
    from rich.text import Text

    console = console or stdout()
    v = report["verdict"]
    # The banner line starts with "VERDICT: …" so scripts grepping the human output keep working.
    console.print(Text(f"VERDICT: {v.upper()}", style=_BANNER.get(v, _STYLE[v])) +
                  label(f"  {report.get('candidate')} vs {report.get('baseline')}"
                       f"  runbook {report.get('runbook')}"
                       + _evaluation(report)
                       + (f"  window {report['since']} .. {report['until']}" if report.get("since") else "")))
    if report["checks"]:
        counts: dict[str, int] = {}
        for c in report["checks"]:
            counts[c["outcome"]] = counts.get(c["outcome"], 0) + 1
        summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        print_checks(console, f"Checks ({summary})", report["checks"])
    console.print(Text("Reason: ", style="bold") + label(f"{report['reason']}.", style=_STYLE[v]))


def _evaluation(report: dict) -> str:
    """"evaluation 3/6"; past the runbook's limit (a gate looked at again after it went
    inconclusive) "evaluation 7 (limit 6)" rather than "7/6"; nothing when not recorded."""
    seq, limit = report.get("evaluation"), report.get("max_evaluations")
    if seq is None:
        return ""
    return f"  evaluation {seq}/{limit}" if seq <= limit else f"  evaluation {seq} (limit {limit})"


def print_checks(console: Any, title: str, checks: list[dict]) -> None:
    """The checks as a table; each check's reason beside its figures, or below the table
    when the terminal is too narrow for both (Rich would otherwise crop the right edge)."""
    from rich.text import Text

    rows = check_rows(checks)
    figures = table(title, CHECK_COLUMNS[:-1], [r[:-1] for r in rows])
    natural = console.measure(figures, options=console.options.update_width(10_000)).maximum
    if natural + 3 + REASON_MIN_WIDTH <= console.width:
        console.print(table(title, CHECK_COLUMNS, rows))
        return
    console.print(figures)
    for c in checks:
        console.print(label(f"{c['name']}: ", style="bold") + label(c["reason"]))


#: Characters XML 1.0 cannot hold, even escaped (C0 controls but tab/LF/CR, U+FFFE/U+FFFF,
#: lone surrogates): a version or reason holding one made the report unparseable for CI.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_text(value: object) -> str:
    """Text for the JUnit report, each character XML cannot hold shown as its escape (\\x1b)."""
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}",
                            str(value))


def write_junit(report: dict, path: str) -> None:
    """One <testcase> per check: fail → <failure>, inconclusive/dry-run → <skipped>, error → <error>."""
    import xml.etree.ElementTree as ET

    checks = report["checks"]
    suite = ET.Element("testsuite", name=_xml_text(f"toolctl gate {report.get('runbook')}"),
                       tests=str(len(checks)),
                       failures=str(sum(c["outcome"] == "fail" and not c["dry_run"] for c in checks)),
                       errors=str(sum(c["outcome"] == "error" for c in checks)),
                       skipped=str(sum(c["outcome"] == "inconclusive" or c["dry_run"] for c in checks)))
    props = ET.SubElement(suite, "properties")
    for k in ("verdict", "reason", "baseline", "candidate", "since", "until"):
        ET.SubElement(props, "property", name=k, value=_xml_text(report.get(k)))
    for c in checks:
        case = ET.SubElement(suite, "testcase", classname=f"gate.{c['kind']}", name=_xml_text(c["name"]))
        reason = _xml_text(c["reason"])
        if c["dry_run"]:
            ET.SubElement(case, "skipped", message=f"dry run: {c['outcome']}: {reason}")
        elif c["outcome"] == "fail":
            ET.SubElement(case, "failure", message=reason, type=c["severity"])
        elif c["outcome"] == "error":
            ET.SubElement(case, "error", message=reason)
        elif c["outcome"] == "inconclusive":
            ET.SubElement(case, "skipped", message=reason)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


@app.command("history")
def history_cmd(
    ctx: typer.Context,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Only runs with this baseline.")] = None,
    candidate: Annotated[Optional[str], typer.Option("--candidate", help="Only runs with this candidate.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many evaluations.", min=1)] = 50,
    fmt: FormatOpt = DocFormat.table,
) -> None:
    """Past gate evaluations, newest first.

    Example: toolctl gate history --candidate v1.9.0-rc1
    """
    from toolctl import api

    # Through toolctl.api: answered by `toolctl serve` when it holds the store.
    with ctx.obj.open_read() as store:
        rows = api.read(store, "gate_history", api.GateHistory(baseline=baseline, candidate=candidate,
                                                                limit=limit))
    if fmt is DocFormat.json:
        print_json(rows)
        return
    from rich.text import Text

    body = [[r["evaluated_at"], r["candidate"], r["baseline"], r["runbook_name"], str(r["seq"]),
             Text(r["verdict"], style=_STYLE.get(r["verdict"], "")), r["reason"]] for r in rows]
    cols = [("evaluated at", "left"), ("candidate", "left"), ("baseline", "left"), ("runbook", "left"),
            ("eval", "right"), ("verdict", "left"), ("reason", "left")]
    stdout().print(table("Gate history", cols, body,
                         caption=None if rows else "No gate evaluations yet. Run `toolctl gate --baseline V1 --candidate V2`."))
