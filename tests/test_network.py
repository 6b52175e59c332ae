"""course_lib.network: activations, forward/backward passes against finite differences, the
statistics-only mode (same numbers, bounded memory), losses, and bad input."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt
import pytest
from threadpoolctl import threadpool_limits

from course_lib import network as net


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """These tests multiply small matrices: BLAS threads only add contention (5x slower on a
    busy 2-core machine), and the results do not depend on the thread count."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


FloatArray = npt.NDArray[np.float64]
ACTS = list(net.ACTIVATIONS)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _central_difference(
    f: Callable[[FloatArray], float], x: FloatArray, eps: float = 1e-6
) -> FloatArray:
    """Central finite difference of a scalar function, entry by entry (x is perturbed in place)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        old = x[idx]
        x[idx] = old + eps
        fp = f(x)
        x[idx] = old - eps
        fm = f(x)
        x[idx] = old
        grad[idx] = (fp - fm) / (2 * eps)
    return grad


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ACTS)
def test_activation_derivative_matches_finite_differences(name: str) -> None:
    z = np.linspace(-4.0, 4.0, 161) + 0.0123  # avoid the kink at exactly 0
    eps = 1e-6
    fd = (net.activate(z + eps, name) - net.activate(z - eps, name)) / (2 * eps)
    np.testing.assert_allclose(net.activation_derivative(z, name), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ACTS)
def test_derivative_from_activation_matches_derivative(name: str) -> None:
    z = np.linspace(-6.0, 6.0, 241) + 0.0071
    a = net.activate(z, name)
    np.testing.assert_allclose(
        net._derivative_from(z, a, name, 0.01),
        net.activation_derivative(z, name),
        rtol=1e-12,
        atol=1e-14,
    )


def test_activation_values() -> None:
    z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(net.activate(z, "relu"), [0, 0, 0, 0.5, 2.0])
    np.testing.assert_allclose(net.activate(z, "leaky_relu"), [-0.02, -0.005, 0, 0.5, 2.0])
    np.testing.assert_allclose(
        net.activate(z, "leaky_relu", negative_slope=0.2), [-0.4, -0.1, 0, 0.5, 2.0]
    )
    np.testing.assert_allclose(net.activate(z, "sigmoid"), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_allclose(net.activate(z, "tanh"), np.tanh(z))
    lam, alpha = net.SELU_LAMBDA_NET, net.SELU_ALPHA_NET
    np.testing.assert_allclose(
        net.activate(z, "selu"), lam * np.where(z > 0, z, alpha * (np.exp(z) - 1)), rtol=1e-14
    )
    # the sigmoid neither overflows nor loses the tiny tail
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        big = net.activate(np.array([-800.0, 800.0]), "sigmoid")
    assert big[1] == 1.0 and big[0] == 0.0
    assert net.activate(np.array([-40.0]), "sigmoid")[0] == pytest.approx(np.exp(-40.0), rel=1e-12)
    # linear returns a copy, not the caller's array
    x = np.ones(3)
    y = net.activate(x, "linear")
    y[0] = 5
    assert x[0] == 1.0


def test_unknown_activation_names_the_allowed_ones() -> None:
    for fn in (net.activate, net.activation_derivative, net.saturation_fraction):
        with pytest.raises(
            ValueError, match=r"'linear'.*'tanh'.*'sigmoid'.*'relu'.*'leaky_relu'.*'selu'"
        ):
            fn(np.zeros(3), "swish")
    with pytest.raises(ValueError, match="softplus"):
        net.forward(np.zeros((2, 3)), [np.zeros((3, 2))], "softplus")


def test_saturation_fraction() -> None:
    a = np.array([-0.999, -0.5, 0.0, 0.96, 0.99])
    assert net.saturation_fraction(a, "tanh") == pytest.approx(3 / 5)
    assert net.saturation_fraction(a, "tanh", tol=0.02) == pytest.approx(2 / 5)
    s = np.array([0.001, 0.5, 0.97, 0.2])
    assert net.saturation_fraction(s, "sigmoid") == pytest.approx(2 / 4)
    r = np.array([0.0, 0.0, 1.0, 2.0])
    assert net.saturation_fraction(r, "relu") == 0.5
    assert net.saturation_fraction(r, "linear") == 0.0
    floor = -net.SELU_LAMBDA_NET * net.SELU_ALPHA_NET
    assert net.saturation_fraction(np.array([floor * 0.99, floor * 0.5, 1.0]), "selu") == (
        pytest.approx(1 / 3)
    )
    assert net.saturation_fraction(np.array([]), "tanh") == 0.0


# ---------------------------------------------------------------------------------------------
# Forward / backward against finite differences
# ---------------------------------------------------------------------------------------------


def _small_net(
    seed: int, with_biases: bool, sizes: tuple[int, ...] = (3, 5, 4, 2), batch: int = 4
) -> tuple[FloatArray, list[FloatArray], list[FloatArray | None] | None, FloatArray]:
    rng = _rng(seed)
    X = rng.normal(size=(batch, sizes[0]))
    ws = [rng.normal(scale=1 / np.sqrt(a), size=(a, b)) for a, b in itertools.pairwise(sizes)]
    bs: list[FloatArray | None] | None = None
    if with_biases:
        bs = [rng.normal(scale=0.3, size=b) for b in sizes[1:]]
        bs[1] = None  # a layer without bias in the middle
    R = rng.normal(size=(batch, sizes[-1]))
    return X, ws, bs, R


@pytest.mark.parametrize("with_biases", [False, True])
@pytest.mark.parametrize("name", ACTS)
def test_backward_matches_finite_differences(name: str, with_biases: bool) -> None:
    X, ws, bs, R = _small_net(7, with_biases, sizes=(3, 6, 5, 2))

    def loss(Xv: FloatArray = X) -> float:
        out = net.forward(Xv, ws, name, biases=bs).output
        return float(np.sum(out * R))  # dL/d(output) = R

    fp = net.forward(X, ws, name, biases=bs)
    # finite differences are only valid away from the kinks: relu's dead rows give exact zeros
    assert not any((z == 0).any() for z in fp.preactivations)
    bp = net.backward(fp, ws, R, name)
    for i, W in enumerate(ws):
        fd = _central_difference(lambda _w: loss(), W)
        np.testing.assert_allclose(bp.weight_grads[i], fd, rtol=1e-5, atol=1e-7, err_msg=f"dW{i}")
        assert bp.weight_grad_norms[i] == pytest.approx(np.linalg.norm(bp.weight_grads[i]))
    if bs is not None:
        for i, b in enumerate(bs):
            if b is None:
                assert bp.bias_grads[i] is None
                continue
            fd = _central_difference(lambda _b: loss(), b)
            np.testing.assert_allclose(bp.bias_grads[i], fd, rtol=1e-5, atol=1e-7)
    else:
        assert bp.bias_grads == [None] * len(ws)
    np.testing.assert_allclose(
        bp.input_grad, _central_difference(lambda x: loss(x), X.copy()), rtol=1e-5, atol=1e-7
    )
    # dL/dz_l and dL/da_l: perturb the stored layer value and run the rest of the net from there
    for layer in range(len(ws)):

        def rest_from_z(z: FloatArray, layer: int = layer) -> float:
            a = net.activate(z, name)
            b_rest = None if bs is None else bs[layer + 1 :]
            if layer + 1 == len(ws):
                return float(np.sum(a * R))
            return float(np.sum(net.forward(a, ws[layer + 1 :], name, biases=b_rest).output * R))

        def rest_from_a(a: FloatArray, layer: int = layer) -> float:
            b_rest = None if bs is None else bs[layer + 1 :]
            if layer + 1 == len(ws):
                return float(np.sum(a * R))
            return float(np.sum(net.forward(a, ws[layer + 1 :], name, biases=b_rest).output * R))

        z = fp.preactivations[layer].copy()
        a = fp.activations[layer].copy()
        np.testing.assert_allclose(
            bp.preactivation_grads[layer], _central_difference(rest_from_z, z), rtol=1e-5, atol=1e-7
        )
        np.testing.assert_allclose(
            bp.activation_grads[layer], _central_difference(rest_from_a, a), rtol=1e-5, atol=1e-7
        )


def test_finite_difference_check_catches_a_wrong_derivative(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check above can fail: break the tanh derivative and the weight gradients disagree."""
    X, ws, _, R = _small_net(3, False)
    real = net._derivative_from

    def wrong(z: FloatArray, a: FloatArray, name: str, slope: float) -> FloatArray:
        return 1.0 - a if name == "tanh" else real(z, a, name, slope)  # 1 - a instead of 1 - a^2

    monkeypatch.setattr(net, "_derivative_from", wrong)
    bp = net.backward(net.forward(X, ws, "tanh"), ws, R)
    fd = _central_difference(lambda _w: float(np.sum(net.forward(X, ws, "tanh").output * R)), ws[0])
    assert not np.allclose(bp.weight_grads[0], fd, rtol=1e-5, atol=1e-7)


