"""What the hidden tests call and check, for every graded function of the four assignments.

Each :class:`FunctionSpec` says which calls to make in the sandbox (asymmetric dense shapes
``(784, 160)`` and ``(160, 672)``, a conv shape ``(3, 3, 256, 48)``, edge values, the visible
public tests' calls, generators made from grader seeds) and how to judge the returned plain data
in the pristine parent process (:mod:`course_lib.grading.stats` for sampled values; exact
references computed here for the deterministic functions). The names, signatures, meanings,
concerns and points are the exercise contract, ``course_lib/grading/CONTRACT.md``; every check
carries the concern (test cell) it belongs to, and ``FunctionSpec.points`` gives each concern's
points.

Sample sizes: the initializers' variance checks use >= 107,520 draws, so 6 standard errors are
at most 2.6 % (normal) and 1.6 % (uniform) of the target, while every plausible wrong variance
on those shapes (fans swapped, the other schemes, a factor 2, std for variance, a missing
sqrt(3), a missing kernel size, Xavier's sum as a product, Glorot's std written as
sqrt(3/(n_in+n_out))) is at least 15 % from the target and from each other, so the hint names
the right mistake. The family checks (kurtosis 3 / 1.8 / 2.37, SE <= 0.02 at these sizes) are
> 30 standard errors apart.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .sandbox import (
    ArrayValue,
    Call,
    CallOutcome,
    GraderInitializer,
    ObjectValue,
    Rng,
    ScalarValue,
    SeqValue,
)
from .stats import (
    NORMAL,
    TRUNC_STD_FACTOR,
    TRUNCATED_NORMAL,
    UNIFORM,
    CheckResult,
    Family,
    bound_checks,
    finite_check,
    kurtosis_check,
    mean_check,
    sum_of_products_family,
    tail_check,
    variance_check,
)

__all__ = [
    "ASSIGNMENTS",
    "DEFAULT_BASE_SEED",
    "NOTEBOOKS",
    "SPECS",
    "FunctionSpec",
    "assignment_of",
    "get_spec",
    "make_seeds",
]

DEFAULT_BASE_SEED = 20240611
"""Base of the grader's seeds; an instructor may pass another (``--base-seed``)."""

N_SEEDS = 8

Outcomes = dict[str, CallOutcome]
Judge = Callable[[Outcomes, Sequence[int]], list[CheckResult]]


@dataclass(frozen=True)
class FunctionSpec:
    """How one graded function is called and judged.

    ``points`` maps each concern of the function (one test cell ``test_<name>_<concern>`` in
    the notebook, ``public`` first) to its points; every check the judge returns carries one
    of these concerns (or ``""`` for a problem that counts in every concern).
    """

    assignment: str
    name: str
    make_calls: Callable[[Sequence[int]], list[Call]]
    judge: Judge
    sampled: bool
    points: Mapping[str, int] = field(default_factory=dict)

    @property
    def concerns(self) -> tuple[str, ...]:
        """The concerns in notebook order (``public`` first)."""
        return tuple(self.points)

    @property
    def total_points(self) -> int:
        """The function's points over all its test cells."""
        return sum(self.points.values())

    def calls(self, seeds: Sequence[int]) -> list[Call]:
        """The calls for these seeds."""
        return self.make_calls(seeds)


def make_seeds(function: str, base_seed: int = DEFAULT_BASE_SEED) -> list[int]:
    """The grader's seeds for ``function``: a SeedSequence of the base seed and the name."""
    ss = np.random.SeedSequence([int(base_seed), zlib.crc32(function.encode())])
    return [int(x) for x in ss.generate_state(N_SEEDS, dtype=np.uint32)]


# =========================================================================== helpers


def _fail(name: str, message: str, hint: str = "") -> CheckResult:
    return CheckResult(name, False, message=message, hint=hint)


def _ok(name: str, message: str) -> CheckResult:
    return CheckResult(name, True, message=message)


def _tag(results: list[CheckResult], concern: str) -> list[CheckResult]:
    """Give every check that has no concern yet this ``concern`` (returns the same list)."""
    for r in results:
        if not r.concern:
            r.concern = concern
    return results


def _outcome_problem(o: CallOutcome | None, what: str) -> CheckResult | None:
    """A failed CheckResult if the call did not return normally."""
    if o is None:
        return _fail("call", f"{what}: the call was not made.")
    if o.status == "ok":
        return None
    if o.status == "missing":
        return _fail("defined", o.detail or "function not found",
                     "keep the function's name and signature as given in the notebook.")
    if o.status == "raised" and o.error is not None:
        hint = _last_line(o.error.traceback)
        if o.error.cls == "NotImplementedError":
            hint = "the answer cell still raises NotImplementedError: write your implementation."
        return _fail("call", f"{what} raised {o.error.cls}: {o.error.message}", hint)
    if o.status == "timeout":
        return _fail("call", f"{what} {o.detail}", "look for a loop that never ends.")
    if o.status == "crash":
        return _fail("call", f"{what} killed the grading process: {o.detail}",
                     "os._exit/sys.exit, a crash in C code or running out of memory.")
    return _fail("call", f"{what}: {o.detail or o.status}")


def _last_line(tb: str) -> str:
    lines = [ln for ln in tb.strip().splitlines() if ln.strip()]
    frames = [ln.strip() for ln in lines if ln.strip().startswith('File "<cell')]
    return f"raised at {frames[-1]}" if frames else ""


def _array_checks(
    o: CallOutcome | None, what: str, shape: tuple[int, ...]
) -> tuple[npt.NDArray[np.float64] | None, list[CheckResult]]:
    """Type, dtype, shape and finiteness of a returned array; returns it as float64 if usable."""
    prob = _outcome_problem(o, what)
    if prob is not None:
        return None, [prob]
    assert o is not None
    return _array_value_checks(o.value, what, shape)


def _array_value_checks(
    v: Any, what: str, shape: tuple[int, ...]
) -> tuple[npt.NDArray[np.float64] | None, list[CheckResult]]:
    out: list[CheckResult] = []
    if not isinstance(v, ArrayValue):
        got = _describe(v)
        return None, [_fail("type", f"{what} returned {got}; expected a numpy.ndarray.",
                            "return the array itself (np.asarray(...)).")]
    if v.is_plain_ndarray:
        out.append(_ok("type", f"{what} returned a numpy.ndarray"))
    else:
        out.append(_fail("type", f"{what} returned a {v.cls} (a subclass of numpy.ndarray); "
                         "expected a plain numpy.ndarray. The statistics were computed on its raw"
                         " data.", "return a plain array; do not subclass ndarray."))
    a = v.array
    if a.dtype == np.float64:
        out.append(_ok("dtype", f"{what} has dtype float64"))
    else:
        out.append(_fail("dtype", f"{what} has dtype {a.dtype}; expected float64.",
                         "do not cast to float32 (or int); NumPy's generators return float64."))
    if tuple(a.shape) == tuple(shape):
        out.append(_ok("shape", f"{what} has shape {tuple(shape)}"))
    else:
        out.append(_fail("shape", f"{what} has shape {tuple(a.shape)}; expected {tuple(shape)}.",
                         "pass the whole shape to the generator (size=shape), in the given"
                         " order; do not transpose."))
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        out.append(_fail("dtype", f"{what} is not a real numeric array."))
        return None, out
    af = a.astype(np.float64)
    fin = finite_check(af)
    fin.message = f"{what}: {fin.message}"
    out.append(fin)
    if not fin.passed or af.size < 2:
        return None, out
    return af, out


def _describe(v: Any) -> str:
    if isinstance(v, ScalarValue):
        return f"a {v.cls} ({v.value!r})"
    if isinstance(v, SeqValue):
        return f"a {v.kind} of {len(v.items)}{' or more' if v.truncated else ''} items"
    if isinstance(v, ObjectValue):
        return f"a {v.cls}"
    if isinstance(v, ArrayValue):
        return f"an array of shape {v.array.shape}"
    return "nothing usable" if v is None else type(v).__name__


def _prefix(results: list[CheckResult], what: str) -> list[CheckResult]:
    for r in results:
        if not r.message.startswith(what):
            r.message = f"{what}: {r.message}"
    return results


def _rng_checks(outs: Outcomes, keys: tuple[str, str, str], what: str) -> list[CheckResult]:
    """Reproducibility (same seed, different global seeds) and distinct draws for distinct seeds."""
    res: list[CheckResult] = []
    vals = []
    for k in keys:
        o = outs.get(k)
        if o is None or o.status != "ok":
            res.append(_fail("reproducible", f"{what}: the reproducibility calls did not return"
                             f" ({o.status if o else 'missing'})."))
            return res
        vals.append(_raw_arrays(o.value))
    a, b, c = vals
    same = len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y, equal_nan=True)
                                    for x, y in zip(a, b, strict=True))
    if same:
        res.append(_ok("reproducible", f"{what}: the same seed gave the same values (with the"
                       " global np.random state seeded differently)"))
    else:
        res.append(_fail(
            "reproducible", f"{what}: two calls with generators made from the same seed (and the"
            " global np.random state seeded differently) returned different values.",
            "draw every number from the rng argument, never from np.random.* or a new generator."))
    differ = not (len(a) == len(c) and all(
        x.shape == y.shape and np.array_equal(x, y, equal_nan=True)
        for x, y in zip(a, c, strict=True)))
    if differ:
        res.append(_ok("seeds_differ", f"{what}: different seeds gave different values"))
    else:
        res.append(_fail(
            "seeds_differ", f"{what}: generators made from different seeds returned identical"
            " values: the function ignores rng.",
            "use the rng argument (no fixed seed such as default_rng(0), no cached array)."))
    return res


def _raw_arrays(v: Any) -> list[npt.NDArray[Any]]:
    if isinstance(v, ArrayValue):
        return [v.array]
    if isinstance(v, SeqValue):
        out: list[npt.NDArray[Any]] = []
        for it in v.items:
            out.extend(_raw_arrays(it))
        return out
    if isinstance(v, ScalarValue):
        return [np.asarray(v.value if isinstance(v.value, (int, float)) else 0)]
    return []


def _global_check(outs: Outcomes, what: str) -> CheckResult:
    touched = [k for k, o in outs.items() if o.global_touched]
    if touched:
        return _fail("global_random", f"{what}: the global np.random state changed during the"
                     f" call(s) {', '.join(touched)}.",
                     "use rng.normal / rng.uniform / rng.standard_normal on the generator you"
                     " are given; never np.random.seed, np.random.normal, np.random.rand...")
    return _ok("global_random", f"{what}: the global np.random state was left alone")


def _close(measured: Any, expected: float, *, rtol: float = 1e-9, atol: float = 1e-12) -> bool:
    try:
        m = float(measured)
    except (TypeError, ValueError, OverflowError):
        return False
    return math.isfinite(m) and abs(m - expected) <= atol + rtol * abs(expected)


def _scalar(o: CallOutcome) -> tuple[float | None, str]:
    v = o.value
    if isinstance(v, ScalarValue) and isinstance(v.value, (int, float)) \
            and not isinstance(v.value, bool):
        return float(v.value), v.cls
    if isinstance(v, ArrayValue) and v.array.size == 1 and np.issubdtype(v.array.dtype, np.number):
        return float(v.array.reshape(-1)[0]), f"{v.cls} of shape {v.array.shape}"
    return None, _describe(v)


def _expect_value_error(o: CallOutcome | None, what: str) -> CheckResult:
    if o is None:
        return _fail("value_error", f"{what}: not called")
    if o.status == "raised" and o.error is not None and o.error.cls == "ValueError":
        return _ok("value_error", f"{what} raised ValueError ({o.error.message[:120]})")
    if o.status == "raised" and o.error is not None:
        return _fail("value_error", f"{what} raised {o.error.cls}: {o.error.message[:200]};"
                     " expected a ValueError.", "raise ValueError('...') with a clear message.")
    if o.status == "ok":
        return _fail("value_error", f"{what} returned {_describe(o.value)}; expected a"
                     " ValueError.", "check the argument and raise ValueError for it.")
    prob = _outcome_problem(o, what)
    assert prob is not None
    return prob


