"""Tests for course_lib.initializers.

Statistical checks compare a sample with its exact sampling distribution. For n i.i.d. zero-mean
draws with variance v and kurtosis kappa, the estimator  mean(w**2)  has expectation v and
relative standard error  sqrt((kappa - 1) / n)  (kappa = 3 normal, 9/5 uniform, 2.3655 for the
normal truncated at +-2 sigma). Every check sits at N_SE = 6 standard errors, so a correct
sampler fails one check with probability P(|Z| > 6) = 2.0e-9 (normal approximation; n >= 7e4
here), i.e. below 1e-6 for the whole module's ~200 checks with *any* seed. The seeds are fixed, so
the suite is deterministic; ``test_tolerance_catches_*`` proves the same check rejects the
wrong answers it exists for.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from course_lib import initializers as ci
from course_lib.initializers import (
    INITIALIZERS,
    TRUNCATED_NORMAL_STD_FACTOR,
    calculate_gain,
    compute_fans,
    constant,
    get_initializer,
    orthogonal,
    scheme_variance,
    torch_fans,
    torch_linear_default,
    truncated_normal,
    variance_scaling,
    zeros,
)

N_SE = 6.0
DENSE = (784, 256)
CONV = (3, 3, 64, 128)
SHAPES = [DENSE, CONV]


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread() -> Iterator[None]:
    """Run the QR factorizations of ``orthogonal`` on one BLAS thread.

    On a busy machine OpenBLAS' spinning worker threads turn a 5 ms QR into seconds.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# ---------------------------------------------------------------------------------------------
# the exact sampling distribution of the checks
# ---------------------------------------------------------------------------------------------


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _truncated_moments(c: float = 2.0) -> tuple[float, float]:
    """E[z^2] and E[z^4] of N(0, 1) restricted to [-c, c]."""
    mass = math.erf(c / math.sqrt(2.0))  # 2 Phi(c) - 1
    m2 = 1.0 - 2.0 * c * _phi(c) / mass
    m4 = 3.0 - 2.0 * (c**3 + 3.0 * c) * _phi(c) / mass
    return m2, m4


_M2, _M4 = _truncated_moments()
KAPPA = {"normal": 3.0, "uniform": 9.0 / 5.0, "truncated_normal": _M4 / _M2**2}


def relative_se(kappa: float, n: int) -> float:
    """Relative standard error of mean(w**2) for n i.i.d. zero-mean draws of kurtosis kappa."""
    return math.sqrt((kappa - 1.0) / n)


def assert_variance(w: npt.NDArray[Any], target: float, family: str, *, what: str = "") -> None:
    """|mean(w^2)/target - 1| <= 6 relative standard errors of the family's sampling law."""
    n = w.size
    ratio = float(np.mean(np.square(w, dtype=np.float64))) / target
    tol = N_SE * relative_se(KAPPA[family], n)
    assert abs(ratio - 1.0) <= tol, (
        f"{what}: measured variance / target = {ratio:.5f}, expected 1 +- {tol:.5f} "
        f"({N_SE:g} SE of {family}, n={n})"
    )


def assert_mean_zero(w: npt.NDArray[Any], target_var: float, *, what: str = "") -> None:
    """|mean| <= 6 standard errors sqrt(Var / n)."""
    tol = N_SE * math.sqrt(target_var / w.size)
    m = float(np.mean(w, dtype=np.float64))
    assert abs(m) <= tol, f"{what}: mean {m:.3g}, expected 0 +- {tol:.3g}"


def test_truncation_constants_match_their_derivation() -> None:
    # The library's 0.8796... is the std of N(0,1) cut at +-2; the kurtosis is the 2.3655 of
    # the team's standards.
    assert math.sqrt(_M2) == pytest.approx(TRUNCATED_NORMAL_STD_FACTOR, rel=1e-15)
    assert KAPPA["truncated_normal"] == pytest.approx(2.3655, abs=5e-5)


# ---------------------------------------------------------------------------------------------
# fans and gains (deterministic)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "fans"),
    [
        ((784, 256), (784, 256)),
        ((256, 784), (256, 784)),
        ((3, 3, 64, 128), (576, 1152)),
        ((5, 16, 32), (80, 160)),
        ((2, 3, 4, 5, 6), (120, 144)),
        ((1, 1, 7, 9), (7, 9)),
        ((0, 4), (0, 4)),
        ([10, 20], (10, 20)),
        (np.array([3, 4]), (3, 4)),
    ],
)
def test_compute_fans(shape: Any, fans: tuple[int, int]) -> None:
    assert compute_fans(shape) == fans
    assert all(type(f) is int for f in compute_fans(shape))


