"""Claims of the scheme chapters, recomputed with course_lib and the chapters' own seeds.

Chapters: book/lecun.md (seed 6), book/xavier.md (seed 7), book/he.md (seed 8),
book/comparing.md (seed 9). Each fixture rebuilds the chapter's experiment in the chapter's
order of draws (``Generator.spawn`` does not advance a generator's stream, so a test can skip
an experiment that only spawned children, by spawning the same number itself). Each test asserts
what the prose says, with the tolerance and its justification next to the assertion, and each
quantitative check also asserts that its tolerance excludes the answer a plausible mistake gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

import course_lib as cl

FloatArray = npt.NDArray[np.float64]
Init = Callable[..., FloatArray]
Labels = npt.NDArray[Any]
Z = 6.0  # tolerances at >= 6 standard errors


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    # The matrices here are small (256 x 256); with several BLAS threads on a busy 2-core
    # machine the threads spin against each other and the module takes minutes instead of
    # seconds. One thread gives the same numbers (the draws do not depend on it).
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def fixed_std(std: float) -> Init:
    """N(0, std^2) whatever the shape, as in the chapters."""

    def init(shape: tuple[int, ...], *, rng: np.random.Generator | None = None) -> FloatArray:
        return cl.normal(shape, std, rng=rng)

    init.__name__ = f"std {std:g}"
    return init


# --------------------------------------------------------------------------------------------
# LeCun (book/lecun.md), seed 6
# --------------------------------------------------------------------------------------------

LECUN_SEED = 6
L_DEPTH, L_WIDTH, L_BATCH = 20, 256, 1000
L_SCHEMES: dict[str, Init] = {
    "LeCun normal": cl.lecun_normal,
    "std 1": fixed_std(1.0),
    "std 0.01": fixed_std(0.01),
}
L_ACTIVATIONS = ("linear", "tanh", "selu")

LecunRuns = dict[tuple[str, str], tuple[FloatArray, FloatArray]]


def _lecun_stds(
    init: Init, act: str, rng: np.random.Generator, depth: int = L_DEPTH
) -> tuple[FloatArray, FloatArray]:
    X = rng.standard_normal((L_BATCH, L_WIDTH))
    weights = [init((L_WIDTH, L_WIDTH), rng=rng) for _ in range(depth)]
    fp = cl.forward(X, weights, act, keep="stats")
    sat = np.array([s.saturated for s in fp.activation_stats])
    return np.asarray(fp.stds()), sat


@pytest.fixture(scope="module")
def lecun_runs() -> tuple[LecunRuns, FloatArray]:
    rng = np.random.default_rng(LECUN_SEED)
    shape = (400, 300)  # the chapter's "three forms" cell draws first
    cl.lecun_normal(shape, rng=rng)
    cl.lecun_uniform(shape, rng=rng)
    cl.lecun_truncated_normal(shape, rng=rng)
    runs: LecunRuns = {}
    for act in L_ACTIVATIONS:
        for name, init in L_SCHEMES.items():
            runs[act, name] = _lecun_stds(init, act, rng)
    mistake, _ = _lecun_stds(fixed_std(1.0 / L_WIDTH), "linear", rng, depth=5)
    return runs, mistake


def _linear_std_tolerance() -> float:
    """Largest allowed |std_l - 1| over the 20 layers of the LeCun linear net.

    For a linear layer with LeCun weights the batch second moment is multiplied by a factor with
    mean 1 and relative standard deviation about sqrt(2 (1 + n/B)) / n (n units, each a quadratic
    form in its n weights; B = batch): 0.0062 for n = 256, B = 1000. Over 20 layers the errors
    add like a random walk: sqrt(20) * 0.0062 = 0.028 in variance, 0.014 in std. Six of those:
    0.084; we allow 0.09.
    """
    n, b = L_WIDTH, L_BATCH
    per_layer = math.sqrt(2 * (1 + n / b)) / n
    return Z * math.sqrt(L_DEPTH) * per_layer / 2 + 0.005


@pytest.mark.slow
def test_lecun_keeps_linear_net_at_unit_std(lecun_runs: tuple[LecunRuns, FloatArray]) -> None:
    runs, _ = lecun_runs
    tol = _linear_std_tolerance()
    assert 0.08 < tol < 0.1
    stds = runs["linear", "LeCun normal"][0]
    assert np.max(np.abs(stds - 1.0)) < tol, stds
    # the tolerance excludes the wrong scales: He's 2/n (sqrt 2 at layer 1), the U(+-1/sqrt n)
    # heuristic (1/sqrt 3 at layer 1), and std 1 / std 0.01
    assert abs(math.sqrt(2) - 1) > tol and abs(1 / math.sqrt(3) - 1) > tol
    assert np.max(np.abs(runs["linear", "std 1"][0] - 1.0)) > tol
    assert np.max(np.abs(runs["linear", "std 0.01"][0] - 1.0)) > tol


@pytest.mark.slow
def test_lecun_tanh_decays_like_one_over_sqrt_2l(lecun_runs: tuple[LecunRuns, FloatArray]) -> None:
    runs, _ = lecun_runs
    stds = runs["tanh", "LeCun normal"][0]
    # The chapter's claim: std_l ~ 1/sqrt(2 l) (eq-lecun-tanh-decay), a power law, not a collapse.
    # The formula is asymptotic (the exact map gives 1/q_20 = 38.7 instead of 40, 1.6 % in std)
    # and one network at finite width scatters around it (measured over seeds 0..7:
    # std_20 * sqrt(40) = 1.004 +- 0.026 (sd); the chapter's seed gives 1.07). 15 % is about
    # 6 sd, and excludes the geometric collapse of a wrong scale (the 1/(3n) heuristic gives
    # 3^-10 at layer 20).
    ratio = stds[-1] * math.sqrt(2 * L_DEPTH)
    assert 0.85 < ratio < 1.15, ratio
    assert stds[4] * math.sqrt(2 * 5) == pytest.approx(1.0, abs=0.15)
    # strictly decreasing, and never below the power law by more than the tolerance
    assert np.all(np.diff(stds) < 0)


@pytest.mark.slow
def test_lecun_selu_fixed_point(lecun_runs: tuple[LecunRuns, FloatArray]) -> None:
    runs, _ = lecun_runs
    stds = runs["selu", "LeCun normal"][0]
    # same random-walk tolerance as the linear net (SELU's fixed point attracts, so it is
    # conservative)
    assert np.max(np.abs(stds - 1.0)) < _linear_std_tolerance()


@pytest.mark.slow
def test_lecun_wrong_scales(lecun_runs: tuple[LecunRuns, FloatArray]) -> None:
    runs, _ = lecun_runs
    # std 1, linear: sqrt(n)^20 = 16^20; the log error is the same random walk as above
    # (0.014 in log std), so 0.1 is > 6 standard errors and far from a factor 16 (one layer)
    big = runs["linear", "std 1"][0][-1]
    assert abs(math.log(big / 16.0**L_DEPTH)) < 0.1
    assert abs(math.log(16.0 ** (L_DEPTH - 1) / 16.0**L_DEPTH)) > 0.1
    # std 0.01: factor 0.16 per layer
    small = runs["linear", "std 0.01"][0][-1]
    assert abs(math.log(small / 0.16**L_DEPTH)) < 0.1
    assert runs["tanh", "std 0.01"][0][4] < 1e-3
    # tanh with std 1 cannot explode: std near 1, but most units saturated
    tanh_big, sat = runs["tanh", "std 1"]
    assert 0.9 < tanh_big[-1] <= 1.0
    assert sat[-1] > 0.8


@pytest.mark.slow
def test_lecun_std_one_over_n_mistake(lecun_runs: tuple[LecunRuns, FloatArray]) -> None:
    _, mistake = lecun_runs
    # std = 1/n: variance 1/n^2, the std shrinks by sqrt(n) = 16 per layer
    predicted = float(L_WIDTH) ** (-np.arange(1, 6) / 2.0)
    assert np.allclose(np.log(mistake), np.log(predicted), atol=0.05)
    # and the tolerance excludes the correct LeCun value (1) and the variance-1/n^2 vs 1/n mix-up
    assert abs(math.log(1.0 / predicted[4])) > 0.05


# --------------------------------------------------------------------------------------------
# Xavier (book/xavier.md), seed 7
# --------------------------------------------------------------------------------------------

XAVIER_SEED = 7
X_DEPTH, X_WIDTH, X_BATCH, X_REP = 10, 256, 1000, 4


def _tanh_pass(init: Init, rng: np.random.Generator) -> dict[str, FloatArray]:
    X = rng.standard_normal((X_BATCH, X_WIDTH))
    weights = [init((X_WIDTH, X_WIDTH), rng=rng) for _ in range(X_DEPTH)]
    fp = cl.forward(X, weights, "tanh", keep="stats")
    bp = cl.backward(fp, weights, rng.standard_normal((X_BATCH, X_WIDTH)), keep="stats")
    return {
        "act": np.asarray(fp.stds()),
        "grad": np.array([s.std for s in bp.preactivation_grad_stats]),
        "wgrad": np.array([s.std for s in bp.weight_grad_stats]),
    }


@pytest.fixture(scope="module")
def xavier_runs() -> dict[str, dict[str, FloatArray]]:
    rng = np.random.default_rng(XAVIER_SEED)
    out = {}
    for name, init in (("standard", cl.standard_uniform), ("xavier", cl.xavier_uniform)):
        reps = [_tanh_pass(init, child) for child in rng.spawn(X_REP)]
        out[name] = {k: np.stack([r[k] for r in reps]) for k in reps[0]}
    return out


def test_heuristic_variance_is_one_over_3n() -> None:
    rng = np.random.default_rng(XAVIER_SEED + 100)
    n, m = 256, 2000
    w = cl.standard_uniform((n, m), rng=rng)
    # a uniform sample variance has relative SE sqrt((1.8 - 1) / N)
    se = math.sqrt(0.8 / w.size)
    assert abs(w.var() * 3 * n - 1) < Z * se
    assert np.abs(w).max() <= 1 / math.sqrt(n)
    # the check has power: LeCun uniform (variance 1/n) is 3x off
    w_lecun = cl.lecun_uniform((n, m), rng=rng)
    assert abs(w_lecun.var() * 3 * n - 1) > Z * se


@pytest.mark.slow
def test_heuristic_shrinks_by_three_per_layer(
    xavier_runs: dict[str, dict[str, FloatArray]],
) -> None:
    std = xavier_runs["standard"]
    fwd_var = std["act"] ** 2
    fwd = math.exp(np.mean(np.log(fwd_var[:, 5:] / fwd_var[:, 4:-1])))
    # Forward, upper half: 1/3 per layer in variance (eq-xavier-heuristic-var). Sampling error of
    # the geometric mean over 5 layers x 4 replicates is ~0.3 %; the remaining tanh curvature at
    # layers 5-10 (pre-activation variance <= 3^-4) lowers the factor by at most ~2 %. 5 % covers
    # both and excludes the normalized scheme's factor near 1.
    assert fwd == pytest.approx(1 / 3, rel=0.05)
    # Backward, lower half: 1/3 times E[tanh'(z)^2] < 1 where the pre-activations are large.
    bwd_var = std["grad"] ** 2
    bwd = math.exp(np.mean(np.log(bwd_var[:, :4] / bwd_var[:, 1:5])))
    assert 0.25 < bwd < 1 / 3
    # Xavier (normalized) does not shrink geometrically
    xav = xavier_runs["xavier"]
    assert xav["act"][:, -1].mean() > 0.2
    assert xav["grad"][:, 0].mean() > 0.2
    assert std["act"][:, -1].mean() < 0.01
    assert std["grad"][:, 0].mean() < 0.01


@pytest.mark.slow
def test_heuristic_weight_gradients_look_even(
    xavier_runs: dict[str, dict[str, FloatArray]],
) -> None:
    std = xavier_runs["standard"]
    wg = std["wgrad"].mean(axis=0)
    act = std["act"].mean(axis=0)
    # 3^-(k-1) * 3^-(L-k) does not depend on k: even weight gradients (within 20 %), while the
    # activations span two orders of magnitude (3^4.5 = 140 in std from layer 1 to 10)
    assert wg.max() / wg.min() < 1.2
    assert act.max() / act.min() > 100


# --------------------------------------------------------------------------------------------
# He (book/he.md), seed 8
# --------------------------------------------------------------------------------------------

HE_SEED = 8
H_DEPTH, H_WIDTH, H_BATCH, H_REP, H_LAYER = 30, 256, 256, 16, 10


def _relu_pass(init: Init, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    X = rng.standard_normal((H_BATCH, H_WIDTH))
    weights = [init((H_WIDTH, H_WIDTH), rng=rng) for _ in range(H_DEPTH)]
    fp = cl.forward(X, weights, "relu")
    bp = cl.backward(fp, weights, rng.standard_normal((H_BATCH, H_WIDTH)))
    act = np.array([a.std() for a in fp.activations])
    grad = np.array([g.std() for g in bp.preactivation_grads])
    return act, grad


@pytest.fixture(scope="module")
def he_runs() -> dict[str, tuple[FloatArray, FloatArray]]:
    rng = np.random.default_rng(HE_SEED)
    out = {}
    for (name, init), child in zip(
        (("he", cl.he_normal), ("lecun", cl.lecun_normal)), rng.spawn(2), strict=True
    ):
        runs = [_relu_pass(init, r) for r in child.spawn(H_REP)]
        out[name] = (np.stack([a for a, _ in runs]), np.stack([g for _, g in runs]))
    return out


H_RATIO_REP = 64  # the test's replicates for the ratio: the chapter's 16 and 48 more


def _relu_stds_upto(init: Init, rng: np.random.Generator, layers: int) -> FloatArray:
    """The first ``layers`` activation stds of the chapter's network drawn from ``rng``.

    The chapter draws X, then the weights layer by layer, so the first ``layers`` layers are
    reproduced exactly by drawing only their weights.
    """
    X = rng.standard_normal((H_BATCH, H_WIDTH))
    weights = [init((H_WIDTH, H_WIDTH), rng=rng) for _ in range(layers)]
    return np.array([a.std() for a in cl.forward(X, weights, "relu").activations])


@pytest.fixture(scope="module")
def he_ratio_logs() -> dict[str, FloatArray]:
    rng = np.random.default_rng(HE_SEED)
    out = {}
    for (name, init), child in zip(
        (("he", cl.he_normal), ("lecun", cl.lecun_normal)), rng.spawn(2), strict=True
    ):
        # SeedSequence.spawn numbers its children, so the first 16 of these 64 are the chapter's
        out[name] = np.log(
            [_relu_stds_upto(init, r, H_LAYER)[-1] for r in child.spawn(H_RATIO_REP)]
        )
    return out


@pytest.mark.slow
def test_he_lecun_ratio_at_depth_10(
    he_runs: dict[str, tuple[FloatArray, FloatArray]], he_ratio_logs: dict[str, FloatArray]
) -> None:
    theory = H_LAYER / 2 * math.log(2)  # log 2^(10/2) = log 32, eq-he-depth
    log_he, log_lecun = he_ratio_logs["he"], he_ratio_logs["lecun"]
    # the chapter's 16 replicates are the first 16 here
    assert np.allclose(log_he[:H_REP], np.log(he_runs["he"][0][:, H_LAYER - 1]))
    est = float(log_he.mean() - log_lecun.mean())
    se = math.sqrt(log_he.var(ddof=1) / H_RATIO_REP + log_lecun.var(ddof=1) / H_RATIO_REP)
    # Tolerance: 6 standard errors of the difference of two means of 64 independent log-stds.
    # The spread of one network's log-std (about 0.15 at width 256, depth 10) is a finite-width
    # effect that no formula here predicts, so it is estimated from the replicates.
    assert abs(est - theory) < Z * se, (math.exp(est), se)
    # Power: the tolerance excludes 2^4.5 (the ratio if the input were rectified like the hidden
    # layers, one factor 2 too few), 2^10 (the variance ratio quoted as a std ratio) and 1.
    for wrong in (4.5, 10.0, 0.0):
        assert abs(est - wrong * math.log(2)) > Z * se
    # the chapter's own estimate from its 16 replicates lies within its own 6-SE band too
    est16 = float(log_he[:H_REP].mean() - log_lecun[:H_REP].mean())
    se16 = math.sqrt(log_he[:H_REP].var(ddof=1) / H_REP + log_lecun[:H_REP].var(ddof=1) / H_REP)
    assert abs(est16 - theory) < Z * se16


@pytest.mark.slow
def test_he_keeps_relu_net_flat(he_runs: dict[str, tuple[FloatArray, FloatArray]]) -> None:
    target = math.sqrt(1 - 1 / math.pi)  # std of relu(z), z ~ N(0, 2)
    he_act, he_grad = he_runs["he"]
    lecun_act, _ = he_runs["lecun"]
    for layer in (H_LAYER, H_DEPTH):
        logs = np.log(he_act[:, layer - 1])
        se = logs.std(ddof=1) / math.sqrt(H_REP)
        assert abs(logs.mean() - math.log(target)) < Z * se + 0.02, (layer, math.exp(logs.mean()))
        # LeCun, the same check: off by 2^(layer/2)
        lecun_logs = np.log(lecun_act[:, layer - 1])
        assert abs(lecun_logs.mean() - math.log(target)) > Z * se + 0.02
        # LeCun follows sqrt(1 - 1/pi) 2^(-l/2) within the same tolerance
        assert abs(lecun_logs.mean() - math.log(target * 2 ** (-layer / 2))) < Z * se + 0.05
    # gradients: He's gradient at layer 1 is within a factor 1.5 of the top's; LeCun's is not
    ratio = np.exp(np.mean(np.log(he_grad[:, 0])) - np.mean(np.log(he_grad[:, -1])))
    assert 2 / 3 < ratio < 1.5


def test_relu_halves_second_moment() -> None:
    rng = np.random.default_rng(HE_SEED + 100)
    n = 1_000_000
    for z, var in ((rng.normal(0.0, 1.5, n), 1.5**2), (rng.uniform(-2.0, 2.0, n), 4.0 / 3.0)):
        m2 = np.mean(np.maximum(z, 0.0) ** 2)
        # relu(z)^2 has relative variance E[z^4 1{z>0}] / E[z^2 1{z>0}]^2 - 1 = 2 kappa - 1
        # (kappa = 3 normal, 1.8 uniform), so the mean of n draws has relative SE
        # sqrt((2 kappa - 1) / n)
        kappa = np.mean(z**4) / np.mean(z**2) ** 2
        se = math.sqrt((2 * kappa - 1) / n)
        assert abs(m2 / (var / 2) - 1) < Z * se
        # the variance of relu(z) (what a wrong derivation uses) is clearly different
        assert abs(np.var(np.maximum(z, 0.0)) / (var / 2) - 1) > Z * se


def test_conv_fans_and_gain() -> None:
    assert cl.compute_fans((3, 3, 64, 128)) == (576, 1152)
    assert cl.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    a = 0.2
    assert cl.calculate_gain("leaky_relu", a) == pytest.approx(math.sqrt(2 / (1 + a**2)))


# --------------------------------------------------------------------------------------------
# Comparing (book/comparing.md), seed 9
# --------------------------------------------------------------------------------------------

CMP_SEED = 9
C_SCHEMES: dict[str, str | Init] = {
    "LeCun": "lecun_normal",
    "Xavier": "xavier_normal",
    "He": "he_normal",
    "std 0.01": fixed_std(0.01),
    "std 1": fixed_std(1.0),
}
C_ACTIVATIONS = ("tanh", "sigmoid", "relu")
C_DEPTH, C_WIDTH, C_BATCH, C_REP = 20, 128, 256, 4


@pytest.fixture(scope="module")
def cmp_grid() -> dict[tuple[str, str], tuple[FloatArray, FloatArray]]:
    rng = np.random.default_rng(CMP_SEED)
    records = cl.scheme_grid(
        list(C_SCHEMES.values()),
        C_ACTIVATIONS,
        [C_DEPTH],
        [C_WIDTH],
        n_samples=C_BATCH,
        n_replicates=C_REP,
        rng=rng,
    )
    label_of = {(v if isinstance(v, str) else v.__name__): k for k, v in C_SCHEMES.items()}
    fwd: dict[tuple[str, str], FloatArray] = {}
    bwd: dict[tuple[str, str], FloatArray] = {}
    for rec in records:
        key = (label_of[rec["scheme"]], rec["activation"])
        fwd.setdefault(key, np.zeros((C_REP, C_DEPTH)))[rec["replicate"], rec["layer"] - 1] = rec[
            "forward_std"
        ]
        bwd.setdefault(key, np.zeros((C_REP, C_DEPTH)))[rec["replicate"], rec["layer"] - 1] = rec[
            "backward_std"
        ]
    return {
        key: (
            np.exp(np.mean(np.log(fwd[key]), axis=0)),
            np.exp(np.mean(np.log(bwd[key]), axis=0)),
        )
        for key in fwd
    }


@pytest.mark.slow
def test_comparing_forward_backward(
    cmp_grid: dict[tuple[str, str], tuple[FloatArray, FloatArray]],
) -> None:
    # The chapter's table: only He keeps ReLU flat both ways (within a factor 1.5: the replicate
    # geometric mean wanders by ~10 % over 20 layers at width 128, see the He chapter); LeCun and
    # Xavier lose sqrt(2) per layer, i.e. 2^(-19/2) ~ 1e-3 from layer 1 to 20.
    he_f, he_b = cmp_grid["He", "relu"]
    assert 0.8 / 1.5 < he_f[-1] < 0.8 * 1.5 and 1 / 1.5 < he_b[0] < 1.5
    for scheme in ("LeCun", "Xavier"):
        f, b = cmp_grid[scheme, "relu"]
        assert f[-1] / f[0] == pytest.approx(2 ** (-19 / 2), rel=0.5)
        assert b[0] < 0.01
    # sigmoid: the gradient vanishes under every derived scheme, only std 1 keeps it
    for scheme in ("LeCun", "Xavier", "He", "std 0.01"):
        assert cmp_grid[scheme, "sigmoid"][1][0] < 1e-6
    assert cmp_grid["std 1", "sigmoid"][1][0] > 0.1
    # tanh: LeCun/Xavier gradient within a factor 10 at layer 1; std 1 explodes; std 0.01 dies
    for scheme in ("LeCun", "Xavier"):
        assert 0.1 < cmp_grid[scheme, "tanh"][1][0] < 1.0
    assert cmp_grid["std 1", "tanh"][1][0] > 1e3
    assert cmp_grid["std 0.01", "tanh"][0][-1] < 1e-10
    assert cmp_grid["std 1", "relu"][0][-1] > 1e10


C_HIDDEN, C_TRAIN_WIDTH, C_EPOCHS, C_LR, C_TRAIN_BATCH = 8, 64, 15, 0.01, 32


def _digits(
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, Labels, Labels]:
    X, y = cl.load_digits()
    X_train, X_val, y_train, y_val = cl.train_test_split(X, y, test_fraction=0.25, rng=rng)
    X_train, mu, sd = cl.standardize(X_train)
    X_val, _, _ = cl.standardize(X_val, mu, sd)
    return X_train, X_val, y_train, y_val


def _train(
    act: str,
    scheme: str,
    children: dict[tuple[str, str], np.random.Generator],
    data: tuple[FloatArray, FloatArray, Labels, Labels],
) -> cl.History:
    X_train, X_val, y_train, y_val = data
    sizes = [X_train.shape[1]] + [C_TRAIN_WIDTH] * C_HIDDEN + [10]
    return cl.train_mlp(
        X_train,
        y_train,
        sizes,
        initializer=C_SCHEMES[scheme],
        activation=act,
        epochs=C_EPOCHS,
        batch_size=C_TRAIN_BATCH,
        lr=C_LR,
        momentum=0.9,
        X_val=X_val,
        y_val=y_val,
        rng=children[act, scheme],
    )


@pytest.fixture(scope="module")
def cmp_training() -> dict[tuple[str, str], cl.History]:
    rng = np.random.default_rng(CMP_SEED)
    rng.spawn(len(C_SCHEMES) * len(C_ACTIVATIONS))  # scheme_grid's cells (spawn only)
    data = _digits(rng)
    runs = [(act, scheme) for act in C_ACTIVATIONS for scheme in C_SCHEMES]
    children = dict(zip(runs, rng.spawn(len(runs)), strict=True))
    wanted = [("relu", s) for s in C_SCHEMES] + [
        ("tanh", "Xavier"),
        ("tanh", "std 0.01"),
        ("sigmoid", "Xavier"),
    ]
    return {key: _train(*key, children, data) for key in wanted}


@pytest.mark.slow
def test_comparing_training(cmp_training: dict[tuple[str, str], cl.History]) -> None:
    # Accuracy thresholds: over seeds 0..4 (split, init and batch order all reseeded) the final
    # validation accuracy of He/ReLU ranged 0.938-0.973 and of Xavier/tanh 0.960-0.967 (450
    # validation images: one image is 0.22 %); 0.93 sits below that spread and far above chance
    # (0.1) and the stuck runs.
    assert cmp_training["relu", "He"].val_acc[-1] >= 0.93
    assert cmp_training["tanh", "Xavier"].val_acc[-1] >= 0.93
    # He trains ReLU nets faster: after one epoch it is ahead of LeCun and Xavier (seeds 0..4:
    # He 0.575-0.677, LeCun 0.196-0.341, Xavier 0.167-0.312, the smallest lead 0.30); we ask
    # for a lead of 0.1
    he1 = cmp_training["relu", "He"].val_acc[1]
    assert he1 > cmp_training["relu", "LeCun"].val_acc[1] + 0.1
    assert he1 > cmp_training["relu", "Xavier"].val_acc[1] + 0.1
    # std 0.01 never leaves chance: the loss stays at ln 10 to 3 decimals
    for act in ("relu", "tanh"):
        h = cmp_training[act, "std 0.01"]
        assert h.train_loss[-1] == pytest.approx(math.log(10), abs=2e-3)
        assert h.val_acc[-1] < 0.15
    # std 1 with ReLU diverges at once
    assert cmp_training["relu", "std 1"].diverged
    # deep sigmoid with Xavier does not learn in this budget
    assert cmp_training["sigmoid", "Xavier"].val_acc[-1] < 0.2