def _scalar_case(o: CallOutcome | None, what: str, expected: float,
                 hints: Sequence[tuple[str, float]] = ()) -> CheckResult:
    prob = _outcome_problem(o, what)
    if prob is not None:
        return prob
    assert o is not None
    val, cls = _scalar(o)
    if val is None:
        return _fail("value", f"{what} returned {cls}; expected a number ({expected:.6g}).")
    if _close(val, expected):
        return CheckResult("value", True, val, expected, 1e-9 * abs(expected) + 1e-12,
                           message=f"{what} = {val:.6g}")
    hint = next((h for h, alt in hints if _close(val, alt, rtol=1e-6)), "")
    return CheckResult("value", False, val, expected, 1e-9 * abs(expected) + 1e-12,
                       message=f"{what} returned {val:.6g}; expected {expected:.6g}.", hint=hint)


# =========================================================================== initializers


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """Reference ``compute_fans`` for the ``(*kernel, in, out)`` layout."""
    if len(shape) < 2:
        raise ValueError("need at least 2 dimensions")
    rf = math.prod(shape[:-2])
    return shape[-2] * rf, shape[-1] * rf


def torch_fans_ref(shape: Sequence[int]) -> tuple[int, int]:
    """Reference ``torch_fans`` for PyTorch's ``(out, in, *kernel)`` layout."""
    if len(shape) < 2:
        raise ValueError("need at least 2 dimensions")
    rf = math.prod(shape[2:])
    return shape[1] * rf, shape[0] * rf


DENSE = (784, 160)
DENSE_T = (160, 672)
CONV = (3, 3, 256, 48)
SMALL = (64, 32)
EDGE_EMPTY: tuple[tuple[int, ...], ...] = ((0, 5), (3, 3, 0, 8))
EDGE_ONE = (1, 4000)
"""The hidden shapes. Fan ratios 784:160, 160:672 and 256:48 keep every plausible wrong
variance of every scheme (fan_out for fan_in, the other schemes' variances, a factor 2, the std
used as the variance, a missing sqrt(3), a missing kernel size, Xavier's sum written as a
product) at least 15 % apart from each other and from the target, so each mistake gets its own
hint (the old (3, 3, 64, 128) had fan_out = 2 fan_in, where LeCun's 1/fan_in^2 equals Xavier's
2/(fan_in fan_out)). ``EDGE_EMPTY`` have a zero dimension (an empty float64 array of that shape
is the answer), ``EDGE_ONE`` has n_in = 1."""

PUB_DENSE = (500, 100)
PUB_CONV = (3, 3, 64, 12)
PUB_KERNELS = 6
"""The visible public tests' shapes (the ``public`` concern re-judges them): 50,000 dense
draws and 6 kernels of 6,912 values (41,472), with the same separation as the hidden shapes."""

def _alternatives(shape: tuple[int, ...], scheme: str, family: Family) -> list[tuple[str, float]]:
    fi, fo = fans(shape)
    alts: list[tuple[str, float]] = [
        ("1/fan_in (LeCun's variance: He needs the factor 2)", 1 / fi),
        ("2/fan_in (He's variance: an extra factor 2)", 2 / fi),
        ("1/fan_out: fan_out used where fan_in belongs (fans swapped)", 1 / fo),
        ("2/fan_out: fan_out used where fan_in belongs (fans swapped)", 2 / fo),
        ("2/(fan_in+fan_out) (Xavier's variance)", 2 / (fi + fo)),
        ("1/(fan_in+fan_out): Xavier's factor 2 is missing", 1 / (fi + fo)),
        ("3/(fan_in+fan_out): std sqrt(3/(n_in+n_out)) is a mistaken Glorot normal formula;"
         " the variance is 2/(fan_in+fan_out)", 3 / (fi + fo)),
        ("2/(fan_in*fan_out): Xavier's denominator is the sum fan_in+fan_out, not the product",
         2 / (fi * fo)),
        ("std = 1/fan_in (variance 1/fan_in^2): the std is the square root of the variance",
         1 / fi**2),
        ("std = 2/fan_in: the variance was passed as the std", (2 / fi) ** 2),
    ]
    if len(shape) > 2:
        fi0, fo0 = shape[-2], shape[-1]
        alts += [
            ("1/in_channels: the kernel size (receptive field) is missing from the fans", 1 / fi0),
            ("2/in_channels: the kernel size (receptive field) is missing from the fans", 2 / fi0),
            ("2/(in+out channels): the kernel size is missing from the fans", 2 / (fi0 + fo0)),
        ]
    target = _target(scheme, shape)
    alts.append(("the variance itself used as the std (scale=Var instead of sqrt(Var))",
                 target**2))
    if family is UNIFORM:
        # two mistakes at once are common: the wrong variance and a bound without sqrt(3);
        # a single mistake comes first, so it names a variance that both explain
        alts = (alts + [("bound sqrt(Var) instead of sqrt(3*Var) (missing sqrt(3))", target / 3),
                        ("bound sqrt(6*Var): one factor too many", target * 2)]
                + [(f"{t}, and the uniform bound misses sqrt(3) (b = sqrt(3*Var))", v / 3)
                   for t, v in alts])
    if family is TRUNCATED_NORMAL:
        alts += [("the std without the 0.8796 correction (truncation shrinks the variance;"
                  " divide the std by 0.87962566103423978 before truncating)",
                  target * TRUNC_STD_FACTOR**2),
                 ("the std multiplied by 0.8796 instead of divided", target * TRUNC_STD_FACTOR**4)]
    out: list[tuple[str, float]] = []
    for t, v in alts:  # drop the target itself and later duplicates of a value
        if abs(v / target - 1) > 0.01 and all(abs(v / w - 1) > 1e-9 for _, w in out):
            out.append((t, v))
    return out


def _target(scheme: str, shape: Sequence[int]) -> float:
    fi, fo = fans(shape)
    return {"lecun": 1 / fi, "xavier": 2 / (fi + fo), "he": 2 / fi}[scheme]


def _family_checks(a: npt.NDArray[np.float64], family: Family, what: str) -> list[CheckResult]:
    """Scale-free checks of the distribution's shape (kurtosis, and the normal's tails)."""
    res = [kurtosis_check(a, family)]
    if family is NORMAL:
        res.append(tail_check(a))
    return _prefix(res, what)


def _scale_checks(a: npt.NDArray[np.float64], family: Family, target: float,
                  what: str) -> list[CheckResult]:
    """The mean, and for bounded families the bound that the variance implies.

    The bound is judged only on a sample of the right family (kurtosis): a normal drawn where
    a uniform is asked, with the right variance, costs the ``family`` concern, not this one.
    """
    res = [mean_check(a, math.sqrt(target))]
    if family is not NORMAL and kurtosis_check(a, family).passed:
        bw = "the bound sqrt(3*Var)" if family is UNIFORM else "the cut 2*sigma'"
        res += bound_checks(a, math.sqrt(target), family, what=bw)
    return _prefix(res, what)


def _student_fans(o: CallOutcome | None, ref: tuple[int, int]) -> tuple[int, int] | None:
    """The fans the student's own ``compute_fans`` returned, if usable and not the reference."""
    if o is None or o.status != "ok" or not isinstance(o.value, SeqValue) \
            or len(o.value.items) != 2:
        return None
    got = []
    for it in o.value.items:
        val, _ = _scalar(CallOutcome(o.call, "ok", it))
        if val is None or not math.isfinite(val) or val <= 0:
            return None
        got.append(val)
    pair = (int(got[0]), int(got[1]))
    return None if pair == ref or got != [float(pair[0]), float(pair[1])] else pair


def _scheme_variance(scheme: str, fi: float, fo: float) -> float:
    return {"lecun": 1 / fi, "xavier": 2 / (fi + fo), "he": 2 / fi}[scheme]


def _initializer_spec(assignment: str, name: str, scheme: str, family: Family,
                      upstream: str | None) -> FunctionSpec:
    """The six ps2 initializers and ps4's ``he_normal_truncated``.

    Concerns: ``public`` (the visible test, re-judged), ``dense`` (type, dtype, shape, variance,
    mean and bounds on the asymmetric dense shapes, plus the edge shapes: a zero dimension gives
    an empty array, n_in = 1), ``conv`` (the same on a conv kernel), ``family`` (kurtosis and
    tails: normal vs uniform vs truncated, independent of the scale), ``rng`` (same seed same
    values under different global seeds, different seeds differ, global ``np.random``
    untouched).

    Upstream mistakes (``upstream``): the ps2 initializers call the student's ``compute_fans``,
    so the judge also calls it on the same shapes; a variance that matches the scheme with the
    *student's* fans passes (``compute_fans`` loses its own points, not its dependents').
    ``he_normal_truncated`` calls the student's ``truncated_normal``: an answer equal to
    ``truncated_normal(shape, sigma', rng)`` with the right sigma' and the same seed passes the
    scale and family checks whatever that helper does.
    """
    fname = name
    main = (("dense", DENSE), ("dense_T", DENSE_T), ("conv", CONV))

    def calls(seeds: Sequence[int]) -> list[Call]:
        s = seeds
        out = [
            Call("dense", fname, (DENSE,), {"rng": Rng(s[0])}, global_seed=s[6]),
            Call("dense_T", fname, (DENSE_T,), {"rng": Rng(s[1])}),
            Call("conv", fname, (CONV,), {"rng": Rng(s[2])}),
            Call("edge_one", fname, (EDGE_ONE,), {"rng": Rng(s[5])}),
            *[Call(f"edge_empty{i}", fname, (shape,), {"rng": Rng(s[5])})
              for i, shape in enumerate(EDGE_EMPTY)],
            Call("repeat_a", fname, (SMALL,), {"rng": Rng(s[3])}, global_seed=s[6]),
            Call("repeat_b", fname, (SMALL,), {"rng": Rng(s[3])}, global_seed=s[7]),
            Call("other_seed", fname, (SMALL,), {"rng": Rng(s[4])}),
            Call("pub_dense", fname, (PUB_DENSE,), {"rng": Rng(1)}),
            *[Call(f"pub_conv{k}", fname, (PUB_CONV,), {"rng": Rng(10 + k)})
              for k in range(PUB_KERNELS)],
            Call("pub_a", fname, ((20, 10),), {"rng": Rng(5)}),
            Call("pub_b", fname, ((20, 10),), {"rng": Rng(5)}),
            Call("pub_c", fname, ((20, 10),), {"rng": Rng(6)}),
        ]
        if upstream == "compute_fans":
            out += [Call(f"fans_{key}", "compute_fans", (shape,))
                    for key, shape in (*main, ("edge_one", EDGE_ONE), ("pub_dense", PUB_DENSE),
                                       ("pub_conv", PUB_CONV))]
        elif upstream == "truncated_normal":
            for key, shape, seed in (("dense", DENSE, s[0]), ("dense_T", DENSE_T, s[1]),
                                     ("conv", CONV, s[2]), ("edge_one", EDGE_ONE, s[5]),
                                     ("pub_dense", PUB_DENSE, 1),
                                     *[(f"pub_conv{k}", PUB_CONV, 10 + k)
                                       for k in range(PUB_KERNELS)]):
                sigma = math.sqrt(_target(scheme, shape)) / TRUNC_STD_FACTOR
                out.append(Call(f"up_{key}", "truncated_normal", (shape, sigma),
                                {"rng": Rng(seed)}))
        return out

    def targets(outs: Outcomes, key: str, shape: tuple[int, ...]) -> list[tuple[float, str]]:
        """The accepted variances: the reference, then the one with the student's fans."""
        ref = fans(shape)
        out = [(_scheme_variance(scheme, *ref), "")]
        own = _student_fans(outs.get(f"fans_{key}"), ref) if upstream == "compute_fans" else None
        if own is not None:
            out.append((_scheme_variance(scheme, *own),
                        f" with your compute_fans' fans {own} (compute_fans{shape} should be"
                        f" {ref}; that mistake is graded in compute_fans only)"))
        return out

    def same_as_upstream(outs: Outcomes, key: str, a: npt.NDArray[np.float64]) -> bool:
        return upstream == "truncated_normal" and _equals_upstream(outs, key, a)

    def scale(outs: Outcomes, key: str, shape: tuple[int, ...], a: npt.NDArray[np.float64],
              what: str, with_mean: bool) -> list[CheckResult]:
        first: list[CheckResult] = []
        for target, note in targets(outs, key, shape):
            v = variance_check(a, target, family=family,
                               alternatives=_alternatives(shape, scheme, family))
            got = [v] + (_scale_checks(a, family, target, what)[0:] if with_mean else [])
            got = _prefix(got, what)
            if all(c.passed for c in got):
                for c in got:
                    c.message += note
                return got
            first = first or got
        if same_as_upstream(outs, key, a):
            return [_ok("variance", f"{what} equals your truncated_normal(shape, sigma', rng)"
                        " with the right sigma' (that helper is graded on its own)")]
        return first

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res: list[CheckResult] = []
        for key, shape in main:
            concern = "conv" if key == "conv" else "dense"
            what = f"{fname}({shape}, rng=...)"
            a, checks = _array_checks(outs.get(key), what, shape)
            res += _tag(checks, concern)
            if a is None:
                continue
            res += _tag(scale(outs, key, shape, a, what, key != "dense_T"), concern)
            if key == "dense":
                fam = _family_checks(a, family, what)
                if same_as_upstream(outs, key, a) and not all(c.passed for c in fam):
                    fam = [_ok("family", f"{what} equals your truncated_normal(shape, sigma',"
                               " rng) (that helper is graded on its own)")]
                res += _tag(fam, "family")
        what = f"{fname}({EDGE_ONE}, rng=...) (n_in = 1)"
        a, checks = _array_checks(outs.get("edge_one"), what, EDGE_ONE)
        res += _tag(checks, "dense")
        if a is not None:
            res += _tag(scale(outs, "edge_one", EDGE_ONE, a, what, False), "dense")
        for i, empty in enumerate(EDGE_EMPTY):
            res += _tag(_empty_checks(outs.get(f"edge_empty{i}"), f"{fname}({empty}, rng=...)",
                                      empty), "dense")
        res += _tag(_rng_checks(outs, ("repeat_a", "repeat_b", "other_seed"),
                                f"{fname}({SMALL})"), "rng")
        res.append(_tag([_global_check({k: o for k, o in outs.items()
                                        if not k.startswith(("fans_", "up_"))}, fname)],
                        "rng")[0])
        res += _tag(_public_initializer(outs, fname, scheme, family, upstream), "public")
        return res

    points = {"public": 1, "dense": 1, "conv": 1, "family": 1, "rng": 1}
    return FunctionSpec(assignment, name, calls, judge, True, points)


