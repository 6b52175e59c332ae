"""Claims of the "In practice" chapters: frameworks (seed 10), mistakes (11), practice (12).

Each test recomputes a number the prose quotes, with course_lib and the chapter's seed, and
asserts the claim. Statistical tolerances follow the team rule: the sample variance of ``n``
i.i.d. draws has relative standard error ``sqrt((kappa - 1) / n)`` (kappa = 3 normal, 1.8
uniform, 2.3655 for the normal truncated at +-2 sigma); every tolerance is at least 6 of these
standard errors (two-sided false-failure probability 2e-9 per check), and next to each claim a
test runs the wrong answer the chapter warns about through the same check and sees it fail.

Claims that rest on deep networks or on training are made over five seeds: the chapter spawns
children of its generator (``rng.spawn``, which depends only on the seed, not on what the chapter
drew before) and quotes median and range; the tests call the same ``course_lib`` functions with
the same generators in the same order and assert the prose's statements for every seed or for the
median. They must pass under every ``OPENBLAS_CORETYPE`` (``make test-portability``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import course_lib as cl
from course_lib import modern, training
from course_lib.grading.stats import NORMAL, TRUNCATED_NORMAL, UNIFORM, variance_check
from course_lib.seeds import summarize

KAPPA_NORMAL, KAPPA_UNIFORM, KAPPA_TRUNC = 3.0, 1.8, 2.3655
Z = 6.0
FloatArray = npt.NDArray[np.float64]


def rel_se(kappa: float, n: int) -> float:
    """Relative standard error of the sample variance of n i.i.d. draws with kurtosis kappa."""
    return math.sqrt((kappa - 1.0) / n)


def within(ratio: float, expected: float, kappa: float, n: int, z: float = Z) -> bool:
    """Is a measured variance ratio within z standard errors of the expected ratio?"""
    return abs(ratio / expected - 1.0) <= z * rel_se(kappa, n)


# --------------------------------------------------------------------------- frameworks (seed 10)


def _truncated_moments(c: float = 2.0) -> tuple[float, float]:
    """Variance and kurtosis of N(0, 1) truncated to [-c, c], from math.erf only."""
    phi = math.exp(-c * c / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(c / math.sqrt(2))
    m2 = 1 - 2 * c * phi / mass
    # integral of z^4 phi on [-c, c] by parts: -2 c^3 phi(c) + 3 * integral of z^2 phi
    m4 = (-2 * c**3 * phi + 3 * (mass - 2 * c * phi)) / mass
    return m2, m4 / m2**2


def test_truncated_normal_correction_constant_from_erf() -> None:
    var, _ = _truncated_moments(2.0)
    # The derivation must reproduce Keras'/JAX's printed constant to double precision.
    assert math.sqrt(var) == pytest.approx(0.87962566103423978, abs=1e-15)
    assert cl.TRUNCATED_NORMAL_STD_FACTOR == pytest.approx(math.sqrt(var), abs=1e-15)
    # A wrong truncation point (3 sigma) gives a visibly different constant.
    assert abs(math.sqrt(_truncated_moments(3.0)[0]) - 0.87962566103423978) > 0.1


def test_truncated_kurtosis_used_in_the_tolerances() -> None:
    _, kappa = _truncated_moments(2.0)
    assert kappa == pytest.approx(KAPPA_TRUNC, abs=1e-4)
    assert TRUNCATED_NORMAL.kurtosis == pytest.approx(kappa, abs=1e-4)


def test_course_lib_truncated_normals_have_the_derived_variance() -> None:
    rng = np.random.default_rng(10)
    shape = (512, 256)
    n = shape[0] * shape[1]
    var_trunc, _ = _truncated_moments(2.0)
    w = cl.truncated_normal(shape, 1.0, rng=rng)
    assert within(float(w.var()), var_trunc, KAPPA_TRUNC, n)
    # the plain truncated normal is NOT corrected: target 1 is rejected (ratio 1/0.774 = 1.29)
    assert not within(float(w.var()), 1.0, KAPPA_TRUNC, n)
    assert float(np.abs(w).max()) <= 2.0

    w_he = cl.he_truncated_normal(shape, rng=rng)
    he = 2 / shape[0]
    assert within(float(w_he.var()), he, KAPPA_TRUNC, n)
    # without the 0.8796 correction the variance would be 0.774 * target: rejected
    assert not within(var_trunc * he, he, KAPPA_TRUNC, n)
    sigma_prime = math.sqrt(he) / 0.87962566103423978
    assert float(np.abs(w_he).max()) <= 2 * sigma_prime * (1 + 1e-12)


def test_gain_is_the_square_root_of_the_scale() -> None:
    assert cl.calculate_gain("relu") ** 2 == pytest.approx(2.0)
    assert cl.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert cl.calculate_gain("selu") == pytest.approx(0.75)
    assert cl.calculate_gain("leaky_relu") ** 2 == pytest.approx(2 / (1 + 0.01**2))
    assert cl.calculate_gain("leaky_relu", 0.2) ** 2 == pytest.approx(2 / 1.04)
    # kaiming_uniform_(a=sqrt(5)), nn.Linear's default: gain^2 = 1/3
    assert cl.calculate_gain("leaky_relu", math.sqrt(5)) ** 2 == pytest.approx(1 / 3)


def test_conv_fans_agree_between_layouts() -> None:
    assert cl.compute_fans((3, 3, 64, 128)) == (576, 1152)
    assert cl.torch_fans((128, 64, 3, 3)) == (576, 1152)
    assert cl.compute_fans((784, 256)) == cl.torch_fans((256, 784)) == (784, 256)


def test_torch_linear_default_is_one_third_of_lecun_not_he() -> None:
    rng = np.random.default_rng(10)
    n_in, n_out = 512, 256
    weight, bias = cl.torch_linear_default(n_in, n_out, rng=rng)
    assert weight.shape == (n_out, n_in) and bias.shape == (n_out,)
    target = 1 / (3 * n_in)
    assert within(float(weight.var()), target, KAPPA_UNIFORM, weight.size)
    # He's 2/fan_in is six times larger: far outside the tolerance
    assert not within(float(weight.var()), 2 / n_in, KAPPA_UNIFORM, weight.size)
    assert not within(float(weight.var()), 1 / n_in, KAPPA_UNIFORM, weight.size)
    bound = 1 / math.sqrt(n_in)
    assert float(np.abs(weight).max()) <= bound and float(np.abs(bias).max()) <= bound
    # The chapter's U(+-1/sqrt(fan_in)) in course_lib's layout is standard_uniform.
    w_std = cl.standard_uniform((n_in, n_out), rng=rng)
    assert within(float(w_std.var()), target, KAPPA_UNIFORM, w_std.size)


def per_layer_factor_is(factors: FloatArray, predicted: float, depth: int, width: int) -> bool:
    """Is the median over seeds of the per-layer std factor within 6 SE of ``predicted``?

    Sampling distribution: for one input, a ReLU layer of width n multiplies the second moment by
    a mean over n units with relative variance 5/n (Var(z^2 1{z>0}) / E[z^2 1{z>0}]^2 =
    (5/4) / (1/4) = 5 per unit; see tests/test_claims_papers.py); in ln of the std that is
    5/(4n) per layer, and the geometric mean over depth - 1 layers has variance
    5/(4n(depth - 1)). The median of R seeds has about pi/2 times the variance of their mean.
    """
    R = len(factors)
    se = math.sqrt(5 / (4 * width * (depth - 1)) * (math.pi / 2) / R)
    return abs(math.log(float(np.median(factors)) / predicted)) <= 6 * se


@pytest.mark.slow
def test_torch_default_shrinks_a_relu_net_by_sqrt6_per_layer() -> None:
    rng = np.random.default_rng(10)  # the chapter's generator; its first spawns are these
    depth, width = 10, 256
    stds = {
        name: cl.deep_network_statistics(
            depth=depth, width=width, activation="relu", initializer=init, n_samples=512,
            rng=rng, n_replicates=5,
        ).activation_std
        for name, init in [("he", cl.he_normal), ("torch", cl.standard_uniform)]
    }
    torch_f = (stds["torch"][:, -1] / stds["torch"][:, 0]) ** (1 / (depth - 1))
    he_f = (stds["he"][:, -1] / stds["he"][:, 0]) ** (1 / (depth - 1))
    assert per_layer_factor_is(torch_f, 1 / math.sqrt(6), depth, width)
    # power: He's per-layer factor (predicted 1) fails the check for 1/sqrt(6), and PyTorch's
    # default fails the check for LeCun's 1/sqrt(2)
    assert not per_layer_factor_is(he_f, 1 / math.sqrt(6), depth, width)
    assert not per_layer_factor_is(torch_f, 1 / math.sqrt(2), depth, width)
    assert per_layer_factor_is(he_f, 1.0, depth, width)


def test_tanh_gain_that_restores_unit_variance() -> None:
    """E14: 1/sqrt(E[tanh(z)^2]) = 1.593 for z ~ N(0, 1), close to but below PyTorch's 5/3."""
    m2 = modern.activation_second_moment("tanh")
    assert 1 / math.sqrt(m2) == pytest.approx(1.593, abs=5e-4)
    # Monte Carlo check of the quadrature: tanh^2 lies in [0, 1], so its sd is at most 1/2 and
    # the SE of a mean of n draws at most 0.5/sqrt(n); 6 SE.
    n = 400_000
    mc = float(np.mean(np.tanh(np.random.default_rng(10).standard_normal(n)) ** 2))
    assert abs(mc - m2) <= 6 * 0.5 / math.sqrt(n)
    # power: the second moment that 5/3 would restore exactly, (3/5)^2 = 0.36, is rejected
    assert abs(mc - 0.36) > 6 * 0.5 / math.sqrt(n)
    # the gain of a linear unit is 1 and ReLU's sqrt 2, as in calculate_gain
    assert modern.activation_second_moment("linear") == pytest.approx(1.0)
    assert 1 / math.sqrt(modern.activation_second_moment("relu")) == pytest.approx(math.sqrt(2))


