"""What the checks read: per-arm counts (SQL aggregates) and, only when needed, latencies.

Counts are pushed into DuckDB (one grouped query for both arms); latency arrays are fetched
once per arm and only when a quantile, threshold-on-quantile or Mann-Whitney check asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

from toolctl.store import Store

EMPTY_COUNTS = {"attempts": 0, "calls": 0, "errors": 0, "auth_failures": 0, "retries": 0,
                "abandoned": 0, "validation_errors": 0, "conf_n": 0, "conf_mean": None,
                "conf_var": None, "conf_low": 0}


@lru_cache(maxsize=None)
def load_query(name: str) -> str:
    return resources.files("toolctl.gate").joinpath("queries", f"{name}.sql").read_text("utf-8")


@dataclass
class ArmData:
    """One arm: its count figures and (lazily) its sorted attempt latencies."""

    counts: dict
    fetch_latencies: Callable[[], Any] | None = None
    _lat: Any = field(default=None, repr=False)

    @property
    def latencies(self):
        if self._lat is None:
            import numpy as np

            self._lat = self.fetch_latencies() if self.fetch_latencies else np.array([])
        return self._lat

    def rate(self, metric: str) -> tuple[int, int]:
        """(numerator, denominator) of a rate metric."""
        c = self.counts
        return {
            "error_rate": (c["errors"], c["calls"]),
            "auth_failure_rate": (c["auth_failures"], c["attempts"]),
            "abandoned_rate": (c["abandoned"], c["calls"]),
            "retry_ratio": (c["retries"], c["attempts"]),
            "validation_error_rate": (c["validation_errors"], c["attempts"]),
            "reject_rate": (c.get("rejects", 0), c["attempts"] + c.get("rejects", 0)),
        }[metric]


@dataclass
class EvalContext:
    """Everything one evaluation's checks read."""

    base: ArmData | None
    cand: ArmData
    until: datetime
    window_counts: Callable[[timedelta], dict] | None = None  # candidate arm over [until-d, until)


#: arm_calls.sql's placeholders (constants, never input): one pass, ties left unresolved...
ARM_CALLS_ONE_PASS = {"{per_call}": "NOT MATERIALIZED", "{classified_where}": "", "{tie_rows}": ""}
#: ...or exact, the tie calls decided by event_id (run only when the one pass found a tie).
ARM_CALLS_EXACT = {
    "{per_call}": "MATERIALIZED",
    "{classified_where}": "WHERE outcome IS NOT NULL",
    "{tie_rows}": "UNION ALL\n    SELECT arm, fin.status = 'error', fin.status = 'error' AND fin.retryable,"
                  " false FROM tie_final",
}


def arm_calls_sql(exact: bool) -> str:
    sql = load_query("arm_calls")
    for marker, text in (ARM_CALLS_EXACT if exact else ARM_CALLS_ONE_PASS).items():
        sql = sql.replace(marker, text)
    return sql


def arm_counts(store: Store, *, since: datetime, until: datetime, baseline: str | None,
               candidate: str | None, tools: list[str] | None, low_conf: float = 0.5) -> dict[str, dict]:
    """Count figures per arm ('*' when neither version is given)."""
    params = {"since": since, "until": until, "all": baseline is None and candidate is None,
              "baseline": baseline, "candidate": candidate, "tools": tools or None}
    attempts = store.fetch_dicts(load_query("arm_attempts"), dict(params, low_conf=low_conf))
    rows = store.fetch_dicts(arm_calls_sql(exact=False), params)
    if any(r["tie_calls"] for r in rows):  # rare: two outcomes at the same (attempt, ts)
        rows = store.fetch_dicts(arm_calls_sql(exact=True), params)
    calls = {r.pop("arm"): r for r in rows}
    out = {}
    for r in attempts:
        arm = r.pop("arm")
        c = calls.get(arm, {"calls": 0, "errors": 0, "abandoned": 0})
        out[arm] = {"attempts": r["attempts"], "calls": c["calls"], "errors": c["errors"],
                    "auth_failures": r["auth_failures"], "retries": r["attempts"] - c["calls"],
                    "abandoned": c["abandoned"], "validation_errors": r["validation_errors"],
                    "conf_n": r["conf_n"], "conf_mean": r["conf_mean"], "conf_var": r["conf_var"],
                    "conf_low": r["conf_low"]}
    return out


def fetch_latencies(store: Store, *, since: datetime, until: datetime, version: str | None,
                    tools: list[str] | None):
    import numpy as np

    cur = store.execute(load_query("arm_latencies"), {
        "since": since, "until": until, "version": version, "tools": tools or None})
    out = np.asarray(cur.fetchnumpy()["latency_ms"], dtype=float)  # drains the result
    out.sort()  # numpy's sort beats ORDER BY + transfer on 2 cores (8.5M rows: 1.1 s vs 2.6 s)
    return out