def _equals_upstream(outs: Outcomes, key: str, a: npt.NDArray[Any]) -> bool:
    """Whether ``a`` is what the student's helper returned for the same call (``up_<key>``)."""
    o = outs.get(f"up_{key}")
    if o is None or o.status != "ok" or not isinstance(o.value, ArrayValue):
        return False
    u = o.value.array
    return bool(u.shape == a.shape and a.size > 0
                and np.allclose(np.asarray(a, dtype=np.float64), u.astype(np.float64),
                                rtol=1e-9, atol=0.0))


def _empty_checks(o: CallOutcome | None, what: str, shape: tuple[int, ...]) -> list[CheckResult]:
    """A shape with a zero dimension: an empty float64 ndarray of exactly that shape."""
    prob = _outcome_problem(o, what)
    hint = ("a shape with a zero dimension has nothing to draw: return an empty float64 array"
            " of that shape (a zero fan must not divide: use max(fan, 1) as Keras does).")
    if prob is not None:
        prob.hint = hint if prob.name == "call" and "ZeroDivision" in prob.message \
            else prob.hint or hint
        return [prob]
    assert o is not None
    v = o.value
    if not isinstance(v, ArrayValue):
        return [_fail("edge", f"{what} returned {_describe(v)}; expected an empty float64 array"
                      f" of shape {shape}.", hint)]
    ok = tuple(v.array.shape) == shape and v.array.dtype == np.float64
    return [CheckResult("edge", ok, message=f"{what} returned an array of shape"
                        f" {tuple(v.array.shape)} and dtype {v.array.dtype}" + (
                            "" if ok else f"; expected shape {shape}, float64."),
                        hint="" if ok else hint)]


def _pub_array(outs: Outcomes, key: str, what: str) -> tuple[npt.NDArray[Any] | None, str]:
    """A public call's array (``isinstance(W, np.ndarray)`` holds for subclasses too)."""
    o = outs.get(key)
    prob = _outcome_problem(o, what)
    if prob is not None:
        return None, prob.describe()
    assert o is not None
    if not isinstance(o.value, ArrayValue):
        return None, f"return a NumPy array, got {_describe(o.value)}"
    return o.value.array, ""


class _Public:
    """The assertions of a visible public test, judged on the returned bytes.

    Each assertion becomes one ``"public"`` :class:`CheckResult` in :attr:`res`.
    """

    def __init__(self, outs: Outcomes) -> None:
        self.outs = outs
        self.res: list[CheckResult] = []

    def check(self, ok: bool, msg: str) -> bool:
        self.res.append(CheckResult("public", bool(ok), message=f"public test: {msg}"))
        return bool(ok)

    def array(self, key: str, what: str, shape: tuple[int, ...]) -> npt.NDArray[np.float64] | None:
        """The array of call ``key`` if it has ``shape`` and dtype float64 (else None)."""
        A, err = _pub_array(self.outs, key, what)
        if A is None:
            self.check(False, err)
            return None
        if not (self.check(A.shape == shape, f"expected shape {shape}, got {A.shape}")
                and self.check(A.dtype == np.float64, f"expected float64, got {A.dtype}")):
            return None
        return A.astype(np.float64)

    def seeds(self, what: str, noun: str, advice: str = "") -> None:
        """Calls ``pub_a`` and ``pub_b`` (one seed) agree, ``pub_c`` (another seed) differs."""
        arrs = []
        for key in ("pub_a", "pub_b", "pub_c"):
            A, err = _pub_array(self.outs, key, what)
            if A is None:
                self.check(False, err)
                return
            arrs.append(A)
        a, b, c = arrs
        self.check(a.shape == b.shape and np.array_equal(a, b),
                   f"the same seed must give the same {noun}{advice}")
        self.check(not (a.shape == c.shape and np.array_equal(a, c)),
                   f"different seeds must give different {noun}")


def _public_initializer(outs: Outcomes, fname: str, scheme: str, family: Family,
                        upstream: str | None) -> list[CheckResult]:
    """What the visible public test of an initializer asserts, on the returned bytes."""
    pub = _Public(outs)
    res, check = pub.res, pub.check

    def pub_fans(shape: tuple[int, ...], key: str) -> tuple[float, float] | None:
        if upstream != "compute_fans":
            return tuple(float(f) for f in fans(shape))  # type: ignore[return-value]
        o = outs.get(f"fans_{key}")
        if o is None or o.status != "ok" or not isinstance(o.value, SeqValue) \
                or len(o.value.items) != 2:
            check(False, f"compute_fans({shape}) did not return (fan_in, fan_out)")
            return None
        vals = [_scalar(CallOutcome(o.call, "ok", it))[0] for it in o.value.items]
        if any(v is None or not v > 0 for v in vals):
            check(False, f"compute_fans({shape}) returned {vals}")
            return None
        return float(vals[0]), float(vals[1])  # type: ignore[arg-type]

    W = pub.array("pub_dense", f"{fname}({PUB_DENSE}, rng=default_rng(1))", PUB_DENSE)
    if W is None:
        return res
    fs = pub_fans(PUB_DENSE, "pub_dense")
    if fs is None:
        return res
    target = _scheme_variance(scheme, *fs)
    ratio = float(W.var()) / target
    helper = upstream == "truncated_normal" and _equals_upstream(outs, "pub_dense", W)
    if helper:  # the student's truncated_normal is graded on its own
        check(True, f"{fname}{PUB_DENSE} equals your truncated_normal(shape, sigma', rng)")
    else:
        check(abs(ratio - 1) < 0.05, f"variance {W.var():.3g}, expected {target:.3g}"
              f" (ratio {ratio:.3g})")
        check(abs(W.mean()) < 6 * math.sqrt(target / W.size), f"mean {W.mean():.2e},"
              " expected 0")
    if helper:
        pass
    elif family is NORMAL:
        far = float(np.mean(np.abs(W) > 3 * math.sqrt(target)))
        check(far > 0.001, f"only {far:.4%} of the values beyond 3 standard deviations")
    elif family is UNIFORM:
        b = math.sqrt(3 * target)
        check(np.abs(W).max() <= b, f"largest |value| {np.abs(W).max():.4f} exceeds {b:.4f}")
        check(np.abs(W).max() > 0.99 * b, f"largest |value| {np.abs(W).max():.4f} stays well"
              f" inside the bound {b:.4f}")
    else:
        sigma = math.sqrt(target) / TRUNC_STD_FACTOR
        check(np.abs(W).max() <= 2 * sigma, f"largest |value| {np.abs(W).max():.4f} exceeds"
              f" 2 sigma' = {2 * sigma:.4f}")
    kernels = []
    for k in range(PUB_KERNELS):
        K, err = _pub_array(outs, f"pub_conv{k}", f"{fname}({PUB_CONV}, rng=default_rng({10+k}))")
        if K is None or not check(K.shape == PUB_CONV, f"expected shape {PUB_CONV}, got"
                                  f" {getattr(K, 'shape', err)}"):
            if K is None:
                check(False, err)
            return res
        kernels.append(K.astype(np.float64))
    fs = pub_fans(PUB_CONV, "pub_conv")
    if fs is None:
        return res
    target = _scheme_variance(scheme, *fs)
    ratio = float(np.stack(kernels).var()) / target
    if upstream == "truncated_normal" and all(
            _equals_upstream(outs, f"pub_conv{k}", K) for k, K in enumerate(kernels)):
        check(True, f"{fname}{PUB_CONV} equals your truncated_normal(shape, sigma', rng)")
    else:
        check(abs(ratio - 1) < 0.05, f"conv kernel variance ratio {ratio:.3g}, expected 1")
    pub.seeds(f"{fname}((20, 10), rng=...)", "weights", ": draw only from rng")
    return res


# =========================================================================== ps1


_FLOAT_CLASSES = ("float", "numpy.float64", "numpy.float32", "numpy.float16", "numpy.longdouble")


def _pub_close(o: CallOutcome | None, what: str, expected: float,
               require_float: bool = False) -> CheckResult:
    """``np.isclose(got, expected)`` as a public test asserts it (rtol 1e-5, atol 1e-8)."""
    prob = _outcome_problem(o, what)
    if prob is not None:
        prob.message = f"public test: {prob.message}"
        return prob
    assert o is not None
    val, cls = _scalar(o)
    if require_float and not (isinstance(o.value, ScalarValue) and o.value.cls in _FLOAT_CLASSES):
        return _fail("public", f"public test: {what}: return a float, got {cls}")
    ok = val is not None and abs(val - expected) <= 1e-8 + 1e-5 * abs(expected)
    return CheckResult("public", ok, message=f"public test: {what}: expected {expected:.6g},"
                       f" got {val if val is None else f'{val:.6g}'}")


PV_CASES = ((784, 2 / 784, 1.0), (3, 0.5, 4.0), (256, 0.01, 2.5), (10, 1.5, 0.2))
PV_EDGES = ((1, 0.5, 4.0), (0, 0.5, 2.0), (10, 0.0, 3.0), (7, 0.2, 0.0))
PV_PUBLIC = ((100, 0.01, 1.0), (784, 2 / 784, 0.5), (10, 0.3, 2.0))


