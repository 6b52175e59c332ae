"""course_lib.residual: the variance recursion of residual MLPs, its fixes, the backward pass."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import residual

# A |z| above 4 happens by chance with probability 6e-5 for a normal statistic.
Z_MAX = 4.0


def _block_gain_z(scale: float, *, branch_layers: int, n_draws: int, seed: int) -> float:
    """z-score of the one-block identity E[||x1||^2 - ||x||^2 | x] = 2 ||relu(x)||^2.

    For a fixed input ``x`` we draw ``n_draws`` independent one-block plain He nets (branch
    weights multiplied by ``scale``) and compare the mean increment of the squared norm with the
    derivation's ``2 ||relu(x)||^2`` (exact over the weights, any width, eq-res-branch). The
    tolerance comes from the increments' own sample standard deviation: the mean of n_draws iid
    increments has standard error sd / sqrt(n_draws), so the z-score is ~N(0, 1) when the
    identity holds.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 32))
    inc = np.empty(n_draws)
    for i in range(n_draws):
        net = residual.init_residual(1, 32, branch_layers=branch_layers, rng=rng)
        net.w1[0] *= scale
        if net.w2:
            net.w2[0] *= scale
        fp = residual.residual_forward(x, net, keep_cache=False)
        q1 = math.exp(fp.log_var[1])
        inc[i] = (q1 - float(np.mean(x * x))) * x.size
    target = 2.0 * float(np.sum(np.maximum(x, 0.0) ** 2))
    return float((inc.mean() - target) / (inc.std(ddof=1) / math.sqrt(n_draws)))


@pytest.mark.parametrize("branch_layers", [1, 2])
def test_one_block_adds_twice_the_relu_energy(branch_layers: int) -> None:
    assert abs(_block_gain_z(1.0, branch_layers=branch_layers, n_draws=400, seed=1)) < Z_MAX


@pytest.mark.parametrize("branch_layers", [1, 2])
def test_one_block_check_rejects_lecun_branches(branch_layers: int) -> None:
    # Power check: Var(w) = 1/n (He weights / sqrt 2) adds only half (one layer) or a quarter
    # (two layers) of the energy; the same check must reject it.
    z = _block_gain_z(1 / math.sqrt(2), branch_layers=branch_layers, n_draws=400, seed=1)
    assert abs(z) > Z_MAX


def test_normalized_branch_adds_gamma_squared_per_unit() -> None:
    # q1 - q0 = gamma^2 * (mean of u^2) + cross term; u has mean square var/(var + eps) ~ 1 per
    # row, and the cross term has mean zero because the normalization is odd in W2. z-test as
    # above over independent draws.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 32))
    q0 = float(np.mean(x * x))
    inc = []
    for _ in range(300):
        net = residual.init_residual(1, 32, normalize=True, rng=rng)
        fp = residual.residual_forward(x, net, keep_cache=False)
        inc.append(math.exp(fp.log_var[1]) - q0)
    arr = np.asarray(inc)
    z = (arr.mean() - 1.0) / (arr.std(ddof=1) / math.sqrt(arr.size))
    assert abs(z) < Z_MAX
    # power: gamma = 0.5 would add 0.25
    z_wrong = (arr.mean() - 0.25) / (arr.std(ddof=1) / math.sqrt(arr.size))
    assert abs(z_wrong) > Z_MAX


def test_predicted_variance_formulas() -> None:
    np.testing.assert_allclose(residual.predicted_variance(10), 2.0 ** np.arange(11))
    scaled = residual.predicted_variance(1000, scheme="scaled")
    assert scaled[-1] < math.e and scaled[-1] == pytest.approx((1 + 1 / 1000) ** 1000)
    np.testing.assert_allclose(
        residual.predicted_variance(5, normalize=True, q0=2.0), 2.0 + np.arange(6)
    )
    for s in ("zero_last", "skipinit", "fixup"):
        np.testing.assert_array_equal(residual.predicted_variance(7, scheme=s), np.ones(8))


