"""course_lib.attention: the NumPy transformer's kernels, backward passes and statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import attention

Z_MAX = 4.0  # |z| > 4 has probability 6e-5 under N(0, 1)


def test_gelu_and_derivative() -> None:
    x = np.linspace(-4, 4, 81)
    # the tanh form is within 1e-3 of x * Phi(x)
    phi = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    assert np.max(np.abs(attention.gelu(x) - x * phi)) < 1e-3
    h = 1e-6
    fd = (attention.gelu(x + h) - attention.gelu(x - h)) / (2 * h)
    np.testing.assert_allclose(attention.gelu_derivative(x), fd, rtol=1e-6, atol=1e-8)


def test_layer_norm_rows_have_unit_mean_square() -> None:
    x = np.random.default_rng(0).normal(3.0, 50.0, (5, 64))
    u, _ = attention.layer_norm(x)
    np.testing.assert_allclose(u.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose((u * u).mean(axis=-1), 1, rtol=1e-6)


def test_attention_entropy_limits() -> None:
    assert attention.attention_entropy(np.full(8, 1 / 8)) == pytest.approx(math.log(8))
    assert attention.attention_entropy(np.eye(4)[0]) == 0.0


def test_causal_attention_ignores_the_future() -> None:
    rng = np.random.default_rng(1)
    ws = [rng.standard_normal((8, 8)) / math.sqrt(8) for _ in range(4)]
    x = rng.standard_normal((1, 5, 8))
    y = x.copy()
    y[0, 3:] += 10.0  # change only tokens 3 and 4
    a, cache = attention.attention_forward(x, *ws, n_heads=2, causal=True)
    b, _ = attention.attention_forward(y, *ws, n_heads=2, causal=True)
    np.testing.assert_allclose(a[0, :3], b[0, :3])
    assert np.all(np.triu(cache.p[0, 0], 1) == 0)


# ---------------------------------------------------------------- finite differences ----


def _fd_errors(norm: str, causal: bool, *, perturb_backward: bool = False) -> float:
    """Largest relative error of transformer_backward (input and all weights of layer 0) against
    central differences on a 2-layer, d=8, 2-head stack; with ``perturb_backward`` the backward
    pass is given the post-LN trace of a pre-LN forward (a wrong Jacobian) to prove the check
    can fail."""
    rng = np.random.default_rng(2)
    layers = attention.init_transformer(2, 8, init="xavier", rng=rng)
    x = rng.standard_normal((2, 3, 8))
    G = rng.standard_normal((2, 3, 8))

    def loss() -> float:
        tr = attention.transformer_forward(x, layers, norm=norm, n_heads=2, causal=causal)
        return float(np.sum(G * tr.output))

    tr = attention.transformer_forward(x, layers, norm=norm, n_heads=2, causal=causal)
    if perturb_backward:
        tr.norm = "post" if norm == "pre" else "pre"
        tr.final_cache = None
    gx, wg = attention.transformer_backward(tr, layers, G)
    errs = []
    eps = 1e-6
    for arr, grad in [(x, gx)] + [(getattr(layers[0], k), wg[0][k]) for k in wg[0]]:
        num = np.zeros_like(arr)
        idxs = list(np.ndindex(arr.shape))[:: max(1, arr.size // 24)]
        for idx in idxs:
            old = arr[idx]
            arr[idx] = old + eps
            up = loss()
            arr[idx] = old - eps
            down = loss()
            arr[idx] = old
            num[idx] = (up - down) / (2 * eps)
        sel = tuple(np.array(idxs).T)
        errs.append(np.max(np.abs(num[sel] - grad[sel])) / (np.max(np.abs(num[sel])) + 1e-12))
    return float(max(errs))


@pytest.mark.parametrize(("norm", "causal"), [("pre", True), ("post", False), ("post", True)])
def test_backward_matches_finite_differences(norm: str, causal: bool) -> None:
    # central differences with h = 1e-6 on O(1) quantities: truncation ~1e-12, rounding ~1e-10
    assert _fd_errors(norm, causal) < 1e-6


def test_finite_difference_check_catches_the_wrong_backward() -> None:
    assert _fd_errors("pre", True, perturb_backward=True) > 1e-2


# ------------------------------------------------------------------- sqrt(d_k) ----------


def _logit_var_z(d_k: int, scaled: bool, claimed: float, seed: int) -> float:
    """z-score of the logits' variance against ``claimed``.

    The variance estimate over N = n_rows * n_tokens logits: each logit s = sum_a q_a k_a / c
    has kurtosis 3 + 6/d_k (a sum of d_k products of independent normals, each of kurtosis 9),
    so Var(s^2) = (2 + 6/d_k) Var(s)^2. The logits sharing a query are correlated in s^2
    (through |q|^2), which inflates the variance of the mean by about 1 + (T - 1) * 2/d_k; we
    use that design effect in the standard error.
    """
    n_rows, n_tok = 256, 32
    v, _ = attention.logit_statistics(
        d_k, n_tokens=n_tok, n_rows=n_rows, scaled=scaled, rng=np.random.default_rng(seed)
    )
    n = n_rows * n_tok
    design = 1 + (n_tok - 1) * 2 / d_k
    se = claimed * math.sqrt((2 + 6 / d_k) * design / n)
    return (v - claimed) / se


@pytest.mark.parametrize("d_k", [16, 64, 256])
def test_scaled_logits_have_variance_var_q_var_k(d_k: int) -> None:
    assert abs(_logit_var_z(d_k, True, 1.0, seed=d_k)) < Z_MAX
    assert abs(_logit_var_z(d_k, False, float(d_k), seed=d_k + 1)) < Z_MAX


@pytest.mark.parametrize("d_k", [16, 64, 256])
def test_logit_check_fails_without_the_scaling(d_k: int) -> None:
    # Power check: unscaled logits do not have variance Var(q) Var(k) = 1.
    assert abs(_logit_var_z(d_k, False, 1.0, seed=d_k)) > Z_MAX


def test_logit_variance_scales_with_var_q_var_k() -> None:
    v, _ = attention.logit_statistics(64, var_q=4.0, var_k=0.25, n_rows=512, rng=3)
    # claimed 1.0; standard error as in _logit_var_z (about 0.05 here), 4 sigma
    assert abs(v - 1.0) < 4 * math.sqrt((2 + 6 / 64) * (1 + 31 * 2 / 64) / (512 * 32))


def test_unscaled_large_heads_saturate_the_softmax() -> None:
    _, ent_scaled = attention.logit_statistics(256, rng=4)
    _, ent_raw = attention.logit_statistics(256, rng=4, scaled=False)
    assert ent_scaled > 0.8 * math.log(32)
    assert ent_raw < 0.2 * math.log(32)


# ------------------------------------------------------------ GPT-2 conventions ----------


def test_gpt2_init_stds() -> None:
    layers = attention.init_transformer(12, 64, rng=5)
    w = layers[0]
    # sample std of 64*64 (or 64*256) draws: relative standard error 1/sqrt(2 n) < 1.2 %
    assert w.wq.std() == pytest.approx(0.02, rel=5 * 0.012)
    assert w.wo.std() == pytest.approx(0.02 / math.sqrt(24), rel=5 * 0.012)
    assert w.w2.std() == pytest.approx(0.02 / math.sqrt(24), rel=5 * 0.006)
    unscaled = attention.init_transformer(12, 64, scale_residual=False, rng=5)[0]
    assert unscaled.wo.std() == pytest.approx(0.02, rel=5 * 0.012)


def test_embeddings_add_token_and_position() -> None:
    wte = np.arange(12.0).reshape(4, 3)
    wpe = np.ones((5, 3))
    out = attention.embed_tokens(np.array([[0, 3]]), wte, wpe, multiplier=2.0)
    np.testing.assert_allclose(out[0], [2 * wte[0] + 1, 2 * wte[3] + 1])


def test_pre_ln_stream_adds_the_branch_variances() -> None:
    # eq-tr-stream: the final mean square is the embeddings' plus the branches' (cross terms
    # have mean zero over the weights); one draw of a 6-layer stack lands within 25 %.
    s = attention.stack_statistics(6, d_model=64, norm="pre", scale_residual=False, rng=6)
    pred = s.stream_ms[0] + s.attn_ms.sum() + s.mlp_ms.sum()
    assert abs(pred - s.stream_ms[-1]) / s.stream_ms[-1] < 0.25


def test_post_ln_stream_has_unit_mean_square() -> None:
    s = attention.stack_statistics(3, d_model=32, norm="post", init="xavier", rng=7)
    np.testing.assert_allclose(s.stream_ms[1:], 1.0, rtol=1e-3)


# ---------------------------------------------------------------------- bad input ----------


def test_bad_input_gets_clear_errors() -> None:
    w = np.zeros((8, 8))
    with pytest.raises(ValueError, match="batch, tokens, d_model"):
        attention.attention_forward(np.zeros((3, 8)), w, w, w, w)
    with pytest.raises(ValueError, match="divisor"):
        attention.attention_forward(np.zeros((1, 2, 8)), w, w, w, w, n_heads=3)
    with pytest.raises(ValueError, match=r"wk must have shape \(8, 8\)"):
        attention.attention_forward(np.zeros((1, 2, 8)), w, np.zeros((8, 4)), w, w)
    with pytest.raises(ValueError, match="unknown norm"):
        attention.transformer_forward(
            np.zeros((1, 2, 8)), attention.init_transformer(1, 8, rng=0), norm="sandwich"
        )
    with pytest.raises(ValueError, match="d_model = 4"):
        attention.transformer_forward(np.zeros((1, 2, 4)), attention.init_transformer(1, 8, rng=0))
    with pytest.raises(ValueError, match="layers is empty"):
        attention.transformer_forward(np.zeros((1, 2, 8)), [])
    with pytest.raises(ValueError, match="unknown init"):
        attention.init_transformer(2, 8, init="kaiming", rng=0)
    with pytest.raises(ValueError, match="n_layers"):
        attention.init_transformer(0, 8, rng=0)
    with pytest.raises(ValueError, match="token ids"):
        attention.embed_tokens(np.array([[5]]), np.zeros((4, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="position embeddings"):
        attention.embed_tokens(np.array([[0, 1, 2]]), np.zeros((4, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="d_k"):
        attention.logit_statistics(0, rng=0)
    tr = attention.transformer_forward(np.ones((1, 2, 8)), attention.init_transformer(1, 8, rng=0))
    with pytest.raises(ValueError, match="grad_output must have shape"):
        attention.transformer_backward(tr, attention.init_transformer(1, 8, rng=0), np.ones(3))