@pytest.mark.slow
def test_torch_default_biases_put_a_floor_under_the_signal() -> None:
    """E15: with U(+-1/sqrt n) biases the pre-activation variance settles near 2/(5n)."""
    rng = np.random.default_rng(10)
    width, depth = 256, 30
    X = rng.standard_normal((512, width))
    weights, biases = [], []
    for _ in range(depth):
        w, b = cl.torch_linear_default(width, width, rng=rng)
        weights.append(w.T)  # PyTorch's (out, in) layout -> course_lib's (in, out)
        biases.append(b)
    fp = cl.forward(X, weights, "relu", biases=biases)
    q = float(np.var(fp.preactivations[-1]))
    # the biases are drawn once: q is the variance over 256 fixed biases plus a vanishing input
    # part; over units, var of b (uniform, kurtosis 1.8) has relative SE sqrt(0.8/256) = 0.056,
    # and the inherited part q*/6 from the previous layer's biases adds the same order: 6 SE of
    # their sum 2 * 0.056.
    assert abs(q / (2 / (5 * width)) - 1) <= 6 * 2 * math.sqrt(0.8 / width)
    # power: without biases the signal has vanished (factor 6 per layer over 30 layers)
    fp0 = cl.forward(X, weights, "relu")
    assert float(np.var(fp0.preactivations[-1])) < 1e-20


