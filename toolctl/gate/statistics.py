"""The statistics of the gate: intervals and tests, free of any store or CLI.

Every function takes plain numbers or numpy arrays and returns plain numbers, so the A/A
false-alarm simulation (tests/test_gate_statistics.py) runs them directly on 200 seeds.
scipy/numpy are imported lazily: ``toolctl --help`` must not load them.

Only ``scipy.special`` (the distribution functions: ndtri, stdtrit, bdtr, ndtr) is needed
on the common path, not ``scipy.stats``: importing scipy.stats costs ~0.9 CPU-seconds, and
a gate imports it while DuckDB counts the arms on the same two cores, which measured +0.7 s
on the 10M-event gate's call count (scipy.special: ~0.2 s, no measurable slowdown). The
quantiles and the Mann-Whitney test below are the ones scipy.stats computes
(tests/test_gate_statistics.py compares them); scipy.stats is imported only for an exact
Mann-Whitney test of arms of 8 or fewer values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass
class Interval:
    estimate: float | None
    lower: float | None
    upper: float | None


def _z(confidence: float) -> float:
    """The two-sided normal quantile (scipy.stats.norm.ppf is this same ndtri)."""
    from scipy.special import ndtri

    return float(ndtri(1 - (1 - confidence) / 2))


def binom_ppf(q: float, n: int, p: float) -> int:
    """The smallest k in 0..n with P(Binomial(n, p) <= k) >= q (scipy.stats.binom.ppf), 0 < q < 1.

    A bisection on the binomial CDF (scipy.special.bdtr): ~log2(n) evaluations. A CDF
    within 1e-12 (relative) of q counts as reaching it: there the CDF equals q in exact
    arithmetic (P(Binomial(7, .5) <= 3) is exactly 0.5) and only rounding, which differs
    between implementations, would decide.
    """
    from scipy.special import bdtr

    reach = q * (1 - 1e-12)
    lo, hi = 0, n  # invariant: CDF(hi) >= q; the answer is in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if bdtr(mid, n, p) >= reach:
            hi = mid
        else:
            lo = mid + 1
    return lo


def wilson(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a proportion (sound for 0 or n successes, unlike Wald)."""
    if n <= 0:
        return Interval(None, None, None)
    z = _z(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0 or n successes one bound is exactly 0 or 1; rounding left ~1e-17 there.
    lower = 0.0 if k <= 0 else max(0.0, centre - half)
    upper = 1.0 if k >= n else min(1.0, centre + half)
    return Interval(p, lower, upper)


def newcombe_diff(k_c: int, n_c: int, k_b: int, n_b: int, confidence: float = 0.95) -> Interval:
    """Interval of p_candidate − p_baseline: Newcombe's hybrid score method (method 10).

    Built from the two Wilson intervals, it keeps its coverage for sparse counts (0 errors
    in one arm), where the Wald difference collapses to a zero-width interval.
    """
    if n_c <= 0 or n_b <= 0:
        return Interval(None, None, None)
    c, b = wilson(k_c, n_c, confidence), wilson(k_b, n_b, confidence)
    d = c.estimate - b.estimate
    lower = d - math.sqrt((c.estimate - c.lower) ** 2 + (b.upper - b.estimate) ** 2)
    upper = d + math.sqrt((c.upper - c.estimate) ** 2 + (b.estimate - b.lower) ** 2)
    return Interval(d, lower, upper)


def min_samples_for_quantile(q: float, confidence: float = 0.95) -> int:
    """Fewest observations whose maximum bounds the q-quantile (one-sided): p95 → 59, p99 → 299."""
    return math.ceil(math.log(1 - confidence) / math.log(q))


def quantile_ranks(n: int, q: float, confidence: float) -> tuple[int | None, int | None]:
    """1-based order-statistic ranks (l, u) with P(X(l) ≤ ξq ≤ X(u)) ≥ confidence.

    Distribution-free (binomial). A side that would fall outside 1..n is None: the sample
    cannot bound the quantile on that side.
    """
    a = (1 - confidence) / 2
    lo = binom_ppf(a, n, q)                 # P(B ≤ lo-1) < a  → X(lo) ≤ ξq w.p. ≥ 1-a
    hi = binom_ppf(1 - a, n, q) + 1         # P(B ≥ hi)   ≤ a  → X(hi) ≥ ξq w.p. ≥ 1-a
    return (lo if lo >= 1 else None, hi if hi <= n else None)


def quantile_interval(sorted_values: Any, q: float, confidence: float) -> Interval:
    """Point estimate (linear interpolation, as DuckDB quantile_cont) and order-statistic CI."""
    import numpy as np

    n = len(sorted_values)
    if n == 0:
        return Interval(None, None, None)
    est = float(np.quantile(sorted_values, q))
    lo, hi = quantile_ranks(n, q, confidence)
    return Interval(est, float(sorted_values[lo - 1]) if lo else None,
                    float(sorted_values[hi - 1]) if hi else None)


def sketch_quantile_interval(n: int, fracs: Sequence[float], values: Sequence[float], q: float,
                             confidence: float) -> Interval:
    """The same interval from a saved sketch (quantiles at fixed fractions), interpolated."""
    import numpy as np

    if n == 0 or not fracs:
        return Interval(None, None, None)
    lo, hi = quantile_ranks(n, q, confidence)

    def at(rank: int) -> float:
        frac = (rank - 1) / (n - 1) if n > 1 else 0.0
        return float(np.interp(frac, fracs, values))

    return Interval(float(np.interp(q, fracs, values)), at(lo) if lo else None, at(hi) if hi else None)


def ratio_interval(cand: Interval, base: Interval, confidence_each: float | None = None) -> Interval:
    """candidate / baseline with the conservative product of two intervals of values ≥ 0.

    A zero baseline is a ratio too: 0 / 0 is 1 (equal), x / 0 is infinite for x > 0. So two
    arms of zero latencies compare equal instead of staying inconclusive for ever, and a
    candidate slower than a zero baseline fails.
    """
    return Interval(_ratio(cand.estimate, base.estimate), _ratio(cand.lower, base.upper),
                    _ratio(cand.upper, base.lower))


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None:
        return None  # unbounded side
    if den > 0:
        return num / den
    return 1.0 if num <= 0 else math.inf


#: Mann-Whitney and Hodges-Lehmann work on at most this many values per arm (evenly spaced
#: order statistics of the sorted arm: deterministic and quantile-preserving).
MWU_MAX_PER_ARM = 200_000
HL_MAX_PER_ARM = 1_000


def thin_sorted(values: Any, limit: int) -> Any:
    """Every k-th value of a sorted array (evenly spaced ranks), at most ``limit`` of them."""
    import numpy as np

    n = len(values)
    if n <= limit:
        return np.asarray(values)
    idx = np.round(np.linspace(0, n - 1, limit)).astype(int)
    return np.asarray(values)[idx]


def mann_whitney_u(x_sorted: Any, y_sorted: Any) -> tuple[float, float]:
    """(U of x, two-sided p) of the Mann-Whitney U test on two sorted arrays.

    What ``scipy.stats.mannwhitneyu(x, y)`` returns: for arms of more than 8 values its
    normal approximation with the tie correction and the continuity correction, computed
    here from the sorted arrays (U by binary search instead of ranking the concatenation);
    for smaller arms scipy.stats itself, whose exact distribution applies there.
    """
    import numpy as np
    from scipy.special import ndtr

    x, y = np.asarray(x_sorted, dtype=float), np.asarray(y_sorted, dtype=float)
    n1, n2 = len(x), len(y)
    if n1 <= 8 or n2 <= 8:
        from scipy.stats import mannwhitneyu

        res = mannwhitneyu(x, y, alternative="two-sided")
        return float(res.statistic), float(res.pvalue)
    below = np.searchsorted(y, x, side="left")
    at_or_below = np.searchsorted(y, x, side="right")
    # U1 = Σ over x of (#y < x + ½ #y = x): R1 − n1(n1+1)/2 with average ranks, exactly
    # (integers and halves, far below 2^53).
    u1 = float(below.sum() + (at_or_below - below).sum() / 2)
    u = max(u1, n1 * n2 - u1)
    merged = np.concatenate((x, y))
    merged.sort(kind="mergesort")
    edges = np.flatnonzero(np.diff(merged)) + 1
    t = np.diff(np.concatenate(([0], edges, [len(merged)]))).astype(float)  # tie group sizes
    n = n1 + n2
    tie_term = float(np.sum(t ** 3 - t))
    s = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    if s == 0:  # every value equal: U is its mean, no evidence either way (scipy: p = 1)
        return u1, 1.0
    z = (u - n1 * n2 / 2 - 0.5) / s
    return u1, min(max(2 * float(ndtr(-z)), 0.0), 1.0)


def mann_whitney_shift(cand_sorted: Any, base_sorted: Any, confidence: float = 0.98) -> dict:
    """Mann-Whitney U test with the Hodges-Lehmann shift and its (Moses) interval.

    Returns p_value, u, hl_shift, hl_lower, hl_upper (candidate − baseline, ms; the bounds None
    when too few values bound the shift at ``confidence``),
    effect_size (mean ratio, as Kayenta reports) and rank_biserial.
    """
    import numpy as np

    c = thin_sorted(cand_sorted, MWU_MAX_PER_ARM)
    b = thin_sorted(base_sorted, MWU_MAX_PER_ARM)
    u, p_value = mann_whitney_u(c, b)
    hc, hb = thin_sorted(c, HL_MAX_PER_ARM), thin_sorted(b, HL_MAX_PER_ARM)
    diffs = np.subtract.outer(hc, hb).ravel()
    m, n, mn = len(hc), len(hb), len(diffs)
    z = _z(confidence)
    # Moses' interval, Hollander & Wolfe's large-sample form: [D(C), D(mn+1-C)] over the sorted
    # differences D(1..mn), C = floor(mn/2 - z sqrt(mn(m+n+1)/12)). With C < 1 no order
    # statistic bounds the shift at this confidence (too few values): the interval is
    # unbounded (None, as quantile_interval's), never [D(1), D(mn)], which for one value per
    # arm is a single point. 0-based: lo = C-1, hi = mn-C.
    c_alpha = int(math.floor(mn / 2 - z * math.sqrt(m * n * (m + n + 1) / 12)))
    bounded = c_alpha >= 1
    lo = min(c_alpha - 1, mn - 1) if bounded else 0
    hi = mn - 1 - lo
    mid = [(mn - 1) // 2, mn // 2]  # the median: the middle difference, or the mean of two
    # Only these order statistics of the m·n differences are needed: partition, not sort.
    diffs = np.partition(diffs, sorted({lo, hi, *mid}))
    mean_b = float(np.mean(b))
    return {
        "p_value": p_value, "u": u,
        # each halved first: the sum of two differences near the double's limit overflows
        "hl_shift": float(diffs[mid[0]] / 2 + diffs[mid[1]] / 2),
        "hl_lower": float(diffs[lo]) if bounded else None,
        "hl_upper": float(diffs[hi]) if bounded else None,
        "effect_size": _ratio(float(np.mean(c)), mean_b),  # 0/0 = 1, as the quantile ratio
        "rank_biserial": 1 - 2 * u / (len(c) * len(b)),
        "n_used_candidate": len(c), "n_used_baseline": len(b),
    }


def welch_diff(mean_c: float, var_c: float, n_c: int, mean_b: float, var_b: float, n_b: int,
               confidence: float = 0.95) -> Interval:
    """Interval of mean_c − mean_b (Welch's t)."""
    from scipy.special import stdtrit  # scipy.stats.t.ppf(p, df) is stdtrit(df, p)

    if n_c < 2 or n_b < 2:
        return Interval(None, None, None)
    se2c, se2b = (var_c or 0.0) / n_c, (var_b or 0.0) / n_b
    se = math.sqrt(se2c + se2b)
    d = mean_c - mean_b
    if se == 0:
        return Interval(d, d, d)
    df = (se2c + se2b) ** 2 / ((se2c ** 2 / (n_c - 1) if se2c else 0) + (se2b ** 2 / (n_b - 1) if se2b else 0))
    half = float(stdtrit(df, 1 - (1 - confidence) / 2)) * se
    return Interval(d, d - half, d + half)


def classify(lower: float | None, upper: float | None, limit: float, higher_is_worse: bool = True) -> str:
    """pass when the whole interval is on the good side of ``limit``, fail when wholly on the bad
    side, inconclusive when it straddles (or a side is unbounded)."""
    if higher_is_worse:
        if upper is not None and upper <= limit:
            return "pass"
        if lower is not None and lower > limit:
            return "fail"
        return "inconclusive"
    if lower is not None and lower >= limit:
        return "pass"
    if upper is not None and upper < limit:
        return "fail"
    return "inconclusive"


def calls_needed_for_proportion(p_b: float, p_c: float, margin: float, n_now: int,
                                confidence: float = 0.95) -> int | None:
    """Rough per-arm sample size at which the difference interval would clear ``margin``."""
    gap = abs(margin - (p_c - p_b))
    if gap <= 0:
        return None
    z = _z(confidence)
    var = max(p_b * (1 - p_b) + p_c * (1 - p_c), 1e-6)
    need = math.ceil(z * z * var / (gap * gap))
    return max(need - n_now, 0) or None
