"""The headline claims of the paper-reproduction chapters, recomputed with the chapters' seeds.

The chapters call ``course_lib.papers.*_experiment(rng=np.random.default_rng(SEED))`` as their
first draw, so these tests see exactly the numbers the book quotes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import initializers as init
from course_lib import papers

pytestmark = pytest.mark.slow

HE_SEED, GLOROT_SEED = 2015, 2010


@pytest.fixture(scope="module")
def he() -> papers.PaperExperiment:
    return papers.he2015_experiment(rng=np.random.default_rng(HE_SEED))


@pytest.fixture(scope="module")
def glorot() -> papers.PaperExperiment:
    return papers.glorot2010_experiment(rng=np.random.default_rng(GLOROT_SEED))


def test_he2015_one_over_n_net_stalls_while_two_over_n_trains(he: papers.PaperExperiment) -> None:
    h1 = he.runs["Var(w) = 1/n"][0]
    h2 = he.runs["Var(w) = 2/n (He)"][0]
    # 1/n: the logits are ~constant, so the loss starts at ln 10 and stays within 0.5 % of it.
    assert abs(h1.train_loss[0] - math.log(10)) < 1e-3
    assert abs(h1.train_loss[-1] - h1.train_loss[0]) / h1.train_loss[0] < 0.005
    assert h1.val_acc[-1] < 0.2  # chance is 0.1
    # 2/n: the loss drops by more than a factor 2.5 (the chapter quotes the measured factor).
    assert h2.train_loss[0] / h2.train_loss[-1] > 2.5
    assert h2.val_acc[-1] > 0.7
    assert not h1.diverged and not h2.diverged


def test_he2015_signal_decays_like_two_to_the_minus_depth(he: papers.PaperExperiment) -> None:
    a1 = he.at_init["Var(w) = 1/n"].act_std
    a2 = he.at_init["Var(w) = 2/n (He)"].act_std
    depth = len(a1)
    ratio = a2[-1] / a1[-1]
    # One width-64 net: each layer's gain is 1/2 only on average; over 30 layers the log-ratio has
    # a spread of about one unit, so the chapter's claim is "of the order of 2^(L/2)": within 10x.
    assert 2 ** (depth / 2) / 10 < ratio < 2 ** (depth / 2) * 10
    g1 = he.at_init["Var(w) = 1/n"].weight_grad_norms
    g2 = he.at_init["Var(w) = 2/n (He)"].weight_grad_norms
    assert g1[0] < 1e-3 * g2[0]


def test_he2015_decay_rate_over_independent_networks() -> None:
    """Geometric mean over 6 networks of the per-layer std ratio: within 20 % of sqrt(2)."""
    rng = np.random.default_rng(7)
    data = papers.digits_split(rng=rng)
    sizes = [64] + [64] * 30 + [10]
    logs = []
    for _ in range(6):
        r1 = papers.network_at_init(
            data.X_train[:256], data.y_train[:256], sizes, init.lecun_normal, "relu", rng=rng
        )
        r2 = papers.network_at_init(
            data.X_train[:256], data.y_train[:256], sizes, init.he_normal, "relu", rng=rng
        )
        logs.append(math.log(r2.act_std[-1] / r1.act_std[-1]) / 30)
    per_layer = math.exp(float(np.mean(logs)))
    assert abs(per_layer / math.sqrt(2) - 1) < 0.2, per_layer


def test_glorot2010_heuristic_shrinks_activations_and_gradients(
    glorot: papers.PaperExperiment,
) -> None:
    std = glorot.at_init["standard U(±1/√n)"]
    xav = glorot.at_init["normalized (Xavier uniform)"]
    hidden = len(std.act_std)
    # Variance ratio layer L / layer 1: at most the linear prediction 3^-(L-1) (tanh only removes
    # variance) and not below half of it.
    ratio = (std.act_std[-1] / std.act_std[0]) ** 2
    assert 0.5 * 3.0 ** -(hidden - 1) < ratio <= 3.0 ** -(hidden - 1)
    assert xav.act_std[-1] / xav.act_std[0] > 0.5
    # Gradients shrink towards the input with the heuristic, far less with normalized init.
    assert std.grad_std[0] / std.grad_std[-1] < 0.2
    assert xav.grad_std[0] / xav.grad_std[-1] > 0.4


def test_glorot2010_training_effect_is_about_speed(glorot: papers.PaperExperiment) -> None:
    std = glorot.runs["standard U(±1/√n)"]
    xav = glorot.runs["normalized (Xavier uniform)"]
    # After one epoch the normalized nets are far ahead ...
    assert max(h.train_loss[1] for h in xav) < min(h.train_loss[1] for h in std)
    # ... and both end with a test error below 6 %, normalized no worse on average.
    err_std = np.mean([1 - h.val_acc[-1] for h in std])
    err_xav = np.mean([1 - h.val_acc[-1] for h in xav])
    assert err_xav <= err_std < 0.06