@pytest.fixture(scope="module")
def keras() -> ModuleType:
    os.environ["KERAS_BACKEND"] = "numpy"
    import keras as keras_module

    assert keras_module.backend.backend() == "numpy"
    return keras_module


def _keras_array(x: Any) -> FloatArray:
    """A Keras (NumPy-backend) array or Variable as float64 (``.value`` avoids np.array(Variable),
    which warns under NumPy 2)."""
    return np.asarray(getattr(x, "value", x), dtype=np.float64)


@pytest.mark.slow
def test_keras_dense_default_is_glorot_uniform_with_zero_bias(keras: ModuleType) -> None:
    dense = keras.layers.Dense(256)
    dense.build((None, 512))
    assert type(dense.kernel_initializer).__name__ == "GlorotUniform"
    assert type(dense.bias_initializer).__name__ == "Zeros"
    assert tuple(dense.kernel.shape) == (512, 256)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("keras_name", "ours", "target", "kappa"),
    [
        ("GlorotUniform", cl.xavier_uniform, 2 / (512 + 256), KAPPA_UNIFORM),
        ("HeNormal", cl.he_truncated_normal, 2 / 512, KAPPA_TRUNC),
    ],
)
def test_keras_and_course_lib_agree(
    keras: ModuleType, keras_name: str, ours: Callable[..., FloatArray], target: float,
    kappa: float,
) -> None:
    rng = np.random.default_rng(10)
    shape = (512, 256)
    n = shape[0] * shape[1]
    init = getattr(keras.initializers, keras_name)(seed=int(rng.integers(2**31 - 1)))
    k = _keras_array(init(shape))
    w = ours(shape, rng=rng)
    assert within(float(k.var()), target, kappa, n)
    assert within(float(w.var()), target, kappa, n)
    # Difference of two independent estimates: SE sqrt(2) times larger; 6 of those.
    assert abs(k.var() / w.var() - 1) <= Z * math.sqrt(2) * rel_se(kappa, n)
    # both are rejected against the usual wrong targets (fan_out, or He as Glorot)
    assert not within(float(k.var()), 2 / 256, kappa, n)


