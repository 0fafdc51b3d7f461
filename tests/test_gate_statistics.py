"""The gate's statistics layer, run directly (no store, no CLI): known answers and the
A/A false-rollback rate over 200 seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toolctl.gate import evaluate_checks
from toolctl.gate import statistics as st
from toolctl.gate.data import ArmData, EvalContext
from toolctl.gate.runbook import load_runbook, min_samples_default
from toolctl.gate.verdict import decide

#: Documented bound (docs/gate.md): A/A rolls back in under 2% of repeated-look runs.
AA_FALSE_ROLLBACK_BOUND = 0.02


def test_min_samples_to_bound_p95_and_p99_are_59_and_299():
    # 1 - q^n >= 0.95, solved by hand: 0.95^58 = 0.0510 > 0.05, 0.95^59 = 0.0485.
    assert st.min_samples_for_quantile(0.95) == 59
    assert st.min_samples_for_quantile(0.99) == 299
    assert 0.95 ** 58 > 0.05 > 0.95 ** 59


def test_runbook_default_min_samples_follow_the_quantile():
    rb = load_runbook("canary-promotion")
    by_name = {c.name: c for c in rb.checks}
    assert min_samples_default(by_name["p95-latency"]) == 59
    assert min_samples_default(by_name["p99-latency"]) == 299


def test_wilson_interval_matches_the_textbook_value():
    # Wilson 95% for 0/100: upper = z^2/(n+z^2) = 3.8415/103.8415 = 0.03699.
    iv = st.wilson(0, 100, 0.95)
    assert iv.lower == pytest.approx(0.0, abs=1e-12)
    assert iv.upper == pytest.approx(3.841459 / 103.841459, rel=1e-4)


def test_newcombe_difference_is_not_degenerate_with_zero_errors():
    iv = st.newcombe_diff(0, 200, 0, 200)
    assert iv.estimate == 0 and iv.lower < 0 < iv.upper


def test_order_statistic_interval_covers_the_true_quantile_at_its_level():
    rng = np.random.default_rng(1)
    true_p95 = math.exp(0.5 * 1.6448536)  # lognormal(0, 0.5)
    hits = 0
    for _ in range(400):
        x = np.sort(rng.lognormal(0, 0.5, 500))
        iv = st.quantile_interval(x, 0.95, 0.90)
        hits += iv.lower <= true_p95 <= iv.upper
    assert hits / 400 >= 0.86  # nominal 0.90, binomial slack


def test_quantile_estimate_is_numpy_linear_interpolation():
    x = np.sort(np.arange(1.0, 101.0))
    assert st.quantile_interval(x, 0.95, 0.95).estimate == pytest.approx(95.05)


def _arm(rng, n, err=0.003, lat_scale=1.0, sigma=0.5, tail=None):
    lat = rng.lognormal(math.log(100), sigma, n) * lat_scale
    if tail is not None:
        idx = rng.random(n) < tail
        lat[idx] *= 4.0
    errors = int((rng.random(n) < err).sum())
    counts = {"attempts": n, "calls": n, "errors": errors, "auth_failures": 0, "retries": 0,
              "abandoned": 0, "validation_errors": 0, "conf_n": n, "conf_mean": 0.9,
              "conf_var": 0.01, "conf_low": 0}
    return ArmData(counts, lambda: np.sort(lat))


def _ctx(base, cand):
    return EvalContext(base=base, cand=cand, until=None, window_counts=None)


def test_aa_false_rollback_rate_over_200_seeds_is_below_the_documented_bound():
    rb = load_runbook("canary-promotion")
    rollbacks = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        streaks: dict[str, int] = {}
        verdict = None
        # Two looks (evaluations) per seed, as a CI job would make.
        for seq in (1, 2):
            results = evaluate_checks(rb, _ctx(_arm(rng, 3000), _arm(rng, 3000)))
            verdict, _ = decide(results, prior_streaks=streaks, consecutive=rb.consecutive_failures,
                                seq=seq, max_evaluations=rb.max_evaluations)
            streaks = {r.name: (streaks.get(r.name, 0) + 1 if r.outcome == "fail" else 0) for r in results}
            if verdict == "rollback":
                break
        rollbacks += verdict == "rollback"
    rate = rollbacks / 200
    print(f"A/A false-rollback rate over 200 seeds: {rate:.3f}")
    assert rate <= AA_FALSE_ROLLBACK_BOUND


def test_variance_only_regression_is_caught_by_the_quantile_check():
    rng = np.random.default_rng(7)
    rb = load_runbook("canary-promotion")
    # Same median: 5% of candidate calls get a 4× tail; the median moves by < 2%.
    base, cand = _arm(rng, 20000), _arm(rng, 20000, tail=0.05)
    assert abs(np.median(cand.latencies) / np.median(base.latencies) - 1) < 0.05
    results = {r.name: r for r in evaluate_checks(rb, _ctx(base, cand))}
    assert results["p99-latency"].outcome == "fail"
    assert results["latency-shift"].outcome != "fail"  # what Kayenta's MWU alone would miss


def test_hodges_lehmann_shift_recovers_a_known_shift():
    rng = np.random.default_rng(3)
    b = np.sort(rng.normal(100, 10, 5000))
    c = np.sort(rng.normal(112, 10, 5000))
    mw = st.mann_whitney_shift(c, b, 0.98)
    assert mw["hl_lower"] <= 12 <= mw["hl_upper"]
    assert mw["p_value"] < 1e-6


def test_quality_drop_without_errors_fails_the_quality_check():
    """Silent regression: same errors and latency, lower confidence."""
    rng = np.random.default_rng(21)
    rb = load_runbook("canary-promotion")
    base, cand = _arm(rng, 5000), _arm(rng, 5000)
    conf_b, conf_c = rng.beta(9, 1, 5000), rng.beta(6, 2, 5000)  # means 0.90 vs 0.75
    for arm, conf in ((base, conf_b), (cand, conf_c)):
        arm.counts.update(conf_n=len(conf), conf_mean=float(conf.mean()), conf_var=float(conf.var(ddof=1)),
                          conf_low=int((conf < 0.5).sum()))
    results = {r.name: r for r in evaluate_checks(rb, _ctx(base, cand))}
    q = results["result-quality"]
    assert q.outcome == "fail"
    assert q.estimate == pytest.approx(conf_b.mean() - conf_c.mean())
    assert results["error-rate"].outcome == "pass"


def test_burn_rate_fires_only_when_both_windows_exceed_the_factor():
    from datetime import timedelta

    from toolctl.gate.checks import evaluate
    from toolctl.gate.runbook import BurnRate

    check = BurnRate(name="burn", kind="burn_rate", objective=0.99)
    # Error ratio per window length; burn = ratio / 0.01.
    def ctx_for(ratios):
        def window_counts(d: timedelta):
            n = 10_000
            return {"calls": n, "errors": round(ratios[d] * n)}
        return EvalContext(base=None, cand=_arm(np.random.default_rng(0), 10), until=None,
                           window_counts=window_counts)

    h = timedelta(hours=1)
    calm = {h: 0.005, timedelta(minutes=5): 0.5, 6 * h: 0.005, timedelta(minutes=30): 0.005,
            72 * h: 0.005}
    assert evaluate(check, ctx_for(calm), 0.95).outcome == "pass"  # 5m alone at 50× does not page
    page = {**calm, h: 0.15, timedelta(minutes=5): 0.2}  # 15× and 20× > 14.4×
    res = evaluate(check, ctx_for(page), 0.95)
    assert res.outcome == "fail" and "1h/5m" in res.reason


def test_the_gates_distribution_functions_are_the_ones_scipy_stats_computes():
    # The gate uses scipy.special (cheap to import) where scipy.stats would cost ~0.9 s of
    # CPU on every run: the quantiles must be the same numbers.
    from scipy.special import bdtr
    from scipy.stats import binom, norm, t

    for conf in (0.8, 0.9, 0.95, 0.98, 0.99, 0.999):
        assert st._z(conf) == float(norm.ppf(1 - (1 - conf) / 2))
    rng = np.random.default_rng(3)
    grid = [(q, n, p) for n in (1, 2, 7, 59, 60, 299, 1000, 12_345, 2_500_000)
            for p in (0.25, 0.5, 0.9, 0.95, 0.99, 0.999)
            for q in (0.0005, 0.01, 0.025, 0.1, 0.5, 0.975, 0.99, 0.9995)]
    grid += [(rng.uniform(1e-4, 1 - 1e-4), int(rng.integers(1, 10**6)), rng.uniform(0.01, 0.999))
             for _ in range(500)]
    ties = 0
    for q, n, p in grid:
        got, want = st.binom_ppf(q, n, p), int(binom.ppf(q, n, p))
        if got != want:  # only where the CDF equals q in exact arithmetic, e.g. (0.5, 7, 0.5)
            assert got == want - 1 and bdtr(got, n, p) == pytest.approx(q, rel=1e-12), (q, n, p)
            ties += 1
    assert ties <= 3
    got = st.welch_diff(2.0, 3.0, 10, 1.0, 0.5, 25, 0.95)
    se = math.sqrt(3.0 / 10 + 0.5 / 25)
    df = (3.0 / 10 + 0.5 / 25) ** 2 / ((3.0 / 10) ** 2 / 9 + (0.5 / 25) ** 2 / 24)
    assert got.upper - got.estimate == pytest.approx(float(t.ppf(0.975, df)) * se, rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_mann_whitney_u_is_scipys_test_on_sorted_arms(seed):
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(seed)
    sizes = [(9, 9), (10, 400), (3000, 2500), (5, 40), (2, 3), (50_000, 40_000)][seed]
    # rounded latencies: many ties, as gateways log whole milliseconds
    x = np.sort(np.round(rng.lognormal(3, 0.6, sizes[0]) * (1.05 if seed % 2 else 1)))
    y = np.sort(np.round(rng.lognormal(3, 0.6, sizes[1])))
    u, p = st.mann_whitney_u(x, y)
    want = mannwhitneyu(x, y, alternative="two-sided")
    assert u == float(want.statistic)
    assert p == pytest.approx(float(want.pvalue), rel=1e-9, abs=1e-300)


def test_mann_whitney_u_of_identical_arms_is_not_significant():
    from scipy.stats import mannwhitneyu

    x = np.full(20, 7.0)
    assert st.mann_whitney_u(x, x) == (200.0, 1.0) == tuple(map(float, mannwhitneyu(x, x)))



@pytest.mark.parametrize("m, n", [(4, 6), (5, 7), (10, 10), (9, 13), (40, 25)])
def test_hodges_lehmann_shift_and_moses_interval_follow_the_textbook_order_statistics(m, n):
    # Hollander & Wolfe, large-sample form: D(1) <= ... <= D(mn) the pairwise differences,
    # C = floor(mn/2 - z sqrt(mn(m+n+1)/12)), interval [D(C), D(mn+1-C)] (1-based), shift =
    # their median (the mean of the two middle ones when mn is even). The interval was one
    # order statistic narrower on each side, and an even mn took the upper middle difference.
    from statistics import NormalDist

    rng = np.random.default_rng(m * 100 + n)
    c = np.sort(rng.normal(110, 10, m).round(1))
    b = np.sort(rng.normal(100, 10, n).round(1))
    d = np.sort(np.subtract.outer(c, b).ravel())
    z = NormalDist().inv_cdf(1 - (1 - 0.98) / 2)
    big_c = int(np.floor(m * n / 2 - z * np.sqrt(m * n * (m + n + 1) / 12)))
    got = st.mann_whitney_shift(c, b, 0.98)
    assert got["hl_shift"] == pytest.approx(float(np.median(d)))
    if big_c >= 1:
        assert (got["hl_lower"], got["hl_upper"]) == (d[big_c - 1], d[m * n - big_c])
    else:  # too few values for a 98 % interval: it is unbounded, so it holds any shift
        assert (got["hl_lower"], got["hl_upper"]) == (None, None)


@pytest.mark.parametrize("m, n", [(1, 1), (1, 5), (2, 2), (3, 3), (4, 4), (2, 30), (1, 1000)])
def test_a_moses_interval_with_too_few_values_for_its_confidence_is_unbounded(m, n):
    # C < 1: no order statistic of the differences bounds the shift at this confidence. The
    # interval was [D(1), D(mn)], a point for one value per arm (covering the shift with
    # probability 0; 4 + 4 values: 1 - 2/70 = 97.1 % < 98 %), so latency-shift failed (rolled
    # back, when critical) on 1 + 1 latencies with "Mann-Whitney p=1".
    rng = np.random.default_rng(m * 1000 + n)
    c, b = np.sort(rng.normal(130, 1, m)), np.sort(rng.normal(100, 1, n))
    got = st.mann_whitney_shift(c, b, 0.98)
    assert (got["hl_lower"], got["hl_upper"]) == (None, None)
    assert got["hl_shift"] == pytest.approx(float(np.median(np.subtract.outer(c, b))))


def test_the_hodges_lehmann_shift_of_differences_near_the_double_limit_is_finite():
    # The mean of the two middle differences was their sum halved: 1.7e308 + 1.7e308 = inf,
    # a shift outside its own interval [1.7e308, 1.7e308].
    with np.errstate(over="ignore", invalid="ignore"):
        got = st.mann_whitney_shift(np.full(30, 1.7e308), np.zeros(30), 0.98)
    assert got["hl_shift"] == got["hl_lower"] == got["hl_upper"] == 1.7e308