def test_forward_layers_and_output_activation() -> None:
    X, ws, bs, _ = _small_net(1, True)
    fp = net.forward(X, ws, "relu", biases=bs, output_activation="linear")
    assert len(fp.preactivations) == len(fp.activations) == 3
    z0 = X @ ws[0] + bs[0]  # type: ignore[index,operator]
    np.testing.assert_allclose(fp.preactivations[0], z0)
    np.testing.assert_allclose(fp.activations[0], np.maximum(z0, 0))
    np.testing.assert_allclose(fp.preactivations[1], fp.activations[0] @ ws[1])  # no bias there
    np.testing.assert_array_equal(fp.activations[-1], fp.preactivations[-1])  # linear output
    assert fp.output is fp.activations[-1]
    assert fp.inputs is X
    assert fp.stds() == pytest.approx([a.std() for a in fp.activations])


def test_softmax_cross_entropy_through_the_network() -> None:
    """Logits from a linear output layer, softmax cross-entropy gradient, then backward."""
    X, ws, bs, _ = _small_net(11, True, sizes=(3, 6, 4), batch=5)
    y = np.array([0, 3, 1, 2, 3])

    def loss() -> float:
        return net.cross_entropy(
            net.forward(X, ws, "selu", biases=bs, output_activation="linear").output, y
        )

    fp = net.forward(X, ws, "selu", biases=bs, output_activation="linear")
    value, g = net.softmax_cross_entropy(fp.output, y)
    assert value == pytest.approx(loss())
    bp = net.backward(fp, ws, g)
    for i, W in enumerate(ws):
        np.testing.assert_allclose(
            bp.weight_grads[i], _central_difference(lambda _w: loss(), W), rtol=1e-5, atol=1e-8
        )