@pytest.mark.parametrize(
    ("shape", "fans"),
    [
        ((256, 784), (784, 256)),
        ((128, 64, 3, 3), (576, 1152)),
        ((32, 16, 5), (80, 160)),
    ],
)
def test_torch_fans(shape: tuple[int, ...], fans: tuple[int, int]) -> None:
    assert torch_fans(shape) == fans


def test_torch_fans_agree_with_compute_fans_on_the_transposed_layout() -> None:
    # (out, in, kh, kw) in PyTorch is (kh, kw, in, out) here: same fans.
    for kh, kw, cin, cout in [(3, 3, 64, 128), (1, 5, 2, 7), (7, 7, 3, 64)]:
        assert torch_fans((cout, cin, kh, kw)) == compute_fans((kh, kw, cin, cout))


@pytest.mark.parametrize("fans", [compute_fans, torch_fans])
@pytest.mark.parametrize("shape", [(), (5,), 5, (3, -1), (-2, 3, 3)])
def test_fans_refuse_fewer_than_two_dims_and_negative_dims(
    fans: Callable[[Any], tuple[int, int]], shape: Any
) -> None:
    with pytest.raises(ValueError, match="dimension"):
        fans(shape)


@pytest.mark.parametrize(
    ("name", "param", "gain"),
    [
        ("linear", None, 1.0),
        ("conv1d", None, 1.0),
        ("conv2d", None, 1.0),
        ("conv3d", None, 1.0),
        ("conv_transpose1d", None, 1.0),
        ("conv_transpose2d", None, 1.0),
        ("conv_transpose3d", None, 1.0),
        ("sigmoid", None, 1.0),
        ("tanh", None, 5.0 / 3.0),
        ("relu", None, math.sqrt(2.0)),
        ("leaky_relu", None, math.sqrt(2.0 / (1.0 + 0.01**2))),
        ("leaky_relu", 0.2, math.sqrt(2.0 / 1.04)),
        ("leaky_relu", 0, math.sqrt(2.0)),
        ("leaky_relu", 1.0, 1.0),
        ("selu", None, 0.75),
    ],
)
def test_calculate_gain_table(name: str, param: float | None, gain: float) -> None:
    assert calculate_gain(name, param) == pytest.approx(gain, rel=1e-15)


@pytest.mark.parametrize("name", ["ReLU", "gelu", "identity", "", "elu"])
def test_calculate_gain_unknown_names_list_the_allowed_ones(name: str) -> None:
    with pytest.raises(ValueError, match=r"'leaky_relu'.*'selu'"):
        calculate_gain(name)


@pytest.mark.parametrize("param", [True, "0.1", [0.1], float("nan")])
def test_calculate_gain_refuses_a_bad_slope(param: Any) -> None:
    with pytest.raises(ValueError, match="negative_slope"):
        calculate_gain("leaky_relu", param)


# ---------------------------------------------------------------------------------------------
# variance, mean and family of every scheme x distribution
# ---------------------------------------------------------------------------------------------


def _target(scheme: str, shape: tuple[int, ...]) -> float:
    """The course's formulas, written out independently of the library."""
    receptive = math.prod(shape[:-2])
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    return {
        "lecun": 1.0 / fan_in,
        "xavier": 2.0 / (fan_in + fan_out),
        "glorot": 2.0 / (fan_in + fan_out),
        "he": 2.0 / fan_in,
    }[scheme]


SCHEMES = ["lecun", "xavier", "glorot", "he"]
FAMILIES = ["normal", "uniform", "truncated_normal"]
CASES = [(s, f, shape) for s in SCHEMES for f in FAMILIES for shape in SHAPES]


def _seed(*parts: object) -> int:
    """A stable, distinct seed per test case (``hash`` of a str is salted per process)."""
    return zlib.crc32(repr(parts).encode())