@pytest.mark.slow
def test_keras_transposed_conv_fan_in_is_the_output_side(keras: ModuleType) -> None:
    rng = np.random.default_rng(10)
    c_in, c_out, k = 16, 64, 3
    layer = keras.layers.Conv2DTranspose(
        c_out, k, kernel_initializer=keras.initializers.HeNormal(seed=int(rng.integers(2**31 - 1)))
    )
    layer.build((None, 8, 8, c_in))
    kernel = _keras_array(layer.kernel)
    assert kernel.shape == (k, k, c_out, c_in)
    n = kernel.size
    assert within(float(kernel.var()), 2 / (c_out * k * k), KAPPA_TRUNC, n)
    assert not within(float(kernel.var()), 2 / (c_in * k * k), KAPPA_TRUNC, n)


# --------------------------------------------------------------------------- mistakes (seed 11)

N_IN, N_OUT = 784, 256
SHAPE = (N_IN, N_OUT)


def _mistakes() -> dict[str, tuple[FloatArray, float, Any]]:
    """(weights, target variance, family) for every mistake and correct form of the chapter."""
    rng = np.random.default_rng(11)
    b1, bg = math.sqrt(1 / N_IN), math.sqrt(6 / (N_IN + N_OUT))
    lecun, glorot, he = 1 / N_IN, 2 / (N_IN + N_OUT), 2 / N_IN
    return {
        "same_sign": (rng.uniform(low=b1, high=b1, size=SHAPE), lecun, UNIFORM),
        "glorot_same": (rng.uniform(low=bg, high=bg, size=SHAPE), glorot, UNIFORM),
        "no_sqrt3": (cl.uniform(SHAPE, b1, rng=rng), lecun, UNIFORM),
        "std_1_over_n": (cl.normal(SHAPE, 1 / N_IN, rng=rng), lecun, NORMAL),
        "glorot_3": (cl.normal(SHAPE, math.sqrt(3 / (N_IN + N_OUT)), rng=rng), glorot, NORMAL),
        "literal": (N_IN + cl.normal(SHAPE, math.sqrt(N_OUT), rng=rng), glorot, NORMAL),
        "product": (cl.normal(SHAPE, math.sqrt(2 / (N_IN * N_OUT)), rng=rng), glorot, NORMAL),
        "var_as_std": (cl.normal(SHAPE, 2 / N_IN, rng=rng), he, NORMAL),
        "fan_out": (cl.normal(SHAPE, math.sqrt(2 / N_OUT), rng=rng), he, NORMAL),
        "fan_out_t": (cl.normal((N_OUT, N_IN), math.sqrt(2 / N_IN), rng=rng), 2 / N_OUT, NORMAL),
        "lecun_uniform": (cl.uniform(SHAPE, math.sqrt(3 / N_IN), rng=rng), lecun, UNIFORM),
        "lecun_normal": (cl.normal(SHAPE, math.sqrt(1 / N_IN), rng=rng), lecun, NORMAL),
        "glorot_2": (cl.normal(SHAPE, math.sqrt(2 / (N_IN + N_OUT)), rng=rng), glorot, NORMAL),
        "he_normal": (cl.normal(SHAPE, math.sqrt(2 / N_IN), rng=rng), he, NORMAL),
    }