def test_plain_growth_is_near_one_factor_of_two_per_block_and_scaled_is_bounded() -> None:
    # log2 growth over 60 blocks: predicted 60 (the mean); the log falls short by a Jensen term of
    # a few percent per block at width 64 (the chapter measures it), so we accept 0.8..1.05 per
    # block. For 1/sqrt(L) the prediction is <= log2 e = 1.44; one draw fluctuates by well under
    # one factor of two at this depth, so we bound it by 3. The wrong scheme (plain) is 20x above.
    out = residual.residual_depth_sweep((60,), ("plain", "scaled"), width=64, batch=32, rng=3)
    fwd_plain, bwd_plain = out["plain", 60]
    assert 0.8 < fwd_plain / 60 < 1.05
    assert 0.8 < bwd_plain / 60 < 1.05
    assert 0 < out["scaled", 60][0] < 3 and 0 < out["scaled", 60][1] < 3
    assert fwd_plain > 10 * 3  # the bound would catch the unscaled stack


@pytest.mark.parametrize("scheme", ["zero_last", "skipinit", "fixup"])
def test_zero_branch_schemes_are_exactly_the_identity(scheme: str) -> None:
    out = residual.residual_depth_sweep((50,), (scheme,), rng=4)
    assert max(abs(v) for v in out[scheme, 50]) < 1e-12


def test_zero_gamma_is_exactly_the_identity_and_gamma_one_is_not() -> None:
    zero = residual.residual_depth_sweep((50,), ("zero_last",), normalize=True, rng=5)
    one = residual.residual_depth_sweep((50,), ("plain",), normalize=True, rng=5)
    assert max(abs(v) for v in zero["zero_last", 50]) < 1e-12
    assert one["plain", 50][0] > 3  # log2(51) = 5.7 predicted


def test_depth_1000_does_not_overflow() -> None:
    out = residual.residual_depth_sweep((1000,), ("plain",), width=16, batch=8, rng=6)
    assert all(math.isfinite(v) and v > 500 for v in out["plain", 1000])


def test_fixup_rescales_first_layer_and_zeroes_last() -> None:
    plain = residual.init_residual(16, 8, scheme="plain", rng=7)
    fixup = residual.init_residual(16, 8, scheme="fixup", rng=7)
    np.testing.assert_allclose(fixup.w1[0], plain.w1[0] / 4.0)  # 16 ** (-1/2)
    assert all(not np.any(w) for w in fixup.w2)
    assert fixup.learn_scale and np.all(fixup.scale == 1.0)


# ------------------------------------------------------------------------------ backward ----


def _random_net(branch_layers: int, normalize: bool, biases: bool) -> residual.ResidualNet:
    rng = np.random.default_rng(8)
    net = residual.init_residual(
        3, 5, branch_layers=branch_layers, normalize=normalize, rng=rng
    )
    net.alpha = 0.7
    net.scale = rng.uniform(0.5, 1.5, 3)
    net.gamma = rng.uniform(0.5, 1.5, 3)
    if biases:
        net.bias = rng.normal(0, 0.3, (3, 2))
    return net


def _loss(x: np.ndarray, net: residual.ResidualNet, G: np.ndarray) -> float:
    fp = residual.residual_forward(x, net, keep_cache=False)
    return float(np.sum(G * fp.output) * math.exp(fp.log_scale))


@pytest.mark.parametrize(
    ("branch_layers", "normalize", "biases"),
    [(1, False, False), (2, False, False), (2, True, False), (2, False, True)],
)
def test_backward_matches_finite_differences(
    branch_layers: int, normalize: bool, biases: bool
) -> None:
    net = _random_net(branch_layers, normalize, biases)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 5)) * 3.0  # not unit scale: exercises the log rescaling
    G = rng.standard_normal((2, 5))
    fp = residual.residual_forward(x, net)
    bp = residual.residual_backward(fp, net, G)
    eps = 1e-6

    def fd(arr: np.ndarray, idx: tuple[int, ...]) -> float:
        old = arr[idx]
        arr[idx] = old + eps
        up = _loss(x, net, G)
        arr[idx] = old - eps
        down = _loss(x, net, G)
        arr[idx] = old
        return (up - down) / (2 * eps)

    gx = bp.grad_input * math.exp(bp.log_scale)
    for idx in np.ndindex(x.shape):
        assert fd(x, idx) == pytest.approx(gx[idx], rel=1e-5, abs=1e-7)
    for l in range(3):  # noqa: E741
        for idx in [(0, 1), (3, 4)]:
            assert fd(net.w1[l], idx) == pytest.approx(bp.w1_grads[l][idx], rel=1e-5, abs=1e-7)
            if net.w2:
                assert fd(net.w2[l], idx) == pytest.approx(
                    bp.w2_grads[l][idx], rel=1e-5, abs=1e-7
                )
        assert fd(net.scale, (l,)) == pytest.approx(bp.scale_grads[l], rel=1e-5, abs=1e-7)
        if biases:
            for j in range(2):
                assert fd(net.bias, (l, j)) == pytest.approx(
                    bp.bias_grads[l, j], rel=1e-5, abs=1e-7
                )