def _preactivation_variance_spec() -> FunctionSpec:
    """Concerns: ``public``; ``values`` (four cases); ``edges`` (n_in = 1, n_in = 0 and a zero
    variance give n_in var_w var_x exactly, 0 included)."""
    fname = "preactivation_variance"

    def calls(seeds: Sequence[int]) -> list[Call]:
        return ([Call(f"case{i}", fname, c) for i, c in enumerate(PV_CASES)]
                + [Call(f"edge{i}", fname, c) for i, c in enumerate(PV_EDGES)]
                + [Call(f"pub{i}", fname, c) for i, c in enumerate(PV_PUBLIC)])

    def case(o: CallOutcome | None, n: int, vw: float, vx: float) -> CheckResult:
        exp = n * vw * vx
        return _scalar_case(o, f"{fname}({n}, {vw:g}, {vx:g})", exp, [
            ("n_in is missing: Var(p) sums n_in terms", vw * vx),
            ("var_x is missing", n * vw), ("var_w is missing", n * vx),
            ("stds were multiplied: the variances multiply", n * math.sqrt(vw * vx)),
            ("var_w + var_x: the variances multiply", n * (vw + vx))])

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res = [_tag([case(outs.get(f"case{i}"), *c)], "values")[0]
               for i, c in enumerate(PV_CASES)]
        res += [_tag([case(outs.get(f"edge{i}"), *c)], "edges")[0]
                for i, c in enumerate(PV_EDGES)]
        res += [_tag([_pub_close(outs.get(f"pub{i}"), f"{fname}({n}, {vw:g}, {vx:g})",
                                 n * vw * vx, require_float=i == 0)], "public")[0]
                for i, (n, vw, vx) in enumerate(PV_PUBLIC)]
        return res

    return FunctionSpec("ps1_variance", fname, calls, judge, False,
                        {"public": 1, "values": 2, "edges": 1})


SP_ARGS = (5, 0.3, 2.0, 100_000)
SP_OTHER = (40, 1.0 / 40, 0.5, 20_000)
SP_ONE = (1, 2.0, 0.5, 40_000)
"""n_in = 1: a single product w x of two normals, kurtosis 9, Var = var_w var_x = 1."""
SP_ZERO_VAR = (6, 0.0, 1.5, 50)
SP_SINGLE = (5, 0.3, 2.0, 1)
SP_PUBLIC = (50, 0.02, 2.0, 20_000)


def _sample_preactivations_spec() -> FunctionSpec:
    """Concerns: ``public``; ``variance`` (type, dtype, shape, variance and mean on two argument
    sets); ``family`` (the kurtosis 3 + 6/n_in of a sum of products: fresh w and x per
    sample); ``rng``; ``edges`` (n_in = 1, var_w = 0 gives zeros, a single sample)."""
    fname = "sample_preactivations"
    small = (5, 0.3, 2.0, 500)

    def calls(seeds: Sequence[int]) -> list[Call]:
        s = seeds
        return [
            Call("main", fname, SP_ARGS, {"rng": Rng(s[0])}, global_seed=s[6]),
            Call("other_args", fname, SP_OTHER, {"rng": Rng(s[1])}),
            Call("repeat_a", fname, small, {"rng": Rng(s[3])}, global_seed=s[6]),
            Call("repeat_b", fname, small, {"rng": Rng(s[3])}, global_seed=s[7]),
            Call("other_seed", fname, small, {"rng": Rng(s[4])}),
            Call("edge_one", fname, SP_ONE, {"rng": Rng(s[5])}),
            Call("edge_zero", fname, SP_ZERO_VAR, {"rng": Rng(s[5])}),
            Call("edge_single", fname, SP_SINGLE, {"rng": Rng(s[5])}),
            Call("pub", fname, SP_PUBLIC, {"rng": Rng(2024)}),
            Call("pub_a", fname, (5, 1.0, 1.0, 10), {"rng": Rng(7)}),
            Call("pub_b", fname, (5, 1.0, 1.0, 10), {"rng": Rng(7)}),
            Call("pub_c", fname, (5, 1.0, 1.0, 10), {"rng": Rng(8)}),
        ]

    def alts(n: int, vw: float, vx: float) -> list[tuple[str, float]]:
        return [("var_w*var_x: the sum over the n_in inputs is missing", vw * vx),
                ("stds used where variances belong (std_w*std_x)", n * math.sqrt(vw * vx)),
                ("n_in*var_w: var_x is missing", n * vw), ("n_in*var_x: var_w is missing",
                                                           n * vx),
                ("a mean instead of a sum over the inputs", vw * vx / n)]

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res: list[CheckResult] = []
        for key, (n, vw, vx, m) in (("main", SP_ARGS), ("other_args", SP_OTHER)):
            what = f"{fname}({n}, {vw:g}, {vx:g}, {m})"
            a, checks = _array_checks(outs.get(key), what, (m,))
            res += _tag(checks, "variance")
            if a is None:
                continue
            fam = sum_of_products_family(n)
            target = n * vw * vx
            res += _tag(_prefix([variance_check(a, target, family=fam,
                                                alternatives=alts(n, vw, vx)),
                                 mean_check(a, math.sqrt(target))], what), "variance")
            if key == "main":
                k = kurtosis_check(a, fam)
                if not k.passed and isinstance(k.measured, float) and abs(k.measured - 3) < 0.15:
                    k.hint = ("the samples are exactly normal, but a sum of n_in products w_i*x_i"
                              f" has kurtosis 3 + 6/n_in = {fam.kurtosis:.2f}: draw fresh w and x"
                              " for every sample and sum their products (not one normal with the"
                              " total variance, and not one w shared by all samples).")
                res += _tag(_prefix([k], what), "family")
        res += _tag(_rng_checks(outs, ("repeat_a", "repeat_b", "other_seed"), f"{fname}{small}"),
                    "rng")
        res.append(_tag([_global_check({k: o for k, o in outs.items()
                                        if not k.startswith("pub")}, fname)], "rng")[0])
        # edges
        n, vw, vx, m = SP_ONE
        what = f"{fname}{SP_ONE} (n_in = 1)"
        a, checks = _array_checks(outs.get("edge_one"), what, (m,))
        res += _tag(checks, "edges")
        if a is not None:
            res += _tag(_prefix([variance_check(a, n * vw * vx, family=sum_of_products_family(n),
                                                alternatives=alts(n, vw, vx))], what), "edges")
        what = f"{fname}{SP_ZERO_VAR} (var_w = 0)"
        o = outs.get("edge_zero")
        if o is not None and o.status == "raised" and o.error is not None \
                and o.error.cls == "ValueError":  # refusing a zero variance is allowed too
            o = CallOutcome(o.call, "ok", ArrayValue(np.zeros(SP_ZERO_VAR[3]), "numpy.ndarray"))
        a, checks = _array_checks(o, what, (SP_ZERO_VAR[3],))
        res += _tag([c for c in checks if not c.passed], "edges")
        if a is not None:
            res.append(_tag([CheckResult("edge", bool(np.all(a == 0.0)), message=f"{what}"
                                         " returned " + ("zeros" if np.all(a == 0.0) else
                                                         "non-zero values; expected zeros"))],
                            "edges")[0])
        what = f"{fname}{SP_SINGLE} (a single sample)"
        o = outs.get("edge_single")
        prob = _outcome_problem(o, what)
        if prob is not None:
            res.append(_tag([prob], "edges")[0])
        elif o is not None:
            ok = isinstance(o.value, ArrayValue) and o.value.array.shape == (1,) \
                and o.value.array.dtype == np.float64 and bool(np.isfinite(o.value.array).all())
            res.append(_tag([CheckResult("edge", ok, message=f"{what} returned"
                                         f" {_describe(o.value)}" + ("" if ok else
                                                                     "; expected a float64"
                                                                     " array of shape (1,)."))],
                            "edges")[0])
        res += _tag(_public_sample(outs), "public")
        return res

    return FunctionSpec("ps1_variance", fname, calls, judge, True,
                        {"public": 1, "variance": 1, "family": 1, "rng": 1, "edges": 1})


def _public_sample(outs: Outcomes) -> list[CheckResult]:
    pub = _Public(outs)
    check = pub.check
    p = pub.array("pub", "sample_preactivations(50, 0.02, 2.0, 20000, rng=...)", (20_000,))
    if p is None:
        return pub.res
    ratio = float(p.var()) / 2.0
    check(abs(ratio - 1) < 0.07, f"sample variance {p.var():.3g}, expected 2.0 (ratio"
          f" {ratio:.3g})")
    check(abs(p.mean()) < 0.06, f"sample mean {p.mean():.3f}, expected 0")
    pub.seeds("sample_preactivations(5, 1.0, 1.0, 10, rng=...)", "samples")
    return pub.res


