"""The check kinds: each turns an EvalContext into a CheckResult with its evidence.

Outcome rule for every kind: ``pass`` when the whole confidence interval is on the good side
of the limit, ``fail`` when wholly on the bad side, ``inconclusive`` when it straddles the
limit or there are fewer samples than ``min_samples``; ``error`` when computing it raised.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from toolctl.gate import statistics as st
from toolctl.gate.data import ArmData, EvalContext
from toolctl.gate.runbook import QUANTILE_METRICS, min_samples_default
from toolctl.timeutil import parse_duration


@dataclass
class CheckResult:
    name: str
    kind: str
    severity: str
    dry_run: bool
    outcome: str
    reason: str
    metric: str | None = None
    n_baseline: int | None = None
    n_candidate: int | None = None
    estimate: float | None = None
    lower: float | None = None
    upper: float | None = None
    margin: float | None = None
    more_needed: int | None = None
    evidence: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _f(x: float | None, digits: int = 4) -> str:
    if x is None or x == math.inf:
        return "∞"
    return f"{x:.{digits}g}"


def _f_lower(x: float | None, digits: int = 4) -> str:
    """A lower bound of latencies or of their ratio: an unbounded side (None: too few samples
    to bound it) is 0, since neither is ever negative; "∞" there read as a fail."""
    return "0" if x is None else _f(x, digits)


def _pct(x: float | None) -> str:
    return "∞" if x is None else f"{x * 100:.3g}%"


def _signed_pct(x: float) -> str:
    """+9.3%; beyond ±10,000% in exponent form (latencies of 1e300 ms gave 300 digits)."""
    return f"{x:+.1%}" if abs(x) < 100 else f"{x * 100:+.3g}%"


def _no_data(check, res: CheckResult, need: int, have: str | int) -> CheckResult:
    """Too few samples. ``have``: the two arms' counts as text, or one window's count."""
    res.outcome = check.on_no_data
    per = " per arm"
    if isinstance(have, int):  # one window (runbook run, a threshold): count what is there
        res.more_needed, per = max(need - have, 0), ""
    elif res.more_needed is None:
        res.more_needed = need
    res.reason = f"too few samples ({have}; need ≥ {need}{per}: about {res.more_needed:,} more calls)"
    return res


def evaluate(check, ctx: EvalContext, confidence: float) -> CheckResult:
    """Evaluate one check; an unexpected exception becomes outcome ``error`` (not a crash)."""
    res = CheckResult(check.name, check.kind, check.severity, check.dry_run, "error", "")
    try:
        return _KINDS[check.kind](check, ctx, confidence, res)
    except Exception as exc:  # a broken check must not hide the others' evidence
        res.outcome = "error"
        res.reason = f"{type(exc).__name__}: {exc}"
        return res


def _ratio(check, ctx, confidence, res, metric: str, margin_abs: float | None,
           margin_rel: float | None) -> CheckResult:
    res.metric = metric
    kc, nc = ctx.cand.rate(metric)
    kb, nb = ctx.base.rate(metric)
    res.n_candidate, res.n_baseline = nc, nb
    need = min_samples_default(check)
    if nc < need or nb < need:
        res.more_needed = max(need - nc, need - nb, 0)
        return _no_data(check, res, need, f"candidate {nc}, baseline {nb}")
    pb = kb / nb
    margin = (margin_abs or 0.0) + (margin_rel or 0.0) * pb
    iv = st.newcombe_diff(kc, nc, kb, nb, confidence)
    res.estimate, res.lower, res.upper, res.margin = iv.estimate, iv.lower, iv.upper, margin
    res.outcome = st.classify(iv.lower, iv.upper, margin)
    res.evidence = {"candidate_rate": kc / nc, "baseline_rate": pb, "candidate_count": kc,
                    "baseline_count": kb, "interval": "newcombe-wilson", "confidence": confidence}
    word = {"pass": "within", "fail": "beyond", "inconclusive": "straddles"}[res.outcome]
    res.reason = (f"{metric} {_pct(kc / nc)} vs {_pct(pb)}: difference {_pct(iv.estimate)} "
                  f"[{_pct(iv.lower)}, {_pct(iv.upper)}] {word} margin +{_pct(margin)}")
    if res.outcome == "inconclusive":
        res.more_needed = st.calls_needed_for_proportion(pb, kc / nc, margin, min(nc, nb), confidence)
        if res.more_needed:
            res.reason += f"; about {res.more_needed:,} more calls per arm needed"
    return res


def ratio_compare(check, ctx, confidence, res):
    return _ratio(check, ctx, confidence, res, check.metric, check.margin_abs, check.margin_rel)


def quantile_compare(check, ctx, confidence, res):
    q = check.quantile
    res.metric = f"p{q * 100:g}_ms ratio"
    c, b = ctx.cand.latencies, ctx.base.latencies
    res.n_candidate, res.n_baseline = len(c), len(b)
    need = min_samples_default(check)
    if len(c) < need or len(b) < need:
        res.more_needed = max(need - len(c), need - len(b), 0)
        return _no_data(check, res, need, f"candidate {len(c)}, baseline {len(b)}")
    # Two intervals at sqrt(confidence) each: their product covers the ratio at `confidence`.
    each = math.sqrt(confidence)
    ci_c, ci_b = st.quantile_interval(c, q, each), st.quantile_interval(b, q, each)
    iv = st.ratio_interval(ci_c, ci_b)
    res.estimate, res.lower, res.upper, res.margin = iv.estimate, iv.lower, iv.upper, check.max_ratio
    res.outcome = st.classify(iv.lower, iv.upper, check.max_ratio)
    res.evidence = {"candidate_ms": ci_c.estimate, "candidate_ci_ms": [ci_c.lower, ci_c.upper],
                    "baseline_ms": ci_b.estimate, "baseline_ci_ms": [ci_b.lower, ci_b.upper],
                    "interval": "order statistics (distribution-free)", "confidence": confidence}
    res.reason = (f"p{q * 100:g} {_f(ci_c.estimate)} ms vs {_f(ci_b.estimate)} ms: ratio {_f(iv.estimate, 3)} "
                  f"[{_f_lower(iv.lower, 3)}, {_f(iv.upper, 3)}] vs limit {check.max_ratio:g}")
    if res.outcome == "inconclusive":
        res.reason += "; more calls needed to narrow the interval"
    return res


def distribution_shift(check, ctx, confidence, res):
    res.metric = "latency shift (Hodges-Lehmann)"
    c, b = ctx.cand.latencies, ctx.base.latencies
    res.n_candidate, res.n_baseline = len(c), len(b)
    need = min_samples_default(check)
    if len(c) < need or len(b) < need:
        res.more_needed = max(need - len(c), need - len(b), 0)
        return _no_data(check, res, need, f"candidate {len(c)}, baseline {len(b)}")
    import numpy as np

    # Latencies near the double's limit overflow to inf (reported as null), not to a warning
    # on stderr.
    with np.errstate(over="ignore", invalid="ignore"):
        mw = st.mann_whitney_shift(c, b, check.confidence)
        median_b = float(np.median(b))
        scale = median_b if median_b > 0 else 1.0
        res.estimate = mw["hl_shift"] / scale
        res.lower, res.upper = (None if mw[k] is None else mw[k] / scale for k in ("hl_lower", "hl_upper"))
    res.margin = check.max_shift_rel
    res.outcome = st.classify(res.lower, res.upper, check.max_shift_rel)
    res.evidence = dict(mw, baseline_median_ms=median_b, confidence=check.confidence)
    res.reason = (f"shift {mw['hl_shift']:+.4g} ms = {_signed_pct(res.estimate)} of baseline median "
                  f"[{'-∞' if res.lower is None else _signed_pct(res.lower)}, "
                  f"{'+∞' if res.upper is None else _signed_pct(res.upper)}] vs limit +{check.max_shift_rel:.0%}; "
                  f"Mann-Whitney p={mw['p_value']:.3g}, mean ratio {_f(mw['effect_size'], 3)}")
    return res


def _single_rate(check, res, arm: ArmData, metric: str, limit: float, confidence: float) -> CheckResult:
    k, n = arm.rate(metric)
    res.metric, res.n_candidate, res.margin = metric, n, limit
    need = min_samples_default(check)
    if n < need:
        return _no_data(check, res, need, n)
    iv = st.wilson(k, n, confidence)
    res.estimate, res.lower, res.upper = iv.estimate, iv.lower, iv.upper
    res.outcome = st.classify(iv.lower, iv.upper, limit)
    res.evidence = {"count": k, "total": n, "interval": "wilson", "confidence": confidence}
    res.reason = f"{metric} {_pct(iv.estimate)} [{_pct(iv.lower)}, {_pct(iv.upper)}] vs limit {_pct(limit)}"
    return res


def threshold(check, ctx, confidence, res):
    if check.metric in QUANTILE_METRICS:
        q = QUANTILE_METRICS[check.metric]
        lat = ctx.cand.latencies
        res.metric, res.n_candidate, res.margin = check.metric, len(lat), check.max
        need = min_samples_default(check)
        if len(lat) < need:
            return _no_data(check, res, need, len(lat))
        iv = st.quantile_interval(lat, q, confidence)
        res.estimate, res.lower, res.upper = iv.estimate, iv.lower, iv.upper
        res.outcome = st.classify(iv.lower, iv.upper, check.max)
        res.evidence = {"interval": "order statistics", "confidence": confidence}
        res.reason = f"{check.metric} {_f(iv.estimate)} ms [{_f_lower(iv.lower)}, {_f(iv.upper)}] vs SLO {check.max:g} ms"
        return res
    return _single_rate(check, res, ctx.cand, check.metric, check.max, confidence)


def burn_rate(check, ctx, confidence, res):
    budget = 1 - check.objective
    res.metric, res.margin = "burn rate", None
    pairs, fired, worst = [], [], 0.0
    total_calls = 0
    for w in check.windows:
        rates = {}
        for label in (w.long, w.short):
            c = ctx.window_counts(parse_duration(label, option="burn-rate window"))
            rates[label] = (c["errors"] / c["calls"] / budget) if c["calls"] else None
            total_calls = max(total_calls, c["calls"])
        long_r, short_r = rates[w.long], rates[w.short]
        hit = long_r is not None and short_r is not None and long_r > w.factor and short_r > w.factor
        pairs.append({"long": w.long, "short": w.short, "factor": w.factor,
                      "long_burn": long_r, "short_burn": short_r, "firing": hit})
        if long_r is not None:
            worst = max(worst, long_r / w.factor)
        if hit:
            fired.append(f"{w.long}/{w.short} > {w.factor:g}×")
    res.n_candidate = total_calls
    res.evidence = {"objective": check.objective, "period": check.period, "windows": pairs}
    need = min_samples_default(check)
    if total_calls < need:
        return _no_data(check, res, need, int(total_calls))
    res.estimate = worst  # the highest long-window burn as a multiple of its factor
    res.margin = 1.0
    if fired:
        res.outcome = "fail"
        res.reason = "error budget burning: both windows exceed " + ", ".join(fired)
    else:
        res.outcome = "pass"
        res.reason = (f"no window pair over its factor (highest long-window burn {worst:.2f}× of its "
                      f"threshold; objective {check.objective:g})")
    return res


def retry_budget(check, ctx, confidence, res):
    c = ctx.cand.counts
    res.metric = "retry ratio"
    sub = _single_rate(check, res, ctx.cand, "retry_ratio", check.max_retry_ratio, confidence)
    if sub.outcome not in ("pass", "fail", "inconclusive") or not c["calls"]:
        return sub
    per_call = c["attempts"] / c["calls"]
    sub.evidence["attempts_per_call"] = per_call
    sub.evidence["max_attempts_per_call"] = check.max_attempts_per_call
    sub.reason += f"; {per_call:.3f} attempts per call (limit {check.max_attempts_per_call:g})"
    # Below min_samples the check keeps its on_no_data outcome: a quiet hour where a handful
    # of calls retried once is no retry storm, and must not page as a critical fail.
    if per_call > check.max_attempts_per_call and c["attempts"] >= min_samples_default(check):
        sub.outcome = "fail"
    return sub


def quality_compare(check, ctx, confidence, res):
    c, b = ctx.cand.counts, ctx.base.counts
    res.metric = "confidence mean"
    res.n_candidate, res.n_baseline = c["conf_n"], b["conf_n"]
    need = max(min_samples_default(check), 2)  # a variance needs two values per arm
    if c["conf_n"] < need or b["conf_n"] < need:
        res.more_needed = max(need - c["conf_n"], need - b["conf_n"], 0)
        return _no_data(check, res, need, f"candidate {c['conf_n']}, baseline {b['conf_n']} with confidence")
    mean = st.welch_diff(c["conf_mean"], c["conf_var"], c["conf_n"], b["conf_mean"], b["conf_var"],
                         b["conf_n"], confidence)
    # A drop is bad: look at baseline − candidate so "higher is worse" like every other check.
    drop_lo, drop_hi = -mean.upper, -mean.lower
    mean_out = st.classify(drop_lo, drop_hi, check.max_mean_drop)
    low = st.newcombe_diff(c["conf_low"], c["conf_n"], b["conf_low"], b["conf_n"], confidence)
    low_out = st.classify(low.lower, low.upper, check.max_low_share_increase)
    res.estimate, res.lower, res.upper, res.margin = -mean.estimate, drop_lo, drop_hi, check.max_mean_drop
    res.outcome = ("fail" if "fail" in (mean_out, low_out) else
                   "pass" if mean_out == low_out == "pass" else "inconclusive")
    res.evidence = {"candidate_mean": c["conf_mean"], "baseline_mean": b["conf_mean"],
                    "mean_drop_outcome": mean_out, "low_share_candidate": c["conf_low"] / c["conf_n"],
                    "low_share_baseline": b["conf_low"] / b["conf_n"], "low_threshold": check.low_threshold,
                    "low_share_diff_ci": [low.lower, low.upper], "low_share_outcome": low_out}
    res.reason = (f"mean confidence {c['conf_mean']:.3f} vs {b['conf_mean']:.3f} (drop {res.estimate:+.3f} "
                  f"[{drop_lo:+.3f}, {drop_hi:+.3f}], limit {check.max_mean_drop:g}); share below "
                  f"{check.low_threshold:g}: {_pct(c['conf_low'] / c['conf_n'])} vs "
                  f"{_pct(b['conf_low'] / b['conf_n'])}")
    return res


def abandoned(check, ctx, confidence, res):
    if ctx.base is not None and check.margin_abs is not None:
        return _ratio(check, ctx, confidence, res, "abandoned_rate", check.margin_abs, None)
    if check.max_rate is None:
        res.outcome, res.reason = "error", "abandoned without a baseline needs max_rate"
        return res
    return _single_rate(check, res, ctx.cand, "abandoned_rate", check.max_rate, confidence)


def reads_latencies(checks: Any) -> bool:
    """True when one of ``checks`` reads the arms' latency arrays (so fetching them early pays)."""
    return any(c.kind in ("quantile_compare", "distribution_shift")
               or (c.kind == "threshold" and c.metric in QUANTILE_METRICS) for c in checks)


_KINDS: dict[str, Any] = {
    "ratio_compare": ratio_compare, "quantile_compare": quantile_compare,
    "distribution_shift": distribution_shift, "threshold": threshold, "burn_rate": burn_rate,
    "retry_budget": retry_budget, "quality_compare": quality_compare, "abandoned": abandoned,
}
