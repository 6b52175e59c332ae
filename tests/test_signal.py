"""Tests of course_lib.signal: quadrature against closed forms, the maps against Monte Carlo,
the gains against PyTorch's table, and clear errors for bad input."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from course_lib import initializers as init
from course_lib import network as net
from course_lib import signal as sig

FloatArray = npt.NDArray[np.float64]

_erf_u = np.frompyfunc(math.erf, 1, 1)


def erf(x: FloatArray) -> FloatArray:
    return np.asarray(_erf_u(x), dtype=np.float64)


def erf_prime(x: FloatArray) -> FloatArray:
    return 2.0 / math.sqrt(math.pi) * np.exp(-x * x)


def dense_expectation(g: object, q: float) -> float:
    """E[g(sqrt(q) z)] by a 400 001-point trapezoid rule on [-12, 12] (independent reference)."""
    z = np.linspace(-12.0, 12.0, 400_001)
    w = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return float(np.trapezoid(g(math.sqrt(q) * z) * w, z))  # type: ignore[operator]


# ------------------------------------------------------------------ quadrature and closed forms


def test_gaussian_expectation_is_exact_for_polynomials() -> None:
    for k, moment in [(2, 1.0), (4, 3.0), (6, 15.0), (8, 105.0)]:
        assert sig.gaussian_expectation(lambda x, k=k: x**k) == pytest.approx(moment, rel=1e-12)
    assert abs(sig.gaussian_expectation(lambda x: x**3)) < 1e-12


@pytest.mark.parametrize("q", [0.0, 0.3, 1.0, 7.5])
def test_length_map_linear_and_relu_closed_forms(q: float) -> None:
    assert float(sig.length_map(q, "linear", sigma_w2=0.8, sigma_b2=0.1)) == pytest.approx(
        0.8 * q + 0.1, rel=1e-12, abs=1e-14
    )
    # E[relu(sqrt(q) z)^2] = q/2 (exact for an even rule by symmetry)
    assert float(sig.length_map(q, "relu", sigma_w2=2.0, sigma_b2=0.2)) == pytest.approx(
        q + 0.2, rel=1e-12
    )


def test_length_map_is_vectorized() -> None:
    qs = np.array([[0.5, 1.0], [2.0, 4.0]])
    out = sig.length_map(qs, "tanh", sigma_w2=1.3)
    assert out.shape == (2, 2)
    assert out[1, 1] == pytest.approx(float(sig.length_map(4.0, "tanh", sigma_w2=1.3)), rel=1e-14)


@pytest.mark.parametrize("q", [0.1, 1.0, 3.0])
def test_erf_closed_forms(q: float) -> None:
    # Williams (1998): E[erf(u1) erf(u2)] = (2/pi) arcsin(2 S12 / sqrt((1 + 2 S11)(1 + 2 S22)))
    L = float(sig.length_map(q, erf, sigma_w2=1.0))
    assert L == pytest.approx(2 / math.pi * math.asin(2 * q / (1 + 2 * q)), rel=1e-10)
    x = sig.chi(erf, sigma_w2=1.0, q=q, derivative=erf_prime)
    assert x == pytest.approx(4 / math.pi / math.sqrt(1 + 4 * q), rel=1e-10)
    cs = np.array([-0.7, 0.0, 0.4, 0.95])
    got = sig.correlation_map(cs, erf, sigma_w2=1.0, q=q)
    want = 2 / math.pi * np.arcsin(2 * q * cs / (1 + 2 * q)) / q
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_relu_correlation_map_matches_arc_cosine_kernel() -> None:
    # Cho & Saul (2009): E[relu(u1) relu(u2)] = q (sqrt(1-c^2) + (pi - arccos c) c) / (2 pi)
    cs = np.linspace(-0.95, 1.0, 9)
    got = sig.correlation_map(cs, "relu", sigma_w2=2.0, q=1.0)
    want = (np.sqrt(1 - cs**2) + (np.pi - np.arccos(cs)) * cs) / np.pi
    np.testing.assert_allclose(got, want, atol=2.5e-3)  # the documented 2-D accuracy for kinks
    assert got[-1] == pytest.approx(1.0, abs=1e-12)


def test_relu_chi_and_critical_point() -> None:
    for sw in (0.5, 1.0, 2.0):
        assert sig.chi("relu", sigma_w2=sw, q=1.3) == pytest.approx(sw / 2, rel=1e-12)
    assert sig.critical_sigma_w2("relu") == pytest.approx(2.0, rel=1e-8)
    assert sig.critical_gain("relu") == pytest.approx(math.sqrt(2.0), rel=1e-8)


@pytest.mark.parametrize(
    "name,q,rel,rel_chi",
    [
        ("tanh", 0.5, 1e-10, 1e-10),
        ("tanh", 3.0, 1e-7, 1e-7),
        ("tanh", 10.0, 2e-6, 2e-4),
        ("sigmoid", 3.0, 1e-7, 1e-7),
        ("gelu", 3.0, 1e-7, 1e-7),
    ],
)
def test_smooth_activations_against_dense_reference(
    name: str, q: float, rel: float, rel_chi: float
) -> None:
    # the tolerances are the accuracy stated in the module docstring
    f2 = sig.length_map(q, name, sigma_w2=1.0)
    ref = dense_expectation(lambda u: net.activate(u, name) ** 2, q)
    assert float(f2) == pytest.approx(ref, rel=rel)
    ref_chi = dense_expectation(lambda u: net.activation_derivative(u, name) ** 2, q)
    assert sig.chi(name, sigma_w2=1.0, q=q) == pytest.approx(ref_chi, rel=rel_chi)


def test_sigmoid_chi_at_large_q_within_stated_accuracy() -> None:
    # the module docstring states a relative error near 2e-4 at q ~ 44 (sigma_w2 = 100)
    q = sig.fixed_point("sigmoid", sigma_w2=100.0)
    ref = 100.0 * dense_expectation(lambda u: net.activation_derivative(u, "sigmoid") ** 2, q)
    got = sig.chi("sigmoid", sigma_w2=100.0)
    assert abs(got / ref - 1) < 5e-4
    assert abs(got / ref - 1) > 1e-6  # the error exists: the stated bound is not vacuous


# ------------------------------------------------------------------ fixed points and slopes


@pytest.mark.parametrize(
    "name,sw,sb",
    [("tanh", 1.5, 0.05), ("tanh", 4.0, 0.3), ("sigmoid", 16.0, 0.0), ("gelu", 1.8, 0.2)],
)
def test_fixed_point_is_fixed(name: str, sw: float, sb: float) -> None:
    q = sig.fixed_point(name, sigma_w2=sw, sigma_b2=sb)
    assert q > 0
    assert float(sig.length_map(q, name, sigma_w2=sw, sigma_b2=sb)) == pytest.approx(q, rel=1e-10)
    # and the iteration from q0 = 1 reaches it
    qi = 1.0
    for _ in range(300):
        qi = float(sig.length_map(qi, name, sigma_w2=sw, sigma_b2=sb))
    assert qi == pytest.approx(q, rel=1e-8)


def test_fixed_point_special_cases() -> None:
    assert sig.fixed_point("tanh", sigma_w2=0.8) == 0.0  # the signal dies out
    assert sig.fixed_point("relu", sigma_w2=2.0, q0=3.7) == 3.7  # every q is fixed
    with pytest.raises(sig.DivergentSignalError, match=r"no\s+finite fixed point"):
        sig.fixed_point("relu", sigma_w2=2.5)
    with pytest.raises(ValueError, match="above criticality"):
        sig.fixed_point("relu", sigma_w2=2.0, sigma_b2=0.1)


def test_chi_at_dead_signal_is_the_limit() -> None:
    # q* = 0: chi is the q -> 0+ limit sigma_w2 * (f'(0-)^2 + f'(0+)^2) / 2
    assert sig.chi("tanh", sigma_w2=0.8) == pytest.approx(0.8, rel=1e-12)
    assert sig.chi("relu", sigma_w2=1.5) == pytest.approx(0.75, rel=1e-12)


@pytest.mark.parametrize(
    "name,sw,sb", [("tanh", 2.5, 0.1), ("sigmoid", 40.0, 0.0), ("silu", 2.0, 0.3)]
)
def test_correlation_slope_at_one_is_chi_and_matches_finite_differences(
    name: str, sw: float, sb: float
) -> None:
    x = sig.chi(name, sigma_w2=sw, sigma_b2=sb)
    s1 = float(sig.correlation_slope(1.0, name, sigma_w2=sw, sigma_b2=sb))
    assert s1 == pytest.approx(x, rel=2e-4)  # 2-D rule against the 1-D one (stated accuracy)
    c, h = 0.3, 1e-4
    cm = sig.correlation_map([c - h, c + h], name, sigma_w2=sw, sigma_b2=sb)
    fd = float(cm[1] - cm[0]) / (2 * h)
    assert float(sig.correlation_slope(c, name, sigma_w2=sw, sigma_b2=sb)) == pytest.approx(
        fd, rel=1e-4
    )


def test_length_map_slope_matches_finite_differences() -> None:
    q, h = 1.7, 1e-5
    fd = float(np.diff(sig.length_map([q - h, q + h], "tanh", sigma_w2=2.0))[0]) / (2 * h)
    assert sig.length_map_slope(q, "tanh", sigma_w2=2.0) == pytest.approx(fd, rel=1e-7)


def test_phases_and_depth_scales() -> None:
    order = sig.depth_scales("tanh", sigma_w2=1.2, sigma_b2=0.05)
    chaos = sig.depth_scales("tanh", sigma_w2=3.0, sigma_b2=0.05)
    assert order.chi_1 < 1 and order.c_star == 1.0
    assert order.xi_c == pytest.approx(-1 / math.log(order.chi_1), rel=1e-12)
    assert chaos.chi_1 > 1 and 0 < chaos.c_star < 1 and chaos.chi_c < 1
    # c* is a fixed point of the map
    assert float(sig.correlation_map(chaos.c_star, "tanh", sigma_w2=3.0, sigma_b2=0.05)) == (
        pytest.approx(chaos.c_star, abs=1e-8)
    )
    # xi_c diverges at the edge of chaos: larger near the critical line on both sides
    sw_c = sig.critical_sigma_w2("tanh", sigma_b2=0.05)
    assert sig.chi("tanh", sigma_w2=sw_c, sigma_b2=0.05) == pytest.approx(1.0, abs=1e-8)
    near = sig.depth_scales("tanh", sigma_w2=0.98 * sw_c, sigma_b2=0.05)
    assert near.xi_c > 5 * max(order.xi_c, chaos.xi_c)
    assert sig.phase("tanh", sigma_w2=1.2, sigma_b2=0.05) == "order"
    assert sig.phase("tanh", sigma_w2=3.0, sigma_b2=0.05) == "chaos"
    assert sig.phase("relu", sigma_w2=2.0) == "critical"


# ------------------------------------------------------------------ gains


def test_gain_table_against_pytorch() -> None:
    rows = {r.activation: r for r in sig.gain_table()}
    # positively homogeneous activations: PyTorch's gain is 1/sqrt(E f(z)^2) = 1/sqrt(E f'(z)^2)
    for name in ("linear", "relu", "leaky_relu"):
        r = rows[name]
        assert r.pytorch == pytest.approx(r.forward, rel=1e-12)
        assert r.pytorch == pytest.approx(r.backward, rel=1e-12)
    assert rows["relu"].forward == pytest.approx(math.sqrt(2), rel=1e-12)
    # tanh: the forward gain is within 5% of PyTorch's 5/3, and below it
    t = rows["tanh"]
    assert t.pytorch == pytest.approx(5 / 3)
    assert 0.95 < t.forward / t.pytorch < 1.0
    # sigmoid and selu: PyTorch's values follow neither rule (by more than 20%)
    for name in ("sigmoid", "selu"):
        r = rows[name]
        assert r.pytorch is not None
        assert abs(r.pytorch / r.forward - 1) > 0.2 and abs(r.pytorch / r.backward - 1) > 0.2
    # SELU's constants make E[selu(z)^2] = 1 (Klambauer et al.), so its forward gain is 1
    assert rows["selu"].forward == pytest.approx(1.0, abs=1e-5)
    for name in ("gelu", "silu", "elu"):
        assert rows[name].pytorch is None
        assert name not in init.NONLINEARITIES


@pytest.mark.parametrize("name", ["tanh", "gelu", "silu", "elu", "sigmoid"])
def test_computed_gains_do_what_they_claim(name: str) -> None:
    rows = {r.activation: r for r in sig.gain_table([name])}
    g_q, g_chi = rows[name].forward, rows[name].backward
    assert float(sig.length_map(1.0, name, sigma_w2=g_q**2)) == pytest.approx(1.0, rel=1e-12)
    assert sig.chi(name, sigma_w2=g_chi**2, q=1.0) == pytest.approx(1.0, rel=1e-12)


def test_sigmoid_critical_gain_brackets() -> None:
    sw = sig.critical_sigma_w2("sigmoid")
    assert sig.chi("sigmoid", sigma_w2=sw) == pytest.approx(1.0, abs=1e-6)
    assert sig.chi("sigmoid", sigma_w2=0.9 * sw) < 1 < sig.chi("sigmoid", sigma_w2=1.1 * sw)


# ------------------------------------------------------------------ Monte Carlo


def _within_sampling_error(runs: FloatArray, theory: FloatArray, layers: list[int]) -> bool:
    """|mean over seeds - theory| <= 6 standard errors at each layer.

    Sampling distribution: the K seeds are independent networks, so (mean - E)/SE follows
    Student's t with K - 1 degrees of freedom; P(|t_9| > 6) is about 2e-4, so six comparisons
    fail by chance with probability about 1e-3. The finite-width bias of the mean-field maps is
    O(1/width) relative (0.2% at width 500), well inside 6 SE (SE is about 1-3% here).
    """
    k = runs.shape[0]
    for layer in layers:
        vals = runs[:, layer]
        se = vals.std(ddof=1) / math.sqrt(k)
        if not abs(vals.mean() - theory[layer]) <= 6 * se + 1e-12:
            return False
    return True


@pytest.mark.parametrize(
    "name,sw,sb", [("tanh", 2.5, 0.1), ("sigmoid", 16.0, 0.0), ("gelu", 2.0, 0.1)]
)
def test_maps_agree_with_monte_carlo(name: str, sw: float, sb: float) -> None:
    cmp = sig.map_vs_monte_carlo(
        name, sigma_w2=sw, sigma_b2=sb, q0=1.0, c0=0.2, depth=20, width=500, n_seeds=10, rng=7
    )
    layers = [1, 5, 20]
    assert _within_sampling_error(cmp.q_runs(), cmp.theory.q[:, 0], layers)
    assert _within_sampling_error(cmp.c_runs(), cmp.theory.c, layers)


def test_monte_carlo_check_rejects_the_map_that_ignores_the_mean() -> None:
    # power check: the same check, applied to the correlation map of a *centered* sigmoid (the
    # zero-mean view of the variance derivation), must fail against the real sigmoid network
    cmp = sig.map_vs_monte_carlo(
        "sigmoid", sigma_w2=16.0, q0=1.0, c0=0.2, depth=20, width=500, n_seeds=10, rng=7
    )

    def centered(x: FloatArray) -> FloatArray:
        return net.activate(x, "sigmoid") - 0.5

    wrong = sig.propagate(centered, sigma_w2=16.0, q0=1.0, c0=0.2, depth=20)
    assert not _within_sampling_error(cmp.c_runs(), wrong.c, [1, 5, 20])
    assert _within_sampling_error(cmp.c_runs(), cmp.theory.c, [1, 5, 20])


def test_simulate_signal_layer_zero_is_exact_and_rng_is_reproducible() -> None:
    a = sig.simulate_signal("tanh", sigma_w2=1.5, q0=2.0, c0=0.3, depth=3, width=64, rng=5)
    b = sig.simulate_signal(
        "tanh", sigma_w2=1.5, q0=2.0, c0=0.3, depth=3, width=64, rng=np.random.default_rng(5)
    )
    np.testing.assert_allclose(a.q[0], [2.0, 2.0], rtol=1e-12)
    assert a.c[0] == pytest.approx(0.3, abs=1e-12)
    np.testing.assert_array_equal(a.q, b.q)
    assert a.saturated is not None and a.saturated.shape == (4,)
    state = np.random.get_state()[1].copy()  # type: ignore[index]  # noqa: NPY002
    sig.simulate_signal("relu", sigma_w2=2.0, q0=1.0, c0=0.0, depth=2, width=8, rng=1)
    after = np.random.get_state()[1]  # type: ignore[index]  # noqa: NPY002
    np.testing.assert_array_equal(after, state)  # the global state is left alone


# ------------------------------------------------------------------ bad input


def test_bad_input_errors() -> None:
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        sig.length_map(1.0, "swish", sigma_w2=1.0)
    with pytest.raises(ValueError, match="derivative=f'"):
        sig.chi(erf, sigma_w2=1.0)
    with pytest.raises(ValueError, match="sigma_w2"):
        sig.length_map(1.0, "tanh", sigma_w2=-1.0)
    with pytest.raises(ValueError, match="sigma_b2"):
        sig.length_map(1.0, "tanh", sigma_w2=1.0, sigma_b2=-0.1)
    with pytest.raises(ValueError, match="q must be"):
        sig.length_map(-1.0, "tanh", sigma_w2=1.0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        sig.correlation_map(1.5, "tanh", sigma_w2=2.0, sigma_b2=0.1)
    with pytest.raises(ValueError, match="n_points"):
        sig.length_map(1.0, "tanh", sigma_w2=1.0, n_points=1000)
    with pytest.raises(ValueError, match="q\\* = 0"):
        sig.correlation_map(0.5, "tanh", sigma_w2=0.5)
    with pytest.raises(ValueError, match="width"):
        sig.simulate_signal("tanh", sigma_w2=1.0, q0=1.0, c0=0.0, depth=2, width=0, rng=0)
    with pytest.raises(ValueError, match="depth"):
        sig.propagate("tanh", sigma_w2=1.0, q0=1.0, c0=0.0, depth=0)
    with pytest.raises(ValueError, match="gain_table takes names"):
        sig.gain_table(["swish"])
    with pytest.raises(ValueError, match="no edge of chaos"):
        sig.critical_sigma_w2("tanh", sigma_b2=1e6, max_sigma_w2=10.0)


def test_xi_q_is_the_geometric_rate_of_the_length_map() -> None:
    # |q^l - q*| shrinks by exp(-1/xi_q) per layer near the fixed point
    ds = sig.depth_scales("tanh", sigma_w2=2.0, sigma_b2=0.1)
    q = ds.q_star * 1.01
    gaps = []
    for _ in range(6):
        q = float(sig.length_map(q, "tanh", sigma_w2=2.0, sigma_b2=0.1))
        gaps.append(abs(q - ds.q_star))
    rate = gaps[-1] / gaps[-2]
    assert rate == pytest.approx(math.exp(-1 / ds.xi_q), rel=1e-3)
    # and a wrong scale (the correlation depth scale) does not describe it
    assert abs(rate - math.exp(-1 / ds.xi_c)) > 0.05