# ---------------------------------------------------------------------------------------------
# Statistics-only mode
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("checkpoint_every", [None, 1, 3, 100])
@pytest.mark.parametrize("name", ["tanh", "relu", "selu", "sigmoid"])
def test_stats_mode_agrees_with_keep_all(name: str, checkpoint_every: int | None) -> None:
    rng = _rng(5)
    depth, width = 10, 16
    X = rng.normal(size=(32, 8))
    sizes = [8] + [width] * depth
    ws = [rng.normal(scale=1.2 / np.sqrt(a), size=(a, b)) for a, b in itertools.pairwise(sizes)]
    bs: list[FloatArray | None] = [rng.normal(scale=0.1, size=b) for b in sizes[1:]]
    G = rng.normal(size=(32, width))
    full = net.forward(X, ws, name, biases=bs)
    lean = net.forward(X, ws, name, biases=bs, keep="stats", checkpoint_every=checkpoint_every)
    assert lean.preactivations == [] and lean.activations == []
    np.testing.assert_allclose(lean.output, full.output, rtol=1e-13, atol=1e-15)
    for s_full, s_lean in zip(full.activation_stats, lean.activation_stats, strict=True):
        assert s_lean.mean == pytest.approx(s_full.mean, rel=1e-12, abs=1e-15)
        assert s_lean.std == pytest.approx(s_full.std, rel=1e-12)
        assert (s_lean.min, s_lean.max) == pytest.approx((s_full.min, s_full.max))
        assert s_lean.saturated == s_full.saturated
        np.testing.assert_array_equal(s_lean.counts, s_full.counts)
    for s_full, s_lean in zip(full.preactivation_stats, lean.preactivation_stats, strict=True):
        assert s_lean.std == pytest.approx(s_full.std, rel=1e-12)
    b_full = net.backward(full, ws, G)
    for fwd in (full, lean):
        b_lean = net.backward(fwd, ws, G, keep="stats")
        assert b_lean.weight_grads == [] and b_lean.activation_grads == []
        np.testing.assert_allclose(b_lean.input_grad, b_full.input_grad, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b_lean.weight_grad_norms, b_full.weight_grad_norms, rtol=1e-12)
        for key in ("activation_grad_stats", "preactivation_grad_stats", "weight_grad_stats"):
            for s_full, s_lean in zip(getattr(b_full, key), getattr(b_lean, key), strict=True):
                assert s_lean.std == pytest.approx(s_full.std, rel=1e-12), key
                assert s_lean.mean == pytest.approx(s_full.mean, rel=1e-10, abs=1e-16), key
                np.testing.assert_array_equal(s_lean.counts, s_full.counts)
    # full backward from a statistics-only forward pass: every gradient, recomputed segments
    b_mixed = net.backward(lean, ws, G, keep="all")
    for g1, g2 in zip(b_mixed.weight_grads, b_full.weight_grads, strict=True):
        np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-15)