@pytest.fixture(scope="module")
def mistakes() -> dict[str, tuple[FloatArray, float, Any]]:
    return _mistakes()


# Predicted measured/target variance ratio of each mistake (the chapter's derivations).
PREDICTED_RATIO = {
    "no_sqrt3": 1 / 3,
    "std_1_over_n": 1 / N_IN,
    "glorot_3": 3 / 2,
    "product": (N_IN + N_OUT) / (N_IN * N_OUT),
    "var_as_std": 2 / N_IN,
    "fan_out": N_IN / N_OUT,
    "fan_out_t": N_OUT / N_IN,
}
CORRECT = ("lecun_uniform", "lecun_normal", "glorot_2", "he_normal")


@pytest.mark.parametrize("key", sorted(PREDICTED_RATIO))
def test_each_mistake_has_its_predicted_variance_ratio(
    mistakes: dict[str, tuple[FloatArray, float, Any]], key: str
) -> None:
    w, target, family = mistakes[key]
    ratio = float(w.var()) / target
    assert within(ratio, PREDICTED_RATIO[key], family.kurtosis, w.size)
    # the same tolerance excludes the correct ratio 1
    assert not within(ratio, 1.0, family.kurtosis, w.size)


ALL_MISTAKES = sorted(set(PREDICTED_RATIO) | {"same_sign", "glorot_same", "literal"})


@pytest.mark.parametrize("key", ALL_MISTAKES)
def test_the_grader_variance_check_fails_every_mistake(
    mistakes: dict[str, tuple[FloatArray, float, Any]], key: str
) -> None:
    w, target, family = mistakes[key]
    check = variance_check(w, target, family=family)
    assert not check.passed
    assert abs(check.z) > 100  # the chapter: "the closest one still 160 standard errors away"


@pytest.mark.parametrize("key", CORRECT)
def test_the_grader_variance_check_passes_the_correct_forms(
    mistakes: dict[str, tuple[FloatArray, float, Any]], key: str
) -> None:
    w, target, family = mistakes[key]
    assert variance_check(w, target, family=family).passed


def test_same_sign_uniform_is_a_constant(
    mistakes: dict[str, tuple[FloatArray, float, Any]],
) -> None:
    for key, value in [("same_sign", math.sqrt(1 / N_IN)), ("glorot_same", math.sqrt(6 / 1040))]:
        w = mistakes[key][0]
        assert np.unique(w).size == 1
        assert float(w[0, 0]) == pytest.approx(value)
    # every unit computes the same output
    x = np.random.default_rng(11).standard_normal((64, N_IN))
    h = x @ mistakes["same_sign"][0]
    assert float(np.ptp(h, axis=1).max()) == 0.0


def test_literal_xavier_notation_gives_mean_n_in(
    mistakes: dict[str, tuple[FloatArray, float, Any]],
) -> None:
    w = mistakes["literal"][0]
    # mean of N(784, 256): SE 16/sqrt(n) = 0.036; 6 SE
    assert abs(float(w.mean()) - N_IN) <= Z * 16 / math.sqrt(w.size)


def _same_sign_uniform(shape: tuple[int, ...], *, rng: Any = None) -> FloatArray:
    b = math.sqrt(1 / shape[0])
    return cl.as_generator(rng).uniform(low=b, high=b, size=shape)


MISTAKE_SCHEMES: dict[str, Callable[..., FloatArray]] = {
    "correct": lambda s, *, rng=None: cl.normal(s, math.sqrt(1 / s[0]), rng=rng),
    "no_sqrt3": lambda s, *, rng=None: cl.uniform(s, math.sqrt(1 / s[0]), rng=rng),
    "std_1n": lambda s, *, rng=None: cl.normal(s, 1 / s[0], rng=rng),
    "glorot3": lambda s, *, rng=None: cl.normal(s, math.sqrt(3 / (s[0] + s[1])), rng=rng),
    "same_sign": _same_sign_uniform,
}


