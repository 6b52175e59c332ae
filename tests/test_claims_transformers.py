"""The claims of book/papers/transformers.md, recomputed with the chapter's seeds.

The chapter draws ``logit_rng, gpt_rng, ln_rng = default_rng(2017).spawn(3)`` and calls the same
``course_lib.attention`` functions over five seeds; each test asserts what the prose states, for
the median with its range or for every seed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import attention, seeds

pytestmark = pytest.mark.slow

SEED = 2017
D_KS, N_KEYS, DEPTHS = (16, 64, 256), 32, (6, 24)


def _rngs() -> list[np.random.Generator]:
    return list(np.random.default_rng(SEED).spawn(3))


@pytest.fixture(scope="module")
def logits() -> list[dict[tuple[int, bool], tuple[float, float]]]:
    return seeds.over_seeds(
        lambda g: attention.logit_sweep(D_KS, n_tokens=N_KEYS, rng=g), rng=_rngs()[0]
    )


def test_scaled_logits_have_unit_variance_and_raw_ones_d_k(
    logits: list[dict[tuple[int, bool], tuple[float, float]]],
) -> None:
    # Each variance is estimated from 8192 logits: relative standard error <= 0.05 (see
    # test_attention._logit_var_z), so the median of five is within 10 % of the prediction.
    for d_k in D_KS:
        scaled = seeds.summarize([r[d_k, True][0] for r in logits])
        raw = seeds.summarize([r[d_k, False][0] for r in logits])
        assert abs(scaled.median - 1.0) < 0.1
        assert abs(raw.median / d_k - 1.0) < 0.1


def test_unscaled_softmax_saturates_and_scaled_stays_near_uniform(
    logits: list[dict[tuple[int, bool], tuple[float, float]]],
) -> None:
    ln_t = math.log(N_KEYS)
    for d_k in D_KS:
        assert seeds.summarize([r[d_k, True][1] for r in logits]).all_above(0.8 * ln_t)
    raw = [seeds.summarize([r[d_k, False][1] for r in logits]) for d_k in D_KS]
    assert raw[0].median > raw[1].median > raw[2].median  # falls as d_k grows
    # "most rows put nearly all their weight on one key" at d_k = 64 and 256
    assert raw[1].all_below(0.2 * ln_t) and raw[2].all_below(0.2 * ln_t)


@pytest.fixture(scope="module")
def gpt() -> list[dict[tuple[int, bool], attention.StackStatistics]]:
    return seeds.over_seeds(
        lambda g: attention.residual_scaling_comparison(DEPTHS, d_model=128, rng=g),
        rng=_rngs()[1],
    )


def test_residual_scaling_makes_the_stream_depth_independent(
    gpt: list[dict[tuple[int, bool], attention.StackStatistics]],
) -> None:
    raw = seeds.summarize([r[24, False].stream_ms[-1] / r[6, False].stream_ms[-1] for r in gpt])
    scaled = seeds.summarize([r[24, True].stream_ms[-1] / r[6, True].stream_ms[-1] for r in gpt])
    assert 3.0 < raw.median < 5.0  # "close to the ~4 of eq-tr-stream"
    assert scaled.low > 0.8 and scaled.high < 1.25  # depth-independent in every seed
    errs = [
        abs(s.stream_ms[0] + s.attn_ms.sum() + s.mlp_ms.sum() - s.stream_ms[-1])
        / s.stream_ms[-1]
        for s in (r[24, False] for r in gpt)
    ]
    assert max(errs) < 0.15  # the branch sum predicts the final mean square


def test_embeddings_and_uniform_attention_at_init(
    gpt: list[dict[tuple[int, bool], attention.StackStatistics]],
) -> None:
    emb = seeds.summarize([r[24, True].stream_ms[0] for r in gpt])
    # 2 * 0.02^2 = 8e-4; the estimate averages 4*16*128 squares of a normal: rel. se ~ 1 %
    assert abs(emb.median / 8e-4 - 1) < 0.05
    # "most of the stream comes from the branches after one layer"
    assert seeds.summarize([r[24, False].stream_ms[1] / r[24, False].stream_ms[0]
                            for r in gpt]).all_above(2.0)
    uniform = float(np.mean(np.log(np.arange(1, 17))))
    for r in gpt:
        assert abs(r[24, True].entropy.mean() - uniform) < 0.01


@pytest.fixture(scope="module")
def ln() -> list[dict[tuple[int, str], np.ndarray]]:
    return seeds.over_seeds(
        lambda g: attention.ln_placement_comparison(DEPTHS, d_model=64, rng=g), rng=_rngs()[2]
    )


def test_pre_ln_last_layer_gradient_shrinks_with_depth_and_post_ln_does_not(
    ln: list[dict[tuple[int, str], np.ndarray]],
) -> None:
    pre = seeds.summarize([r[24, "pre"][-1] / r[6, "pre"][-1] for r in ln])
    post = seeds.summarize([r[24, "post"][-1] / r[6, "post"][-1] for r in ln])
    assert abs(pre.median - math.sqrt(6 / 24)) < 0.15
    assert 0.8 < post.median < 1.25
    assert pre.high < 0.7 < post.low  # "which every seed shows"
    assert seeds.summarize([r[24, "post"][-1] / r[24, "pre"][-1] for r in ln]).all_above(2.0)


def test_pre_ln_lower_layers_get_larger_gradients(
    ln: list[dict[tuple[int, str], np.ndarray]],
) -> None:
    for n in DEPTHS:
        grads = np.array([r[n, "pre"] for r in ln])
        med = np.median(grads, axis=0)
        assert med[0] > med[-1]
