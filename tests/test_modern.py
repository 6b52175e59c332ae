"""Tests for course_lib.modern: SELU's fixed point, LSUV, batch norm at init, dynamical isometry."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from course_lib import network
from course_lib.modern import (
    batchnorm_forward_stds,
    input_output_jacobian,
    jacobian_singular_values,
    lsuv,
    selu_fixed_point_iteration,
    selu_mapping,
)

Z = 6.0  # tolerances sit at 6 standard errors: two-sided false-fail probability 2e-9 per check


def _gauss(shape: tuple[int, int], *, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0.0, 1.0 / math.sqrt(shape[0]), size=shape)


def test_selu_constants_make_zero_one_a_fixed_point() -> None:
    mean, var = selu_mapping(0.0, 1.0)
    assert abs(mean) < 1e-12
    assert abs(var - 1.0) < 1e-12


@pytest.mark.parametrize(
    ("mu", "nu", "omega", "tau"), [(0.3, 1.7, 1.0, 1.0), (-0.5, 0.4, 1.0, 2.0)]
)
def test_selu_mapping_matches_monte_carlo(mu: float, nu: float, omega: float, tau: float) -> None:
    rng = np.random.default_rng(20261123)
    n = 2_000_000
    z = rng.normal(mu * omega, math.sqrt(nu * tau), n)
    a = network.activate(z, "selu")
    mean, var = selu_mapping(mu, nu, omega=omega, tau=tau)
    # Standard errors: of the mean sqrt(var/n); of the variance var*sqrt((kurtosis-1)/n), with the
    # kurtosis estimated from the same sample (SELU's output is skewed, so no closed form is used).
    kurt = float(np.mean((a - a.mean()) ** 4) / a.var() ** 2)
    assert abs(a.mean() - mean) < Z * math.sqrt(var / n)
    assert abs(a.var() - var) < Z * var * math.sqrt((kurt - 1.0) / n)


def test_selu_mapping_rejects_a_wrong_formula() -> None:
    """The Monte Carlo check above has the power to see a 1% error in the variance."""
    n = 2_000_000
    se = math.sqrt((3.5 - 1.0) / n)  # relative SE with a generous kurtosis of 3.5
    assert 0.01 > Z * se


def test_selu_iteration_converges_to_the_fixed_point_only_for_lecun_weights() -> None:
    traj = selu_fixed_point_iteration(0.5, 2.0, steps=60)
    assert np.allclose(traj[-1], [0.0, 1.0], atol=1e-5)
    # He-like weights (tau = 2) blow the variance up; tau = 0.5 lets it die: LeCun's 1/n is the one.
    assert selu_fixed_point_iteration(0.0, 1.0, steps=30, tau=2.0)[-1, 1] > 5.0
    assert selu_fixed_point_iteration(0.0, 1.0, steps=30, tau=0.5)[-1, 1] < 0.05


def test_selu_mapping_bad_input() -> None:
    with pytest.raises(ValueError, match="nu"):
        selu_mapping(0.0, 0.0)
    with pytest.raises(ValueError, match="steps"):
        selu_fixed_point_iteration(0.0, 1.0, steps=-1)


@pytest.mark.parametrize("activation", ["relu", "tanh", "selu"])
def test_lsuv_reaches_unit_variance_in_every_layer(activation: str) -> None:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((500, 64))
    sizes = [64, 128, 128, 128, 128, 10]
    result = lsuv(sizes, X, activation, rng=np.random.default_rng(1), initializer=_gauss, tol=0.01)
    assert [w.shape for w in result.weights] == list(itertools.pairwise(sizes))
    assert np.all(np.abs(result.variances - 1.0) < 0.01)
    # Recompute independently: propagate the batch, measure each layer's pre-activation variance.
    h = X
    for w in result.weights:
        z = h @ w
        assert abs(z.var() - 1.0) < 0.01
        h = network.activate(z, activation)


def test_lsuv_default_is_orthogonal_and_reproducible() -> None:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((256, 32))
    a = lsuv([32, 32, 32], X, "relu", rng=11)
    b = lsuv([32, 32, 32], X, "relu", rng=11)
    c = lsuv([32, 32, 32], X, "relu", rng=12)
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights, strict=True))
    assert not np.array_equal(a.weights[0], c.weights[0])
    # Orthogonal start: LSUV only rescales, so W^T W is a multiple of the identity.
    w = a.weights[0]
    gram = w.T @ w
    assert np.allclose(gram, gram[0, 0] * np.eye(32), atol=1e-10)


def test_lsuv_bad_input() -> None:
    X = np.zeros((10, 4))
    with pytest.raises(ValueError, match="activation"):
        lsuv([4, 4], X, "softplus", rng=0)
    with pytest.raises(ValueError, match="shape"):
        lsuv([5, 4], X, "relu", rng=0)
    with pytest.raises(ValueError, match="zero output variance"):
        lsuv([4, 4], X, "relu", rng=0, initializer=_gauss)


def test_batchnorm_makes_activations_insensitive_to_weight_scale() -> None:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((512, 100))
    base = [_gauss((100, 100), rng=rng) for _ in range(10)]
    with_bn = [batchnorm_forward_stds(X, [c * w for w in base], "tanh") for c in (0.1, 1.0, 10.0)]
    without = [
        batchnorm_forward_stds(X, [c * w for w in base], "tanh", normalize=False)
        for c in (0.1, 1.0, 10.0)
    ]
    # Batch norm undoes any scale c exactly (up to eps/Var(z)); without it the scale dominates.
    assert np.allclose(with_bn[0], with_bn[2], rtol=1e-3)
    assert without[0][-1] < 0.05 < 0.9 < without[2][-1]


def test_jacobian_matches_finite_differences() -> None:
    rng = np.random.default_rng(9)
    weights = [_gauss((6, 5), rng=rng), _gauss((5, 4), rng=rng)]
    x = rng.standard_normal(6)
    jac = input_output_jacobian(x, weights, "tanh")
    eps = 1e-6

    def f(v: np.ndarray) -> np.ndarray:
        h = v.reshape(1, -1)
        for w in weights:
            h = np.tanh(h @ w)
        return h.ravel()

    numeric = np.stack([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(6)])
    assert np.allclose(jac, numeric, atol=1e-8)


def test_orthogonal_linear_nets_are_isometries_and_gaussian_ones_are_not() -> None:
    from course_lib.initializers import orthogonal

    rng = np.random.default_rng(13)
    x = rng.standard_normal(64)
    ortho = [orthogonal((64, 64), rng=rng) for _ in range(30)]
    gauss = [_gauss((64, 64), rng=rng) for _ in range(30)]
    s_ortho = jacobian_singular_values(x, ortho, "linear")
    s_gauss = jacobian_singular_values(x, gauss, "linear")
    assert np.allclose(s_ortho, 1.0, atol=1e-10)
    assert s_gauss[0] / s_gauss[-1] > 100.0