@pytest.mark.slow
def test_mistakes_through_a_deep_tanh_network() -> None:
    """The chapter's five schemes, in its order, each over five spawned networks."""
    rng = np.random.default_rng(11)  # the chapter's generator; its first spawns are these
    width, depth = 256, 10
    st = {
        name: cl.deep_network_statistics(
            depth=depth, width=width, activation="tanh", initializer=init, n_samples=500,
            rng=rng, n_replicates=5,
        )
        for name, init in MISTAKE_SCHEMES.items()
    }
    std = {k: v.activation_std for k, v in st.items()}
    # every seed: std = 1/n leaves ~1/16 after one layer and < 1e-3 after three
    assert np.all(std["std_1n"][:, 0] < 0.1) and np.all(std["std_1n"][:, 2] < 1e-3)
    # the missing sqrt(3) loses ~1/sqrt(3) per layer (3^-5 = 1/243 in std over ten linear layers;
    # tanh shrinks the correct net too): more than an order of magnitude below correct at 10
    assert np.all(std["no_sqrt3"][:, -1] < std["correct"][:, -1] / 10)
    # the Glorot "3" keeps the signal larger than the correct LeCun (1.5x the variance per layer)
    assert np.all(std["glorot3"][:, -1] > 1.3 * std["correct"][:, -1])
    # power: the correct scheme fails each mistake's check
    assert not np.any(std["correct"][:, 2] < 1e-3)
    assert not np.any(std["correct"][:, -1] < std["correct"][:, -1] / 10)
    assert not np.any(std["correct"][:, -1] > 1.3 * std["correct"][:, -1])
    # correct LeCun on tanh decays slowly: still above 0.15 after ten layers, in every seed
    assert np.all(std["correct"][:, -1] > 0.15)
    # the same-sign uniform: largest std, and mostly saturated by layer 3
    assert np.all(std["same_sign"][:, -1] > std["correct"][:, -1])
    assert np.all(st["same_sign"].saturated[:, 2] > 0.95)
    assert not np.any(st["correct"].saturated[:, 2] > 0.95)

    X = np.random.default_rng(11).standard_normal((256, width))
    b = math.sqrt(1 / width)
    same = cl.forward(X, [np.full((width, width), b) for _ in range(depth)], "tanh")
    assert float(np.ptp(same.activations[-1], axis=1).max()) == 0.0


def test_layers_needed_to_change_the_variance_a_thousandfold() -> None:
    """E6 (ex-mk-3): 1.5^L >= 1000 needs 18 layers, not 17; 3^L >= 1000 needs 7."""
    L_glorot3 = math.ceil(math.log(1000) / math.log(1.5))
    L_nosqrt3 = math.ceil(math.log(1000) / math.log(3))
    assert (L_glorot3, L_nosqrt3) == (18, 7)
    # the count is the smallest that reaches 1000: one layer fewer falls short (985 < 1000)
    assert 1.5 ** (L_glorot3 - 1) < 1000 <= 1.5**L_glorot3
    assert 3 ** (L_nosqrt3 - 1) < 1000 <= 3**L_nosqrt3


# --------------------------------------------------------------------------- practice (seed 12)


@pytest.fixture(scope="module")
def practice_streams() -> list[np.random.Generator]:
    return list(np.random.default_rng(12).spawn(5))  # bn, dropout, train, orth, lr


def bn_scales_agree(last_layer_stds: FloatArray) -> bool:
    """The chapter: with BN the five scales' last-layer stds agree to 0.1 %. The remaining
    difference is the epsilon = 1e-5 in the normalization: relative effect eps / (2 Var(p)),
    largest for c = 0.25, where Var(p) is about 0.06 (c^2 times a tanh layer's output variance),
    so about 1e-4, ten times below the bound."""
    return float(last_layer_stds.max() / last_layer_stds.min()) < 1.001


def test_batch_norm_removes_the_sensitivity_to_the_weight_scale(
    practice_streams: list[np.random.Generator],
) -> None:
    runs = [
        modern.batchnorm_scale_sensitivity(
            factors=[0.25, 0.5, 1.0, 2.0, 4.0], depth=20, width=128, batch=256, rng=g
        )
        for g in practice_streams[0].spawn(5)
    ]
    for plain, normed in runs:
        assert bn_scales_agree(normed[:, -1])
        # power: without BN the same check fails, the layer-20 std spanning over 1e6
        assert not bn_scales_agree(plain[:, -1])
        assert plain[:, -1].max() / plain[:, -1].min() > 1e6


