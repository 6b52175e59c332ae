"""The claims of the paper chapters (he2015, glorot2010, beyond), over the chapters' seeds.

Each chapter makes one generator, runs its experiment once per child of ``rng.spawn(5)`` through a
``course_lib`` function, and glues the median and range. These tests call the same functions with
the same generators and assert what the prose states: for the median with its spread, or for every
seed. A single training trajectory follows the BLAS kernel's rounding; statements over five seeds
with margins do not, so these tests must pass under every ``OPENBLAS_CORETYPE`` (``make
test-portability``). Each check comes with a power check: the wrong variant the claim is about,
run through the same check, fails it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import modern, papers
from course_lib.data import digits_split, load_digits, standardize
from course_lib.seeds import over_seeds, summarize

pytestmark = pytest.mark.slow

HE_SEED, GLOROT_SEED, BEYOND_SEED = 2015, 2010, 20100
N_SEEDS = 5
LN10 = math.log(10)
ONE_OVER_N, TWO_OVER_N = "Var(w) = 1/n", "Var(w) = 2/n (He)"
STD, XAV = papers.glorot2010_schemes()


# --------------------------------------------------------------------------- he2015 (seed 2015)


@pytest.fixture(scope="module")
def he_streams() -> list[np.random.Generator]:
    return list(np.random.default_rng(HE_SEED).spawn(2))  # experiment, learning rates


@pytest.fixture(scope="module")
def he(he_streams: list[np.random.Generator]) -> papers.PaperExperiment:
    return papers.he2015_experiment(rng=he_streams[0], n_seeds=N_SEEDS)


@pytest.fixture(scope="module")
def he_lr(he_streams: list[np.random.Generator]) -> dict[float, list]:
    return papers.he2015_learning_rates(rng=he_streams[1], lr_factors=(10, 100), n_seeds=N_SEEDS)


def stays_at_chance(h: object) -> bool:
    """The chapter's 'has not learned': final training loss within 1 % of ln 10, the loss of a
    uniform guess over 10 classes (the 1/n nets' logits are nearly constant, so their loss moves
    by less than 1e-3 relative; 1 % leaves an order of magnitude of margin)."""
    return abs(h.train_loss[-1] / LN10 - 1) < 0.01  # type: ignore[attr-defined]


def test_he2015_one_over_n_never_learns_and_two_over_n_always_does(
    he: papers.PaperExperiment,
) -> None:
    runs_1n, runs_2n = he.runs[ONE_OVER_N], he.runs[TWO_OVER_N]
    assert len(runs_1n) == len(runs_2n) == N_SEEDS
    for h in runs_1n:
        # the logits start ~constant: loss ln 10 to 1e-3, and no 1/n seed leaves it
        assert abs(h.train_loss[0] - LN10) < 1e-3
        assert stays_at_chance(h)
        assert not h.diverged
    # chapter: "every 2/n net ends with a lower loss and a higher test accuracy than every 1/n net"
    assert max(h.train_loss[-1] for h in runs_2n) < min(h.train_loss[-1] for h in runs_1n)
    assert min(h.val_acc[-1] for h in runs_2n) > max(h.val_acc[-1] for h in runs_1n)
    # power: the 2/n nets, run through the same 'has not learned' check, fail it in every seed
    assert not any(stays_at_chance(h) for h in runs_2n)


def test_he2015_larger_learning_rates_do_not_rescue_one_over_n(
    he_lr: dict[float, list], he: papers.PaperExperiment
) -> None:
    assert sorted(he_lr) == [10.0, 100.0]
    for runs in he_lr.values():
        assert len(runs) == N_SEEDS
        # E5: at 10x and 100x the rate, every seed stays at chance (loss ln 10, accuracy ~0.1)
        assert all(stays_at_chance(h) for h in runs)
        assert max(h.val_acc[-1] for h in runs) < 0.2
    # power: the same check rejects every 2/n net trained at the base rate
    assert not any(stays_at_chance(h) for h in he.runs[TWO_OVER_N])


def _log2_ratio_check(log2_ratios: list[float], width: int, depth: int) -> bool:
    """Is the mean over seeds of log2(std_L(2/n) / std_L(1/n)) within 6 SE of depth/2?

    Sampling distribution: for one input, a ReLU layer of width n multiplies the second moment by
    its mean over n units of z^2 1{z>0} (times n Var(w)), whose relative variance is
    (E[z^4 1{z>0}] - 1/4) / (1/4) = (3/2 - 1/4) / (1/4) = 5 per unit, 5/n for the layer. In ln of
    the std that is 5/(4n) per layer, 5 depth/(4n) over the net, twice that for the ratio of two
    independent nets; the mean over R seeds divides by R. In log2: divide the sd by ln 2.
    (Averaging over the batch only lowers the variance, so the SE is conservative.)
    """
    R = len(log2_ratios)
    se = math.sqrt(2 * 5 * depth / (4 * width) / R) / math.log(2)
    return abs(float(np.mean(log2_ratios)) - depth / 2) <= 6 * se


def test_he2015_signal_ratio_is_two_to_the_depth_over_two(he: papers.PaperExperiment) -> None:
    depth, width = len(he.layer_sizes) - 2, he.layer_sizes[1]
    pairs = list(zip(he.at_init[ONE_OVER_N], he.at_init[TWO_OVER_N], strict=True))
    log2_ratios = [math.log2(r2.act_std[-1] / r1.act_std[-1]) for r1, r2 in pairs]
    assert len(log2_ratios) == N_SEEDS
    assert _log2_ratio_check(log2_ratios, width, depth)
    # chapter: the first weight matrix's gradients are orders of magnitude apart in every seed
    # (predicted 2^(-depth/2) = 10^-4.5 for the back-propagated factor)
    gaps = [math.log10(r2.weight_grad_norms[0] / r1.weight_grad_norms[0]) for r1, r2 in pairs]
    assert min(gaps) > 3

    # power: two 2/n nets (no factor 2^(L/2) between them) through the same check fail it
    data = digits_split(rng=np.random.default_rng(HE_SEED))
    X, y = data.X_train[:512], data.y_train[:512]
    same = over_seeds(
        lambda g: [
            papers.network_at_init(X, y, he.layer_sizes, papers.he2015_schemes()[TWO_OVER_N],
                                   "relu", rng=g)
            for _ in range(2)
        ],
        n_seeds=N_SEEDS,
        rng=np.random.default_rng(1),
    )
    null_ratios = [math.log2(b.act_std[-1] / a.act_std[-1]) for a, b in same]
    assert not _log2_ratio_check(null_ratios, width, depth)
    assert min(math.log10(b.weight_grad_norms[0] / a.weight_grad_norms[0]) for a, b in same) < 3


# --------------------------------------------------------------------------- glorot2010 (2010)


@pytest.fixture(scope="module")
def glorot() -> papers.PaperExperiment:
    return papers.glorot2010_experiment(rng=np.random.default_rng(GLOROT_SEED), n_seeds=N_SEEDS)


def test_glorot2010_first_layer_factor_is_computed_from_the_sizes(
    glorot: papers.PaperExperiment,
) -> None:
    # E8: the first layer maps 64 pixels to 256 units; Xavier's forward factor 2 n_in/(n_in+n_out)
    n0, n1 = glorot.layer_sizes[:2]
    assert (n0, n1) == (64, 256)
    assert 2 * n0 / (n0 + n1) == pytest.approx(0.4)
    # ... which is visible: the first layer's activation std is below the input's 1 for every seed
    assert all(r.act_std[0] < math.sqrt(0.4) for r in glorot.at_init[XAV])


def heuristic_shrinks_like_linear(ratio: float, hidden: int) -> bool:
    """The chapter's statement: the layer-L/layer-1 variance ratio is at most the linear prediction
    3^-(L-1) (|tanh p| <= |p| only removes variance) and within a factor 2 of it."""
    pred = 3.0 ** -(hidden - 1)
    return 0.5 * pred < ratio <= pred


def test_glorot2010_heuristic_shrinks_activations_and_gradients(
    glorot: papers.PaperExperiment,
) -> None:
    hidden = len(glorot.layer_sizes) - 2
    std_nets, xav_nets = glorot.at_init[STD], glorot.at_init[XAV]
    assert len(std_nets) == len(xav_nets) == N_SEEDS
    for r in std_nets:
        assert heuristic_shrinks_like_linear((r.act_std[-1] / r.act_std[0]) ** 2, hidden)
    # power: normalized initialization's ratio is far outside the same check in every seed
    for r in xav_nets:
        assert not heuristic_shrinks_like_linear((r.act_std[-1] / r.act_std[0]) ** 2, hidden)
    # gradients: "far more alike than the heuristic", seed by seed, by more than a factor 3
    std_g = summarize([r.grad_std[0] / r.grad_std[-1] for r in std_nets])
    xav_g = summarize([r.grad_std[0] / r.grad_std[-1] for r in xav_nets])
    assert xav_g.low > 3 * std_g.high
    # and not "alike": Xavier's layer-1 gradient is below layer 5's in every seed
    assert xav_g.high < 1.0


def test_glorot2010_heuristic_trains_slower_and_ends_worse_in_every_seed(
    glorot: papers.PaperExperiment,
) -> None:
    std_runs, xav_runs = glorot.runs[STD], glorot.runs[XAV]
    pairs = list(zip(std_runs, xav_runs, strict=True))
    assert len(pairs) == N_SEEDS
    # paired by seed (same data order): slower after one epoch, more test errors at the end.
    # With no real difference, all 5 pairs would agree in sign with probability 2/32.
    assert all(hx.train_loss[1] < hs.train_loss[1] for hs, hx in pairs)
    assert all(hx.val_acc[-1] > hs.val_acc[-1] for hs, hx in pairs)
    # power: the reversed statement (the heuristic ahead) fails for every seed
    assert not any(hs.train_loss[1] < hx.train_loss[1] for hs, hx in pairs)


# --------------------------------------------------------------------------- beyond (seed 20100)


@pytest.fixture(scope="module")
def beyond() -> dict[str, list]:
    """The chapter's experiments, in the chapter's order, from its generator."""
    rng = np.random.default_rng(BEYOND_SEED)
    X, _ = load_digits()
    X_std, _, _ = standardize(X)
    iso = over_seeds(lambda g: modern.isometry_spectra(width=128, depth=50, rng=g), rng=rng)
    lsuv = over_seeds(
        lambda g: {
            act: modern.lsuv_comparison(X_std, [64] + [256] * 10, act, rng=g, tol=0.01)
            for act in ("relu", "tanh")
        },
        rng=rng,
    )
    selu = over_seeds(lambda g: modern.selu_depth_profile(depth=50, width=256, rng=g), rng=rng)
    return {"iso": iso, "lsuv": lsuv, "selu": selu}


def is_isometry(sv: np.ndarray) -> bool:
    """All singular values 1 up to the rounding of 50 products (about 50 * 1e-16 each)."""
    return bool(np.abs(sv - 1).max() < 1e-10)


def test_beyond_orthogonal_linear_net_is_an_isometry_and_gaussian_is_not(
    beyond: dict[str, list],
) -> None:
    for spectra in beyond["iso"]:
        assert is_isometry(spectra["orthogonal", "linear"])
        gauss = spectra["Gaussian, Var 1/n", "linear"]
        # power: the Gaussian product fails the same check ...
        assert not is_isometry(gauss)
        # ... with its largest singular value over 100 times its median (chapter: max vs median)
        assert gauss[0] / np.median(gauss) > 100
        # with tanh the orthogonal spectrum stays narrower than the Gaussian one (median ratio)
        o, g = spectra["orthogonal", "tanh"], spectra["Gaussian, Var 1/n", "tanh"]
        assert np.median(o) > 100 * np.median(g)


def he_keeps_relu_variance_near_two(var: float, depth: int, width: int) -> bool:
    """He's last-layer pre-activation variance is 2 in expectation; its ln fluctuates with
    variance about 5/width per layer (see _log2_ratio_check): 6 SE over depth layers."""
    return abs(math.log(var / 2)) <= 6 * math.sqrt(5 * depth / width)


def test_beyond_lsuv_reaches_unit_variance_and_fixed_schemes_do_what_they_predict(
    beyond: dict[str, list],
) -> None:
    depth, width = 10, 256
    for per_act in beyond["lsuv"]:
        for res, _ in per_act.values():
            # LSUV's own stopping rule: every layer within tol = 0.01 of 1
            assert np.all(np.abs(res.variances - 1) < 0.01)
        _, plain = per_act["relu"]
        assert he_keeps_relu_variance_near_two(plain["He normal"][-1], depth, width)
        # power: orthogonal (gain 1) halves the second moment per layer, 2^-10 in all: rejected
        assert not he_keeps_relu_variance_near_two(plain["orthogonal"][-1], depth, width)
        assert plain["orthogonal"][-1] < 0.01


def selu_self_normalizes(std: float) -> bool:
    """The chapter: the last SELU layer's std is within 10 % of 1 (the attracting fixed point)."""
    return abs(std - 1) < 0.1