@pytest.mark.parametrize(("scheme", "family", "shape"), CASES)
def test_scheme_variance_mean_and_family(scheme: str, family: str, shape: tuple[int, ...]) -> None:
    init = getattr(ci, f"{scheme}_{family}")
    w = init(shape, rng=np.random.default_rng(_seed(scheme, family, shape)))
    target = _target(scheme, shape)
    what = f"{scheme}_{family}{shape}"
    assert w.shape == shape
    assert w.dtype == np.float64
    assert_variance(w, target, family, what=what)
    assert_mean_zero(w, target, what=what)
    if family == "uniform":
        bound = math.sqrt(3.0 * target)
        assert w.min() >= -bound and w.max() < bound
        # the bounds are actually approached (not a narrower uniform)
        assert w.min() < -0.999 * bound and w.max() > 0.999 * bound
    elif family == "truncated_normal":
        sigma = math.sqrt(target) / TRUNCATED_NORMAL_STD_FACTOR
        assert np.abs(w).max() <= 2.0 * sigma
        assert np.abs(w).max() > 0.999 * 2.0 * sigma
    else:
        # untruncated: about 4.55% of the entries lie beyond 2 sigma (binomial, 6 SE)
        p = math.erfc(2.0 / math.sqrt(2.0))
        frac = float(np.mean(np.abs(w) > 2.0 * math.sqrt(target)))
        assert abs(frac - p) <= N_SE * math.sqrt(p * (1 - p) / w.size), frac


@pytest.mark.parametrize("shape", SHAPES)
def test_standard_uniform_is_one_third_of_lecun(shape: tuple[int, ...]) -> None:
    fan_in = compute_fans(shape)[0]
    w = ci.standard_uniform(shape, rng=np.random.default_rng(11))
    bound = 1.0 / math.sqrt(fan_in)
    assert w.min() >= -bound and w.max() < bound
    assert_variance(w, 1.0 / (3.0 * fan_in), "uniform", what="standard_uniform")
    assert_mean_zero(w, 1.0 / (3.0 * fan_in), what="standard_uniform")


def test_the_untruncated_normal_has_normal_tails_and_the_truncated_has_none() -> None:
    # The family, not only the variance: the sample kurtosis separates them (6 SE each; the SE
    # of the sample kurtosis of a normal is sqrt(24/n)).
    n_shape = (1000, 500)
    n = math.prod(n_shape)
    for init, kappa, se in [
        (ci.he_normal, 3.0, math.sqrt(24.0 / n)),
        (ci.he_truncated_normal, KAPPA["truncated_normal"], math.sqrt(24.0 / n)),
        (ci.he_uniform, 1.8, math.sqrt(24.0 / n)),
    ]:
        w = init(n_shape, rng=np.random.default_rng(5))
        k = float(np.mean(w**4) / np.mean(w**2) ** 2)
        assert abs(k - kappa) <= N_SE * se, (init.__name__, k, kappa)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["normal", "uniform", "truncated_normal"])
@pytest.mark.parametrize("shape", SHAPES)
def test_variance_scaling_modes(mode: str, distribution: str, shape: tuple[int, ...]) -> None:
    scale = 1.7
    receptive = math.prod(shape[:-2])
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    w = variance_scaling(
        shape,
        scale=scale,
        mode=mode,
        distribution=distribution,
        rng=np.random.default_rng(_seed(mode, distribution, shape)),
    )
    assert_variance(w, scale / fan, distribution, what=f"{mode}/{distribution}{shape}")
    assert_mean_zero(w, scale / fan, what=f"{mode}/{distribution}{shape}")


def test_variance_scaling_default_is_truncated_and_untruncated_normal_is_an_alias() -> None:
    a = variance_scaling(DENSE, rng=3)
    b = variance_scaling(DENSE, distribution="truncated_normal", rng=3)
    np.testing.assert_array_equal(a, b)
    c = variance_scaling(DENSE, distribution="untruncated_normal", rng=3)
    d = variance_scaling(DENSE, distribution="normal", rng=3)
    np.testing.assert_array_equal(c, d)
    assert np.abs(d).max() > np.abs(a).max()  # the untruncated one has tails