def _input_grad_error(wrong_alpha: float | None) -> float:
    """Largest relative error of residual_backward's input gradient against central differences;
    with ``wrong_alpha`` the backward pass runs on a copy of the net with that branch scale."""
    net = _random_net(2, False, False)
    rng = np.random.default_rng(10)
    x, G = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    fp = residual.residual_forward(x, net)
    if wrong_alpha is not None:
        fp = residual.residual_forward(x, net)
        net = residual.ResidualNet(**{**net.__dict__, "alpha": wrong_alpha})
    bp = residual.residual_backward(fp, net, G)
    gx = bp.grad_input * math.exp(bp.log_scale)
    true_net = _random_net(2, False, False)
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += 1e-6
        xm[idx] -= 1e-6
        num[idx] = (_loss(xp, true_net, G) - _loss(xm, true_net, G)) / 2e-6
    return float(np.max(np.abs(gx - num)) / np.max(np.abs(num)))


def test_input_gradient_check_passes_and_catches_a_skip_only_gradient() -> None:
    # Central differences with step 1e-6 are accurate to ~1e-9 relative here; the wrong
    # backward (branches ignored, alpha = 0: only the skip path) must be caught by the same check.
    assert _input_grad_error(None) < 1e-6
    assert _input_grad_error(0.0) > 1e-2


# ---------------------------------------------------------------------------- bad input ----


def test_bad_input_gets_clear_errors() -> None:
    with pytest.raises(ValueError, match="depth"):
        residual.init_residual(0, 8, rng=0)
    with pytest.raises(ValueError, match="unknown scheme"):
        residual.init_residual(3, 8, scheme="kaiming", rng=0)
    with pytest.raises(ValueError, match="fixup needs branch_layers=2"):
        residual.init_residual(3, 8, scheme="fixup", branch_layers=1, rng=0)
    with pytest.raises(ValueError, match="branch_layers"):
        residual.init_residual(3, 8, branch_layers=3, rng=0)
    net = residual.init_residual(3, 8, rng=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 8\)"):
        residual.residual_forward(np.ones((4, 7)), net)
    with pytest.raises(ValueError, match="non-finite"):
        residual.residual_forward(np.full((4, 8), np.nan), net)
    fp = residual.residual_forward(np.ones((4, 8)), net, keep_cache=False)
    with pytest.raises(ValueError, match="keep_cache=True"):
        residual.residual_backward(fp, net, np.ones((4, 8)))
    fp = residual.residual_forward(np.ones((4, 8)), net)
    with pytest.raises(ValueError, match="output's shape"):
        residual.residual_backward(fp, net, np.ones((4, 9)))
    with pytest.raises(ValueError, match="q0"):
        residual.predicted_variance(3, q0=-1.0)


def test_branch_gain() -> None:
    assert residual.branch_gain(1) == 1.0 and residual.branch_gain(2) == 1.0
    assert math.isnan(residual.branch_gain(2, normalize=True))
    with pytest.raises(ValueError, match="branch_layers"):
        residual.branch_gain(3)


def test_train_residual_learns_with_fixup_and_is_reproducible() -> None:
    from course_lib.data import digits_split

    data = digits_split(rng=11)
    a = residual.train_residual(data, depth=3, width=16, scheme="fixup", epochs=2, rng=12)
    b = residual.train_residual(data, depth=3, width=16, scheme="fixup", epochs=2, rng=12)
    assert a.train_loss.shape == (3,) and not a.diverged
    assert a.train_loss[0] == pytest.approx(math.log(10))  # zero classifier: uniform softmax
    assert a.train_loss[-1] < 0.5 * a.train_loss[0]
    np.testing.assert_array_equal(a.train_loss, b.train_loss)


def test_train_residual_marks_a_diverged_run() -> None:
    from course_lib.data import digits_split

    data = digits_split(rng=11)
    run = residual.train_residual(data, depth=20, width=16, scheme="plain", epochs=2, lr=0.1,
                                  rng=13)
    assert run.diverged and math.isinf(run.train_loss[-1]) and run.test_acc[-1] == 0.1