def two_layer_gradients_ref(X: npt.NDArray[np.float64], y: npt.NDArray[np.float64],
                            W1: npt.NDArray[np.float64], W2: npt.NDArray[np.float64],
                            ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Reference gradients of ``L = ||tanh(X W1) W2 - y||^2 / (2B)``."""
    H = np.tanh(X @ W1)
    R = (H @ W2 - y) / X.shape[0]
    dW2 = H.T @ R
    dW1 = X.T @ ((R @ W2.T) * (1.0 - H**2))
    return dW1, dW2


def _gradient_inputs(seed: int, b: int, d: int, h: int, k: int) -> list[npt.NDArray[np.float64]]:
    g = np.random.default_rng(seed)
    return [g.standard_normal((b, d)), g.standard_normal((b, k)),
            0.5 * g.standard_normal((d, h)), 0.5 * g.standard_normal((h, k))]


GRAD_DIMS = ((7, 5, 4, 3), (16, 3, 6, 2), (1, 4, 3, 2))
"""(B, d, h, k): two batches, and the edge B = 1 (a single example)."""


def _public_gradient_inputs() -> list[npt.NDArray[np.float64]]:
    """The visible test's problem: default_rng(0), B, d, h, k = 5, 4, 3, 2."""
    rng = np.random.default_rng(0)
    B, d, h, k = 5, 4, 3, 2
    X = rng.normal(size=(B, d))
    y = rng.normal(size=(B, k))
    W1 = rng.normal(scale=0.5, size=(d, h))
    W2 = rng.normal(scale=0.5, size=(h, k))
    return [X, y, W1, W2]


def _numerical_gradients(X: npt.NDArray[np.float64], y: npt.NDArray[np.float64],
                         W1: npt.NDArray[np.float64], W2: npt.NDArray[np.float64],
                         eps: float = 1e-6) -> tuple[npt.NDArray[np.float64], ...]:
    """Central finite differences of the loss, as the visible public test computes them."""
    def loss(A: npt.NDArray[np.float64], B_: npt.NDArray[np.float64]) -> float:
        return float(np.sum((np.tanh(X @ A) @ B_ - y) ** 2) / (2 * X.shape[0]))

    out = []
    for which, W in ((0, W1), (1, W2)):
        G = np.zeros_like(W)
        for idx in np.ndindex(W.shape):
            Wp, Wm = W.copy(), W.copy()
            Wp[idx] += eps
            Wm[idx] -= eps
            fp = loss(Wp, W2) if which == 0 else loss(W1, Wp)
            fm = loss(Wm, W2) if which == 0 else loss(W1, Wm)
            G[idx] = (fp - fm) / (2 * eps)
        out.append(G)
    return tuple(out)


def _two_layer_gradients_spec() -> FunctionSpec:
    """Concerns: ``public`` (finite differences on the visible problem); ``dW2`` and ``dW1``
    (against the reference on two batches); ``edges`` (a batch of one example)."""
    fname = "two_layer_gradients"

    def calls(seeds: Sequence[int]) -> list[Call]:
        return ([Call(f"case{i}", fname, tuple(_gradient_inputs(seeds[i], *dims)))
                 for i, dims in enumerate(GRAD_DIMS)]
                + [Call("pub", fname, tuple(_public_gradient_inputs()))])

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res: list[CheckResult] = []
        for i, dims in enumerate(GRAD_DIMS):
            X, y, W1, W2 = _gradient_inputs(seeds[i], *dims)
            what = f"{fname}(X {X.shape}, y {y.shape}, W1 {W1.shape}, W2 {W2.shape})"
            concerns = ("edges", "edges") if X.shape[0] == 1 else ("dW1", "dW2")
            o = outs.get(f"case{i}")
            prob = _outcome_problem(o, what)
            if prob is not None:
                res += [_tag([prob], concerns[0])[0],
                        _tag([_fail(prob.name, prob.message, prob.hint)], concerns[1])[0]]
                continue
            assert o is not None
            v = o.value
            if not (isinstance(v, SeqValue) and len(v.items) == 2):
                for c in concerns:
                    res.append(_tag([_fail("type", f"{what} returned {_describe(v)}; expected"
                                           " (dW1, dW2).")], c)[0])
                continue
            refs = two_layer_gradients_ref(X, y, W1, W2)
            for label, item, ref, concern in zip(("dW1", "dW2"), v.items, refs, concerns,
                                                 strict=True):
                a, checks = _array_value_checks(item, f"{what} {label}", ref.shape)
                res += _tag([c for c in checks if not c.passed], concern)
                if a is None or a.shape != ref.shape:
                    if all(c.passed for c in checks):
                        res.append(_tag([_fail("shape", f"{what} {label}: unusable")], concern)[0])
                    continue
                res.append(_tag([_compare(a, ref, f"{what} {label}", B=X.shape[0])], concern)[0])
        res += _tag(_public_gradients(outs.get("pub")), "public")
        return res

    return FunctionSpec("ps1_variance", fname, calls, judge, False,
                        {"public": 1, "dW2": 1, "dW1": 1, "edges": 1})


def _public_gradients(o: CallOutcome | None) -> list[CheckResult]:
    X, y, W1, W2 = _public_gradient_inputs()
    what = "public test: two_layer_gradients on the visible 5-example problem"
    prob = _outcome_problem(o, what)
    if prob is not None:
        return [prob]
    assert o is not None
    v = o.value
    if not (isinstance(v, SeqValue) and len(v.items) == 2
            and all(isinstance(it, ArrayValue) for it in v.items)):
        return [_fail("public", f"{what}: returned {_describe(v)}; expected (dW1, dW2)")]
    num1, num2 = _numerical_gradients(X, y, W1, W2)
    res = []
    for label, it, W, num in (("dW2", v.items[1], W2, num2), ("dW1", v.items[0], W1, num1)):
        a = it.array
        if a.shape != W.shape:
            res.append(_fail("public", f"{what}: {label} must have shape {W.shape}, got"
                             f" {a.shape}"))
            continue
        a = a.astype(np.float64)
        ok = bool(np.allclose(a, num, rtol=1e-5, atol=1e-8))
        res.append(CheckResult("public", ok, message=f"{what}: {label} differs from finite"
                               f" differences by up to {np.abs(a - num).max():.2e}"))
    return res


def _compare(a: npt.NDArray[np.float64], ref: npt.NDArray[np.float64], what: str,
             B: int | None = None, extra: Sequence[tuple[str, npt.NDArray[np.float64]]] = (),
             rtol: float = 1e-7, atol: float = 1e-10) -> CheckResult:
    err = float(np.max(np.abs(a - ref))) if a.size else 0.0
    ok = bool(np.allclose(a, ref, rtol=rtol, atol=atol))
    msg = (f"{what} matches the reference (max abs error {err:.2g})" if ok else
           f"{what} differs from the reference: max abs error {err:.3g} (allowed {atol:g} +"
           f" {rtol:g} relative).")
    hint = ""
    if not ok:
        cands: list[tuple[str, npt.NDArray[np.float64]]] = list(extra)
        if B:
            cands += [(f"{B}x the reference: divide by the batch size B", ref * B),
                      (f"1/{B} of the reference: the batch size was divided twice", ref / B)]
        cands += [("2x the reference: L has 1/(2B), so the 2 of the square cancels", ref * 2),
                  ("half the reference: a factor 2 missing", ref / 2),
                  ("minus the reference: the sign of (Y_hat - y) is flipped", -ref)]
        for text, cand in cands:
            if cand.shape == a.shape and np.allclose(a, cand, rtol=1e-6, atol=1e-9):
                hint = f"the result is {text}."
                break
    return CheckResult("value", ok, err, 0.0, atol, message=msg, hint=hint)


# =========================================================================== ps2

FAN_CASES: tuple[tuple[int, ...], ...] = (
    (784, 256), (256, 784), (1, 1), (0, 5), (3, 3, 64, 128), (3, 64, 128), (2, 3, 4, 5, 6),
    (1, 1, 7, 9), (3, 3, 0, 8))
FAN_ERRORS: tuple[tuple[int, ...], ...] = ((5,), ())
PUB_FAN_CASES: tuple[tuple[int, ...], ...] = ((784, 256), (3, 3, 64, 128), (5, 20, 30))
PUB_FAN_ERRORS: tuple[tuple[int, ...], ...] = ((10,), ())
TORCH_FAN_CASES: tuple[tuple[int, ...], ...] = (
    (256, 784), (784, 256), (1, 1), (5, 0), (128, 64, 3, 3), (10, 3, 5), (4, 6, 2, 3, 5),
    (8, 0, 3, 3))
PUB_TORCH_FAN_CASES: tuple[tuple[int, ...], ...] = ((256, 784), (128, 64, 3, 3), (30, 20, 5))


def _fan_value(o: CallOutcome | None, what: str, exp: tuple[int, int],
               layout: str, conv: bool) -> CheckResult:
    prob = _outcome_problem(o, what)
    if prob is not None:
        return prob
    assert o is not None
    v = o.value
    got: list[float] = []
    if isinstance(v, SeqValue) and len(v.items) == 2:
        for it in v.items:
            val, _ = _scalar(CallOutcome(o.call, "ok", it))
            if val is not None:
                got.append(val)
    if len(got) != 2:
        return _fail("value", f"{what} returned {_describe(v)}; expected the tuple {exp}.")
    ok = got[0] == exp[0] and got[1] == exp[1]
    hint = ""
    if not ok:
        if (got[1], got[0]) == exp:
            hint = f"the fans are swapped: the layout is {layout}."
        elif conv:
            hint = (f"for a conv kernel both fans are multiplied by the kernel's size;"
                    f" the layout is {layout}.")
    gotv = (int(got[0]), int(got[1])) if all(g == int(g) for g in got) else tuple(got)
    return CheckResult("value", ok, list(gotv), list(exp), 0.0,
                       message=f"{what} returned {gotv}" + ("" if ok else f"; expected {exp}."),
                       hint=hint)


def _fans_spec(assignment: str, fname: str, ref: Callable[[Sequence[int]], tuple[int, int]],
               cases: Sequence[tuple[int, ...]], errors: Sequence[tuple[int, ...]],
               layout: str, public: Sequence[tuple[int, ...]],
               public_errors: Sequence[tuple[int, ...]]) -> FunctionSpec:
    """Concerns: ``public``; ``dense`` (2-D shapes, swapped or not, 1 and 0 sizes); ``conv``
    (kernels of 1-3 spatial dimensions, a zero channel count); ``errors`` (ValueError for a
    shape of fewer than two dimensions)."""
    n_dims = 2

    def calls(seeds: Sequence[int]) -> list[Call]:
        return ([Call(f"case{i}", fname, (c,)) for i, c in enumerate(cases)]
                + [Call(f"error{i}", fname, (c,)) for i, c in enumerate(errors)]
                + [Call(f"pub{i}", fname, (c,)) for i, c in enumerate(public)]
                + [Call(f"pub_error{i}", fname, (c,)) for i, c in enumerate(public_errors)])

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res = []
        for i, c in enumerate(cases):
            conv = len(c) > n_dims
            res += _tag([_fan_value(outs.get(f"case{i}"), f"{fname}({c})", ref(c), layout,
                                    conv)], "conv" if conv else "dense")
        for i, c in enumerate(errors):
            res += _tag([_expect_value_error(outs.get(f"error{i}"), f"{fname}({c})")], "errors")
        for i, c in enumerate(public):
            chk = _fan_value(outs.get(f"pub{i}"), f"public test: {fname}({c})", ref(c), layout,
                             len(c) > n_dims)
            res += _tag([chk], "public")
        for i, c in enumerate(public_errors):
            res += _tag([_expect_value_error(outs.get(f"pub_error{i}"),
                                             f"public test: {fname}({c})")], "public")
        return res

    return FunctionSpec(assignment, fname, calls, judge, False,
                        {"public": 1, "dense": 1, "conv": 1, "errors": 1})


# =========================================================================== ps3

LAYER_CASES: tuple[tuple[int, ...], ...] = ((5, 7, 3, 2), (784, 256, 10))
LAYER_EDGES: tuple[tuple[int, ...], ...] = ((4,), (1, 1))
"""A single layer size gives no weights (an empty list); (1, 1) one 1 x 1 matrix."""
LAYER_PUBLIC: tuple[tuple[tuple[int, ...], int], ...] = (((5, 4, 3, 2), 0), ((6, 5, 4), 1),
                                                         ((6, 5, 4), 1))
INIT_SCALE = 0.1


def _network_case(o: CallOutcome | None, what: str, sizes: Sequence[int], seed: int,
                  scale: float) -> list[CheckResult]:
    """The weights must be exactly ``initializer(shape, rng=rng)`` drawn in layer order."""
    prob = _outcome_problem(o, what)
    if prob is not None:
        return [prob]
    assert o is not None
    v = o.value
    n = max(len(sizes) - 1, 0)
    if not (isinstance(v, SeqValue) and len(v.items) == n):
        return [_fail("type", f"{what} returned {_describe(v)}; expected a list of {n} weight"
                      " arrays.", "one weight matrix per pair of consecutive layer sizes.")]
    res: list[CheckResult] = []
    g = np.random.default_rng(seed)
    shapes = [(sizes[j], sizes[j + 1]) for j in range(n)]
    refs = [scale * g.standard_normal(s) for s in shapes]
    all_ok = True
    for j, (item, ref) in enumerate(zip(v.items, refs, strict=True)):
        a, checks = _array_value_checks(item, f"{what} weight {j}", ref.shape)
        res += [c for c in checks if not c.passed]
        if a is None and all(c.passed for c in checks) and isinstance(item, ArrayValue):
            a = item.array.astype(np.float64)  # a 1 x 1 weight: too small for statistics
        if a is None or a.shape != ref.shape:
            all_ok = False
            continue
        if not np.array_equal(a, ref):
            all_ok = False
            fresh = scale * np.random.default_rng(seed).standard_normal(ref.shape)
            hint = ("draw each weight with initializer(shape, rng=rng), passing the rng you"
                    " were given, in layer order (do not make a new generator).")
            if j > 0 and np.array_equal(a, fresh):
                hint = ("each layer restarts the same random stream: pass the same"
                        " generator object along, do not re-seed it per layer.")
            res.append(_fail("value", f"{what}: weight {j} is not what"
                             f" initializer({ref.shape}, rng=rng) draws from the given"
                             " generator in layer order.", hint))
    if all_ok and not res:
        res.append(_ok("value", f"{what}: every weight is drawn by the initializer from"
                       " the given rng, with the right shapes"))
    return res


def _init_network_spec() -> FunctionSpec:
    """Concerns: ``public`` (the visible spy test: shapes, order, one generator, same seed
    same network); ``values`` (exact weights of a grader initializer drawn in layer order from
    the given generator, global ``np.random`` untouched); ``edges`` (one layer size gives
    ``[]``, sizes (1, 1) one 1 x 1 matrix)."""
    fname = "init_network"

    def calls(seeds: Sequence[int]) -> list[Call]:
        return ([Call(f"case{i}", fname, (list(sizes), GraderInitializer(INIT_SCALE)),
                      {"rng": Rng(seeds[i])}, global_seed=seeds[6])
                 for i, sizes in enumerate(LAYER_CASES)]
                + [Call(f"edge{i}", fname, (list(sizes), GraderInitializer(INIT_SCALE)),
                        {"rng": Rng(seeds[4 + i])}) for i, sizes in enumerate(LAYER_EDGES)]
                + [Call(f"pub{i}", fname, (list(sizes), GraderInitializer(1.0)),
                        {"rng": Rng(seed)}) for i, (sizes, seed) in enumerate(LAYER_PUBLIC)])

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res: list[CheckResult] = []
        for i, sizes in enumerate(LAYER_CASES):
            what = f"{fname}({list(sizes)}, initializer, rng=...)"
            res += _tag(_network_case(outs.get(f"case{i}"), what, sizes, seeds[i], INIT_SCALE),
                        "values")
        res.append(_tag([_global_check({k: o for k, o in outs.items() if k.startswith("case")},
                                       fname)], "values")[0])
        for i, sizes in enumerate(LAYER_EDGES):
            what = f"{fname}({list(sizes)}, initializer, rng=...)"
            res += _tag(_network_case(outs.get(f"edge{i}"), what, sizes, seeds[4 + i],
                                      INIT_SCALE), "edges")
        for i, (sizes, seed) in enumerate(LAYER_PUBLIC):
            what = f"public test: {fname}({list(sizes)}, spy, rng=default_rng({seed}))"
            res += _tag(_network_case(outs.get(f"pub{i}"), what, sizes, seed, 1.0), "public")
        return res

    return FunctionSpec("ps3_deep_signal", fname, calls, judge, False,
                        {"public": 1, "values": 2, "edges": 1})


ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu")


def _act(name: str, z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    if name == "linear":
        return z
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "relu":
        return np.maximum(z, 0.0)
    raise ValueError(name)


def _forward_inputs(seed: int) -> tuple[npt.NDArray[np.float64], list[npt.NDArray[np.float64]]]:
    g = np.random.default_rng(seed)
    X = g.standard_normal((6, 5))
    Ws = [0.6 * g.standard_normal(s) for s in ((5, 4), (4, 3), (3, 2))]
    return X, Ws


def forward_ref(X: npt.NDArray[np.float64], Ws: Sequence[npt.NDArray[np.float64]],
                act: str) -> tuple[list[npt.NDArray[np.float64]], list[npt.NDArray[np.float64]]]:
    """Reference ``forward_activations``; also returns the pre-activations (for hints)."""
    h = X
    outs, pres = [], []
    for W in Ws:
        z = h @ W
        pres.append(z)
        h = _act(act, z)
        outs.append(h)
    return outs, pres


def _list_compare(o: CallOutcome | None, what: str, refs: Sequence[npt.NDArray[np.float64]],
                  pres: Sequence[npt.NDArray[np.float64]] | None) -> list[CheckResult]:
    """A returned list of arrays against reference arrays (one per layer)."""
    prob = _outcome_problem(o, what)
    if prob is not None:
        return [prob]
    assert o is not None
    v = o.value
    if not (isinstance(v, SeqValue) and len(v.items) == len(refs)):
        hint = ("X itself is not in the list: one array per weight matrix."
                if isinstance(v, SeqValue) and len(v.items) == len(refs) + 1 else "")
        return [_fail("type", f"{what} returned {_describe(v)}; expected a list of"
                      f" {len(refs)} arrays.", hint)]
    if not refs:
        return [_ok("value", f"{what} returned an empty list")]
    res: list[CheckResult] = []
    for j, (item, ref) in enumerate(zip(v.items, refs, strict=True)):
        a, checks = _array_value_checks(item, f"{what} layer {j}", ref.shape)
        res += [c for c in checks if not c.passed]
        if a is None and all(c.passed for c in checks) and isinstance(item, ArrayValue):
            a = item.array.astype(np.float64)
        if a is None or a.shape != ref.shape:
            if not res:
                res.append(_fail("shape", f"{what} layer {j}: unusable result"))
            continue
        extra = [("the pre-activation (the nonlinearity was not applied)", pres[j])] \
            if pres is not None else []
        res.append(_compare(a, ref, f"{what} layer {j}", extra=extra))
    return res


PUB_X = ((1.0, -2.0), (0.5, 0.0))
PUB_W1 = ((1.0, -1.0), (0.5, 2.0))
PUB_W2 = ((1.0,), (-1.0,))
def _forward_activations_spec() -> FunctionSpec:
    """Concerns: ``public`` (the visible hand-checked example); ``activations`` (each of linear,
    tanh, sigmoid, relu through three layers); ``edges`` (no weights gives ``[]``, a single
    example, an unknown activation raises ValueError)."""
    fname = "forward_activations"
    X1 = np.array(PUB_X)
    Ws_pub = [np.array(PUB_W1), np.array(PUB_W2)]

    def calls(seeds: Sequence[int]) -> list[Call]:
        X, Ws = _forward_inputs(seeds[0])
        return ([Call(act, fname, (X, Ws, act)) for act in ACTIVATIONS]
                + [Call("unknown", fname, (X, Ws, "softplus")),
                   Call("edge_empty", fname, (X, [], "tanh")),
                   Call("edge_single", fname, (X[:1], Ws, "relu"))]
                + [Call(f"pub_{act}", fname, (X1, Ws_pub[:n], act))
                   for n, act in (((2, "relu"), (2, "linear"), (1, "tanh"), (1, "sigmoid")))]
                + [Call("pub_unknown", fname, (X1, Ws_pub[:1], "softplus"))])

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        X, Ws = _forward_inputs(seeds[0])
        res: list[CheckResult] = []
        for act in ACTIVATIONS:
            refs, pres = forward_ref(X, Ws, act)
            res += _tag(_list_compare(outs.get(act), f"{fname}(X, weights, {act!r})", refs,
                                      pres), "activations")
        res.append(_tag([_expect_value_error(outs.get("unknown"),
                                             f"{fname}(X, weights, 'softplus')")], "edges")[0])
        res += _tag(_list_compare(outs.get("edge_empty"), f"{fname}(X, [], 'tanh')", [], None),
                    "edges")
        refs, pres = forward_ref(X[:1], Ws, "relu")
        res += _tag(_list_compare(outs.get("edge_single"), f"{fname}(X[:1], weights, 'relu')"
                                  " (a single example)", refs, pres), "edges")
        # public: exactly the visible asserts (np.allclose, default tolerances)
        for n, act in ((2, "relu"), (2, "linear"), (1, "tanh"), (1, "sigmoid")):
            what = f"public test: {fname}(X, {n} weight(s), {act!r})"
            o = outs.get(f"pub_{act}")
            prob = _outcome_problem(o, what)
            if prob is not None:
                res.append(_tag([prob], "public")[0])
                continue
            assert o is not None
            refs, _ = forward_ref(X1, Ws_pub[:n], act)
            v = o.value
            if not (isinstance(v, SeqValue) and len(v.items) == n
                    and all(isinstance(it, ArrayValue) for it in v.items)):
                res.append(_tag([_fail("public", f"{what}: one activation per weight matrix (X"
                                       f" not included); got {_describe(v)}")], "public")[0])
                continue
            checked = refs if act == "relu" else refs[-1:]
            got = v.items if act == "relu" else v.items[-1:]
            for j, (it, ref) in enumerate(zip(got, checked, strict=True)):
                a = it.array
                ok = a.shape == ref.shape or a.size == ref.size
                ok = bool(ok and np.allclose(a.astype(np.float64).reshape(ref.shape), ref))
                res.append(_tag([CheckResult("public", ok, message=f"{what}, layer"
                                             f" {j + 1 if act == 'relu' else n}:"
                                             f" got {np.array2string(a, precision=4)}")],
                                "public")[0])
        res.append(_tag([_expect_value_error(outs.get("pub_unknown"),
                                             f"public test: {fname}(X, [W1], 'softplus')")],
                        "public")[0])
        return res

    return FunctionSpec("ps3_deep_signal", fname, calls, judge, False,
                        {"public": 1, "activations": 2, "edges": 1})


def _layer_inputs(seed: int) -> list[npt.NDArray[np.float64]]:
    g = np.random.default_rng(seed)
    scales = np.array([0.5, 2.0, 7.0, 1.0])
    return [g.standard_normal((9, 4)) * scales, 3.0 + g.standard_normal((9, 6)),
            g.standard_normal((9, 2)) * 0.01]


def _public_layers() -> list[npt.NDArray[np.float64]]:
    return [np.array([[1.0, -1.0], [1.0, -1.0]]), np.zeros((3, 2)),
            np.arange(6.0).reshape(2, 3)]


def _layer_stds_spec() -> FunctionSpec:
    """Concerns: ``public``; ``values`` (std over all entries, ddof = 0, of three layers);
    ``edges`` (a layer of one value has std 0; no layers gives an empty float64 array)."""
    fname = "layer_stds"

    def calls(seeds: Sequence[int]) -> list[Call]:
        return [Call("case0", fname, (_layer_inputs(seeds[0]),)),
                Call("edge_one", fname, ([np.array([[3.0]]), np.full((2, 2), -1.5)],)),
                Call("edge_none", fname, ([],)),
                Call("pub", fname, (_public_layers(),))]

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        acts = _layer_inputs(seeds[0])
        what = f"{fname}([{', '.join(str(a.shape) for a in acts)}])"
        ref = np.array([a.std() for a in acts])
        a, checks = _array_checks(outs.get("case0"), what, ref.shape)
        res = _tag(checks, "values")
        if a is not None and a.shape == ref.shape:
            res.append(_tag([_compare(a, ref, what, extra=[
                ("the std with ddof=1; the contract asks ddof=0 (np.std's default)",
                 np.array([x.std(ddof=1) for x in acts])),
                ("the mean of per-unit stds; take the std over all entries of the layer",
                 np.array([x.std(axis=0).mean() for x in acts])),
                ("the variance, not the standard deviation", ref**2)])], "values")[0])
        for key, what, exp in (("edge_one", f"{fname}([[[3.0]], a constant 2 x 2 layer])",
                                np.zeros(2)),
                               ("edge_none", f"{fname}([])", np.zeros(0))):
            o = outs.get(key)
            prob = _outcome_problem(o, what)
            if prob is not None:
                res.append(_tag([prob], "edges")[0])
                continue
            assert o is not None
            v = o.value
            ok = isinstance(v, ArrayValue) and v.array.shape == exp.shape \
                and v.array.dtype == np.float64 and bool(np.array_equal(v.array, exp))
            res.append(_tag([CheckResult("edge", ok, message=f"{what} returned {_describe(v)}"
                                         + ("" if ok else f"; expected the float64 array"
                                            f" {exp.tolist()} (a std with ddof=0 of one value"
                                            " is 0; no layers, no values).")
                                         + (f" Values: {v.array.tolist()}" if isinstance(
                                             v, ArrayValue) and not ok else ""))],
                            "edges")[0])
        # public: the visible asserts
        o = outs.get("pub")
        what = "public test: layer_stds(the three visible layers)"
        prob = _outcome_problem(o, what)
        if prob is not None:
            return res + _tag([prob], "public")
        assert o is not None
        v = o.value
        pub: list[CheckResult] = []
        if not isinstance(v, ArrayValue):
            pub.append(_fail("public", f"{what}: return a NumPy array, got {_describe(v)}"))
        elif v.array.shape != (3,) or v.array.dtype != np.float64:
            pub.append(_fail("public", f"{what}: expected a float64 array of shape (3,), got"
                             f" {v.array.dtype} {v.array.shape}"))
        else:
            exp = np.array([1.0, 0.0, math.sqrt(35 / 12)])
            for j in range(3):
                ok = bool(np.isclose(v.array[j], exp[j]))
                pub.append(CheckResult("public", ok, message=f"{what}: layer {j + 1}: expected"
                                       f" {exp[j]:.4f}, got {v.array[j]:.6g}"))
        return res + _tag(pub, "public")

    return FunctionSpec("ps3_deep_signal", fname, calls, judge, False,
                        {"public": 1, "values": 2, "edges": 1})


SPS_CASES = ((784, "linear"), (100, "tanh"), (784, "relu"), (50, "relu"), (1, "relu"),
             (1, "tanh"))
SPS_PUBLIC = ((100, "linear", 0.1), (100, "tanh", 0.1), (50, "relu", 0.2))
SIGMOID_REASON = (
    "sigmoid has no signal-preserving std: no std makes a sigmoid layer act like the identity"
    " (preserve the variance forward and backward), because sigmoid is not positively"
    " homogeneous and its mean is 1/2; a forward fixed point exists for every std (1/sqrt(0.2934"
    " n) gives Var(p) = 1), but there the gradient is multiplied by about 0.15 per layer"
)
"""Why ``signal_preserving_std(n, "sigmoid")`` raises (the model answer of ps3's Task 4)."""


def _signal_preserving_std_spec() -> FunctionSpec:
    """Concerns: ``public``; ``values`` (linear, tanh and relu, n_in = 1 included); ``sigmoid``
    (ValueError with a reason; an unknown name raises ValueError too)."""
    fname = "signal_preserving_std"

    def calls(seeds: Sequence[int]) -> list[Call]:
        return ([Call(f"case{i}", fname, c) for i, c in enumerate(SPS_CASES)]
                + [Call("sigmoid", fname, (100, "sigmoid")),
                   Call("unknown", fname, (100, "softplus"))]
                + [Call(f"pub{i}", fname, (n, act)) for i, (n, act, _) in enumerate(SPS_PUBLIC)]
                + [Call("pub_sigmoid", fname, (100, "sigmoid")),
                   Call("pub_softplus", fname, (100, "softplus"))])

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res = []
        for i, (n, act) in enumerate(SPS_CASES):
            exp = math.sqrt((2.0 if act == "relu" else 1.0) / n)
            res.append(_tag([_scalar_case(outs.get(f"case{i}"), f"{fname}({n}, {act!r})", exp, [
                ("the variance, not the std: take the square root", exp**2),
                ("ReLU zeroes half of its inputs: it needs sqrt(2/n_in)", math.sqrt(1.0 / n)),
                ("the factor 2 is for ReLU only", math.sqrt(2.0 / n)),
            ])], "values")[0])
        res.append(_tag([_expect_value_error(outs.get("sigmoid"), f"{fname}(100, 'sigmoid')")],
                        "sigmoid")[0])
        res.append(_tag([_expect_value_error(outs.get("unknown"), f"{fname}(100, 'softplus')")],
                        "sigmoid")[0])
        for i, (n, act, exp) in enumerate(SPS_PUBLIC):
            res.append(_tag([_pub_close(outs.get(f"pub{i}"), f"{fname}({n}, {act!r})", exp)],
                            "public")[0])
        for name in ("sigmoid", "softplus"):
            o = outs.get(f"pub_{name}")
            c = _expect_value_error(o, f"public test: {fname}(100, {name!r})")
            if c.passed and o is not None and o.error is not None \
                    and len(o.error.message) <= 20:
                c = _fail("public", f"public test: {name}: say why in the ValueError's message")
            res.append(_tag([c], "public")[0])
        return res

    return FunctionSpec("ps3_deep_signal", fname, calls, judge, False,
                        {"public": 1, "values": 2, "sigmoid": 1})


# =========================================================================== ps4

GAIN_CASES: tuple[tuple[str, float | None, float], ...] = (
    ("linear", None, 1.0), ("conv2d", None, 1.0), ("conv_transpose1d", None, 1.0),
    ("sigmoid", None, 1.0), ("tanh", None, 5.0 / 3.0), ("relu", None, math.sqrt(2.0)),
    ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01**2))),
    ("leaky_relu", 0.2, math.sqrt(2.0 / (1 + 0.2**2))), ("selu", None, 0.75),
)
GAIN_EDGES: tuple[tuple[str, float | None, float], ...] = (
    ("leaky_relu", 0.0, math.sqrt(2.0)), ("leaky_relu", -0.2, math.sqrt(2.0 / (1 + 0.2**2))),
    ("leaky_relu", 1.0, 1.0), ("tanh", 0.5, 5.0 / 3.0), ("conv3d", None, 1.0),
)
"""param = 0 is a slope of 0 (not the default: ``param or 0.01`` is the classic bug), a
negative slope enters squared, slope 1 is linear (gain 1), and param is ignored elsewhere."""
GAIN_PUBLIC: tuple[tuple[tuple[Any, ...], float], ...] = (
    (("linear",), 1.0), (("conv2d",), 1.0), (("sigmoid",), 1.0), (("tanh",), 5 / 3),
    (("relu",), math.sqrt(2)), (("selu",), 0.75),
    (("leaky_relu",), math.sqrt(2 / (1 + 0.01**2))), (("leaky_relu", 0.2), math.sqrt(2 / 1.04)))