def test_scheme_variance_matches_the_formulas() -> None:
    for shape in [*SHAPES, (10, 3), (2, 5, 7)]:
        for scheme in SCHEMES:
            for family in FAMILIES:
                assert scheme_variance(f"{scheme}_{family}", shape) == pytest.approx(
                    _target(scheme, shape), rel=1e-14
                )
        assert scheme_variance("he_normal_truncated", shape) == pytest.approx(_target("he", shape))
        assert scheme_variance("standard_uniform", shape) == pytest.approx(
            1 / (3 * compute_fans(shape)[0])
        )
        rows, cols = math.prod(shape[:-1]), shape[-1]
        assert scheme_variance("orthogonal", shape) == pytest.approx(1 / max(rows, cols))
        assert scheme_variance("zeros", shape) == 0.0
    with pytest.raises(ValueError, match="'he_normal'"):
        scheme_variance("kaiming", DENSE)


# ---------------------------------------------------------------------------------------------
# the tolerance catches the wrong answers it exists for
# ---------------------------------------------------------------------------------------------


def _he_target(shape: tuple[int, ...]) -> float:
    return _target("he", shape)


MUTATIONS: dict[str, Callable[[tuple[int, ...]], float]] = {
    # each returns the (wrong) variance a buggy He implementation would produce
    "variance x2": lambda s: 2.0 * _he_target(s),
    "variance x0.5": lambda s: 0.5 * _he_target(s),
    "fan_out for fan_in": lambda s: 2.0 / compute_fans(s)[1],
    "std used as variance": lambda s: _he_target(s) ** 2,  # std = 2/fan_in -> Var = (2/fan_in)^2
    "variance used as std": lambda s: math.sqrt(_he_target(s)),
    "xavier instead of he": lambda s: _target("xavier", s),
}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_tolerance_catches_wrong_variances(
    family: str, shape: tuple[int, ...], mutation: str
) -> None:
    wrong_var = MUTATIONS[mutation](shape)
    gen = np.random.default_rng(_seed(mutation, family, shape))
    if family == "normal":
        w = ci.normal(shape, math.sqrt(wrong_var), rng=gen)
    elif family == "uniform":
        w = ci.uniform(shape, math.sqrt(3.0 * wrong_var), rng=gen)
    else:
        w = truncated_normal(shape, math.sqrt(wrong_var) / TRUNCATED_NORMAL_STD_FACTOR, rng=gen)
    with pytest.raises(AssertionError, match="measured variance"):
        assert_variance(w, _he_target(shape), family, what=mutation)


@pytest.mark.parametrize("shape", SHAPES)
def test_tolerance_catches_a_missing_sqrt3(shape: tuple[int, ...]) -> None:
    # U(+-sqrt(Var)) instead of U(+-sqrt(3 Var)): variance Var/3
    w = ci.uniform(shape, math.sqrt(_he_target(shape)), rng=np.random.default_rng(9))
    with pytest.raises(AssertionError, match="measured variance"):
        assert_variance(w, _he_target(shape), "uniform", what="missing sqrt(3)")


@pytest.mark.parametrize("shape", SHAPES)
def test_tolerance_catches_an_untruncated_sigma_prime(shape: tuple[int, ...]) -> None:
    # truncating N(0, Var) without dividing by 0.8796: variance 0.774 Var
    w = truncated_normal(shape, math.sqrt(_he_target(shape)), rng=np.random.default_rng(10))
    with pytest.raises(AssertionError, match="measured variance"):
        assert_variance(w, _he_target(shape), "truncated_normal", what="sigma not sigma'")


@pytest.mark.parametrize("shape", SHAPES)
def test_mean_check_catches_a_shifted_sample(shape: tuple[int, ...]) -> None:
    # U(0, 2b) instead of U(-b, b) (the "same sign on both ends" mistake), same spread
    w = ci.he_uniform(shape, rng=np.random.default_rng(12))
    shifted = w + math.sqrt(3.0 * _he_target(shape))
    with pytest.raises(AssertionError, match="mean"):
        assert_mean_zero(shifted, _he_target(shape), what="shifted")


def test_correct_samples_pass_for_many_seeds() -> None:
    # The other direction: the checks do not reject correct samplers (20 seeds x 3 families).
    for seed in range(20):
        gen = np.random.default_rng(seed)
        for family in FAMILIES:
            w = getattr(ci, f"he_{family}")(DENSE, rng=gen)
            assert_variance(w, _he_target(DENSE), family, what=f"seed {seed}")


