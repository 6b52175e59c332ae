"""Claims of the scheme chapters, recomputed with the chapters' own course_lib functions.

Chapters: book/lecun.md (seed 6), book/xavier.md (seed 7), book/he.md (seed 8),
book/comparing.md (seed 9). Each fixture calls the function the chapter calls
(``course_lib.experiments``), with the chapter's generator, so the test checks the very numbers
the chapter glues. Every experiment runs over several seeds spawned from that generator, and each
test asserts the statement the prose makes, for every seed or for the median with its spread,
never one trajectory's numbers. Tolerances and their justification sit next to each assertion,
and each quantitative check also runs the answer of a plausible mistake through the same check.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

import course_lib as cl

FloatArray = npt.NDArray[np.float64]
Z = 6.0  # tolerances at >= 6 standard errors


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    # The matrices here are small (256 x 256); with several BLAS threads on a busy 2-core
    # machine the threads spin against each other and the module takes minutes instead of
    # seconds. One thread gives the same numbers (the draws do not depend on it).
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --------------------------------------------------------------------------------------------
# LeCun (book/lecun.md), seed 6
# --------------------------------------------------------------------------------------------

LECUN_SEED = 6
L_DEPTH, L_WIDTH, L_BATCH = 20, 256, 256
LecunExp = cl.SeedExperiment[dict[tuple[str, str], dict[str, FloatArray]]]


@pytest.fixture(scope="module")
def lecun() -> LecunExp:
    return cl.lecun_depth_experiment(
        rng=np.random.default_rng(LECUN_SEED), depth=L_DEPTH, width=L_WIDTH, batch=L_BATCH
    )


def _linear_std_tolerance() -> float:
    """Largest allowed |std_l - 1| over the 20 layers of one LeCun linear net.

    A linear layer with LeCun weights multiplies the batch second moment by a factor with mean 1
    and relative variance 2 m2 / n^2 (n units, each a quadratic form w^T G w in its n weights,
    m2 = n tr(G^2) / tr(G)^2 the normalized second moment of the input's Gram spectrum G). At the
    input m2 = 1 + n/B (Marchenko-Pastur, B = batch); each layer's random matrix adds about one
    (free multiplicative convolution), so layer l sees m2 ~ n/B + l. The log-variance is a sum
    of these independent errors: variance 2 (L n/B + L (L + 1) / 2) / n^2 at layer L, i.e. SD
    0.042 in log-std at L = 20 for n = B = 256 (40 other seeds measured 0.036). Six of those:
    0.25. The deviations grow with depth, so the endpoint's SD bounds every layer's.
    """
    return Z * _log_std_sd(L_DEPTH)


def _log_std_sd(depth: int) -> float:
    """SD of one LeCun linear net's log-std at ``depth`` (see _linear_std_tolerance)."""
    n, b = L_WIDTH, L_BATCH
    return math.sqrt(2 * (depth * n / b + depth * (depth + 1) / 2)) / n / 2


def test_lecun_keeps_linear_net_at_unit_std(lecun: LecunExp) -> None:
    tol = _linear_std_tolerance()
    assert lecun["linear_maxdev"].n == 5
    # "no layer is further than ... from 1", in every seed
    assert lecun["linear_maxdev"].all_below(tol), (lecun["linear_maxdev"].text(), tol)
    assert lecun["selu_maxdev"].all_below(tol)  # SELU's fixed point attracts: conservative
    # Power: the same check on the same draws' wrong scales fails: std 1 and std 0.01, and the
    # five-layer nets with std = 1/n (the chapter's mistake).
    for r in lecun.examples:
        for wrong in (("linear", "std 1"), ("linear", "std 0.01"), ("linear", "std 1/n")):
            assert np.max(np.abs(r[wrong]["act"] - 1.0)) > tol
        # and He's 2/n would sit at sqrt(2) at layer 1: the LeCun net's layer 1 is far from it
        assert abs(r["linear", "LeCun normal"]["act"][0] - math.sqrt(2)) > tol


def test_lecun_tanh_decays_like_one_over_sqrt_2l(lecun: LecunExp) -> None:
    # The chapter's claim: std_l ~ 1/sqrt(2 l) (eq-lecun-tanh-decay), a power law, not a
    # collapse. The formula is asymptotic (the exact map gives 1/q_20 = 38.7 instead of 40, 1.6 %
    # in std) and one network scatters around it; tanh contracts its inputs, so the scatter is
    # smaller than the linear net's (SD 0.042 at layer 20, see _linear_std_tolerance): 15 % is
    # > 3 of the linear SD plus the asymptotic error (the chapter's seeds: 0.97-1.04).
    assert all(0.85 < v < 1.15 for v in lecun["tanh_last_sqrt2l"].values)
    assert all(0.85 < v < 1.15 for v in lecun["tanh_l5_sqrt10"].values)
    assert lecun["tanh_decreasing"].low == 1.0  # strictly decreasing in every seed
    # Power: a geometric collapse (the 1/(3n) heuristic: 3^-10 at layer 20) or no decay at all
    # (std near 1, as for SELU) fails the same check on the same seeds' data.
    for r in lecun.examples:
        assert not 0.85 < r["selu", "LeCun normal"]["act"][-1] * math.sqrt(2 * L_DEPTH) < 1.15
        assert not 0.85 < r["tanh", "std 0.01"]["act"][-1] * math.sqrt(2 * L_DEPTH) < 1.15


def test_lecun_wrong_scales(lecun: LecunExp) -> None:
    # std 1, linear: sqrt(n)^20 = 16^20; a fixed scale multiplies the LeCun net by a constant,
    # so the log error is the LeCun net's (SD 0.042 in log std, _linear_std_tolerance): the
    # tolerance is the same 0.25, far from a factor 16 (log 2.8, one layer more or less).
    tol = _linear_std_tolerance()
    assert all(abs(v) < tol for v in lecun["std1_linear_log_error"].values)
    assert all(abs(v) < tol for v in lecun["small_linear_log_error"].values)
    # power: a prediction one layer off (16^19) fails the same check
    assert all(abs(v + math.log(16.0)) > tol for v in lecun["std1_linear_log_error"].values)
    assert lecun["small_tanh_l5"].all_below(1e-3)
    # "tanh with std 1 cannot explode: std near 1, but most units saturated" (every seed)
    assert all(0.9 < v <= 1.0 for v in lecun["std1_tanh_last"].values)
    assert lecun["std1_tanh_sat"].all_above(0.8)


def test_lecun_std_one_over_n_mistake(lecun: LecunExp) -> None:
    # std = 1/n: variance 1/n^2, the std shrinks by sqrt(n) = 16 per layer. A fixed scale
    # multiplies a LeCun net by a constant, so one draw's log-std at layer 5 has the LeCun net's
    # SD, 0.012 (_log_std_sd); the tolerance is 6 of those.
    tol = Z * _log_std_sd(5)
    predicted = float(L_WIDTH) ** (-np.arange(1, 6) / 2.0)
    for r in lecun.examples:
        mistake = r["linear", "std 1/n"]["act"]
        assert np.allclose(np.log(mistake), np.log(predicted), atol=tol)
        # power: the correct LeCun net, run through the same check, fails it
        lecun5 = r["linear", "LeCun 5"]["act"]
        assert not np.allclose(np.log(lecun5), np.log(predicted), atol=tol)


# --------------------------------------------------------------------------------------------
# Xavier (book/xavier.md), seed 7
# --------------------------------------------------------------------------------------------

XAVIER_SEED = 7
X_DEPTH, X_WIDTH, X_BATCH = 10, 256, 500
XavierExp = cl.SeedExperiment[dict[str, dict[str, FloatArray]]]


@pytest.fixture(scope="module")
def xavier() -> XavierExp:
    return cl.xavier_tanh_experiment(
        rng=np.random.default_rng(XAVIER_SEED), depth=X_DEPTH, width=X_WIDTH, batch=X_BATCH
    )


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


def test_heuristic_shrinks_by_three_per_layer(xavier: XavierExp) -> None:
    # Forward, upper half: 1/3 per layer in variance (eq-xavier-heuristic-var). One network's
    # geometric mean over 5 layers has a sampling error ~0.5 % (per-layer relative SD
    # sqrt(2 (1 + n/B)) / n = 0.0068, over 5 layers); the remaining tanh curvature at layers
    # 5-10 (pre-activation variance <= 3^-4) lowers the factor by at most ~2 %. 5 % covers both.
    assert all(abs(v * 3 - 1) < 0.05 for v in xavier["heur_fwd_factor"].values)
    # power: LeCun's factor 1 (the normalized scheme) fails the same check on the same networks
    for r in xavier.examples:
        fv = r["xavier"]["act"] ** 2
        fwd_x = math.exp(np.mean(np.log(fv[5:] / fv[4:-1])))
        assert abs(fwd_x * 3 - 1) > 0.05
    # Backward, lower half: 1/3 times E[tanh'(z)^2] < 1 where the pre-activations are large.
    assert all(0.25 < v < 1 / 3 for v in xavier["heur_bwd_factor"].values)
    # Xavier (normalized) does not shrink geometrically; the heuristic does (every seed)
    assert xavier["norm_act_last"].all_above(0.2) and xavier["norm_grad_first"].all_above(0.2)
    assert xavier["heur_act_last"].all_below(0.01) and xavier["heur_grad_first"].all_below(0.01)


def test_heuristic_weight_gradients_look_even(xavier: XavierExp) -> None:
    # 3^-(k-1) * 3^-(L-k) does not depend on k: even weight gradients (within 20 %), while the
    # activations span two orders of magnitude (3^4.5 = 140 in std from layer 1 to 10)
    assert xavier["heur_wgrad_spread"].all_below(1.2)
    assert xavier["heur_act_spread"].all_above(100.0)
    # power: the activations' spread fails the weight-gradient check
    assert not xavier["heur_act_spread"].all_below(1.2)


# --------------------------------------------------------------------------------------------
# He (book/he.md), seed 8
# --------------------------------------------------------------------------------------------

HE_SEED = 8
H_DEPTH, H_WIDTH, H_BATCH, H_REP, H_LAYER = 30, 256, 256, 16, 10
HeExp = cl.SeedExperiment[dict[str, dict[str, FloatArray]]]


@pytest.fixture(scope="module")
def he() -> HeExp:
    return cl.he_depth_experiment(
        rng=np.random.default_rng(HE_SEED), n_seeds=H_REP, depth=H_DEPTH, width=H_WIDTH,
        batch=H_BATCH, ratio_layer=H_LAYER,
    )  # fmt: skip


def test_he_lecun_ratio_at_depth_10(he: HeExp) -> None:
    theory = H_LAYER / 2 * math.log(2)  # log 2^(10/2) = log 32, eq-he-depth
    logs = np.array(he["log_ratio"].values)
    est = float(logs.mean())
    se = float(logs.std(ddof=1)) / math.sqrt(logs.size)
    # Tolerance: 6 standard errors of the mean of 16 independent paired log-ratios (the spread of
    # one network's log-std, about 0.15 at width 256, depth 10, is a finite-width effect that no
    # formula here predicts, so it is estimated from the seeds themselves).
    assert abs(est - theory) < Z * se, (math.exp(est), se)
    # Power: the tolerance excludes 2^4.5 (the ratio if the input were rectified like the hidden
    # layers, one factor 2 too few), 2^10 (the variance ratio quoted as a std ratio) and 1.
    for wrong in (4.5, 10.0, 0.0):
        assert abs(est - wrong * math.log(2)) > Z * se


def test_he_preserves_second_moment(he: HeExp) -> None:
    # E10: He's rule preserves E[x^2] exactly in expectation. The mean over 16 networks of the
    # layer's E[x^2] has a standard error estimated from the 16 values; 6 SE.
    for layer in (H_LAYER, H_DEPTH):
        m2 = np.array([r["he"]["rms"][layer - 1] ** 2 for r in he.examples])
        se = m2.std(ddof=1) / math.sqrt(m2.size)
        assert abs(m2.mean() - 1.0) < Z * se, (layer, m2.mean(), se)
        # power: LeCun's networks, same check: off by 2^-layer
        m2_lecun = np.array([r["lecun"]["rms"][layer - 1] ** 2 for r in he.examples])
        assert abs(m2_lecun.mean() - 1.0) > Z * se


def test_he_keeps_relu_net_flat(he: HeExp) -> None:
    target = math.sqrt(1 - 1 / math.pi)  # std of relu(z), z ~ N(0, 2)
    for key, lecun_key, layer in (
        ("std_l10", None, H_LAYER),
        ("std_last", "lecun_std_last", H_DEPTH),
    ):
        logs = np.log(he[key].values)
        se = logs.std(ddof=1) / math.sqrt(logs.size)
        # The geometric mean sits below sqrt(1 - 1/pi) by the finite-width drift of the chapter's
        # E10 sentence: E[x^2] is preserved, so E[log E[x^2]] falls below 0 by about half the
        # variance of log E[x^2] (Jensen), i.e. the mean log-std falls by about var(log std),
        # estimated from the seeds. Tolerance: 6 SE plus twice that bias.
        bias = 2 * logs.var(ddof=1)
        assert abs(logs.mean() - math.log(target)) < Z * se + bias, (layer, math.exp(logs.mean()))
        if lecun_key is not None:
            lecun_logs = np.log(he[lecun_key].values)
            # power: LeCun, the same check, is off by 2^(layer/2)
            assert abs(lecun_logs.mean() - math.log(target)) > Z * se + bias
            # LeCun follows sqrt(1 - 1/pi) 2^(-l/2) within the same kind of tolerance
            lse = lecun_logs.std(ddof=1) / math.sqrt(lecun_logs.size)
            pred = math.log(target * 2 ** (-layer / 2))
            assert abs(lecun_logs.mean() - pred) < Z * lse + 2 * lecun_logs.var(ddof=1)
    # gradients: He's gradient at layer 1 is of the size of the top's (flat); LeCun's has fallen
    # by 2^(-29/2) ~ 4e-5. The geometric-mean ratio of 16 networks; its log has SE ~0.05.
    g1, g30 = np.log(he["grad_first"].values), np.log(he["grad_last"].values)
    d = g1 - g30
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert abs(d.mean()) < Z * se + 2 * d.var(ddof=1), math.exp(d.mean())
    lecun_d = np.log(he["lecun_grad_first"].values) - g30
    assert abs(lecun_d.mean()) > Z * se + 2 * d.var(ddof=1)  # power


def test_leaky_relu_generalized_rule() -> None:
    """eq-he-leaky: plain He grows the second moment by (1 + a^2) per layer, the gain does not."""
    m2 = cl.leaky_relu_second_moments(
        rng=np.random.default_rng(2015), slopes=(0.5,), n_seeds=6, depth=30, width=256,
        batch=256,
    )  # fmt: skip
    he_logs = np.log(m2[0.5, "he"].values)
    gen_logs = np.log(m2[0.5, "generalized"].values)
    # log(He / generalized) has expectation 30 log(1.25) = 6.69 up to the finite-width drift,
    # which is the same for both rules (same width and depth) and cancels in the difference.
    # SE of the difference of two means of 6 log-values, estimated from them; 6 SE.
    est = float(he_logs.mean() - gen_logs.mean())
    se = math.sqrt(he_logs.var(ddof=1) / 6 + gen_logs.var(ddof=1) / 6)
    assert abs(est - 30 * math.log(1.25)) < Z * se, (est, se)
    # power: "the gain makes no difference" (0) and the half-slope slip (1 + a)^30 fail it
    assert abs(est) > Z * se
    assert abs(est - 30 * math.log(1.5)) > Z * se


def test_conv_fans_and_gain() -> None:
    assert cl.compute_fans((3, 3, 64, 128)) == (576, 1152)
    assert cl.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    a = 0.2
    assert cl.calculate_gain("leaky_relu", a) == pytest.approx(math.sqrt(2 / (1 + a**2)))


# --------------------------------------------------------------------------------------------
# Comparing (book/comparing.md), seed 9
# --------------------------------------------------------------------------------------------

CMP_SEED = 9
C_ACTIVATIONS = ("tanh", "sigmoid", "relu")
C_DEPTH, C_WIDTH, C_BATCH, C_REP = 20, 128, 256, 5


@pytest.fixture(scope="module")
def cmp_streams() -> list[np.random.Generator]:
    """The chapter's two streams: networks at initialization, training runs."""
    return np.random.default_rng(CMP_SEED).spawn(2)


@pytest.fixture(scope="module")
def cmp_grid(
    cmp_streams: list[np.random.Generator],
) -> dict[tuple[str, str], tuple[FloatArray, FloatArray]]:
    schemes = cl.comparing_schemes()
    records = cl.scheme_grid(
        list(schemes.values()), C_ACTIVATIONS, [C_DEPTH], [C_WIDTH], n_samples=C_BATCH,
        n_replicates=C_REP, rng=cmp_streams[0],
    )  # fmt: skip
    label_of = {(v if isinstance(v, str) else v.__name__): k for k, v in schemes.items()}
    fwd: dict[tuple[str, str], FloatArray] = {}
    bwd: dict[tuple[str, str], FloatArray] = {}
    for rec in records:
        key = (label_of[rec["scheme"]], rec["activation"])
        i, j = rec["replicate"], rec["layer"] - 1
        fwd.setdefault(key, np.zeros((C_REP, C_DEPTH)))[i, j] = rec["forward_std"]
        bwd.setdefault(key, np.zeros((C_REP, C_DEPTH)))[i, j] = rec["backward_std"]
    return {key: (fwd[key], bwd[key]) for key in fwd}


@pytest.mark.slow
def test_comparing_forward_backward(
    cmp_grid: dict[tuple[str, str], tuple[FloatArray, FloatArray]],
) -> None:
    # The chapter's table quotes geometric means over 5 networks. One network's log-std wanders
    # with depth at finite width (a random walk, SD ~0.3 at layer 20 for width 128), so the
    # log of the geometric mean has a standard error estimated from the 5 networks; the
    # tolerance is 6 of those plus the finite-width drift 2 var(log) (see test_he_keeps_relu_
    # net_flat).
    def band(logs: FloatArray) -> float:
        return Z * float(logs.std(ddof=1)) / math.sqrt(logs.size) + 2 * float(logs.var(ddof=1))

    # Only He keeps ReLU flat both ways.
    he_f, he_b = cmp_grid["He", "relu"]
    target = math.sqrt(1 - 1 / math.pi)
    logs = np.log(he_f[:, -1] / target)
    assert abs(logs.mean()) < band(logs)
    g = np.log(he_b[:, 0] / he_b[:, -1])
    assert abs(g.mean()) < band(g)
    # LeCun and Xavier lose sqrt(2) per layer: 2^(-19/2) ~ 1.4e-3 from layer 1 to 20; the He
    # band rejects them (power), and their own band holds around 2^(-19/2).
    for scheme in ("LeCun", "Xavier"):
        f, b = cmp_grid[scheme, "relu"]
        r = np.log(f[:, -1] / f[:, 0]) + 19 / 2 * math.log(2)
        assert abs(r.mean()) < band(r), (scheme, r)
        assert abs(np.log(f[:, -1] / target).mean()) > band(logs)
        assert np.all(b[:, 0] < 0.01)
    # sigmoid: the gradient vanishes under every derived scheme, only std 1 keeps it
    for scheme in ("LeCun", "Xavier", "He", "std 0.01"):
        assert np.all(cmp_grid[scheme, "sigmoid"][1][:, 0] < 1e-6)
    assert np.all(cmp_grid["std 1", "sigmoid"][1][:, 0] > 0.1)
    # tanh: LeCun/Xavier gradient within a factor 10 at layer 1; std 1 explodes; std 0.01 dies
    for scheme in ("LeCun", "Xavier"):
        g = cmp_grid[scheme, "tanh"][1][:, 0]
        assert np.all((g > 0.1) & (g < 1.0))
    assert np.all(cmp_grid["std 1", "tanh"][1][:, 0] > 1e3)
    assert np.all(cmp_grid["std 0.01", "tanh"][0][:, -1] < 1e-10)
    assert np.all(cmp_grid["std 1", "relu"][0][:, -1] > 1e10)


@pytest.fixture(scope="module")
def cmp_training(cmp_streams: list[np.random.Generator]) -> cl.ComparingTraining:
    """The chapter's training runs: the same function, the same stream, the same seeds."""
    return cl.comparing_training(
        rng=cmp_streams[1], hidden=8, width=64, epochs=10, lr=0.01, batch_size=32
    )


@pytest.mark.slow
def test_comparing_training(cmp_training: cl.ComparingTraining) -> None:
    m = cmp_training.measures
    assert m["relu_He_acc"].n == 5
    # "LeCun, Xavier and He all train well" (tanh) and "the three are together" (ReLU): in
    # every seed far above chance (0.1) and the stuck runs; 0.9 leaves room for the seed
    # spread the chapter reports (final accuracies 0.94-0.97 on 450 validation images).
    for act in ("tanh", "relu"):
        for scheme in ("LeCun", "Xavier", "He"):
            assert m[f"{act}_{scheme}_acc"].all_above(0.9), (act, scheme)
    # "after two epochs He is ahead [of the better of LeCun and Xavier] in every seed" (the
    # chapter's seeds: leads 0.25-0.38); after one epoch only the median lead is claimed.
    assert m["relu_He_lead2"].all_above(0.0), m["relu_He_lead2"].text()
    assert m["relu_He_lead1"].median > 0.0
    # power: the same statement about LeCun (ahead of He and Xavier) fails on the same runs
    lecun2 = np.array(m["relu_LeCun_acc2"].values)
    other2 = np.maximum(m["relu_He_acc2"].values, m["relu_Xavier_acc2"].values)
    assert not np.all(lecun2 - other2 > 0.0)
    # "std 0.01 never leaves chance level, training loss ln 10" in every seed
    for act in ("relu", "tanh"):
        assert all(abs(v - math.log(10)) < 2e-3 for v in m[f"{act}_std001_loss"].values), m[
            f"{act}_std001_loss"
        ].text()
        assert m[f"{act}_std001_acc"].all_below(0.15)
    # "std 1 with ReLU diverges, in every seed"
    assert m["relu_std1_diverged"].low == 1.0
    # "these deep sigmoid nets do not train in this budget at any of the three derived scales"
    # (chance is 0.1; 0.2 is the threshold) while "the one network that does is std 1"
    for scheme in ("LeCun", "Xavier", "He"):
        assert m[f"sigmoid_{scheme}_acc"].all_below(0.2)
    assert m["sigmoid_std1_acc"].all_above(0.2)
    # "tanh std 1 reaches only ..." well below the sensible schemes, in every seed
    assert m["tanh_std1_acc"].high < m["tanh_Xavier_acc"].low
    # Admonition and ex-cmp-seeds: between-scheme differences are of the size of the seed
    # spread. The statement asserted: the median between-scheme spread is no larger than twice
    # the largest within-scheme range (it would fail if one scheme were clearly better).
    for act in ("tanh", "relu"):
        within = max(m[f"{act}_{s}_acc"].spread for s in ("LeCun", "Xavier", "He"))
        assert m[f"{act}_sensible_spread"].median <= 2 * within
        # power: the same check with a scheme that is clearly different (std 1) in the set
        accs = np.array([m[f"{act}_{s}_acc"].values for s in ("LeCun", "Xavier", "std1")])
        assert np.median(accs.max(axis=0) - accs.min(axis=0)) > 2 * within
