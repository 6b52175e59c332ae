"""course_lib.experiments: the Var(p) Monte Carlo (with tolerances from the sampling distribution
and proof that wrong formulas are rejected), deep-network statistics, the scheme grid, the
symmetry demonstration and saturation."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest
from threadpoolctl import threadpool_limits

from course_lib import experiments as ex


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """These tests multiply small matrices: BLAS threads only add contention (5x slower on a
    busy 2-core machine), and the results do not depend on the thread count."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


FloatArray = npt.NDArray[np.float64]


def scaled_normal(gain: float):  # type: ignore[no-untyped-def]
    """A local initializer N(0, gain^2 / fan_in) (independent of course_lib.initializers)."""

    def init(shape: tuple[int, int], *, rng: np.random.Generator | None = None) -> FloatArray:
        gen = np.random.default_rng(rng)
        return gen.normal(0.0, gain / math.sqrt(shape[0]), size=shape)

    init.__name__ = f"normal_gain_{gain}"
    return init


# ---------------------------------------------------------------------------------------------
# Var(p) = n Var(w) Var(x)
# ---------------------------------------------------------------------------------------------


def test_sample_preactivations_shape_seed_and_global_state() -> None:
    state = np.random.get_state()[1].copy()  # type: ignore[index]  # noqa: NPY002
    p = ex.sample_preactivations(16, 0.5, 2.0, 1000, rng=3)
    assert p.shape == (1000,) and p.dtype == np.float64
    np.testing.assert_array_equal(p, ex.sample_preactivations(16, 0.5, 2.0, 1000, rng=3))
    assert not np.array_equal(p, ex.sample_preactivations(16, 0.5, 2.0, 1000, rng=4))
    after = np.random.get_state()[1]  # type: ignore[index]  # noqa: NPY002
    np.testing.assert_array_equal(after, state)
    # a generator's stream advances: two calls differ
    g = np.random.default_rng(0)
    assert not np.array_equal(
        ex.sample_preactivations(4, 1, 1, 10, rng=g), ex.sample_preactivations(4, 1, 1, 10, rng=g)
    )


def test_preactivation_kurtosis_formula() -> None:
    assert ex.preactivation_kurtosis(1) == pytest.approx(9.0)  # product of two normals
    assert ex.preactivation_kurtosis(6) == pytest.approx(4.0)  # 3 + 6/n
    assert ex.preactivation_kurtosis(1, w_dist="uniform", x_dist="uniform") == pytest.approx(3.24)
    assert ex.preactivation_kurtosis(10, w_dist="uniform") == pytest.approx(3.24)  # 3 + 2.4/n
    assert ex.variance_relative_standard_error(3.0, 10_000) == pytest.approx(
        math.sqrt(2 / 9999), rel=1e-3
    )


def test_kurtosis_predicts_the_spread_of_variance_estimates() -> None:
    """The relative standard error sqrt(kappa/N - (N-3)/(N(N-1))) with kappa = 3 + 6/n is the
    real spread of the sample variance; the normal-theory value sqrt(2/(N-1)) is not.

    n = 2 (kappa_p = 6), N = 100 draws per estimate, R = 2000 independent estimates: predicted
    relative SD 0.224, normal-theory 0.142. The SD of R estimates has relative standard error
    sqrt((kappa_s - 1) / (4R)); for p = w1 x1 + w2 x2 the kurtosis of s^2 is about
    3 + (kappa_{p^2} - 3)/N with kappa_{p^2} = 35088/400 = 87.7 (from E p^8 = 40320,
    E p^6 = 720, E p^4 = 24), i.e. 3.85, so the standard error is 0.019; the tolerance is
    0.12 (> 6 SE), and normal theory (37% off) falls far outside.
    """
    N, R, n = 100, 2000, 2
    rng = np.random.default_rng(11)
    ratios = np.array(
        [np.var(ex.sample_preactivations(n, 1.0, 1.0, N, rng=c), ddof=1) / n for c in rng.spawn(R)]
    )
    predicted = ex.variance_relative_standard_error(ex.preactivation_kurtosis(n), N)
    measured = ratios.std(ddof=1)
    assert predicted == pytest.approx(0.224, abs=0.001)
    assert abs(measured / predicted - 1) < 0.12, (measured, predicted)
    normal_theory = math.sqrt(2 / (N - 1))
    assert abs(measured / normal_theory - 1) > 0.3  # the check can tell the two apart