# ---------------------------------------------------------------------------------------------
# orthogonal, zeros, constant, torch_linear_default
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "flat"),
    [
        ((300, 100), (300, 100)),  # tall
        ((100, 300), (100, 300)),  # wide
        ((128, 128), (128, 128)),  # square
        ((3, 3, 64, 128), (576, 128)),  # conv, tall after reshaping
        ((1, 1, 16, 64), (16, 64)),  # 1x1 conv, wide
    ],
)
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2.0)])
def test_orthogonal(shape: tuple[int, ...], flat: tuple[int, int], gain: float) -> None:
    w = orthogonal(shape, gain=gain, rng=np.random.default_rng(21))
    assert w.shape == shape
    m = w.reshape(flat)
    gram = m.T @ m if flat[0] >= flat[1] else m @ m.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(flat)), rtol=0, atol=1e-12)


def test_orthogonal_is_haar_not_biased_by_qr_signs() -> None:
    # Without the sign(diag R) fix the diagonal of Q is biased (LAPACK makes R_11 = -sign(a_11)
    # ||a_1||, so Q_11 < 0 always); with it, E[Q_11] = 0. Q_11 of a Haar 20x20 orthogonal has
    # variance 1/20; 2000 draws -> SE sqrt(1/20/2000), tolerance 6 SE.
    tol = N_SE * math.sqrt(1 / 20 / 2000)
    gen = np.random.default_rng(22)
    q11 = np.array([orthogonal((20, 20), rng=gen)[0, 0] for _ in range(2000)])
    assert abs(q11.mean()) <= tol
    # the same check rejects the plain QR factor
    raw = np.array([np.linalg.qr(gen.standard_normal((20, 20)))[0][0, 0] for _ in range(2000)])
    assert abs(raw.mean()) > tol


def test_zeros_and_constant() -> None:
    z = zeros((3, 4), rng=np.random.default_rng(0))
    assert z.shape == (3, 4) and z.dtype == np.float64 and not z.any()
    assert zeros(5).shape == (5,)  # biases: 1-D is fine
    c = constant((2, 3), 0.25, rng=1)
    assert c.dtype == np.float64 and np.all(c == 0.25)
    assert constant((2,), -1.5, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="finite"):
        constant((2, 2), float("inf"))
    with pytest.raises(ValueError, match="negative"):
        zeros((2, -2))


def test_torch_linear_default() -> None:
    n_in, n_out = 784, 256
    w, b = torch_linear_default(n_in, n_out, rng=np.random.default_rng(31))
    assert w.shape == (n_out, n_in) and b.shape == (n_out,)
    bound = 1.0 / math.sqrt(n_in)
    for a in (w, b):
        assert a.min() >= -bound and a.max() < bound
    assert w.min() < -0.999 * bound and w.max() > 0.999 * bound
    assert_variance(w, 1.0 / (3.0 * n_in), "uniform", what="torch Linear weight")
    assert_mean_zero(w, 1.0 / (3.0 * n_in), what="torch Linear weight")
    # LeCun's 1/n_in would be three times too large: the same check rejects it.
    with pytest.raises(AssertionError):
        assert_variance(w, 1.0 / n_in, "uniform", what="lecun target")
    with pytest.raises(ValueError, match="in_features"):
        torch_linear_default(0, 3)
    with pytest.raises(ValueError, match="out_features"):
        torch_linear_default(3, -1)


# ---------------------------------------------------------------------------------------------
# randomness: reproducibility, SPEC 7, the global state, the bare NumPy draws
# ---------------------------------------------------------------------------------------------

RANDOM_INITIALIZERS = sorted(name for name in INITIALIZERS if name != "zeros")


@pytest.mark.parametrize("name", RANDOM_INITIALIZERS)
def test_same_seed_same_array_different_seed_different(name: str) -> None:
    init = INITIALIZERS[name]
    a = init((40, 30), rng=np.random.default_rng(1))
    b = init((40, 30), rng=np.random.default_rng(1))
    c = init((40, 30), rng=np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # an int seed is normalized with as_generator (SPEC 7): same as default_rng(seed)
    np.testing.assert_array_equal(init((40, 30), rng=1), a)
    # a Generator is used, not copied: two calls continue the stream
    gen = np.random.default_rng(1)
    first, second = init((40, 30), rng=gen), init((40, 30), rng=gen)
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng: ci.normal((30, 20), 0.5, rng=rng),
        lambda rng: ci.uniform((30, 20), 0.5, rng=rng),
        lambda rng: truncated_normal((30, 20), 0.5, rng=rng),
        lambda rng: variance_scaling((30, 20), scale=2.0, mode="fan_out", rng=rng),
        lambda rng: np.concatenate([a.ravel() for a in torch_linear_default(30, 20, rng=rng)]),
    ],
    ids=["normal", "uniform", "truncated_normal", "variance_scaling", "torch_linear_default"],
)
def test_explicit_samplers_are_reproducible(draw: Callable[[Any], npt.NDArray[Any]]) -> None:
    np.testing.assert_array_equal(draw(np.random.default_rng(3)), draw(np.random.default_rng(3)))
    assert not np.array_equal(draw(np.random.default_rng(3)), draw(np.random.default_rng(4)))


