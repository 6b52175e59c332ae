"""Pristine statistical checks for the hidden tests (the judge's half of the grader).

Every function here takes a plain :class:`numpy.ndarray` that the parent process rebuilt from
bytes (:mod:`course_lib.grading.sandbox`), so the student's code never runs in the process that
computes these numbers. Each check returns a :class:`CheckResult` that records what was measured,
what was expected, the tolerance, the z-score and the probability that a *correct*
implementation fails the check (its false-fail rate), plus a message and a hint a student can
act on.

Tolerances come from the sampling distribution of the statistic:

* sample variance of ``n`` draws: relative standard error ``sqrt((kappa - 1) / n)`` with the
  kurtosis ``kappa`` of the family (3 normal, 1.8 uniform, 2.3655 for the +-2 sigma truncated
  normal);
* sample mean: standard error ``sigma / sqrt(n)``;
* sample kurtosis: delta-method standard error from the family's moments up to the 8th
  (``sqrt(24 / n)`` for the normal);
* tail fraction beyond ``c`` sample standard deviations (normal family);
* hard bounds and "the largest value comes close to the bound" (uniform and truncated normal),
  with the exact order-statistic probability.

All z-tolerances default to 6 standard errors: a correct implementation fails one such
two-sided check with probability ``erfc(6 / sqrt(2)) = 1.97e-9``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_Z",
    "NORMAL",
    "TRUNCATED_NORMAL",
    "TRUNC_STD_FACTOR",
    "UNIFORM",
    "CheckResult",
    "Family",
    "bound_checks",
    "false_fail_rate",
    "finite_check",
    "kurtosis_check",
    "mean_check",
    "sum_of_products_family",
    "tail_check",
    "variance_check",
]

DEFAULT_Z = 6.0
"""Default tolerance in standard errors (two-sided false-fail rate 1.97e-9)."""

TRUNC_STD_FACTOR = 0.87962566103423978
"""Std of a standard normal truncated to [-2, 2] (Keras' correction constant)."""

BOUND_FAIL_PROB = 1e-9
"""False-fail probability chosen for the "largest value reaches the bound" checks."""


def false_fail_rate(z: float, *, two_sided: bool = True) -> float:
    """Probability that a standard normal statistic exceeds ``z`` (in absolute value if two-sided).

    ``false_fail_rate(6) = 1.97e-9``, ``false_fail_rate(6, two_sided=False) = 9.9e-10``.
    """
    p = 0.5 * math.erfc(z / math.sqrt(2.0))
    return 2.0 * p if two_sided else p


@dataclass
class CheckResult:
    """The outcome of one check on one returned value.

    Attributes
    ----------
    name
        Short name (``"variance"``, ``"mean"``, ``"kurtosis"``, ``"shape"``...).
    passed
        Whether the check passed.
    measured, expected, tolerance
        The measured value, the expected value and the allowed absolute deviation (``None``
        for checks that are not numeric, e.g. ``shape``).
    z
        ``(measured - expected) / standard error`` for statistical checks, else ``None``.
    false_fail_rate
        Probability that a correct implementation fails this check (0 for exact checks).
    message
        What was measured and expected, in one sentence.
    hint
        What the typical mistake behind this failure is (empty when passed or unknown).
    concern
        The concern of the function this check judges (``"dense"``, ``"conv"``, ``"family"``,
        ``"rng"``, ``"public"``...: one test cell ``test_<function>_<concern>`` each, see
        ``course_lib/grading/CONTRACT.md``); ``""`` for checks that count in every concern
        (the function is missing, the notebook is unreadable, a rule was broken).
    """

    name: str
    passed: bool
    measured: Any = None
    expected: Any = None
    tolerance: float | None = None
    z: float | None = None
    false_fail_rate: float = 0.0
    message: str = ""
    hint: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    concern: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dict (NaN and infinities become strings)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        """Inverse of :meth:`to_dict` (numbers that were written as strings stay strings)."""
        return cls(**data)

    def describe(self) -> str:
        """``message`` followed by the hint, if any."""
        return f"{self.message} Hint: {self.hint}" if self.hint else self.message


def _plain(v: Any) -> Any:
    """A JSON-ready copy: mappings and sequences copied, dataclasses as dicts, NumPy scalars as
    Python numbers, non-finite floats as strings, anything else as its ``item()`` or ``repr``.

    The one conversion for verdicts and grading records.
    """
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else str(f)
    if isinstance(v, str) or v is None:
        return v
    if is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in fields(v)}
    if hasattr(v, "item"):
        try:
            return _plain(v.item())
        except (TypeError, ValueError):
            pass
    return repr(v)