def _calculate_gain_spec() -> FunctionSpec:
    """Concerns: ``public``; ``values`` (PyTorch's table, param None); ``edges`` (param = 0, a
    negative slope, slope 1, param ignored by tanh, conv3d; an unknown name raises
    ValueError)."""
    fname = "calculate_gain"
    hints = [("tanh's gain is 5/3", 1.0), ("relu's gain is sqrt(2), not 2", 2.0),
             ("the default leaky_relu slope is 0.01 when param is None", math.sqrt(2.0)),
             ("selu's gain is 3/4", 1.0)]
    edge_hints = [("param = 0 is a slope of 0, not 'use the default' (test `param is None`,"
                   " not `param or 0.01`)", math.sqrt(2.0 / (1 + 0.01**2)))]

    def calls(seeds: Sequence[int]) -> list[Call]:
        return ([Call(f"case{i}", fname, (nl, p)) for i, (nl, p, _) in enumerate(GAIN_CASES)]
                + [Call(f"edge{i}", fname, (nl, p)) for i, (nl, p, _) in enumerate(GAIN_EDGES)]
                + [Call("unknown", fname, ("gelu",))]
                + [Call(f"pub{i}", fname, args) for i, (args, _) in enumerate(GAIN_PUBLIC)]
                + [Call("pub_unknown", fname, ("gelu",))])

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res = []
        for i, (nl, p, exp) in enumerate(GAIN_CASES):
            res.append(_tag([_scalar_case(outs.get(f"case{i}"), f"{fname}({nl!r}, {p!r})", exp,
                                          hints)], "values")[0])
        for i, (nl, p, exp) in enumerate(GAIN_EDGES):
            res.append(_tag([_scalar_case(outs.get(f"edge{i}"), f"{fname}({nl!r}, {p!r})", exp,
                                          edge_hints + hints)], "edges")[0])
        res.append(_tag([_expect_value_error(outs.get("unknown"), f"{fname}('gelu')")],
                        "edges")[0])
        for i, (args, exp) in enumerate(GAIN_PUBLIC):
            res.append(_tag([_pub_close(outs.get(f"pub{i}"),
                                        f"{fname}({', '.join(map(repr, args))})", exp)],
                            "public")[0])
        res.append(_tag([_expect_value_error(outs.get("pub_unknown"),
                                             f"public test: {fname}('gelu')")], "public")[0])
        return res

    return FunctionSpec("ps4_frameworks", fname, calls, judge, False,
                        {"public": 1, "values": 2, "edges": 1})