def test_layer_stats_histogram() -> None:
    x = np.array([-6.0, -1.0, -0.1, 0.1, 0.2, 4.9, 5.0, 7.0])
    s = net.layer_stats(x, hist_range=(-5, 5), bins=10, activation="relu")
    assert s.counts.sum() + s.below + s.above == x.size
    assert (s.below, s.above) == (1, 1)
    np.testing.assert_array_equal(s.counts, np.histogram(x, bins=10, range=(-5, 5))[0])
    assert s.edges[0] == -5 and s.edges[-1] == 5 and len(s.edges) == 11
    assert s.std == pytest.approx(x.std()) and s.var == pytest.approx(x.var())
    assert s.saturated == pytest.approx(3 / 8)
    assert np.isnan(net.layer_stats(x).saturated)
    with pytest.raises(ValueError, match="hist_range"):
        net.layer_stats(x, hist_range=(1, -1))
    with pytest.raises(ValueError, match="bins"):
        net.layer_stats(x, bins=0)


def _peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_stats_mode_memory_is_bounded() -> None:
    """Peak memory: keep="all" holds 2·depth batch-sized arrays, keep="stats" about 3·sqrt(depth).

    depth 64, width 64, batch 256 (one array = 131 kB): keep-all forward+backward holds
    >= 2·64 = 128 arrays (16.8 MB). Stats mode with k = ceil(sqrt(64)) = 8 holds 8 checkpoints,
    one recomputed 8-layer segment (z and a: 16 arrays) and the temporaries of one layer's
    histogram, derivative and back-propagated gradient (measured: about 10 arrays), so the bound
    asserted is 8 + 16 + 16 = 40 arrays, under a third of keep-all.
    """
    rng = _rng(0)
    depth, width, batch = 64, 64, 256
    ws = [rng.normal(scale=1 / np.sqrt(width), size=(width, width)) for _ in range(depth)]
    X = rng.normal(size=(batch, width))
    G = rng.normal(size=(batch, width))
    array_bytes = batch * width * 8

    def run_all() -> None:
        fp = net.forward(X, ws, "tanh")
        net.backward(fp, ws, G, keep="stats")

    def run_stats() -> None:
        fp = net.forward(X, ws, "tanh", keep="stats")
        net.backward(fp, ws, G, keep="stats")

    peak_all = _peak_bytes(run_all)
    peak_stats = _peak_bytes(run_stats)
    assert peak_all >= 2 * depth * array_bytes
    k = 8
    bound = (depth // k + 2 * k + 16) * array_bytes
    assert peak_stats <= bound, (peak_stats / array_bytes, peak_all / array_bytes)
    assert peak_stats < peak_all / 3


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def test_softmax_is_stable_and_normalized() -> None:
    z = np.array([[1000.0, 1000.0, -1000.0], [1.0, 2.0, 3.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = net.softmax(z)
        lp = net.log_softmax(z)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0.0])
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(p[1], e / e.sum())
    np.testing.assert_allclose(lp[1], np.log(e / e.sum()))
    assert np.isfinite(lp).all() and lp[0, 2] == pytest.approx(-2000 - np.log(2))


def test_softmax_cross_entropy_gradient_and_one_hot() -> None:
    rng = _rng(2)
    z = rng.normal(size=(6, 4)) * 3
    y = np.array([0, 1, 2, 3, 0, 1])
    loss, g = net.softmax_cross_entropy(z, y)
    expected = -np.mean(np.log(net.softmax(z)[np.arange(6), y]))
    assert loss == pytest.approx(expected)
    fd = _central_difference(lambda v: net.cross_entropy(v, y), z.copy())
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)
    loss2, g2 = net.softmax_cross_entropy(z, np.eye(4)[y])
    assert loss2 == pytest.approx(loss)
    np.testing.assert_allclose(g2, g)
    huge_loss, _ = net.softmax_cross_entropy(np.array([[0.0, 1e4]]), [0])
    assert huge_loss == pytest.approx(1e4)


def test_mean_squared_error() -> None:
    p = np.array([[1.0, 2.0], [3.0, 5.0]])
    t = np.array([[0.0, 2.0], [3.0, 3.0]])
    loss, g = net.mean_squared_error(p, t)
    assert loss == pytest.approx((1 + 4) / 4)
    np.testing.assert_allclose(g, (p - t) / 2)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_shape_mismatches_name_the_shapes() -> None:
    X = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"weights\[0\] has shape \(5, 2\).*X has shape \(4, 3\)"):
        net.forward(X, [np.zeros((5, 2))], "tanh")
    with pytest.raises(
        ValueError, match=r"weights\[1\] has shape \(3, 2\).*weights\[0\] has shape \(3, 4\)"
    ):
        net.forward(X, [np.zeros((3, 4)), np.zeros((3, 2))], "tanh")
    with pytest.raises(ValueError, match=r"biases\[0\] has shape \(3,\), expected \(4,\)"):
        net.forward(X, [np.zeros((3, 4))], "tanh", biases=[np.zeros(3)])
    with pytest.raises(ValueError, match="one entry"):
        net.forward(X, [np.zeros((3, 4))], "tanh", biases=[None, None])
    with pytest.raises(ValueError, match=r"X must be 2-D.*\(3,\)"):
        net.forward(np.zeros(3), [np.zeros((3, 4))], "tanh")
    with pytest.raises(ValueError, match="at least one"):
        net.forward(X, [], "tanh")
    with pytest.raises(ValueError, match="'all', 'stats'"):
        net.forward(X, [np.zeros((3, 4))], "tanh", keep="some")  # type: ignore[arg-type]
    fp = net.forward(X, [np.zeros((3, 4))], "tanh")
    with pytest.raises(ValueError, match=r"grad_output has shape \(4, 5\).*\(4, 4\)"):
        net.backward(fp, [np.zeros((3, 4))], np.zeros((4, 5)))
    with pytest.raises(ValueError, match="differs"):
        net.backward(fp, [np.zeros((3, 4))], np.zeros((4, 4)), "relu")
    with pytest.raises(ValueError, match="2 weight matrices"):
        net.backward(fp, [np.zeros((3, 4)), np.zeros((4, 4))], np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"labels have shape \(3,\)"):
        net.softmax_cross_entropy(np.zeros((4, 2)), [0, 1, 1])
    with pytest.raises(ValueError, match=r"0\.\.1"):
        net.softmax_cross_entropy(np.zeros((2, 2)), [0, 2])
    with pytest.raises(ValueError, match="predictions have shape"):
        net.mean_squared_error(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="checkpoint_every"):
        net.forward(X, [np.zeros((3, 4))], "tanh", keep="stats", checkpoint_every=0)