def _fmt(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return str(x)
    return f"{x:.4g}"


# --------------------------------------------------------------------------- families


@dataclass(frozen=True)
class Family:
    """A symmetric distribution family, described by its unit-variance moments.

    Attributes
    ----------
    name
        Human-readable name used in messages.
    m4, m6, m8
        Moments ``E[z^k]`` of the unit-variance member (``m4`` is the kurtosis).
    bound
        Hard bound of ``|z|`` in standard deviations (``None`` if unbounded).
    abs_cdf
        ``t -> P(|z| < t)`` for the unit-variance member (used near ``bound``).
    """

    name: str
    m4: float
    m6: float
    m8: float
    bound: float | None = None
    abs_cdf: Callable[[float], float] | None = None

    @property
    def kurtosis(self) -> float:
        """The kurtosis ``E[z^4]`` (3 normal, 1.8 uniform, 2.3655 truncated)."""
        return self.m4

    def variance_rel_se(self, n: int) -> float:
        """Relative standard error of the sample variance: ``sqrt((kappa - 1) / n)``."""
        return math.sqrt((self.m4 - 1.0) / n)

    def kurtosis_se(self, n: int) -> float:
        """Delta-method standard error of the sample kurtosis ``m4 / m2^2``.

        For a symmetric law with unit variance ``n Var = (mu8 - mu4^2) - 4 mu4 (mu6 - mu4)
        + 4 mu4^2 (mu4 - 1)``, which is 24 for the normal.
        """
        m4, m6, m8 = self.m4, self.m6, self.m8
        v = (m8 - m4**2) - 4.0 * m4 * (m6 - m4) + 4.0 * m4**2 * (m4 - 1.0)
        return math.sqrt(max(v, 0.0) / n)


NORMAL = Family("normal", 3.0, 15.0, 105.0)
"""The (untruncated) normal family."""

_S3 = math.sqrt(3.0)
UNIFORM = Family(
    "uniform", 9.0 / 5.0, 27.0 / 7.0, 9.0, bound=_S3, abs_cdf=lambda t: min(max(t / _S3, 0.0), 1.0)
)
"""The symmetric uniform family ``U(-b, b)``, ``b = sqrt(3) sigma``."""


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _truncated_family(a: float = 2.0) -> Family:
    z = 2.0 * _Phi(a) - 1.0
    mom = {0: 1.0}
    for k in (2, 4, 6, 8):
        mom[k] = (k - 1) * mom[k - 2] - 2.0 * a ** (k - 1) * _phi(a) / z
    s2 = mom[2]
    s = math.sqrt(s2)

    def abs_cdf(t: float) -> float:
        u = min(max(t * s, 0.0), a)  # back to the untruncated standard-normal scale
        return (2.0 * _Phi(u) - 1.0) / z

    return Family(
        f"truncated normal (cut at +-{a:g} sigma')",
        mom[4] / s2**2,
        mom[6] / s2**3,
        mom[8] / s2**4,
        bound=a / s,
        abs_cdf=abs_cdf,
    )


TRUNCATED_NORMAL = _truncated_family(2.0)
"""Normal truncated at +-2 sigma' (Keras ``TruncatedNormal``); kurtosis 2.3655."""


def sum_of_products_family(n_terms: int) -> Family:
    """Family of ``p = sum_{i<n} w_i x_i`` with independent zero-mean normal ``w_i``, ``x_i``.

    Its cumulants are ``n`` times those of one product ``w x`` (unit variance: k4 = 6,
    k6 = 120, k8 = 5040), so the kurtosis is ``3 + 6 / n``.
    """
    if n_terms < 1:
        raise ValueError(f"n_terms must be >= 1, got {n_terms}")
    n = float(n_terms)
    k2, k4, k6, k8 = 1.0, 6.0 / n, 120.0 / n**2, 5040.0 / n**3  # cumulants of the unit-variance sum
    m4 = k4 + 3.0 * k2**2
    m6 = k6 + 15.0 * k4 * k2 + 15.0 * k2**3
    m8 = k8 + 28.0 * k6 * k2 + 35.0 * k4**2 + 210.0 * k4 * k2**2 + 105.0 * k2**4
    return Family(f"sum of {n_terms} products w_i*x_i", m4, m6, m8)


# --------------------------------------------------------------------------- checks


def _flat(x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64).ravel()


def finite_check(x: npt.ArrayLike, *, name: str = "finite") -> CheckResult:
    """Every entry is finite (no NaN, no infinity). Exact check: false-fail rate 0."""
    a = _flat(x)
    bad = int(a.size - np.count_nonzero(np.isfinite(a)))
    if bad == 0:
        return CheckResult(name, True, 0, 0, 0.0, message="all values are finite")
    n_nan = int(np.count_nonzero(np.isnan(a)))
    return CheckResult(
        name,
        False,
        bad,
        0,
        0.0,
        message=f"{bad} of {a.size} values are not finite ({n_nan} NaN).",
        hint="a NaN usually comes from sqrt of a negative number, 0/0, or an empty array;"
        " check the formula for the scale.",
    )


_GENERIC_RATIO_HINTS: tuple[tuple[float, str], ...] = (
    (2.0, "the variance is 2x the target: an extra factor 2 (He's 2/fan where 1/fan is asked,"
     " or fan_in alone where (fan_in+fan_out)/2 is asked)?"),
    (0.5, "the variance is half the target: a missing factor 2 (1/fan_in where He needs"
     " 2/fan_in), or fan_in+fan_out without dividing it by 2?"),
    (1.0 / 3.0, "the variance is 1/3 of the target: for U(-b, b) the variance is b^2/3, so"
     " the bound needs sqrt(3 * variance) (missing sqrt(3))."),
    (3.0, "the variance is 3x the target: the uniform bound sqrt(3*Var) used as a normal std?"),
)


def variance_check(
    x: npt.ArrayLike,
    target: float,
    *,
    family: Family = NORMAL,
    z_tol: float = DEFAULT_Z,
    alternatives: Sequence[tuple[str, float]] = (),
    name: str = "variance",
) -> CheckResult:
    """Compare the sample variance of ``x`` with ``target``.

    The sample variance of ``n`` draws has relative standard error ``sqrt((kappa - 1) / n)``
    where ``kappa`` is the kurtosis of ``family``; the check passes when
    ``|s^2 / target - 1| <= z_tol * SE``. With the default ``z_tol = 6`` a correct
    implementation fails with probability ``erfc(6/sqrt 2) = 1.97e-9`` (two-sided).

    ``alternatives`` lists ``(hint, variance)`` pairs for known mistakes on this call (e.g.
    ``("fan_out instead of fan_in", 2/256)``); the closest one within its own tolerance
    becomes the hint.
    """
    a = _flat(x)
    n = a.size
    if n < 2:
        return CheckResult(name, False, None, target, message=f"need at least 2 values, got {n}.")
    measured = float(a.var())
    rel_se = family.variance_rel_se(n)
    tol = z_tol * rel_se * target
    z = (measured - target) / (rel_se * target)
    passed = bool(abs(z) <= z_tol)
    ratio = measured / target
    msg = (
        f"variance {_fmt(measured)} over {n} values; expected {_fmt(target)} +- {_fmt(tol)}"
        f" ({z_tol:g} standard errors of a {family.name} sample; measured/expected ="
        f" {ratio:.3g}, z = {z:.1f})."
    )
    hint = ""
    if not passed:
        hint = _variance_hint(measured, target, rel_se * z_tol, alternatives)
    return CheckResult(
        name, passed, measured, target, tol, z, false_fail_rate(z_tol), msg, hint,
        {"n": n, "rel_se": rel_se, "ratio": ratio, "family": family.name},
    )


def _variance_hint(
    measured: float, target: float, rel_tol: float, alternatives: Sequence[tuple[str, float]]
) -> str:
    if measured <= 1e-20 * target:
        return ("all values are equal (variance 0): is the array constant, e.g. uniform(low=b,"
                " high=b) with both bounds of the same sign, or zeros?")
    best: tuple[float, str] | None = None
    for text, alt in alternatives:
        if alt <= 0 or not math.isfinite(alt):
            continue
        d = abs(math.log(measured / alt))
        if abs(measured / alt - 1.0) <= max(3.0 * rel_tol, 0.03) and (best is None or d < best[0]):
            best = (d, text)
    if best is not None:
        return f"the variance matches {best[1]}."
    ratio = measured / target
    for r, text in _GENERIC_RATIO_HINTS:
        if abs(ratio / r - 1.0) <= max(3.0 * rel_tol, 0.03):
            return text
    if 0 < target < 1 and measured > 0:
        power = math.log(measured) / math.log(target)
        if abs(power - 0.5) < 0.03:
            return ("the variance is close to the square root of the target: std and variance"
                    " confused (a std used where the variance belongs)?")
        if abs(power - 2.0) < 0.03:
            return ("the variance is close to the target squared: the variance was passed as"
                    " the std (NumPy's scale is a standard deviation: take the square root).")
    return f"the variance is {ratio:.3g}x the target; recheck the fan and the scale factor."


def mean_check(
    x: npt.ArrayLike, target_std: float, *, expected: float = 0.0, z_tol: float = DEFAULT_Z,
    name: str = "mean",
) -> CheckResult:
    """The sample mean is within ``z_tol`` standard errors ``target_std / sqrt(n)`` of ``expected``.

    False-fail rate at ``z_tol = 6``: 1.97e-9 (two-sided, CLT).
    """
    a = _flat(x)
    n = a.size
    measured = float(a.mean())
    se = target_std / math.sqrt(n)
    tol = z_tol * se
    z = (measured - expected) / se if se > 0 else math.inf
    passed = bool(abs(z) <= z_tol)
    msg = (f"mean {_fmt(measured)} over {n} values; expected {_fmt(expected)} +- {_fmt(tol)}"
           f" ({z_tol:g} standard errors, z = {z:.1f}).")
    hint = ""
    if not passed:
        if np.all(a > 0) or np.all(a < 0):
            hint = ("every value has the same sign: the distribution must be centered on 0"
                    " (uniform(low=-b, high=b), not low=b or low=0).")
        else:
            hint = "the values are not centered on 0: is a shift added, or low=0 used?"
    return CheckResult(name, passed, measured, expected, tol, z, false_fail_rate(z_tol), msg, hint,
                       {"n": n, "se": se})


def kurtosis_check(
    x: npt.ArrayLike, family: Family, *, z_tol: float = DEFAULT_Z, name: str = "family"
) -> CheckResult:
    """The sample kurtosis ``m4 / m2^2`` matches ``family`` (3 normal, 1.8 uniform, 2.37 truncated).

    Standard error from the delta method (:meth:`Family.kurtosis_se`, ``sqrt(24/n)`` for the
    normal). False-fail rate at ``z_tol = 6``: 1.97e-9 (two-sided). At the sample sizes the
    specs use (>= 7e4 values) the three families are more than 30 standard errors apart.
    """
    a = _flat(x)
    n = a.size
    d = a - a.mean()
    m2 = float(np.mean(d * d))
    if m2 == 0.0:
        return CheckResult(name, False, None, family.kurtosis, message="all values are equal;"
                           " there is no distribution to recognize.",
                           hint="the array is constant: check both bounds / the scale.")
    d2 = d * d
    measured = float(np.mean(d2 * d2)) / m2**2  # (d*d)**2: 4x faster than d**4
    se = family.kurtosis_se(n)
    tol = z_tol * se
    z = (measured - family.kurtosis) / se
    passed = bool(abs(z) <= z_tol)
    msg = (f"kurtosis {measured:.4f}; a {family.name} sample of {n} values has "
           f"{family.kurtosis:.4f} +- {tol:.4f} ({z_tol:g} standard errors, z = {z:.1f}).")
    hint = ""
    if not passed:
        known = [NORMAL, UNIFORM, TRUNCATED_NORMAL]
        near = min(known, key=lambda f: abs(f.kurtosis - measured))
        if near.name != family.name and abs(near.kurtosis - measured) < 0.15:
            hint = (f"the values look {near.name}-distributed, but a {family.name} is asked"
                    " (the variance can be right with the wrong family).")
        else:
            hint = f"the shape of the distribution is not {family.name}."
    return CheckResult(name, passed, measured, family.kurtosis, tol, z, false_fail_rate(z_tol),
                       msg, hint, {"n": n, "se": se})


TAIL_C = 2.5
"""Tail point (in sample standard deviations) of :func:`tail_check`."""


def tail_check(x: npt.ArrayLike, *, c: float = TAIL_C, z_tol: float = DEFAULT_Z,
               name: str = "tails") -> CheckResult:
    """The fraction of ``|x - mean| > c * s`` matches the normal's ``2 Phi(-c)`` (1.24% at 2.5).

    ``s`` is the sample std, so the check is about the shape only. Its standard error, with
    ``p = 2 Phi(-c)`` and ``b = 2 c phi(c)``, is ``sqrt((p (1 - p) - b^2 / 2) / n)`` (the
    estimated ``s`` removes part of the binomial noise). False-fail rate at ``z_tol = 6``:
    1.97e-9. A uniform or a +-2 sigma' truncated sample with the same variance has no value
    beyond 2.5 s.
    """
    a = _flat(x)
    n = a.size
    s = float(a.std())
    p = 2.0 * _Phi(-c)
    b = 2.0 * c * _phi(c)
    se = math.sqrt((p * (1 - p) - b * b / 2.0) / n)
    measured = float(np.count_nonzero(np.abs(a - a.mean()) > c * s)) / n if s > 0 else 0.0
    z = (measured - p) / se
    passed = bool(abs(z) <= z_tol)
    msg = (f"{100 * measured:.3f}% of the values lie beyond {c:g} standard deviations; a normal"
           f" sample has {100 * p:.3f}% +- {100 * z_tol * se:.3f}% (z = {z:.1f}).")
    hint = ""
    if not passed and measured < p:
        hint = ("the values are bounded, like a uniform or truncated sample; an untruncated"
                " normal (rng.normal / rng.standard_normal) is asked.")
    elif not passed:
        hint = "the tails are heavier than a normal's."
    return CheckResult(name, passed, measured, p, z_tol * se, z, false_fail_rate(z_tol), msg,
                       hint, {"n": n, "se": se, "c": c})


def bound_checks(
    x: npt.ArrayLike, std: float, family: Family, *, fail_prob: float = BOUND_FAIL_PROB,
    what: str = "the bound",
) -> list[CheckResult]:
    """Hard bound ``max|x| <= B`` and "the largest value reaches ``B(1 - eps)``".

    ``B = family.bound * std``: ``sqrt(3 Var)`` for the uniform, ``2 sigma'`` for the truncated
    normal. The first check is exact (slack 1e-9 relative for rounding): a correct sample
    never exceeds the bound. For the second, ``eps`` solves ``P(|z| < B(1 - eps))^n =
    fail_prob`` (exact order statistics), so a correct sample fails it with probability
    ``fail_prob = 1e-9``; a bound that is too small (e.g. ``sqrt(1/n)`` instead of
    ``sqrt(3/n)``, or fan_out for fan_in) leaves ``max|x|`` far below ``B``.
    """
    if family.bound is None or family.abs_cdf is None:
        raise ValueError(f"family {family.name} has no bound")
    a = _flat(x)
    n = a.size
    bound = family.bound * std
    mx = float(np.max(np.abs(a))) if n else 0.0
    hard_ok = bool(mx <= bound * (1.0 + 1e-9))
    res = [CheckResult(
        "bound", hard_ok, mx, bound, bound * 1e-9, None, 0.0,
        f"largest |value| {_fmt(mx)}; {what} is {_fmt(bound)} (no value may exceed it).",
        "" if hard_ok else (
            f"values exceed {what} ({mx / bound:.3g}x): the bound or the scale is too large,"
            " or the wrong family (an unbounded normal?)."),
    )]
    # Solve P(|z| < t)^n = fail_prob for t by bisection on [0, bound].
    target = fail_prob ** (1.0 / n) if n else 0.0
    lo, hi = 0.0, family.bound
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if family.abs_cdf(mid) < target:
            lo = mid
        else:
            hi = mid
    reach = hi * std
    reach_ok = bool(mx >= reach)
    res.append(CheckResult(
        "bound_reached", reach_ok, mx, bound, bound - reach, None, fail_prob,
        f"largest |value| {_fmt(mx)}; a {family.name} sample of {n} values reaches at least"
        f" {_fmt(reach)} ({what} {_fmt(bound)}) except with probability {fail_prob:g}.",
        "" if reach_ok else (
            f"the values stay far inside {what} (largest/bound = {mx / bound:.3g}):"
            + (" the bound misses sqrt(3) (sqrt(1/n) instead of sqrt(3/n))?"
               if abs(mx / bound - 1 / _S3) < 0.05 else
               " is the bound too small (wrong fan, missing factor), or is it clipped?")),
        {"n": n, "eps": 1.0 - hi / family.bound},
    ))
    return res