def test_inverted_dropout_keeps_the_mean_and_scales_the_second_moment(
    practice_streams: list[np.random.Generator],
) -> None:
    rng = practice_streams[1]
    q, n = 0.5, 400_000
    a = rng.standard_normal(n) + 0.5
    keep = rng.random(n) >= q
    a_drop = np.where(keep, a / (1 - q), 0.0)
    # mean: a_drop - a = a (m/(1-q) - 1) has mean 0 and variance E[a^2] q/(1-q) = 1.25 (q = 1/2,
    # E[a^2] = 1 + 0.5^2), so the difference of the two sample means has SE sqrt(1.25/n); 6 SE.
    se_diff = math.sqrt(1.25 * q / (1 - q) / n)
    assert abs(a_drop.mean() - a.mean()) <= Z * se_diff
    # non-inverted dropout would halve the mean (0.25 instead of 0.5): rejected
    assert abs(0.5 * a.mean() - a_drop.mean()) > Z * se_diff
    # second moment ratio 1/(1-q) = 2. Relative SEs of the two means of squares:
    # E[a_drop^4] = E[a^4]/(1-q)^3 = 36.5, E[a_drop^2] = 2.5 -> sd(a_drop^2)/mean = 5.5/2.5;
    # sd(a^2)/E[a^2] = sqrt(3)/1.25. Bound the ratio's relative error by their sum, 6 times.
    rel = (5.5 / 2.5 + math.sqrt(3) / 1.25) / math.sqrt(n)
    ratio = float(np.mean(a_drop**2) / np.mean(a**2))
    assert abs(ratio / 2.0 - 1) <= Z * rel
    assert abs(ratio / 1.0 - 1) > Z * rel  # "the variance is unchanged" is rejected


@pytest.fixture(scope="module")
def practice_runs(practice_streams: list[np.random.Generator]) -> dict[str, list[Any]]:
    """The chapter's five training set-ups, five paired seeds each."""
    rng = practice_streams[2]
    X_all, y_all = cl.load_digits()
    X_tr, X_te, y_tr, y_te = cl.train_test_split(X_all, y_all, test_fraction=0.3, rng=rng)
    X_tr, mean, std = cl.standardize(X_tr)
    X_te, _, _ = cl.standardize(X_te, mean, std)
    setups: dict[str, dict[str, Any]] = {
        "He": dict(initializer=cl.he_normal),
        "He, weight decay 1e-3": dict(initializer=cl.he_normal, weight_decay=1e-3),
        "He, dropout 0.2": dict(initializer=cl.he_normal, dropout=0.2),
        "He, early stopping (patience 5)": dict(
            initializer=cl.he_normal, early_stopping_patience=5, epochs=60
        ),
        "He / 10": dict(initializer=training.scaled_initializer(cl.he_normal, 0.1)),
    }
    return training.compare_setups(
        setups, X_tr, y_tr, [64, 64, 64, 10], rng=rng, n_replicates=5, activation="relu",
        epochs=20, batch_size=64, lr=0.05, momentum=0.9, X_val=X_te, y_val=y_te,
    )


def _weight_norm(hist: Any) -> float:
    return math.sqrt(sum(float(np.sum(w**2)) for w in hist.weights))


@pytest.mark.slow
def test_training_claims_hold_in_every_seed(practice_runs: dict[str, list[Any]]) -> None:
    plain, wd = practice_runs["He"], practice_runs["He, weight decay 1e-3"]
    es, tiny = practice_runs["He, early stopping (patience 5)"], practice_runs["He / 10"]
    assert all(len(hs) == 5 for hs in practice_runs.values())
    # early stopping fired in every seed, five epochs after the best one, before the 60 allowed
    for h in es:
        assert h.stopped_early and h.best_epoch < int(h.epoch[-1]) < 60
        assert int(h.epoch[-1]) - h.best_epoch == 5
    # weight decay ends with a smaller weight norm than plain He, seed by seed (paired)
    assert all(_weight_norm(w) < _weight_norm(p) for w, p in zip(wd, plain, strict=True))
    # power: the reverse ordering fails for every seed
    assert not any(_weight_norm(p) < _weight_norm(w) for w, p in zip(wd, plain, strict=True))
    # ten times too small: after 5 epochs the training loss is over 10x He's, in every seed
    ratios = [t.train_loss[5] / p.train_loss[5] for t, p in zip(tiny, plain, strict=True)]
    assert summarize(ratios).all_above(10)
    # every set-up, every seed: above 0.9 test accuracy at its best epoch ...
    best = [h.val_acc[h.best_epoch] for hs in practice_runs.values() for h in hs]
    assert summarize(best).all_above(0.9)
    # ... power: the untrained nets (epoch 0) fail the same check in every seed
    untrained = [h.val_acc[0] for hs in practice_runs.values() for h in hs]
    assert summarize(untrained).all_below(0.9)


