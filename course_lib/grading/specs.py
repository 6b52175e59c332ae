"""What the hidden tests call and check, for every graded function of the four assignments.

Each :class:`FunctionSpec` says which calls to make in the sandbox (asymmetric dense shapes such
as ``(784, 256)`` and ``(256, 784)``, a conv shape ``(3, 3, 64, 128)``, generators made from
grader seeds) and how to judge the returned plain data in the pristine parent process
(:mod:`course_lib.grading.stats` for sampled values; exact references computed here for the
deterministic functions). The names, signatures and meanings follow DESIGN.md's "Exercise
contract".

Sample sizes: the variance checks use >= 73,728 draws (the conv shape), so 6 standard errors
are at most 3.1 % (normal) and 2.8 % (uniform) of the target, while the nearest wrong answer on
those calls (Glorot's std written as sqrt(3/(n_in+n_out)), x1.5) is 16 % away or more; swapped
fans on (784, 256) are a factor 3.06 away; a missing sqrt(3) a factor 3; a factor 2 a factor 2.
The family checks (kurtosis 3 / 1.8 / 2.37, SE <= 0.018 at these sizes) are > 30 standard
errors apart.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    """How one graded function is called and judged."""

    assignment: str
    name: str
    make_calls: Callable[[Sequence[int]], list[Call]]
    judge: Judge
    sampled: bool

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


DENSE = (784, 256)
DENSE_T = (256, 784)
CONV = (3, 3, 64, 128)
SMALL = (64, 32)


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
        # two mistakes at once are common: the wrong variance and a bound without sqrt(3)
        alts = ([("bound sqrt(Var) instead of sqrt(3*Var) (missing sqrt(3))", target / 3)]
                + [(f"{t}, and the uniform bound misses sqrt(3) (b = sqrt(3*Var))", v / 3)
                   for t, v in alts]
                + alts + [("bound sqrt(6*Var): one factor too many", target * 2)])
    if family is TRUNCATED_NORMAL:
        alts += [("the std without the 0.8796 correction (truncation shrinks the variance;"
                  " divide the std by 0.87962566103423978 before truncating)",
                  target * TRUNC_STD_FACTOR**2),
                 ("the std multiplied by 0.8796 instead of divided", target * TRUNC_STD_FACTOR**4)]
    return [(t, v) for t, v in alts if abs(v / target - 1) > 0.01]


def _target(scheme: str, shape: Sequence[int]) -> float:
    fi, fo = fans(shape)
    return {"lecun": 1 / fi, "xavier": 2 / (fi + fo), "he": 2 / fi}[scheme]


def _family_checks(a: npt.NDArray[np.float64], family: Family, target: float,
                   what: str) -> list[CheckResult]:
    res = [kurtosis_check(a, family)]
    if family is NORMAL:
        res.append(tail_check(a))
    else:
        bw = "the bound sqrt(3*Var)" if family is UNIFORM else "the cut 2*sigma'"
        res += bound_checks(a, math.sqrt(target), family, what=bw)
    return _prefix(res, what)


def _initializer_spec(assignment: str, name: str, scheme: str, family: Family) -> FunctionSpec:
    fname = name

    def calls(seeds: Sequence[int]) -> list[Call]:
        s = seeds
        return [
            Call("dense", fname, (DENSE,), {"rng": Rng(s[0])}, global_seed=s[6]),
            Call("dense_T", fname, (DENSE_T,), {"rng": Rng(s[1])}),
            Call("conv", fname, (CONV,), {"rng": Rng(s[2])}),
            Call("repeat_a", fname, (SMALL,), {"rng": Rng(s[3])}, global_seed=s[6]),
            Call("repeat_b", fname, (SMALL,), {"rng": Rng(s[3])}, global_seed=s[7]),
            Call("other_seed", fname, (SMALL,), {"rng": Rng(s[4])}),
        ]

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res: list[CheckResult] = []
        for key, shape in (("dense", DENSE), ("dense_T", DENSE_T), ("conv", CONV)):
            what = f"{fname}({shape}, rng=...)"
            a, checks = _array_checks(outs.get(key), what, shape)
            res += checks
            if a is None:
                continue
            target = _target(scheme, shape)
            v = variance_check(a, target, family=family,
                               alternatives=_alternatives(shape, scheme, family))
            res.append(_prefix([v], what)[0])
            if key == "dense":
                res += _prefix([mean_check(a, math.sqrt(target))], what)
                res += _family_checks(a, family, target, what)
        res += _rng_checks(outs, ("repeat_a", "repeat_b", "other_seed"), f"{fname}({SMALL})")
        res.append(_global_check(outs, fname))
        return res

    return FunctionSpec(assignment, name, calls, judge, True)


# =========================================================================== ps1


def _preactivation_variance_spec() -> FunctionSpec:
    cases = [(784, 2 / 784, 1.0), (3, 0.5, 4.0), (256, 0.01, 2.5), (10, 1.5, 0.2)]

    def calls(seeds: Sequence[int]) -> list[Call]:
        return [Call(f"case{i}", "preactivation_variance", c) for i, c in enumerate(cases)]

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res = []
        for i, (n, vw, vx) in enumerate(cases):
            exp = n * vw * vx
            res.append(_scalar_case(outs.get(f"case{i}"), f"preactivation_variance({n}, {vw:g},"
                                    f" {vx:g})", exp, [
                                        ("n_in is missing: Var(p) sums n_in terms", vw * vx),
                                        ("var_x is missing", n * vw), ("var_w is missing", n * vx),
                                        ("stds were multiplied: the variances multiply",
                                         n * math.sqrt(vw * vx)),
                                        ("var_w + var_x: the variances multiply", n * (vw + vx)),
                                    ]))
        return res

    return FunctionSpec("ps1_variance", "preactivation_variance", calls, judge, False)


SP_ARGS = (5, 0.3, 2.0, 100_000)


def _sample_preactivations_spec() -> FunctionSpec:
    fname = "sample_preactivations"
    small = (5, 0.3, 2.0, 500)

    def calls(seeds: Sequence[int]) -> list[Call]:
        s = seeds
        return [
            Call("main", fname, SP_ARGS, {"rng": Rng(s[0])}, global_seed=s[6]),
            Call("other_args", fname, (40, 1.0 / 40, 0.5, 20_000), {"rng": Rng(s[1])}),
            Call("repeat_a", fname, small, {"rng": Rng(s[3])}, global_seed=s[6]),
            Call("repeat_b", fname, small, {"rng": Rng(s[3])}, global_seed=s[7]),
            Call("other_seed", fname, small, {"rng": Rng(s[4])}),
        ]

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res: list[CheckResult] = []
        for key, (n, vw, vx, m) in (("main", SP_ARGS), ("other_args", (40, 1 / 40, 0.5, 20_000))):
            what = f"{fname}({n}, {vw:g}, {vx:g}, {m})"
            a, checks = _array_checks(outs.get(key), what, (m,))
            res += checks
            if a is None:
                continue
            fam = sum_of_products_family(n)
            target = n * vw * vx
            alts = [("var_w*var_x: the sum over the n_in inputs is missing", vw * vx),
                    ("stds used where variances belong (std_w*std_x)", n * math.sqrt(vw * vx)),
                    ("n_in*var_w: var_x is missing", n * vw), ("n_in*var_x: var_w is missing",
                                                               n * vx),
                    ("a mean instead of a sum over the inputs", vw * vx / n)]
            res += _prefix([variance_check(a, target, family=fam, alternatives=alts),
                            mean_check(a, math.sqrt(target))], what)
            if key == "main":
                k = kurtosis_check(a, fam)
                if not k.passed and isinstance(k.measured, float) and abs(k.measured - 3) < 0.15:
                    k.hint = ("the samples are exactly normal, but a sum of n_in products w_i*x_i"
                              f" has kurtosis 3 + 6/n_in = {fam.kurtosis:.2f}: draw fresh w and x"
                              " for every sample and sum their products (not one normal with the"
                              " total variance, and not one w shared by all samples).")
                res += _prefix([k], what)
        res += _rng_checks(outs, ("repeat_a", "repeat_b", "other_seed"), f"{fname}{small}")
        res.append(_global_check(outs, fname))
        return res

    return FunctionSpec("ps1_variance", fname, calls, judge, True)


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


GRAD_DIMS = ((7, 5, 4, 3), (16, 3, 6, 2))


def _two_layer_gradients_spec() -> FunctionSpec:
    fname = "two_layer_gradients"

    def calls(seeds: Sequence[int]) -> list[Call]:
        return [Call(f"case{i}", fname, tuple(_gradient_inputs(seeds[i], *dims)))
                for i, dims in enumerate(GRAD_DIMS)]

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res: list[CheckResult] = []
        for i, dims in enumerate(GRAD_DIMS):
            X, y, W1, W2 = _gradient_inputs(seeds[i], *dims)
            what = f"{fname}(X {X.shape}, y {y.shape}, W1 {W1.shape}, W2 {W2.shape})"
            o = outs.get(f"case{i}")
            prob = _outcome_problem(o, what)
            if prob is not None:
                res.append(prob)
                continue
            assert o is not None
            v = o.value
            if not (isinstance(v, SeqValue) and len(v.items) == 2):
                res.append(_fail("type", f"{what} returned {_describe(v)}; expected (dW1, dW2)."))
                continue
            refs = two_layer_gradients_ref(X, y, W1, W2)
            for label, item, ref in zip(("dW1", "dW2"), v.items, refs, strict=True):
                a, checks = _array_value_checks(item, f"{what} {label}", ref.shape)
                res += [c for c in checks if not c.passed]
                if a is None or a.shape != ref.shape:
                    continue
                res.append(_compare(a, ref, f"{what} {label}", B=X.shape[0]))
        return res

    return FunctionSpec("ps1_variance", fname, calls, judge, False)


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
    (784, 256), (256, 784), (3, 3, 64, 128), (3, 64, 128), (2, 3, 4, 5, 6), (1, 1, 7, 9))
FAN_ERRORS: tuple[tuple[int, ...], ...] = ((5,), ())


def _fans_spec(assignment: str, fname: str, ref: Callable[[Sequence[int]], tuple[int, int]],
               cases: Sequence[tuple[int, ...]], errors: Sequence[tuple[int, ...]],
               layout: str) -> FunctionSpec:
    def calls(seeds: Sequence[int]) -> list[Call]:
        return ([Call(f"case{i}", fname, (c,)) for i, c in enumerate(cases)]
                + [Call(f"error{i}", fname, (c,)) for i, c in enumerate(errors)])

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res = []
        for i, c in enumerate(cases):
            what = f"{fname}({c})"
            o = outs.get(f"case{i}")
            prob = _outcome_problem(o, what)
            if prob is not None:
                res.append(prob)
                continue
            assert o is not None
            exp = ref(c)
            v = o.value
            got: list[float] = []
            if isinstance(v, SeqValue) and len(v.items) == 2:
                for it in v.items:
                    val, _ = _scalar(CallOutcome(o.call, "ok", it))
                    if val is not None:
                        got.append(val)
            if len(got) != 2:
                res.append(_fail("value", f"{what} returned {_describe(v)}; expected the tuple"
                                 f" {exp}."))
                continue
            ok = got[0] == exp[0] and got[1] == exp[1]
            hint = ""
            if not ok:
                if (got[1], got[0]) == exp:
                    hint = f"the fans are swapped: the layout is {layout}."
                elif len(c) > 2:
                    hint = (f"for a conv kernel both fans are multiplied by the kernel's size;"
                            f" the layout is {layout}.")
            gotv = (int(got[0]), int(got[1])) if all(g == int(g) for g in got) else tuple(got)
            res.append(CheckResult("value", ok, list(gotv), list(exp), 0.0,
                                   message=f"{what} returned {gotv}" + ("" if ok else
                                                                         f"; expected {exp}."),
                                   hint=hint))
        for i, c in enumerate(errors):
            res.append(_expect_value_error(outs.get(f"error{i}"), f"{fname}({c})"))
        return res

    return FunctionSpec(assignment, fname, calls, judge, False)


# =========================================================================== ps3

LAYER_CASES: tuple[tuple[int, ...], ...] = ((5, 7, 3, 2), (784, 256, 10))
INIT_SCALE = 0.1


def _init_network_spec() -> FunctionSpec:
    fname = "init_network"

    def calls(seeds: Sequence[int]) -> list[Call]:
        return [Call(f"case{i}", fname, (list(sizes), GraderInitializer(INIT_SCALE)),
                     {"rng": Rng(seeds[i])}, global_seed=seeds[6])
                for i, sizes in enumerate(LAYER_CASES)]

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res: list[CheckResult] = []
        for i, sizes in enumerate(LAYER_CASES):
            what = f"{fname}({list(sizes)}, initializer, rng=...)"
            o = outs.get(f"case{i}")
            prob = _outcome_problem(o, what)
            if prob is not None:
                res.append(prob)
                continue
            assert o is not None
            v = o.value
            n = len(sizes) - 1
            if not (isinstance(v, SeqValue) and len(v.items) == n):
                res.append(_fail("type", f"{what} returned {_describe(v)}; expected a list of"
                                 f" {n} weight arrays.", "one weight matrix per pair of"
                                 " consecutive layer sizes."))
                continue
            g = np.random.default_rng(seeds[i])
            shapes = [(sizes[j], sizes[j + 1]) for j in range(n)]
            refs = [INIT_SCALE * g.standard_normal(s) for s in shapes]
            all_ok = True
            for j, (item, ref) in enumerate(zip(v.items, refs, strict=True)):
                a, checks = _array_value_checks(item, f"{what} weight {j}", ref.shape)
                bad = [c for c in checks if not c.passed]
                res += bad
                if a is None or a.shape != ref.shape:
                    all_ok = False
                    continue
                if not np.array_equal(a, ref):
                    all_ok = False
                    fresh = INIT_SCALE * np.random.default_rng(seeds[i]).standard_normal(ref.shape)
                    hint = ("draw each weight with initializer(shape, rng=rng), passing the rng you"
                            " were given, in layer order (do not make a new generator).")
                    if j > 0 and np.array_equal(a, fresh):
                        hint = ("each layer restarts the same random stream: pass the same"
                                " generator object along, do not re-seed it per layer.")
                    res.append(_fail("value", f"{what}: weight {j} is not what"
                                     f" initializer({ref.shape}, rng=rng) draws from the given"
                                     " generator in layer order.", hint))
            if all_ok:
                res.append(_ok("value", f"{what}: every weight is drawn by the initializer from"
                               " the given rng, with the right shapes"))
        res.append(_global_check(outs, fname))
        return res

    return FunctionSpec("ps3_deep_signal", fname, calls, judge, False)


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


def _forward_activations_spec() -> FunctionSpec:
    fname = "forward_activations"

    def calls(seeds: Sequence[int]) -> list[Call]:
        X, Ws = _forward_inputs(seeds[0])
        return ([Call(act, fname, (X, Ws, act)) for act in ACTIVATIONS]
                + [Call("unknown", fname, (X, Ws, "softplus"))])

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        X, Ws = _forward_inputs(seeds[0])
        res: list[CheckResult] = []
        for act in ACTIVATIONS:
            what = f"{fname}(X, weights, {act!r})"
            o = outs.get(act)
            prob = _outcome_problem(o, what)
            if prob is not None:
                res.append(prob)
                continue
            assert o is not None
            refs, pres = forward_ref(X, Ws, act)
            v = o.value
            if not (isinstance(v, SeqValue) and len(v.items) == len(refs)):
                hint = ("X itself is not in the list: one array per weight matrix."
                        if isinstance(v, SeqValue) and len(v.items) == len(refs) + 1 else "")
                res.append(_fail("type", f"{what} returned {_describe(v)}; expected a list of"
                                 f" {len(refs)} arrays.", hint))
                continue
            for j, (item, ref) in enumerate(zip(v.items, refs, strict=True)):
                a, checks = _array_value_checks(item, f"{what} layer {j}", ref.shape)
                res += [c for c in checks if not c.passed]
                if a is None or a.shape != ref.shape:
                    continue
                res.append(_compare(a, ref, f"{what} layer {j}", extra=[
                    ("the pre-activation (the nonlinearity was not applied)", pres[j])]))
        res.append(_expect_value_error(outs.get("unknown"), f"{fname}(X, weights, 'softplus')"))
        return res

    return FunctionSpec("ps3_deep_signal", fname, calls, judge, False)


def _layer_inputs(seed: int) -> list[npt.NDArray[np.float64]]:
    g = np.random.default_rng(seed)
    scales = np.array([0.5, 2.0, 7.0, 1.0])
    return [g.standard_normal((9, 4)) * scales, 3.0 + g.standard_normal((9, 6)),
            g.standard_normal((9, 2)) * 0.01]


def _layer_stds_spec() -> FunctionSpec:
    fname = "layer_stds"

    def calls(seeds: Sequence[int]) -> list[Call]:
        return [Call("case0", fname, (_layer_inputs(seeds[0]),))]

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        acts = _layer_inputs(seeds[0])
        what = f"{fname}([{', '.join(str(a.shape) for a in acts)}])"
        ref = np.array([a.std() for a in acts])
        a, checks = _array_checks(outs.get("case0"), what, ref.shape)
        res = checks
        if a is not None and a.shape == ref.shape:
            res.append(_compare(a, ref, what, extra=[
                ("the std with ddof=1; the contract asks ddof=0 (np.std's default)",
                 np.array([x.std(ddof=1) for x in acts])),
                ("the mean of per-unit stds; take the std over all entries of the layer",
                 np.array([x.std(axis=0).mean() for x in acts])),
                ("the variance, not the standard deviation", ref**2)]))
        return res

    return FunctionSpec("ps3_deep_signal", fname, calls, judge, False)


SPS_CASES = ((784, "linear"), (100, "tanh"), (784, "relu"), (50, "relu"))


def _signal_preserving_std_spec() -> FunctionSpec:
    fname = "signal_preserving_std"

    def calls(seeds: Sequence[int]) -> list[Call]:
        return ([Call(f"case{i}", fname, c) for i, c in enumerate(SPS_CASES)]
                + [Call("sigmoid", fname, (100, "sigmoid"))])

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res = []
        for i, (n, act) in enumerate(SPS_CASES):
            exp = math.sqrt((2.0 if act == "relu" else 1.0) / n)
            res.append(_scalar_case(outs.get(f"case{i}"), f"{fname}({n}, {act!r})", exp, [
                ("the variance, not the std: take the square root", exp**2),
                ("ReLU zeroes half of its inputs: it needs sqrt(2/n_in)", math.sqrt(1.0 / n)),
                ("the factor 2 is for ReLU only", math.sqrt(2.0 / n)),
            ]))
        res.append(_expect_value_error(outs.get("sigmoid"), f"{fname}(100, 'sigmoid')"))
        return res

    return FunctionSpec("ps3_deep_signal", fname, calls, judge, False)


# =========================================================================== ps4

GAIN_CASES: tuple[tuple[str, float | None, float], ...] = (
    ("linear", None, 1.0), ("conv2d", None, 1.0), ("conv_transpose1d", None, 1.0),
    ("sigmoid", None, 1.0), ("tanh", None, 5.0 / 3.0), ("relu", None, math.sqrt(2.0)),
    ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01**2))),
    ("leaky_relu", 0.2, math.sqrt(2.0 / (1 + 0.2**2))), ("selu", None, 0.75),
)


def _calculate_gain_spec() -> FunctionSpec:
    fname = "calculate_gain"

    def calls(seeds: Sequence[int]) -> list[Call]:
        return ([Call(f"case{i}", fname, (nl, p)) for i, (nl, p, _) in enumerate(GAIN_CASES)]
                + [Call("unknown", fname, ("gelu",))])

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res = []
        for i, (nl, p, exp) in enumerate(GAIN_CASES):
            res.append(_scalar_case(outs.get(f"case{i}"), f"{fname}({nl!r}, {p!r})", exp, [
                ("tanh's gain is 5/3", 1.0), ("relu's gain is sqrt(2), not 2", 2.0),
                ("the default leaky_relu slope is 0.01 when param is None", math.sqrt(2.0)),
                ("selu's gain is 3/4", 1.0),
            ]))
        res.append(_expect_value_error(outs.get("unknown"), f"{fname}('gelu')"))
        return res

    return FunctionSpec("ps4_frameworks", fname, calls, judge, False)


TORCH_FAN_CASES: tuple[tuple[int, ...], ...] = (
    (256, 784), (784, 256), (128, 64, 3, 3), (10, 3, 5), (4, 6, 2, 3, 5))
TRUNC_STD = 0.05
TRUNC_CASES: tuple[tuple[tuple[int, ...], float], ...] = (((784, 256), TRUNC_STD),
                                                          ((3, 40, 50), 2.0))


def _truncated_normal_spec() -> FunctionSpec:
    fname = "truncated_normal"

    def calls(seeds: Sequence[int]) -> list[Call]:
        s = seeds
        return [
            Call("main", fname, TRUNC_CASES[0], {"rng": Rng(s[0])}, global_seed=s[6]),
            Call("second", fname, TRUNC_CASES[1], {"rng": Rng(s[1])}),
            Call("repeat_a", fname, (SMALL, 1.0), {"rng": Rng(s[3])}, global_seed=s[6]),
            Call("repeat_b", fname, (SMALL, 1.0), {"rng": Rng(s[3])}, global_seed=s[7]),
            Call("other_seed", fname, (SMALL, 1.0), {"rng": Rng(s[4])}),
        ]

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res: list[CheckResult] = []
        for key, (shape, std) in zip(("main", "second"), TRUNC_CASES, strict=True):
            what = f"{fname}({shape}, {std:g}, rng=...)"
            a, checks = _array_checks(outs.get(key), what, shape)
            res += checks
            if a is None:
                continue
            target = (std * TRUNC_STD_FACTOR) ** 2
            alts = [("an untruncated N(0, std^2): nothing was cut at +-2*std", std**2),
                    ("the std was divided by 0.8796: truncated_normal takes the std before"
                     " truncation (the correction belongs in he_normal_truncated)", std**2),
                    ("clipping at +-2*std (np.clip) piles values on the bounds; redraw them"
                     " instead", 0.9205 * std**2)]
            res += _prefix([variance_check(a, target, family=TRUNCATED_NORMAL,
                                           alternatives=alts)], what)
            if key == "main":
                res += _prefix([mean_check(a, math.sqrt(target))], what)
                fam = _family_checks(a, TRUNCATED_NORMAL, target, what)
                at_bound = int(np.count_nonzero(np.abs(a) >= 2 * std * (1 - 1e-12)))
                if at_bound > 1:
                    for c in fam:
                        if not c.passed and not c.hint.startswith("np.clip"):
                            c.hint = (f"np.clip is not truncation: {at_bound} values sit exactly"
                                      " on the bounds; redraw the values outside instead.")
                res += fam
        res += _rng_checks(outs, ("repeat_a", "repeat_b", "other_seed"), f"{fname}({SMALL}, 1.0)")
        res.append(_global_check(outs, fname))
        return res

    return FunctionSpec("ps4_frameworks", fname, calls, judge, True)


TLD_MAIN = (784, 2048)
TLD_SECOND = (64, 300)


def _torch_linear_default_spec() -> FunctionSpec:
    fname = "torch_linear_default"

    def calls(seeds: Sequence[int]) -> list[Call]:
        s = seeds
        return [
            Call("main", fname, TLD_MAIN, {"rng": Rng(s[0])}, global_seed=s[6]),
            Call("second", fname, TLD_SECOND, {"rng": Rng(s[1])}),
            Call("repeat_a", fname, (20, 30), {"rng": Rng(s[3])}, global_seed=s[6]),
            Call("repeat_b", fname, (20, 30), {"rng": Rng(s[3])}, global_seed=s[7]),
            Call("other_seed", fname, (20, 30), {"rng": Rng(s[4])}),
        ]

    def judge(outs: Outcomes, seeds: Sequence[int]) -> list[CheckResult]:
        res: list[CheckResult] = []
        for key, (n_in, n_out) in (("main", TLD_MAIN), ("second", TLD_SECOND)):
            what = f"{fname}({n_in}, {n_out}, rng=...)"
            o = outs.get(key)
            prob = _outcome_problem(o, what)
            if prob is not None:
                res.append(prob)
                continue
            assert o is not None
            v = o.value
            if not (isinstance(v, SeqValue) and len(v.items) == 2):
                res.append(_fail("type", f"{what} returned {_describe(v)}; expected the tuple"
                                 " (weight, bias)."))
                continue
            target = 1.0 / (3.0 * n_in)
            alts = [("bound 1/sqrt(out_features): fan_in is in_features", 1 / (3.0 * n_out)),
                    ("bound 1/in_features: the bound is 1/sqrt(in_features)",
                     1 / (3.0 * n_in**2)),
                    ("bound sqrt(3/in_features): PyTorch's default is kaiming_uniform(a=sqrt(5)),"
                     " i.e. bound 1/sqrt(in_features)", 1.0 / n_in),
                    ("bound sqrt(6/in_features) (He uniform); PyTorch's default is"
                     " 1/sqrt(in_features)", 2.0 / n_in)]
            for label, item, shape in (("weight", v.items[0], (n_out, n_in)),
                                       ("bias", v.items[1], (n_out,))):
                w = f"{what} {label}"
                a, checks = _array_value_checks(item, w, shape)
                if shape == (n_in, n_out) or (a is not None and a.shape == (n_in, n_out)):
                    pass
                for c in checks:
                    if c.name == "shape" and not c.passed and label == "weight":
                        c.hint = "PyTorch stores a Linear weight as (out_features, in_features)."
                res += checks
                if a is None:
                    continue
                res += _prefix([variance_check(a, target, family=UNIFORM, alternatives=alts)], w)
                if key == "main":
                    res += _prefix([mean_check(a, math.sqrt(target))], w)
                    if label == "weight":
                        res += _prefix([kurtosis_check(a, UNIFORM)], w)
                    res += _prefix(bound_checks(a, math.sqrt(target), UNIFORM,
                                                what="the bound 1/sqrt(in_features)"), w)
        res += _rng_checks(outs, ("repeat_a", "repeat_b", "other_seed"), f"{fname}(20, 30)")
        res.append(_global_check(outs, fname))
        return res

    return FunctionSpec("ps4_frameworks", fname, calls, judge, True)


# =========================================================================== registry


def _build() -> dict[str, dict[str, FunctionSpec]]:
    specs: list[FunctionSpec] = [
        _preactivation_variance_spec(),
        _sample_preactivations_spec(),
        _two_layer_gradients_spec(),
        _fans_spec("ps2_initializers", "compute_fans", fans, FAN_CASES, FAN_ERRORS,
                   "(*kernel, in, out)"),
        _initializer_spec("ps2_initializers", "lecun_normal", "lecun", NORMAL),
        _initializer_spec("ps2_initializers", "lecun_uniform", "lecun", UNIFORM),
        _initializer_spec("ps2_initializers", "xavier_normal", "xavier", NORMAL),
        _initializer_spec("ps2_initializers", "xavier_uniform", "xavier", UNIFORM),
        _initializer_spec("ps2_initializers", "he_normal", "he", NORMAL),
        _initializer_spec("ps2_initializers", "he_uniform", "he", UNIFORM),
        _init_network_spec(),
        _forward_activations_spec(),
        _layer_stds_spec(),
        _signal_preserving_std_spec(),
        _calculate_gain_spec(),
        _fans_spec("ps4_frameworks", "torch_fans", torch_fans_ref, TORCH_FAN_CASES, ((7,),),
                   "(out, in, *kernel)"),
        _truncated_normal_spec(),
        _initializer_spec("ps4_frameworks", "he_normal_truncated", "he", TRUNCATED_NORMAL),
        _torch_linear_default_spec(),
    ]
    out: dict[str, dict[str, FunctionSpec]] = {}
    for s in specs:
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
"""The notebook of each assignment (DESIGN.md's exercise contract)."""


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
