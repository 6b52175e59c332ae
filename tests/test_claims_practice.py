"""Claims of the "In practice" chapters: frameworks (seed 10), mistakes (11), practice (12).

Each test recomputes a number the prose quotes, with course_lib and the chapter's seed, and
asserts the claim. Statistical tolerances follow the team rule: the sample variance of ``n``
i.i.d. draws has relative standard error ``sqrt((kappa - 1) / n)`` (kappa = 3 normal, 1.8
uniform, 2.3655 for the normal truncated at +-2 sigma); every tolerance is at least 6 of these
standard errors (two-sided false-failure probability 2e-9 per check), and next to each claim a
test shows that the same tolerance rejects the wrong answer the chapter warns about.

The frameworks and mistakes chapters draw from one stream in page order; their claims are
distributional, so the tests use the chapter's seed but need not replay the page's exact stream.
The practice chapter gives each section its own child stream (``rng.spawn(4)``), and the tests
replay those sections exactly.
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
from course_lib.grading.stats import NORMAL, TRUNCATED_NORMAL, UNIFORM, variance_check

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


@pytest.mark.slow
def test_torch_default_shrinks_a_relu_net_by_sqrt6_per_layer() -> None:
    rng = np.random.default_rng(10)
    depth = 10
    stats = {
        name: cl.deep_network_statistics(
            depth=depth, width=256, activation="relu", initializer=init, n_samples=512, rng=rng
        ).activation_std[0]
        for name, init in [("he", cl.he_normal), ("torch", cl.standard_uniform)]
    }
    per_layer = (stats["torch"][-1] / stats["torch"][0]) ** (1 / (depth - 1))
    # Predicted 1/sqrt(6) = 0.408 per layer. Finite width (256) makes each layer's factor
    # fluctuate by a few per cent; over 9 layers the geometric mean is well inside +-5 %.
    assert per_layer == pytest.approx(1 / math.sqrt(6), rel=0.05)
    # ... and is clearly not He's factor 1 nor LeCun's 1/sqrt(2)
    assert abs(per_layer - 1 / math.sqrt(2)) > 0.2
    assert 0.7 < stats["he"][-1] / stats["he"][0] < 1.5


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


@pytest.mark.slow
def test_mistakes_through_a_deep_tanh_network() -> None:
    rng = np.random.default_rng(11)
    width, depth = 256, 10
    X = rng.standard_normal((1000, width))

    def stds(init: Callable[[tuple[int, int]], FloatArray]) -> FloatArray:
        fp = cl.forward(X, [init((width, width)) for _ in range(depth)], "tanh", keep="stats")
        return np.array([s.std for s in fp.activation_stats])

    correct = stds(lambda s: cl.normal(s, math.sqrt(1 / s[0]), rng=rng))
    no_sqrt3 = stds(lambda s: cl.uniform(s, math.sqrt(1 / s[0]), rng=rng))
    std_1n = stds(lambda s: cl.normal(s, 1 / s[0], rng=rng))
    glorot3 = stds(lambda s: cl.normal(s, math.sqrt(3 / (s[0] + s[1])), rng=rng))
    # std = 1/n: the signal is ~1/16 after one layer and < 1e-3 after three
    assert std_1n[0] < 0.1 and std_1n[2] < 1e-3
    # the missing sqrt(3) loses ~1/sqrt(3) per layer: two orders of magnitude below correct at 10
    assert no_sqrt3[-1] < correct[-1] / 30
    # the Glorot "3" keeps the signal larger than the correct LeCun (here 1.5x the variance)
    assert glorot3[-1] > 1.3 * correct[-1]
    # correct LeCun on tanh decays slowly: still above 0.15 after ten layers
    assert correct[-1] > 0.15

    b = math.sqrt(1 / width)
    same = cl.forward(X, [np.full((width, width), b) for _ in range(depth)], "tanh")
    assert float(np.ptp(same.activations[-1], axis=1).max()) == 0.0
    assert cl.saturation_fraction(same.activations[2], "tanh") > 0.95


# --------------------------------------------------------------------------- practice (seed 12)


@pytest.fixture(scope="module")
def practice_streams() -> list[np.random.Generator]:
    return list(np.random.default_rng(12).spawn(5))  # bn, dropout, train, orth, lr


def test_batch_norm_removes_the_sensitivity_to_the_weight_scale(
    practice_streams: list[np.random.Generator],
) -> None:
    rng = practice_streams[0]
    depth, width, batch = 20, 128, 256
    X = rng.standard_normal((batch, width))
    last_plain, last_bn = [], []
    for c in [0.25, 0.5, 1.0, 2.0, 4.0]:
        ws = [cl.normal((width, width), c / math.sqrt(width), rng=rng) for _ in range(depth)]
        last_plain.append(cl.batchnorm_forward_stds(X, ws, "tanh", normalize=False)[-1])
        last_bn.append(cl.batchnorm_forward_stds(X, ws, "tanh", normalize=True)[-1])
    # chapter: without BN the layer-20 std spans ~1e12; with BN the five agree within 1 %
    assert max(last_plain) / min(last_plain) > 1e6
    assert max(last_bn) / min(last_bn) < 1.01


def test_inverted_dropout_keeps_the_mean_and_scales_the_second_moment(
    practice_streams: list[np.random.Generator],
) -> None:
    rng = practice_streams[1]
    q, n = 0.5, 400_000
    a = rng.standard_normal(n) + 0.5
    keep = rng.random(n) >= q
    a_drop = np.where(keep, a / (1 - q), 0.0)
    # mean: Var(a_drop) = E[a^2]/(1-q) - E[a]^2 = 2.25 -> SE 1.5/sqrt(n); 6 SE.
    se_mean = math.sqrt(1.25 / (1 - q) - 0.25) / math.sqrt(n)
    assert abs(a_drop.mean() - a.mean()) <= Z * (se_mean + 1 / math.sqrt(n))
    # non-inverted dropout would halve the mean (0.25): rejected
    assert abs(0.5 * a.mean() - a_drop.mean()) > Z * se_mean
    # second moment ratio 1/(1-q) = 2. Relative SEs of the two means of squares:
    # E[a_drop^4] = E[a^4]/(1-q)^3 = 36.5, E[a_drop^2] = 2.5 -> sd(a_drop^2)/mean = 5.5/2.5;
    # sd(a^2)/E[a^2] = sqrt(3)/1.25. Bound the ratio's relative error by their sum, 6 times.
    rel = (5.5 / 2.5 + math.sqrt(3) / 1.25) / math.sqrt(n)
    ratio = float(np.mean(a_drop**2) / np.mean(a**2))
    assert abs(ratio / 2.0 - 1) <= Z * rel
    assert abs(ratio / 1.0 - 1) > Z * rel  # "the variance is unchanged" is rejected


def _practice_training(rng: np.random.Generator) -> dict[str, Any]:
    X_all, y_all = cl.load_digits()
    X_tr, X_te, y_tr, y_te = cl.train_test_split(X_all, y_all, test_fraction=0.3, rng=rng)
    X_tr, mean, std = cl.standardize(X_tr)
    X_te, _, _ = cl.standardize(X_te, mean, std)

    def tiny_he(shape: tuple[int, ...], *, rng: Any = None) -> FloatArray:
        return 0.1 * cl.he_normal(shape, rng=rng)

    common: dict[str, Any] = dict(
        activation="relu", epochs=20, batch_size=64, lr=0.05, momentum=0.9, X_val=X_te, y_val=y_te
    )
    runs: dict[str, dict[str, Any]] = {
        "He": dict(initializer=cl.he_normal),
        "He, weight decay 1e-3": dict(initializer=cl.he_normal, weight_decay=1e-3),
        "He, dropout 0.2": dict(initializer=cl.he_normal, dropout=0.2),
        "He, early stopping (patience 5)": dict(
            initializer=cl.he_normal, early_stopping_patience=5, epochs=60
        ),
        "He / 10": dict(initializer=tiny_he),
    }
    return {
        name: cl.train_mlp(X_tr, y_tr, [64, 64, 64, 10], rng=rng, **{**common, **kw})
        for name, kw in runs.items()
    }


@pytest.mark.slow
def test_training_claims(practice_streams: list[np.random.Generator]) -> None:
    h = _practice_training(practice_streams[2])

    def norm(hist: Any) -> float:
        return math.sqrt(sum(float(np.sum(w**2)) for w in hist.weights))

    es = h["He, early stopping (patience 5)"]
    assert es.stopped_early and es.best_epoch < int(es.epoch[-1]) < 60
    assert int(es.epoch[-1]) - es.best_epoch == 5
    assert norm(h["He, weight decay 1e-3"]) < norm(h["He"])
    # ten times too small: after 5 epochs the training loss is still far above He's
    assert h["He / 10"].train_loss[5] > 10 * h["He"].train_loss[5]
    for hist in h.values():
        assert hist.val_acc[hist.best_epoch] > 0.9


@pytest.mark.slow
def test_learning_rate_and_init_scale_interact(practice_streams: list[np.random.Generator]) -> None:
    rng = practice_streams[4]
    X_all, y_all = cl.load_digits()
    Xa, _, ya, _ = cl.train_test_split(X_all, y_all, test_fraction=0.3, rng=rng)
    Xa, _, _ = cl.standardize(Xa)
    loss = np.empty((3, 3))
    for i, c in enumerate([0.3, 1.0, 3.0]):
        for j, lr in enumerate([0.003, 0.03, 0.3]):

            def scaled_he(shape: tuple[int, ...], *, rng: Any = None, c: float = c) -> FloatArray:
                return c * cl.he_normal(shape, rng=rng)

            h = cl.train_mlp(Xa, ya, [64, 64, 64, 10], initializer=scaled_he, activation="relu",
                             epochs=10, batch_size=64, lr=lr, momentum=0.9, rng=rng)
            loss[i, j] = h.train_loss[-1]
    # smallest lr: the larger the initialization, the further training gets; c = 0.3 barely moves
    assert loss[0, 0] > loss[1, 0] > loss[2, 0]
    assert loss[0, 0] > 1.0
    # largest lr: nothing trains (near log 10 = 2.30); middle lr: everything does
    assert loss[:, 2].min() > 1.0
    assert loss[:, 1].max() < 0.1


def test_gan_convention_factor() -> None:
    # 0.02^2 * n equals 1 only at n = 2500; the chapter's table spans 0.04 .. 3.28
    assert 0.02**2 * 2500 == pytest.approx(1.0)
    assert 0.02**2 * 100 == pytest.approx(0.04)
    assert 0.02**2 * 512 * 16 == pytest.approx(3.2768)


def test_orthogonal_singular_values(practice_streams: list[np.random.Generator]) -> None:
    rng = practice_streams[3]
    n, depth = 256, 10
    sv_o = np.linalg.svd(cl.orthogonal((n, n), gain=1.0, rng=rng), compute_uv=False)
    sv_g = np.linalg.svd(cl.lecun_normal((n, n), rng=rng), compute_uv=False)
    sv_o2 = np.linalg.svd(cl.orthogonal((n, n), gain=2.0, rng=rng), compute_uv=False)
    assert np.abs(sv_o - 1).max() < 1e-12
    assert np.abs(sv_o2 - 2).max() < 1e-12
    # Gaussian, Var = 1/n: Marchenko-Pastur support [0, 2]; middle 80 % spans a factor > 5
    assert 1.8 < sv_g.max() < 2.2
    assert np.percentile(sv_g, 90) / np.percentile(sv_g, 10) > 5
    po, pg = np.eye(n), np.eye(n)
    for _ in range(depth):
        po = po @ cl.orthogonal((n, n), rng=rng)
        pg = pg @ cl.lecun_normal((n, n), rng=rng)
    sv_po = np.linalg.svd(po, compute_uv=False)
    sv_pg = np.linalg.svd(pg, compute_uv=False)
    assert np.abs(sv_po - 1).max() < 1e-12
    assert np.percentile(sv_pg, 90) / np.percentile(sv_pg, 10) > 1e4