def window_rejects(store: Store, since: datetime, until: datetime, tools: list[str] | None = None) -> int:
    """Rejected lines in the window; with ``tools``, only those naming one (window_rejects.sql)."""
    return int(store.scalar(load_query("window_rejects"),
                            {"since": since, "until": until, "tools": tools or None}) or 0)


def first_seen(store: Store, version: str) -> datetime | None:
    return store.scalar(load_query("first_seen"), {"version": version})


def known_versions(store: Store, limit: int = 10) -> list[str]:
    """Versions that have events, most recently seen first (at most ``limit``)."""
    return [r["version"] for r in store.fetch_dicts(load_query("known_versions"), {"limit": limit})]


def missing_tools(store: Store, tools: list[str]) -> list[str]:
    """The tools among ``tools`` that have no event at all."""
    return [r["tool"] for r in store.fetch_dicts(load_query("missing_tools"), {"tools": list(tools)})]


def known_tools(store: Store, limit: int = 10) -> list[str]:
    """Tools that have events, most recently seen first (at most ``limit``)."""
    return [r["tool"] for r in store.fetch_dicts(load_query("known_tools"), {"limit": limit})]


def _prefetch_statistics_imports() -> None:
    """Import numpy/scipy.special in a background thread while DuckDB counts the arms.

    The checks need them right after the count queries (~0.3 s of imports together).
    DuckDB releases the GIL while it executes, so the import overlaps the queries instead
    of following them. Nothing depends on the thread finishing: a later ``import`` simply
    waits for the module lock. (Not scipy.stats: see gate/statistics.py.)
    """
    import sys
    import threading

    if "scipy.special" in sys.modules:
        return

    def load() -> None:
        try:
            import numpy  # noqa: F401
            import scipy.special  # noqa: F401
        except Exception:  # the checks' own import reports any real problem
            pass

    threading.Thread(target=load, name="toolctl-prefetch-scipy", daemon=True).start()


def _latencies_ahead(store: Store, *, since: datetime, until: datetime, versions: list[str | None],
                     tools: list[str] | None) -> Callable[[str | None], Any] | None:
    """Fetch and sort the arms' latencies on a companion connection while this one counts.

    The two latency arrays (~2.5M values each at 10M events) cost ~0.6 s to fetch and sort
    after the count queries; fetched in a thread (DuckDB and numpy's sort release the GIL)
    they overlap the call counting instead. Only for a store with a companion connection
    (not the lake engines) and outside a transaction: a companion sees committed data only,
    and inside the collector's write burst the counts would see rows it cannot.
    Returns version -> sorted array, or None when it does not apply.
    """
    if not hasattr(store, "companion") or getattr(store, "in_transaction", True):
        return None
    from concurrent.futures import ThreadPoolExecutor

    def fetch_all() -> dict:
        other = store.companion()
        try:
            return {v: fetch_latencies(other, since=since, until=until, version=v, tools=tools)
                    for v in versions}
        finally:
            other.close()

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="toolctl-latencies")
    ahead = pool.submit(fetch_all)
    pool.shutdown(wait=False)
    return lambda version: ahead.result()[version]


def build_context(store: Store, *, since: datetime, until: datetime, baseline: str | None,
                  candidate: str | None, tools: list[str] | None, low_conf: float = 0.5,
                  latencies_needed: bool = False) -> EvalContext:
    """Compare mode with both versions; single-window mode (baseline=candidate=None) otherwise.

    ``latencies_needed``: a check will read the arms' latencies (fetched ahead, in parallel
    with the counts, when the store allows); otherwise they are fetched on first use, if any.
    """
    _prefetch_statistics_imports()
    single = baseline is None and candidate is None
    ahead = _latencies_ahead(store, since=since, until=until, tools=tools,
                             versions=[candidate] if single else [candidate, baseline]) \
        if latencies_needed else None
    counts = arm_counts(store, since=since, until=until, baseline=baseline, candidate=candidate,
                        tools=tools, low_conf=low_conf)

    def arm(key: str | None, version: str | None) -> ArmData:
        c = dict(counts.get(key, EMPTY_COUNTS))
        if single:
            c["rejects"] = window_rejects(store, since, until, tools)
        if ahead is not None:
            return ArmData(c, lambda: ahead(version))
        return ArmData(c, lambda: fetch_latencies(store, since=since, until=until, version=version, tools=tools))

    cand = arm("*" if single else candidate, candidate)
    base = None if single else arm(baseline, baseline)

    def window_counts(duration: timedelta) -> dict:
        got = arm_counts(store, since=until - duration, until=until, baseline=None if single else candidate,
                         candidate=None if single else candidate, tools=tools, low_conf=low_conf)
        return got.get("*" if single else candidate, dict(EMPTY_COUNTS))

    return EvalContext(base=base, cand=cand, until=until, window_counts=window_counts)