@functools.cache
def _grid() -> tuple[ex.PreactivationVarianceRecord, ...]:
    return tuple(
        ex.preactivation_variance_grid(
            [1, 8, 64],
            [0.5, 2.0],
            [0.25],
            n_samples=20_000,
            rng=2024,
            w_dists=["normal", "uniform"],
            x_dists=["normal", "uniform"],
        )
    )


def test_monte_carlo_agrees_with_n_var_w_var_x() -> None:
    """Every cell within 6 relative standard errors of n·Var(w)·Var(x).

    N = 20000 draws, kappa_p <= 9: rse <= sqrt(8/20000) = 2%; 24 cells at 6 SE each fail by
    chance with probability < 24 * 2e-9.
    """
    grid = _grid()
    assert len(grid) == 24
    for rec in grid:
        assert rec.theoretical == rec.n_in * rec.var_w * rec.var_x
        assert rec.rel_std_error == pytest.approx(
            math.sqrt((rec.kurtosis - 1) / rec.n_samples), rel=1e-3
        )
        assert abs(rec.z) < 6, rec
        assert abs(rec.ratio - 1) < 6 * rec.rel_std_error


def test_monte_carlo_rejects_wrong_formulas() -> None:
    """The same data rule out n·Var(w) (Var(x) = 0.25 forgotten), Var(w)·Var(x) (n forgotten,
    visible where n > 1) and n·std(w)·std(x): each is more than 6 standard errors away."""
    wrong: dict[str, tuple[object, ...]] = {
        "n var_w": (lambda r: r.n_in * r.var_w, lambda r: True),
        "var_w var_x": (lambda r: r.var_w * r.var_x, lambda r: r.n_in > 1),
        "n std_w std_x": (lambda r: r.n_in * math.sqrt(r.var_w * r.var_x), lambda r: True),
    }
    for name, (formula, applies) in wrong.items():
        cells = [r for r in _grid() if applies(r)]  # type: ignore[operator]
        assert cells
        for rec in cells:
            z = (rec.empirical / formula(rec) - 1) / rec.rel_std_error  # type: ignore[operator]
            assert abs(z) > 6, (name, rec)


# ---------------------------------------------------------------------------------------------
# Deep networks
# ---------------------------------------------------------------------------------------------


