"""The verdict algebra of one gate evaluation, and its exit codes (a contract for scripts)."""

from __future__ import annotations

from typing import Iterable

EXIT_CODES = {"promote": 0, "hold": 10, "rollback": 20, "inconclusive": 30, "error": 40}
#: `toolctl runbook run`: single-window health.
RUNBOOK_EXIT_CODES = {"pass": 0, "warn": 10, "fail": 20, "error": 40}


def decide(results: Iterable, *, prior_streaks: dict[str, int], consecutive: int, seq: int,
           max_evaluations: int) -> tuple[str, str]:
    """(verdict, one-sentence reason).

    Order: a critical fail → rollback; a check failing in ``consecutive`` evaluations in a row
    (counting earlier ones in ``prior_streaks``) → rollback; any other fail or inconclusive
    (or error) → hold, which becomes ``inconclusive`` once ``max_evaluations`` are used up;
    all non-dry-run checks pass → promote. Dry-run checks are reported but never decide.
    """
    live = [r for r in results if not r.dry_run]
    crit = [r.name for r in live if r.outcome == "fail" and r.severity == "critical"]
    if crit:
        return "rollback", f"critical check {', '.join(crit)} failed"
    streak = [r.name for r in live if r.outcome == "fail" and prior_streaks.get(r.name, 0) + 1 >= consecutive]
    if streak:
        if consecutive == 1:  # a single look (`regress`, or a runbook with K = 1)
            return "rollback", f"{', '.join(streak)} failed"
        return "rollback", f"{', '.join(streak)} failed in {consecutive} consecutive evaluations"
    fails = [r.name for r in live if r.outcome == "fail"]
    errors = [r.name for r in live if r.outcome == "error"]
    pending = [r.name for r in live if r.outcome == "inconclusive"]
    if not (fails or errors or pending):
        return "promote", f"all {len(live)} checks passed"
    if fails:
        # How many evaluations in a row each has failed now (this one included).
        runs = sorted({prior_streaks.get(name, 0) + 1 for name in fails})
        times = " or ".join("once" if n == 1 else "twice" if n == 2 else f"{n} times" for n in runs)
        times += "" if runs == [1] else " in a row"
        why = f"{', '.join(fails)} failed {times} (rollback after {consecutive} in a row)"
    elif errors:
        why = f"{', '.join(errors)} could not be computed"
    else:
        why = f"{', '.join(pending)} inconclusive: not enough evidence yet"
    if seq >= max_evaluations:
        return "inconclusive", f"{max_evaluations} evaluations used without promotion; last: {why}"
    return "hold", why


def runbook_status(results: Iterable) -> tuple[str, str]:
    """Single-window health: a critical fail → fail; any other fail/inconclusive/error → warn."""
    live = [r for r in results if not r.dry_run]
    crit = [r.name for r in live if r.outcome == "fail" and r.severity == "critical"]
    if crit:
        return "fail", f"critical check {', '.join(crit)} failed"
    bad = [r.name for r in live if r.outcome != "pass"]
    if bad:
        return "warn", f"{', '.join(bad)} did not pass"
    return "pass", f"all {len(live)} checks passed"