def test_legacy_random_state_is_refused() -> None:
    with pytest.raises(TypeError, match="RandomState"):
        ci.he_normal(DENSE, rng=np.random.RandomState(0))  # type: ignore[call-overload]


def _call_everything(rng: Any) -> None:
    for name in INITIALIZERS:
        INITIALIZERS[name]((20, 30), rng=rng)
    ci.normal((5, 5), 1.0, rng=rng)
    ci.uniform((5, 5), 1.0, rng=rng)
    truncated_normal((5, 5), 1.0, rng=rng)
    variance_scaling((5, 5), rng=rng)
    torch_linear_default(5, 3, rng=rng)
    constant((2, 2), 1.0, rng=rng)


LEGACY = [
    "normal",
    "uniform",
    "standard_normal",
    "randn",
    "rand",
    "random",
    "random_sample",
    "sample",
    "ranf",
    "seed",
    "truncnorm",
    "shuffle",
    "permutation",
]


def test_global_numpy_random_state_is_untouched_and_unused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reading the legacy global state is the point of this test.
    before = np.random.get_state()  # noqa: NPY002
    assert isinstance(before, tuple)

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("the global np.random API was used")

    for fn in LEGACY:
        if hasattr(np.random, fn):
            monkeypatch.setattr(np.random, fn, boom)
    # the trap works: a sampler that used the global API would fail here
    with pytest.raises(AssertionError, match=r"global np\.random"):
        np.random.normal(size=3)  # noqa: NPY002
    _call_everything(np.random.default_rng(0))
    _call_everything(7)
    monkeypatch.undo()
    after = np.random.get_state()  # noqa: NPY002
    assert isinstance(after, tuple)
    assert before[0] == after[0] and before[2:] == after[2:]
    np.testing.assert_array_equal(before[1], after[1])


@pytest.mark.parametrize(
    "init",
    [
        ci.he_normal,
        ci.he_uniform,
        ci.he_truncated_normal,
        ci.lecun_normal,
        ci.xavier_uniform,
        ci.standard_uniform,
        orthogonal,
        zeros,
    ],
)
def test_float32_is_honored(init: Callable[..., npt.NDArray[Any]]) -> None:
    w = init(CONV, rng=np.random.default_rng(41), dtype=np.float32)
    assert w.dtype == np.float32 and w.shape == CONV


@pytest.mark.parametrize("family", FAMILIES)
def test_float32_variance(family: str) -> None:
    w = getattr(ci, f"he_{family}")(DENSE, rng=np.random.default_rng(42), dtype=np.float32)
    assert w.dtype == np.float32
    assert_variance(w, _he_target(DENSE), family, what=f"float32 he_{family}")
    assert_mean_zero(w, _he_target(DENSE), what=f"float32 he_{family}")
    if family == "uniform":
        assert np.abs(w).max() <= np.float32(math.sqrt(3.0 * _he_target(DENSE)))
    elif family == "truncated_normal":
        sigma = math.sqrt(_he_target(DENSE)) / TRUNCATED_NORMAL_STD_FACTOR
        assert np.abs(w).max() <= np.float32(2.0 * sigma)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_draws_are_the_bare_generator_calls(dtype: type[np.floating[Any]]) -> None:
    """The samplers draw exactly what the Generator's native call draws, then scale."""
    shape, s = (70, 90), 0.3
    got = ci.normal(shape, s, rng=np.random.default_rng(5), dtype=dtype)
    ref = np.random.default_rng(5).standard_normal(shape, dtype=dtype) * dtype(s)
    np.testing.assert_array_equal(got, ref)

    got = ci.uniform(shape, s, rng=np.random.default_rng(6), dtype=dtype)
    u = np.random.default_rng(6).random(shape, dtype=dtype)
    ref = u * dtype(2 * s) - dtype(s)
    np.testing.assert_array_equal(got, ref)
    if dtype is np.float64:
        np.testing.assert_array_equal(got, np.random.default_rng(6).uniform(-s, s, shape))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_truncated_normal_keeps_accepted_draws_in_stream_order(
    dtype: type[np.floating[Any]],
) -> None:
    # Rejection redraws only the rejected entries, and the accepted values come out in the
    # order the generator produced them (which is what makes the result equal to Keras').
    n, std = 100_000, 0.7
    got = truncated_normal((n,), std, rng=np.random.default_rng(8), dtype=dtype)
    stream = np.random.default_rng(8).standard_normal(2 * n, dtype=dtype) * dtype(std)
    accepted = stream[np.abs(stream) <= dtype(2 * std)]
    np.testing.assert_array_equal(got, accepted[:n])