def test_ten_times_smaller_he_scales_the_output_by_ten_to_the_weight_layers() -> None:
    """E3: 64-64-64-10 has three weight layers; with zero biases and ReLU's positive homogeneity
    the initial logits of 0.1 x He are exactly 0.1^3 of He's (same draws)."""
    sizes = [64, 64, 64, 10]
    n_weight_layers = len(sizes) - 1
    assert n_weight_layers == 3
    tiny = training.scaled_initializer(cl.he_normal, 0.1)
    w_he, _ = cl.init_network(sizes, cl.he_normal, rng=np.random.default_rng(12))
    w_tiny, _ = cl.init_network(sizes, tiny, rng=np.random.default_rng(12))
    X = np.random.default_rng(0).standard_normal((32, 64))
    out_he = training.predict_logits(X, w_he, None, "relu")
    out_tiny = training.predict_logits(X, w_tiny, None, "relu")
    np.testing.assert_allclose(out_tiny, 0.1**n_weight_layers * out_he, rtol=1e-12)
    # power: the erratum's four layers (1e-4) is off by a factor 10
    assert not np.allclose(out_tiny, 1e-4 * out_he, rtol=1e-3)


def lr_grid_claims(loss: FloatArray) -> bool:
    """The chapter's statements about the (scale, lr) grid, every one for every seed:
    smallest lr: the larger the scale, the lower the loss, and c = 0.3 stays above 1;
    largest lr: nothing below 1; middle lr: everything below 0.1."""
    small, mid, big = loss[:, :, 0], loss[:, :, 1], loss[:, :, 2]
    ordered = bool(np.all((small[:, 0] > small[:, 1]) & (small[:, 1] > small[:, 2])))
    return ordered and bool(small[:, 0].min() > 1.0) and bool(big.min() > 1.0) and bool(
        mid.max() < 0.1
    )


@pytest.mark.slow
def test_learning_rate_and_init_scale_interact(practice_streams: list[np.random.Generator]) -> None:
    rng = practice_streams[4]
    X_all, y_all = cl.load_digits()
    Xa, _, ya, _ = cl.train_test_split(X_all, y_all, test_fraction=0.3, rng=rng)
    Xa, _, _ = cl.standardize(Xa)
    loss = training.learning_rate_grid(
        Xa, ya, [64, 64, 64, 10], initializer=cl.he_normal, scales=[0.3, 1.0, 3.0],
        lrs=[0.003, 0.03, 0.3], rng=rng, n_replicates=5, activation="relu", epochs=10,
        batch_size=64, momentum=0.9,
    )
    assert loss.shape == (5, 3, 3)
    assert lr_grid_claims(loss)
    # power: with the learning-rate columns in the wrong order the claims fail
    assert not lr_grid_claims(loss[:, :, ::-1])


def test_the_paired_comparison_refuses_bad_input() -> None:
    X, y = np.zeros((4, 3)), np.zeros(4, dtype=int)
    with pytest.raises(ValueError, match="at least one set-up"):
        training.compare_setups({}, X, y, [3, 2], rng=0, activation="relu", epochs=1,
                                batch_size=2, lr=0.1)
    with pytest.raises(ValueError, match="n_replicates"):
        training.compare_setups({"a": {}}, X, y, [3, 2], rng=0, n_replicates=0,
                                initializer="he_normal", activation="relu", epochs=1,
                                batch_size=2, lr=0.1)
    with pytest.raises(ValueError, match="factor must be a finite positive number"):
        training.scaled_initializer(cl.he_normal, -1.0)
    assert training.scaled_initializer(cl.he_normal, 0.1).__name__ == "0.1 x he_normal"