TRUNC_STD = 0.05
TRUNC_CASES: tuple[tuple[tuple[int, ...], float], ...] = (((784, 256), TRUNC_STD),
                                                          ((3, 40, 50), 2.0))


def _truncated_normal_spec() -> FunctionSpec:
    """Concerns: ``public``; ``variance`` (type, dtype, shape, variance of two calls, mean);
    ``family`` (kurtosis 2.37, the cut at 2 std reached and never passed, no clipping);
    ``rng``; ``edges`` (a zero dimension gives an empty array, std = 0 gives zeros or a
    ValueError, a negative std raises ValueError)."""
    fname = "truncated_normal"

    def calls(seeds: Sequence[int]) -> list[Call]:
        s = seeds
        return [
            Call("main", fname, TRUNC_CASES[0], {"rng": Rng(s[0])}, global_seed=s[6]),
            Call("second", fname, TRUNC_CASES[1], {"rng": Rng(s[1])}),
            Call("repeat_a", fname, (SMALL, 1.0), {"rng": Rng(s[3])}, global_seed=s[6]),
            Call("repeat_b", fname, (SMALL, 1.0), {"rng": Rng(s[3])}, global_seed=s[7]),
            Call("other_seed", fname, (SMALL, 1.0), {"rng": Rng(s[4])}),
            Call("edge_empty", fname, ((0, 4), 1.0), {"rng": Rng(s[5])}),
            Call("edge_zero_std", fname, ((3, 4), 0.0), {"rng": Rng(s[5])}),
            Call("edge_negative_std", fname, ((3, 4), -1.0), {"rng": Rng(s[5])}),
            Call("pub", fname, ((400, 300), 0.5), {"rng": Rng(3)}),
            Call("pub_a", fname, ((20, 10), 1.0), {"rng": Rng(5)}),
            Call("pub_b", fname, ((20, 10), 1.0), {"rng": Rng(5)}),
            Call("pub_c", fname, ((20, 10), 1.0), {"rng": Rng(6)}),
        ]

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res: list[CheckResult] = []
        for key, (shape, std) in zip(("main", "second"), TRUNC_CASES, strict=True):
            what = f"{fname}({shape}, {std:g}, rng=...)"
            a, checks = _array_checks(outs.get(key), what, shape)
            res += _tag(checks, "variance")
            if a is None:
                continue
            target = (std * TRUNC_STD_FACTOR) ** 2
            alts = [("an untruncated N(0, std^2): nothing was cut at +-2*std", std**2),
                    ("the std was divided by 0.8796: truncated_normal takes the std before"
                     " truncation (the correction belongs in he_normal_truncated)", std**2),
                    ("clipping at +-2*std (np.clip) piles values on the bounds; redraw them"
                     " instead", 0.9205 * std**2)]
            res += _tag(_prefix([variance_check(a, target, family=TRUNCATED_NORMAL,
                                                alternatives=alts)], what), "variance")
            if key == "main":
                res += _tag(_prefix([mean_check(a, math.sqrt(target))], what), "variance")
                fam = _prefix([kurtosis_check(a, TRUNCATED_NORMAL),
                               *bound_checks(a, math.sqrt(target), TRUNCATED_NORMAL,
                                             what="the cut 2*std")], what)
                at_bound = int(np.count_nonzero(np.abs(a) >= 2 * std * (1 - 1e-12)))
                if at_bound > 1:
                    for c in fam:
                        if not c.passed and not c.hint.startswith("np.clip"):
                            c.hint = (f"np.clip is not truncation: {at_bound} values sit exactly"
                                      " on the bounds; redraw the values outside instead.")
                res += _tag(fam, "family")
        res += _tag(_rng_checks(outs, ("repeat_a", "repeat_b", "other_seed"),
                                f"{fname}({SMALL}, 1.0)"), "rng")
        res.append(_tag([_global_check({k: o for k, o in outs.items()
                                        if not k.startswith(("pub", "edge"))}, fname)],
                        "rng")[0])
        res += _tag(_empty_checks(outs.get("edge_empty"), f"{fname}((0, 4), 1.0, rng=...)",
                                  (0, 4)), "edges")
        o = outs.get("edge_zero_std")
        what = f"{fname}((3, 4), 0.0, rng=...)"
        if o is not None and o.status == "raised" and o.error is not None \
                and o.error.cls == "ValueError":
            res.append(_tag([_ok("edge", f"{what} raised ValueError")], "edges")[0])
        else:
            prob = _outcome_problem(o, what)
            if prob is not None:
                res.append(_tag([prob], "edges")[0])
            else:
                assert o is not None
                v = o.value
                ok = isinstance(v, ArrayValue) and v.array.shape == (3, 4) \
                    and bool(np.all(v.array == 0.0))
                res.append(_tag([CheckResult("edge", ok, message=f"{what} returned"
                                             f" {_describe(v)}" + ("" if ok else
                                                                   "; expected zeros of shape"
                                                                   " (3, 4) or a ValueError."),
                                             hint="" if ok else "a std of 0 leaves nothing to"
                                             " draw: zeros (or raise ValueError), never an"
                                             " endless redraw loop.")], "edges")[0])
        res.append(_tag([_expect_value_error(outs.get("edge_negative_std"),
                                             f"{fname}((3, 4), -1.0, rng=...)")], "edges")[0])
        res += _tag(_public_truncated(outs), "public")
        return res

    return FunctionSpec("ps4_frameworks", fname, calls, judge, True,
                        {"public": 1, "variance": 1, "family": 1, "rng": 1, "edges": 1})


def _public_truncated(outs: Outcomes) -> list[CheckResult]:
    pub = _Public(outs)
    check = pub.check
    W = pub.array("pub", "truncated_normal((400, 300), 0.5, rng=default_rng(3))", (400, 300))
    if W is None:
        return pub.res
    top = float(np.abs(W).max())
    check(top <= 1.0, f"largest |value| {top:.4f} exceeds 2 * std = 1.0")
    check(top > 0.99, f"largest |value| {top:.4f}: the cut should be at 2 * std = 1.0")
    check(int(np.sum(np.abs(W) == 1.0)) < 5, "many values sit exactly at +-2 std")
    target = 0.25 * TRUNC_STD_FACTOR**2
    ratio = float(W.var()) / target
    check(abs(ratio - 1) < 0.05, f"variance {W.var():.4g}, expected {target:.4g} (ratio"
          f" {ratio:.3g})")
    pub.seeds("truncated_normal((20, 10), 1.0, rng=...)", "numbers")
    return pub.res


