"""The pristine statistical checks: constants, tolerances, and that they catch wrong answers.

Every check here is seeded. Tolerances are the library's own (6 standard errors of the sampling
distribution); these tests prove the formulas (moments, standard errors, order-statistic
bounds) and that the typical mistakes produce the hint a student can act on.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from course_lib.grading.stats import (
    NORMAL,
    TRUNC_STD_FACTOR,
    TRUNCATED_NORMAL,
    UNIFORM,
    CheckResult,
    bound_checks,
    false_fail_rate,
    finite_check,
    kurtosis_check,
    mean_check,
    sum_of_products_family,
    tail_check,
    variance_check,
)

N = 200_704  # the dense (784, 256) call of the specs


def test_family_constants_match_the_design() -> None:
    assert NORMAL.kurtosis == 3.0
    assert UNIFORM.kurtosis == pytest.approx(1.8)
    assert TRUNCATED_NORMAL.kurtosis == pytest.approx(2.3655, abs=5e-5)
    # the truncated family has unit variance, so its bound is 2 sigma' = 2 / 0.8796 sigma
    assert TRUNCATED_NORMAL.bound == pytest.approx(2.0 / TRUNC_STD_FACTOR, rel=1e-12)
    assert UNIFORM.bound == pytest.approx(math.sqrt(3.0))
    # kurtosis SE of a normal sample is sqrt(24/n)
    assert NORMAL.kurtosis_se(1000) == pytest.approx(math.sqrt(24 / 1000))
    # variance relative SE sqrt((kappa-1)/n)
    assert UNIFORM.variance_rel_se(100) == pytest.approx(math.sqrt(0.8 / 100))
    # sum of one product of normals: kurtosis 9; of many: -> 3 + 6/n
    assert sum_of_products_family(1).kurtosis == pytest.approx(9.0)
    assert sum_of_products_family(5).kurtosis == pytest.approx(3.0 + 6.0 / 5)
    with pytest.raises(ValueError, match="n_terms"):
        sum_of_products_family(0)


def test_truncated_moments_against_a_large_sample() -> None:
    # Monte Carlo check of the recursion for E[z^4]: 2e6 draws, kurtosis SE ~ 0.0014 -> 6 SE 0.009
    g = np.random.default_rng(11)
    z = g.standard_normal(3_000_000)
    z = z[np.abs(z) <= 2.0][:2_000_000]
    z = z / TRUNC_STD_FACTOR
    assert np.var(z) == pytest.approx(1.0, abs=6 * math.sqrt(1.3655 / z.size))
    k = np.mean(z**4) / np.var(z) ** 2
    assert abs(k - TRUNCATED_NORMAL.kurtosis) < 6 * TRUNCATED_NORMAL.kurtosis_se(z.size)


def test_false_fail_rate_of_six_standard_errors() -> None:
    assert false_fail_rate(6.0) == pytest.approx(1.973e-9, rel=1e-3)
    assert false_fail_rate(6.0, two_sided=False) == pytest.approx(false_fail_rate(6.0) / 2)
    assert false_fail_rate(6.0) < 1e-8  # DESIGN.md's promise


def _normal(var: float, seed: int, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, math.sqrt(var), n)


def _uniform(var: float, seed: int, n: int = N) -> np.ndarray:
    b = math.sqrt(3 * var)
    return np.random.default_rng(seed).uniform(-b, b, n)


def test_variance_check_passes_the_right_variance_and_states_its_tolerance() -> None:
    target = 2 / 784
    r = variance_check(_normal(target, 1), target)
    assert r.passed, r.message
    assert r.tolerance == pytest.approx(6 * math.sqrt(2 / N) * target)
    assert r.false_fail_rate == pytest.approx(false_fail_rate(6.0))
    assert abs(r.z) < 6
    json.dumps(r.to_dict())


@pytest.mark.parametrize(
    ("factor", "hint"),
    [
        (2.0, "2x the target"),
        (0.5, "half the target"),
        (1 / 3, "missing sqrt(3)"),
    ],
)
def test_variance_check_generic_hints(factor: float, hint: str) -> None:
    target = 1 / 784
    r = variance_check(_normal(target * factor, 2), target)
    assert not r.passed
    assert hint in r.hint


def test_variance_hint_std_versus_variance() -> None:
    target = 2 / 784
    r = variance_check(_normal(math.sqrt(target), 3), target)  # std used as the variance
    assert not r.passed and "square root of the target" in r.hint
    r = variance_check(_normal(target**2, 3), target)  # variance passed as the std
    assert not r.passed and "target squared" in r.hint


def test_variance_hint_names_the_matching_mistake() -> None:
    target = 2 / 784
    alts = [("fan_out instead of fan_in", 2 / 256), ("1/fan_in: factor 2 missing", 1 / 784)]
    r = variance_check(_normal(2 / 256, 4), target, alternatives=alts)
    assert not r.passed and "fan_out instead of fan_in" in r.hint
    r = variance_check(_normal(1 / 784, 4), target, alternatives=alts)
    assert "factor 2 missing" in r.hint
    r = variance_check(np.full(1000, 0.03), target)
    assert "same sign" in r.hint


def test_uniform_with_missing_sqrt3_fails_variance_and_bound_reached() -> None:
    target = 1 / 784
    b_wrong = math.sqrt(target)  # U(-sqrt(1/n), sqrt(1/n)): the blog's bound
    a = np.random.default_rng(5).uniform(-b_wrong, b_wrong, N)
    v = variance_check(a, target, family=UNIFORM)
    assert not v.passed and "sqrt(3)" in v.hint
    hard, reach = bound_checks(a, math.sqrt(target), UNIFORM)
    assert hard.passed and not reach.passed and "sqrt(3)" in reach.hint


def test_mean_check_catches_same_sign_bounds() -> None:
    target = 1 / 784
    ok = mean_check(_uniform(target, 6), math.sqrt(target))
    assert ok.passed
    b = math.sqrt(1 / 784)
    same = np.random.default_rng(6).uniform(b / 2, b, N)
    r = mean_check(same, math.sqrt(target))
    assert not r.passed and "same sign" in r.hint


def test_family_checks_distinguish_normal_uniform_truncated_at_equal_variance() -> None:
    var = 2 / 784
    g = np.random.default_rng(7)
    s = math.sqrt(var)
    trunc = g.normal(0, s / TRUNC_STD_FACTOR, 3 * N)
    trunc = trunc[np.abs(trunc) <= 2 * s / TRUNC_STD_FACTOR][:N]
    samples = {"normal": _normal(var, 8), "uniform": _uniform(var, 9), "truncated": trunc}
    fams = {"normal": NORMAL, "uniform": UNIFORM, "truncated": TRUNCATED_NORMAL}
    for got, a in samples.items():
        for want, fam in fams.items():
            r = kurtosis_check(a, fam)
            assert r.passed == (got == want), (got, want, r.message)
            # the families are > 30 standard errors apart at this n
            if got != want:
                assert abs(r.z) > 30
    assert tail_check(samples["normal"]).passed
    for other in ("uniform", "truncated"):
        r = tail_check(samples[other])
        assert not r.passed and "bounded" in r.hint
    assert all(c.passed for c in bound_checks(samples["uniform"], s, UNIFORM))
    assert all(c.passed for c in bound_checks(samples["truncated"], s, TRUNCATED_NORMAL))
    hard, _ = bound_checks(samples["normal"], s, UNIFORM)
    assert not hard.passed


def test_bound_reached_epsilon_is_the_exact_order_statistic() -> None:
    # P(max|U| < B(1-eps))^n = 1e-9  =>  eps = 1 - 1e-9**(1/n)
    a = _uniform(1.0, 10, 10_000)
    _, reach = bound_checks(a, 1.0, UNIFORM)
    eps = 1 - 1e-9 ** (1 / 10_000)
    assert reach.details["eps"] == pytest.approx(eps, rel=1e-6)
    assert reach.false_fail_rate == 1e-9


def test_finite_check_and_serialization_of_nan() -> None:
    a = np.ones(10)
    a[3] = np.nan
    r = finite_check(a)
    assert not r.passed and "NaN" in r.message
    v = variance_check(np.array([np.nan, 1.0, 2.0]), 1.0)
    d = v.to_dict()
    json.dumps(d, allow_nan=False)
    assert CheckResult.from_dict(d).name == "variance"