def test_init_network_shapes_and_seed() -> None:
    ws, bs = ex.init_network([5, 4, 3], scaled_normal(1.0), rng=0)
    assert [w.shape for w in ws] == [(5, 4), (4, 3)] and bs is None
    ws2, bs2 = ex.init_network([5, 4, 3], scaled_normal(1.0), rng=0, bias=0.0)
    np.testing.assert_array_equal(ws[0], ws2[0])
    assert bs2 is not None and [b.shape for b in bs2] == [(4,), (3,)]  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="at least two"):
        ex.init_network([5], scaled_normal(1.0), rng=0)
    with pytest.raises(ValueError, match=r"returned shape \(2, 2\) for shape \(5, 4\)"):
        ex.init_network([5, 4], lambda shape, *, rng=None: np.zeros((2, 2)), rng=0)
    with pytest.raises(ValueError, match="callable"):
        ex.resolve_initializer(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'he_normal'"):
        ex.resolve_initializer("kaiming")


def test_initializer_names_are_resolved() -> None:
    """Names from course_lib.initializers work everywhere an initializer is taken; He normal
    keeps a ReLU net's second moment constant: E[a^2] = Var(z)/2 and Var(z) = n (2/n) E[a^2].

    Tolerance: |log(rms_8 / rms_1)| < 0.5. Per layer the second moment is multiplied by a
    random factor of relative SD <= sqrt(2/width) = 0.125 (width 128, rank-one worst case);
    over 7 layers that is <= 0.33 in the second moment, 0.165 in log-rms, 0.083 for the mean
    of 4 replicates: 0.5 is 6 SE. LeCun normal (1/n) halves the second moment per layer, so
    its log-rms falls by 7·log(sqrt 2) = 2.43; the check (> 1.5) is 11 SE inside that.
    """

    def rms(init: str) -> FloatArray:
        st = ex.deep_network_statistics(
            depth=8,
            width=128,
            activation="relu",
            initializer=init,
            n_samples=256,
            rng=0,
            n_replicates=4,
        )
        return np.sqrt(st.activation_std**2 + st.activation_mean**2).mean(axis=0)

    he, lecun = rms("he_normal"), rms("lecun_normal")
    assert abs(math.log(he[-1] / he[0])) < 0.5
    assert math.log(lecun[0] / lecun[-1]) > 1.5
    rec = ex.scheme_grid(["he_normal"], ["relu"], [2], [8], n_samples=8, n_replicates=1, rng=0)
    assert rec[0]["scheme"] == "he_normal"
    demo = ex.symmetry_demo("xavier_normal", steps=3, rng=0)
    assert demo.init == "xavier_normal" and np.all(demo.max_unit_difference > 0)


def test_linear_network_follows_the_variance_recursion() -> None:
    """Linear net, weights N(0, g^2/width), g = 1.2: forward std of layer l is g^l (input std 1)
    and the back-propagated gradient std at layer l is g^(L-l) (output gradient std 1).

    Tolerance 0.33 on log std: one layer multiplies the variance by a random factor of relative
    SD at most sqrt(2/width) (rank-one input, the worst case), so after L = 6 layers the log std
    of one network is off by at most 0.5·sqrt(2L/width) = 0.153 (SD, width 128); the mean of
    R = 8 replicates by 0.054; 0.33 is > 6 SE. The wrong growth g^0 (std constant) is 1.09 off
    at the top layer.
    """
    g, L, width = 1.2, 6, 128
    st = ex.deep_network_statistics(
        depth=L,
        width=width,
        activation="linear",
        initializer=scaled_normal(g),
        n_samples=256,
        rng=5,
        n_replicates=8,
    )
    layers = np.arange(1, L + 1)
    log_fwd = np.log(st.activation_std).mean(axis=0)
    log_bwd = np.log(st.grad_std).mean(axis=0)
    np.testing.assert_allclose(log_fwd, layers * math.log(g), atol=0.33)
    np.testing.assert_allclose(log_bwd, (L - layers) * math.log(g), atol=0.33)
    assert abs(log_fwd[-1]) > 0.8  # the "no growth" hypothesis is rejected
    assert st.activation_std.shape == (8, L) and st.weight_grad_std.shape == (8, L)
    assert np.all(st.saturated == 0.0)  # linear never saturates
    assert st.activation_counts.shape == (8, L, 50)


def test_deep_network_statistics_keep_all_and_reproducibility() -> None:
    kw = dict(depth=4, width=32, activation="tanh", initializer=scaled_normal(1.0), n_samples=64)
    st = ex.deep_network_statistics(**kw, rng=1, n_replicates=3, keep="all")  # type: ignore[arg-type]
    assert len(st.activations) == 4 and st.activations[0].shape == (64, 32)
    assert len(st.activation_grads) == 4 and len(st.weight_grads) == 4 and len(st.weights) == 4
    np.testing.assert_allclose(st.activation_std[0], [a.std() for a in st.activations])
    np.testing.assert_allclose(st.grad_std[0], [g.std() for g in st.activation_grads])
    lean = ex.deep_network_statistics(**kw, rng=1, n_replicates=3)  # type: ignore[arg-type]
    assert lean.activations == []
    np.testing.assert_allclose(lean.activation_std, st.activation_std, rtol=1e-12)
    np.testing.assert_allclose(lean.grad_std, st.grad_std, rtol=1e-12)
    # replicates are independent networks
    assert len(np.unique(st.activation_std[:, 0])) == 3
    other = ex.deep_network_statistics(**kw, rng=2)  # type: ignore[arg-type]
    assert other.activation_std[0, 0] != st.activation_std[0, 0]
    np.testing.assert_array_equal(st.layers, [1, 2, 3, 4])


def test_scheme_grid_is_tidy_and_replicates_are_independent() -> None:
    schemes = [scaled_normal(1.0), scaled_normal(2.0)]
    rec = ex.scheme_grid(
        schemes, ["tanh", "relu"], [3, 5], [16], n_samples=32, n_replicates=2, rng=0
    )
    assert len(rec) == 2 * 2 * (3 + 5) * 2
    keys = {
        "scheme",
        "activation",
        "depth",
        "width",
        "replicate",
        "layer",
        "forward_std",
        "forward_mean",
        "backward_std",
        "weight_grad_std",
        "saturated",
    }
    assert all(set(r) == keys for r in rec)
    assert {r["scheme"] for r in rec} == {"normal_gain_1.0", "normal_gain_2.0"}
    first = [r for r in rec if r["layer"] == 1 and r["depth"] == 3]
    assert len({r["forward_std"] for r in first}) == len(first)  # all different networks
    again = ex.scheme_grid(
        schemes, ["tanh", "relu"], [3, 5], [16], n_samples=32, n_replicates=2, rng=0
    )
    assert again == rec
    with pytest.raises(ValueError, match="empty"):
        ex.scheme_grid([], ["tanh"], [3], [16], n_samples=8, n_replicates=1, rng=0)


def test_saturation_by_layer() -> None:
    """tanh with gain 4 saturates most units in every layer (|z| has std about 4·0.8 so
    P(|tanh z| >= 0.95) = P(|z| >= 1.83) is large); gain 0.5 leaves layers small: the first
    layer has z ~ N(0, 0.25), P(|z| >= 1.83) = 2.5e-4, and the later layers shrink."""
    kw = dict(depth=5, width=128, activation="tanh", n_samples=256, rng=3)
    big = ex.saturation_by_layer(initializer=scaled_normal(4.0), **kw)  # type: ignore[arg-type]
    small = ex.saturation_by_layer(initializer=scaled_normal(0.5), **kw)  # type: ignore[arg-type]
    assert big.shape == small.shape == (5,)
    assert np.all(big > 0.5) and np.all(small < 0.002)


# ---------------------------------------------------------------------------------------------
# Symmetry
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_constant_init_keeps_units_exactly_identical(activation: str) -> None:
    demo = ex.symmetry_demo("constant", steps=25, rng=0, activation=activation, n_hidden=6)
    assert demo.max_unit_difference.shape == (26,)
    assert np.all(demo.max_unit_difference == 0.0)  # exactly, not approximately
    assert np.all(demo.max_outgoing_difference == 0.0)
    assert demo.hidden_weight_change[-1] > 1e-3  # the weights do move, together
    assert demo.loss[-1] < demo.loss[0]


def test_random_init_units_differ() -> None:
    demo = ex.symmetry_demo("random", steps=25, rng=0)
    assert np.all(demo.max_unit_difference > 0.1)
    assert demo.loss[-1] < demo.loss[0]
    np.testing.assert_array_equal(demo.steps, np.arange(26))
    demo2 = ex.symmetry_demo(scaled_normal(1.0), steps=5, rng=0)
    assert demo2.init == "normal_gain_1.0" and np.all(demo2.max_unit_difference > 0)


def test_zero_init_what_really_happens() -> None:
    # tanh and relu: f(0) = 0, so neither W1 nor W2 ever moves; only the output bias learns
    for act in ("tanh", "relu"):
        demo = ex.symmetry_demo("zeros", steps=20, rng=1, activation=act)
        assert np.all(demo.W1 == 0.0) and np.all(demo.W2 == 0.0)
        assert np.all(demo.hidden_weight_change == 0.0)
        assert demo.loss[-1] < demo.loss[0]  # the bias fits the targets' mean
    # sigmoid: f(0) = 1/2, the weights move, but every hidden unit stays identical
    sig = ex.symmetry_demo("zeros", steps=20, rng=1, activation="sigmoid")
    assert sig.hidden_weight_change[-1] > 0 and np.all(sig.max_unit_difference == 0.0)


def test_symmetry_demo_blas_path_agrees() -> None:
    exact = ex.symmetry_demo("constant", steps=10, rng=2)
    blas = ex.symmetry_demo("constant", steps=10, rng=2, exact=False)
    np.testing.assert_allclose(blas.loss, exact.loss, rtol=1e-12)
    assert blas.max_unit_difference.max() < 1e-12


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="'normal', 'uniform'"):
        ex.sample_preactivations(4, 1, 1, 10, rng=0, w_dist="laplace")
    with pytest.raises(ValueError, match="n_in"):
        ex.sample_preactivations(0, 1, 1, 10, rng=0)
    with pytest.raises(ValueError, match="var_w"):
        ex.sample_preactivations(4, -1, 1, 10, rng=0)
    with pytest.raises(ValueError, match="empty"):
        ex.preactivation_variance_grid([], [1.0], [1.0], n_samples=10, rng=0)
    with pytest.raises(ValueError, match="'linear', 'tanh'"):
        ex.deep_network_statistics(
            depth=2, width=4, activation="swish", initializer=scaled_normal(1), n_samples=4, rng=0
        )
    with pytest.raises(ValueError, match="depth"):
        ex.deep_network_statistics(
            depth=0, width=4, activation="tanh", initializer=scaled_normal(1), n_samples=4, rng=0
        )
    with pytest.raises(ValueError, match="'all', 'stats'"):
        ex.deep_network_statistics(
            depth=2,
            width=4,
            activation="tanh",
            initializer=scaled_normal(1),
            n_samples=4,
            rng=0,
            keep="some",  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError, match="steps"):
        ex.symmetry_demo("constant", steps=-1, rng=0)
    with pytest.raises(ValueError, match="kurtosis"):
        ex.variance_relative_standard_error(0.5, 100)
    with pytest.raises(TypeError, match="RandomState"):
        ex.sample_preactivations(4, 1, 1, 10, rng=np.random.RandomState(0))
