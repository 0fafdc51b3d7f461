"""The canary gate: runbooks of statistical checks, a verdict, and its history.

Library entry points (the CLI is a thin layer over these):

* ``run_gate(store, GateRequest)`` → report dict with ``verdict`` and every check's evidence;
  the evaluation is persisted (history) and recorded as a decision.
* ``run_runbook(store, runbook, since, until, tools)`` → single-window health report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from toolctl.errors import UsageError
from toolctl.gate.verdict import EXIT_CODES, RUNBOOK_EXIT_CODES
from toolctl.store import Store
from toolctl.timeutil import iso_utc

__all__ = ["GateRequest", "run_gate", "run_runbook", "EXIT_CODES", "RUNBOOK_EXIT_CODES"]


@dataclass
class GateRequest:
    baseline: str
    candidate: str
    runbook: object  # toolctl.gate.runbook.Runbook
    since: datetime | None = None
    until: datetime | None = None
    tools: list[str] | None = None
    now: datetime | None = None
    record: bool = True


def _low_conf(runbook) -> float:
    return next((c.low_threshold for c in runbook.checks if c.kind == "quality_compare"), 0.5)


def evaluate_checks(runbook, ctx) -> list:
    from toolctl.gate.checks import evaluate

    return [evaluate(c, ctx, runbook.confidence) for c in runbook.checks]


def run_gate(store: Store, req: GateRequest) -> dict:
    """Evaluate the runbook's checks for candidate vs baseline over one shared window.

    Window: [since, until); since defaults to the candidate's first event, until to now.
    A baseline or candidate version with no events at all gives an unrecorded
    ``inconclusive`` report naming it (``missing_versions``), not an evaluation.
    Raises UsageError for an empty window; StoreError propagates (the CLI maps it to 40).
    """
    from toolctl.gate import data, history
    from toolctl.gate.checks import reads_latencies
    from toolctl.timeutil import utcnow

    rb = req.runbook
    if rb.mode != "compare":
        raise UsageError(f"runbook {rb.name!r} is a single-window runbook",
                         hint=f"run it with `toolctl runbook run {rb.name}`, or pass a compare runbook to --runbook")
    if req.baseline == req.candidate:
        raise UsageError("--baseline and --candidate are the same version",
                         hint="compare two different values of the events' `version`")
    now = req.now or utcnow()
    until = req.until or now
    since = req.since or data.first_seen(store, req.candidate)
    if since is None:  # the candidate has no event at all: there is no window to look at
        return _absent_report(store, req, until, [req.candidate] + _absent(store, [req.baseline]))
    # A --tool with no event at all is a typo (or a tool not shipped yet), as above for a
    # version: asked only when --tool is given, so a whole-service gate pays nothing for it.
    missing = data.missing_tools(store, req.tools) if req.tools else []
    if missing:
        return _absent_report(store, req, until, _absent(store, [req.baseline]), tools=missing)
    if since >= until:  # [since, until) holds nothing: no evaluation to record
        if req.since is None:
            raise UsageError(f"empty window: candidate {req.candidate!r} was first seen at {iso_utc(since)}, "
                             f"not before --until {iso_utc(until)}",
                             hint="pass a later --until, or an explicit --since (the window is [since, until))")
        raise UsageError(f"empty window: --since {iso_utc(since)} is not before --until {iso_utc(until)}",
                         hint="--since must be earlier than --until (the window is [since, until))")
    ctx = data.build_context(store, since=since, until=until, baseline=req.baseline,
                             candidate=req.candidate, tools=req.tools, low_conf=_low_conf(rb),
                             latencies_needed=reads_latencies(rb.checks))
    # An arm with nothing in the window may be a version with no events anywhere (asked only
    # then, so a normal gate pays nothing for it).
    absent = _absent(store, [v for v, arm in ((req.candidate, ctx.cand), (req.baseline, ctx.base))
                             if arm.counts["attempts"] == 0])
    if absent:
        for arm in (ctx.cand, ctx.base):
            arm.latencies  # a fetch started ahead finishes before the store is handed back
        return _absent_report(store, req, until, absent, since=since,
                              arms={"baseline": ctx.base.counts, "candidate": ctx.cand.counts})
    results = evaluate_checks(rb, ctx)
    key = history.run_key(rb.content_hash, req.baseline, req.candidate, req.tools)
    done, streaks = history.previous(store, key) if req.record else (0, {})
    seq = done + 1
    from toolctl.gate.verdict import decide

    verdict, reason = decide(results, prior_streaks=streaks, consecutive=rb.consecutive_failures,
                             seq=seq, max_evaluations=rb.max_evaluations)
    report = {
        "verdict": verdict, "exit_code": EXIT_CODES[verdict], "reason": reason,
        "runbook": rb.name, "runbook_hash": rb.content_hash, "baseline": req.baseline,
        "candidate": req.candidate, "since": iso_utc(since), "until": iso_utc(until),
        "tools": req.tools or [], "evaluation": seq, "max_evaluations": rb.max_evaluations,
        "consecutive_failures": rb.consecutive_failures, "confidence": rb.confidence,
        "arms": {"baseline": ctx.base.counts, "candidate": ctx.cand.counts},
        "checks": [r.to_dict() for r in results],
    }
    if req.record and not store.read_only:
        def ledger(eid: int) -> None:
            report["evaluation_id"] = eid
            _record_decision(store, report)

        history.record(store, key=key, runbook=rb, baseline=req.baseline, candidate=req.candidate,
                       seq=seq, since=since, until=until, verdict=verdict, reason=reason,
                       results=results, report=report, now=now, before_commit=ledger)
    return report


def _absent(store: Store, versions: list[str]) -> list[str]:
    """The versions among ``versions`` that have no event at all."""
    from toolctl.gate import data

    return [v for v in versions if data.first_seen(store, v) is None]


def _absent_report(store: Store, req: GateRequest, until: datetime, absent: list[str],
                   since: datetime | None = None, arms: dict | None = None,
                   tools: list[str] | None = None) -> dict:
    """Inconclusive (exit 30, as ``regress`` answers a window without data) and *not*
    recorded: a version (``absent``) or a --tool (``tools``) with no events at all is a typo
    or a canary that has sent nothing yet. Neither is evidence, so it must not use up one of
    the runbook's evaluations (a typo used to hold six times, then turn inconclusive) nor
    start a gate history."""
    from toolctl.gate import data

    rb = req.runbook
    known = data.known_versions(store)
    known_tools = data.known_tools(store) if tools else None
    what, check = [], []
    if absent:
        what += [f"{'candidate' if v == req.candidate else 'baseline'} version {v!r}" for v in absent]
        check.append(f"--baseline/--candidate; known versions: {', '.join(known) or 'none'}")
    if tools:
        what += [f"tool {t!r}" for t in tools]
        check.append(f"--tool; known tools: {', '.join(known_tools) or 'none'}")
    reason = f"no events of {' and '.join(what)} at all (check {'; '.join(check)}); not recorded as an evaluation"
    return {
        "verdict": "inconclusive", "exit_code": EXIT_CODES["inconclusive"], "reason": reason,
        "runbook": rb.name, "runbook_hash": rb.content_hash, "baseline": req.baseline,
        "candidate": req.candidate, "since": iso_utc(since) if since else None,
        "until": iso_utc(until), "tools": req.tools or [], "evaluation": None,
        "max_evaluations": rb.max_evaluations, "consecutive_failures": rb.consecutive_failures,
        "confidence": rb.confidence, "missing_versions": absent, "known_versions": known,
        "missing_tools": tools or [], "known_tools": known_tools,
        "arms": arms or {"baseline": dict(data.EMPTY_COUNTS), "candidate": dict(data.EMPTY_COUNTS)},
        "checks": [],
    }


def _record_decision(store: Store, report: dict) -> None:
    """Every gate decision is a ledger entry (``toolctl.audit.ledger.record_event``).

    Called inside the transaction that stores the evaluation; a toolctl without the audit
    package simply skips it.
    """
    try:
        from toolctl.audit.ledger import control_rows, record_event
    except ImportError:
        return
    payload = {k: report[k] for k in ("verdict", "reason", "runbook", "runbook_hash", "baseline",
                                       "candidate", "since", "until", "evaluation")}
    payload["evaluation_id"] = report.get("evaluation_id")
    payload["checks"] = {c["name"]: c["outcome"] for c in report["checks"]}
    # What the decision stored (its evaluation and check rows): `audit verify` recomputes it.
    payload["rows"] = control_rows(store, evaluation_id=payload["evaluation_id"])
    record_event(store, "gate_decision", payload)


def run_runbook(store: Store, runbook, *, since: datetime | None, until: datetime | None,
                tools: list[str] | None = None, now: datetime | None = None) -> dict:
    """Single-window health over [since, until) (default: the last hour up to now)."""
    from datetime import timedelta

    from toolctl.gate import data
    from toolctl.gate.checks import reads_latencies
    from toolctl.gate.verdict import runbook_status
    from toolctl.timeutil import before, utcnow

    if runbook.mode != "single":
        raise UsageError(f"runbook {runbook.name!r} compares two versions",
                         hint="run it with `toolctl gate --baseline V1 --candidate V2 --runbook ...`")
    now = now or utcnow()
    until = until or now
    since = since or before(until, timedelta(hours=1), option="--until")
    if since >= until:
        raise UsageError(f"empty window: --since {iso_utc(since)} is not before --until {iso_utc(until)}",
                         hint="--since must be earlier than --until (the window is [since, until))")
    ctx = data.build_context(store, since=since, until=until, baseline=None, candidate=None,
                             tools=tools, low_conf=_low_conf(runbook),
                             latencies_needed=reads_latencies(runbook.checks))
    results = evaluate_checks(runbook, ctx)
    status, reason = runbook_status(results)
    return {"status": status, "exit_code": RUNBOOK_EXIT_CODES[status], "reason": reason,
            "runbook": runbook.name, "since": iso_utc(since), "until": iso_utc(until),
            "counts": ctx.cand.counts, "checks": [r.to_dict() for r in results]}