TLD_MAIN = (784, 2048)
TLD_SECOND = (64, 300)
TLD_ONE = (1, 3000)
"""in_features = 1: bound 1, weight (3000, 1)."""
TLD_EMPTY = (5, 0)
"""out_features = 0: weight (0, 5), bias (0,)."""
TLD_PUBLIC = (300, 400)


def _tld_alts(n_in: int, n_out: int) -> list[tuple[str, float]]:
    return [("bound 1/sqrt(out_features): fan_in is in_features", 1 / (3.0 * n_out)),
            ("bound 1/in_features: the bound is 1/sqrt(in_features)", 1 / (3.0 * n_in**2)),
            ("bound sqrt(3/in_features): PyTorch's default is kaiming_uniform(a=sqrt(5)),"
             " i.e. bound 1/sqrt(in_features)", 1.0 / n_in),
            ("bound sqrt(6/in_features) (He uniform); PyTorch's default is"
             " 1/sqrt(in_features)", 2.0 / n_in)]


def _torch_linear_default_spec() -> FunctionSpec:
    """Concerns: ``public``; ``weight`` (layout (out, in), dtype, variance 1/(3 in), mean,
    kurtosis, bounds); ``bias`` (the same for the bias); ``rng``; ``edges`` (in_features = 1,
    out_features = 0)."""
    fname = "torch_linear_default"

    def calls(seeds: Sequence[int]) -> list[Call]:
        s = seeds
        return [
            Call("main", fname, TLD_MAIN, {"rng": Rng(s[0])}, global_seed=s[6]),
            Call("second", fname, TLD_SECOND, {"rng": Rng(s[1])}),
            Call("repeat_a", fname, (20, 30), {"rng": Rng(s[3])}, global_seed=s[6]),
            Call("repeat_b", fname, (20, 30), {"rng": Rng(s[3])}, global_seed=s[7]),
            Call("other_seed", fname, (20, 30), {"rng": Rng(s[4])}),
            Call("edge_one", fname, TLD_ONE, {"rng": Rng(s[5])}),
            Call("edge_empty", fname, TLD_EMPTY, {"rng": Rng(s[5])}),
            Call("pub", fname, TLD_PUBLIC, {"rng": Rng(6)}),
            Call("pub_a", fname, (30, 20), {"rng": Rng(5)}),
            Call("pub_b", fname, (30, 20), {"rng": Rng(5)}),
        ]

    def pair(o: CallOutcome | None, what: str) -> tuple[list[Any] | None, CheckResult | None]:
        prob = _outcome_problem(o, what)
        if prob is not None:
            return None, prob
        assert o is not None
        v = o.value
        if not (isinstance(v, SeqValue) and len(v.items) == 2):
            return None, _fail("type", f"{what} returned {_describe(v)}; expected the tuple"
                               " (weight, bias).")
        return v.items, None

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res: list[CheckResult] = []
        for key, (n_in, n_out) in (("main", TLD_MAIN), ("second", TLD_SECOND),
                                   ("edge_one", TLD_ONE)):
            what = f"{fname}({n_in}, {n_out}, rng=...)"
            items, prob = pair(outs.get(key), what)
            if items is None:
                assert prob is not None
                for concern in (("edges",) if key == "edge_one" else ("weight", "bias")):
                    res.append(_tag([_fail(prob.name, prob.message, prob.hint)], concern)[0])
                continue
            target = 1.0 / (3.0 * n_in)
            for label, item, shape in (("weight", items[0], (n_out, n_in)),
                                       ("bias", items[1], (n_out,))):
                concern = "edges" if key == "edge_one" else label
                w = f"{what} {label}"
                a, checks = _array_value_checks(item, w, shape)
                for c in checks:
                    if c.name == "shape" and not c.passed and label == "weight":
                        c.hint = "PyTorch stores a Linear weight as (out_features, in_features)."
                res += _tag(checks, concern)
                if a is None:
                    continue
                res += _tag(_prefix([variance_check(a, target, family=UNIFORM,
                                                    alternatives=_tld_alts(n_in, n_out))], w),
                            concern)
                if key == "main":
                    res += _tag(_prefix([mean_check(a, math.sqrt(target))], w), concern)
                    if label == "weight":
                        res += _tag(_prefix([kurtosis_check(a, UNIFORM)], w), concern)
                    res += _tag(_prefix(bound_checks(a, math.sqrt(target), UNIFORM,
                                                     what="the bound 1/sqrt(in_features)"), w),
                                concern)
        what = f"{fname}{TLD_EMPTY} (out_features = 0)"
        items, prob = pair(outs.get("edge_empty"), what)
        if items is None:
            assert prob is not None
            res.append(_tag([prob], "edges")[0])
        else:
            for item, shape, label in ((items[0], (0, 5), "weight"), (items[1], (0,), "bias")):
                ok = isinstance(item, ArrayValue) and tuple(item.array.shape) == shape \
                    and item.array.dtype == np.float64
                res.append(_tag([CheckResult("edge", ok, message=f"{what} {label}:"
                                             f" {_describe(item)}" + ("" if ok else
                                                                      f"; expected an empty"
                                                                      f" float64 array of"
                                                                      f" shape {shape}."))],
                                "edges")[0])
        res += _tag(_rng_checks(outs, ("repeat_a", "repeat_b", "other_seed"),
                                f"{fname}(20, 30)"), "rng")
        res.append(_tag([_global_check({k: o for k, o in outs.items()
                                        if not k.startswith(("pub", "edge"))}, fname)],
                        "rng")[0])
        res += _tag(_public_tld(outs, pair), "public")
        return res

    return FunctionSpec("ps4_frameworks", fname, calls, judge, True,
                        {"public": 1, "weight": 1, "bias": 1, "rng": 1, "edges": 1})


def _public_tld(outs: Outcomes, pair: Callable[..., Any]) -> list[CheckResult]:
    pub = _Public(outs)
    res, check = pub.res, pub.check

    items, prob = pair(outs.get("pub"), "torch_linear_default(300, 400, rng=default_rng(6))")
    if items is None:
        check(False, prob.describe())
        return res
    if not all(isinstance(it, ArrayValue) for it in items):
        check(False, "expected NumPy arrays (weight, bias)")
        return res
    weight, bias = items[0].array, items[1].array
    if not (check(weight.shape == (400, 300), f"weight: PyTorch's layout (out, in) = (400, 300),"
                  f" got {weight.shape}")
            and check(bias.shape == (400,), f"bias: expected shape (400,), got {bias.shape}")
            and check(weight.dtype == np.float64 and bias.dtype == np.float64,
                      "expected float64 arrays")):
        return res
    b = 1 / math.sqrt(300)
    for name, values in (("weight", weight), ("bias", bias)):
        top = float(np.abs(values).max())
        check(top <= b, f"{name}: largest |value| {top:.4f} exceeds 1/sqrt(in) = {b:.4f}")
        check(top > 0.9 * b, f"{name}: largest |value| {top:.4f} is far inside the bound"
              f" {b:.4f}")
    ratio = float(weight.var()) / (b**2 / 3)
    check(abs(ratio - 1) < 0.05, f"weight variance ratio {ratio:.3g}, expected 1")
    first, prob1 = pair(outs.get("pub_a"), "torch_linear_default(30, 20, rng=default_rng(5))")
    again, prob2 = pair(outs.get("pub_b"), "torch_linear_default(30, 20, rng=default_rng(5))")
    if first is None or again is None:
        check(False, (prob1 or prob2).describe())
        return res
    same = all(isinstance(x, ArrayValue) and isinstance(y, ArrayValue)
               and x.array.shape == y.array.shape and np.array_equal(x.array, y.array)
               for x, y in zip(first, again, strict=True))
    check(same, "the same seed must give the same parameters")
    return res


# =========================================================================== registry


def _seed_blind_guard(spec: FunctionSpec) -> FunctionSpec:
    """A sampled function whose values ignore the generator it is given earns no concern.

    Its statistics then come from a seed (or a cached array) of its own choosing, not from the
    grader's generators, so the statistical checks prove nothing: a function that returns the
    same values for two different seeds (``seeds_differ`` fails) gets one more failed check
    that counts in every concern. A function drawing from the global ``np.random`` state still
    varies with the grader's global seeds; it loses the ``rng`` concern only.
    """
    inner = spec.judge

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res = inner(outs, seeds)
        if any(c.name == "seeds_differ" and not c.passed for c in res):
            res.append(CheckResult(
                "seed_blind", False, concern="",
                message=f"{spec.name} returned the same values for different seeds: its numbers"
                " do not come from the rng it is given, so the hidden statistics cannot judge"
                " them and none of its test cells earns points.",
                hint="draw every number from the rng argument (no fixed seed, no cached"
                     " array)."))
        return res

    return FunctionSpec(spec.assignment, spec.name, spec.make_calls, judge, spec.sampled,
                        spec.points)



def _build() -> dict[str, dict[str, FunctionSpec]]:
    specs: list[FunctionSpec] = [
        _preactivation_variance_spec(),
        _sample_preactivations_spec(),
        _two_layer_gradients_spec(),
        _fans_spec("ps2_initializers", "compute_fans", fans, FAN_CASES, FAN_ERRORS,
                   "(*kernel, in, out)", PUB_FAN_CASES, PUB_FAN_ERRORS),
        *[_initializer_spec("ps2_initializers", f"{scheme}_{fam.name}", scheme, fam,
                            "compute_fans")
          for scheme in ("lecun", "xavier", "he") for fam in (NORMAL, UNIFORM)],
        _init_network_spec(),
        _forward_activations_spec(),
        _layer_stds_spec(),
        _signal_preserving_std_spec(),
        _calculate_gain_spec(),
        _fans_spec("ps4_frameworks", "torch_fans", torch_fans_ref, TORCH_FAN_CASES, ((7,), ()),
                   "(out, in, *kernel)", PUB_TORCH_FAN_CASES, ((10,),)),
        _truncated_normal_spec(),
        _initializer_spec("ps4_frameworks", "he_normal_truncated", "he", TRUNCATED_NORMAL,
                          "truncated_normal"),
        _torch_linear_default_spec(),
    ]
    out: dict[str, dict[str, FunctionSpec]] = {}
    for s in (_seed_blind_guard(x) if x.sampled else x for x in specs):
        out.setdefault(s.assignment, {})[s.name] = s
    return out


SPECS: dict[str, dict[str, FunctionSpec]] = _build()
"""``{assignment: {function: FunctionSpec}}`` in notebook order."""

ASSIGNMENTS: tuple[str, ...] = tuple(SPECS)

NOTEBOOKS: dict[str, str] = {
    "ps1_variance": "variance.ipynb",
    "ps2_initializers": "initializers.ipynb",
    "ps3_deep_signal": "deep_signal.ipynb",
    "ps4_frameworks": "frameworks.ipynb",
}
"""The notebook of each assignment (the exercise contract, ``CONTRACT.md``)."""


def assignment_of(function: str) -> str:
    """The assignment whose notebook grades ``function`` (names are unique across them)."""
    for a, fs in SPECS.items():
        if function in fs:
            return a
    raise ValueError(f"unknown graded function {function!r}; expected one of "
                     + ", ".join(f for fs in SPECS.values() for f in fs))


def get_spec(assignment: str, function: str) -> FunctionSpec:
    """The spec of ``function`` in ``assignment``; ``ValueError`` naming the allowed values."""
    if assignment not in SPECS:
        raise ValueError(f"unknown assignment {assignment!r}; expected one of "
                         + ", ".join(repr(a) for a in SPECS))
    fs = SPECS[assignment]
    if function not in fs:
        raise ValueError(f"unknown function {function!r} in {assignment}; expected one of "
                         + ", ".join(repr(f) for f in fs))
    return fs[function]