def test_beyond_selu_lecun_stays_normalized_and_he_does_not(beyond: dict[str, list]) -> None:
    for profile in beyond["selu"]:
        means, stds = profile["LeCun normal"]
        assert selu_self_normalizes(stds[-1]) and abs(means[-1]) < 0.1
        # power: He-normal weights (tau = 2) fail the same check in every seed
        assert not selu_self_normalizes(profile["He normal"][1][-1])
        assert profile["He normal"][1][-1] > 10


def test_selu_map_settles_far_from_unit_variance_for_he() -> None:
    """E12: with tau = 2 the exact map settles (it does not grow without bound) near (1.78, 18.5);
    with tau = 1.2 near (0.11, 1.89); with tau = 1 at (0, 1)."""
    mu2, nu2 = modern.selu_fixed_point(tau=2.0)
    assert (mu2, nu2) == pytest.approx((1.78, 18.46), abs=0.01)
    # it is a fixed point of the map itself
    assert modern.selu_mapping(mu2, nu2, tau=2.0) == pytest.approx((mu2, nu2), abs=1e-8)
    assert modern.selu_fixed_point(tau=1.2) == pytest.approx((0.113, 1.891), abs=1e-3)
    assert modern.selu_fixed_point(tau=1.0) == pytest.approx((0.0, 1.0), abs=1e-9)
    with pytest.raises(ValueError, match="did not settle"):
        modern.selu_fixed_point(tau=2.0, steps=3)