def test_empty_shapes() -> None:
    for shape in [(0, 5), (5, 0), (3, 3, 0, 4)]:
        for name in INITIALIZERS:
            assert INITIALIZERS[name](shape, rng=0).shape == shape


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

FAN_BASED = [name for name in INITIALIZERS if name != "zeros"]


@pytest.mark.parametrize("name", FAN_BASED)
@pytest.mark.parametrize("shape", [(), (7,), 7, (4, -3)])
def test_fan_based_initializers_refuse_bad_shapes(name: str, shape: Any) -> None:
    with pytest.raises(ValueError, match="dimension"):
        INITIALIZERS[name](shape, rng=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scale": 0.0}, "scale"),
        ({"scale": -1.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"mode": "fan_sum"}, r"'fan_in', 'fan_out', 'fan_avg'"),
        ({"distribution": "gaussian"}, r"'normal', 'uniform', 'truncated_normal'"),
        ({"dtype": np.float16}, "float32 or float64"),
        ({"dtype": np.int64}, "float32 or float64"),
        ({"dtype": "not a dtype"}, "float32 or float64"),
    ],
)
def test_variance_scaling_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        variance_scaling(DENSE, rng=0, **kwargs)


@pytest.mark.parametrize("fn", [ci.normal, ci.uniform, truncated_normal])
@pytest.mark.parametrize("param", [0.0, -0.1, float("inf")])
def test_explicit_distributions_need_a_positive_parameter(
    fn: Callable[..., npt.NDArray[Any]], param: float
) -> None:
    with pytest.raises(ValueError, match="finite positive"):
        fn((3, 3), param, rng=0)


def test_orthogonal_bad_gain_and_dtype() -> None:
    with pytest.raises(ValueError, match="gain"):
        orthogonal((3, 3), gain=0.0, rng=0)
    with pytest.raises(ValueError, match="float32 or float64"):
        ci.he_uniform((3, 3), rng=0, dtype=np.complex128)


def test_registry() -> None:
    assert get_initializer("he_normal") is ci.he_normal
    assert get_initializer("glorot_uniform") is ci.xavier_uniform
    assert get_initializer("he_normal_truncated") is ci.he_truncated_normal

    def mine(shape: Any, *, rng: Any = None) -> npt.NDArray[np.float64]:
        return np.ones(shape)

    assert get_initializer(mine) is mine
    with pytest.raises(ValueError, match="'he_normal'"):
        get_initializer("kaiming_normal")
    with pytest.raises(ValueError, match="callable"):
        get_initializer(3)  # type: ignore[arg-type]
    expected = {f"{s}_{f}" for s in SCHEMES for f in FAMILIES} | {
        "he_normal_truncated",
        "standard_uniform",
        "orthogonal",
        "zeros",
    }
    assert set(INITIALIZERS) == expected


def test_all_lists_every_public_name() -> None:
    public = {
        n
        for n, v in vars(ci).items()
        if not n.startswith("_")
        and getattr(v, "__module__", ci.__name__) == ci.__name__
        and (callable(v) or n.isupper())
    }
    assert public <= set(ci.__all__)
    assert all(hasattr(ci, n) for n in ci.__all__)
    import course_lib

    # re-exported at the top level, and not shadowed by another module's name
    assert all(getattr(course_lib, n) is getattr(ci, n) for n in ci.__all__)