def test_no_randomness_in_network() -> None:
    state = np.random.get_state()[1].copy()  # type: ignore[index]  # noqa: NPY002
    X, ws, bs, R = _small_net(4, True)
    a = net.backward(net.forward(X, ws, "tanh", biases=bs), ws, R).weight_grads
    b = net.backward(net.forward(X, ws, "tanh", biases=bs), ws, R).weight_grads
    for g1, g2 in zip(a, b, strict=True):
        np.testing.assert_array_equal(g1, g2)
    after = np.random.get_state()[1]  # type: ignore[index]  # noqa: NPY002
    np.testing.assert_array_equal(after, state)


def test_exploding_network_gives_inf_statistics_without_warnings() -> None:
    """Weights with gain 30 overflow float64 within 150 ReLU layers; the statistics say so
    (inf/nan) and nothing warns (pytest turns warnings into errors)."""
    rng = _rng(0)
    ws = [rng.normal(0, 30 / 8, size=(64, 64)) for _ in range(150)]
    X = rng.normal(size=(32, 64))
    lean = net.forward(X, ws, "relu", keep="stats")
    stds = lean.stds()
    assert np.isfinite(stds[0]) and not np.isfinite(stds[-1])
    bp = net.backward(lean, ws, rng.normal(size=(32, 64)), keep="stats")
    assert not np.isfinite(bp.grad_stds()[0])
