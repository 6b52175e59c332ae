"""The claims of "Applying it to your own model" (book/papers/your_model.md), over its seeds.

The chapter splits ``np.random.default_rng(2026)`` with ``spawn(4)`` and passes the first child to
``course_lib.worked_example_reports`` (five seeds, a 64 -> 256 x 20 -> 10 ReLU MLP on the digits);
this module does the same, so it checks the very numbers the chapter quotes, and asserts each
statement the prose makes for every seed.

Tolerances. A per-layer factor is a geometric mean over k = 19 layer-to-layer steps. Each step
multiplies a squared norm over n = 256 units by a random factor of relative variance about 5/n
(chapter, eq-ym-fluctuation), so log(factor) has sd about sqrt(5 k / n) / (2 k) =
sqrt(5 / (19 * 256)) / 2 = 0.016; finite width also biases it by about -5/(4n) = -0.005 per step.
The checks allow |log(factor / prediction)| < 0.08, 5 sd. The predictions of the three models
differ by more than log(sqrt 2) = 0.35 from each other, so every check is also run on the wrong
model (the power check) and must fail there.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import report

pytestmark = pytest.mark.slow  # the fixture runs 15 reports of a depth-20 net: ~3 s idle

SEED = 2026
DEPTH, WIDTH = 20, 256
TOL_LOG = 0.08  # 5 x 0.016, see the module docstring

PREDICTED = {  # sqrt(n Var(w) / 2), eq-ym-factor
    "torch_default": 1 / math.sqrt(6),
    "lecun_normal": 1 / math.sqrt(2),
    "he_normal": 1.0,
}


@pytest.fixture(scope="module")
def reports() -> dict[str, list[report.InitReport]]:
    rng_example = np.random.default_rng(SEED).spawn(4)[0]
    return report.worked_example_reports(rng=rng_example, n_seeds=5, depth=DEPTH, width=WIDTH)


def _factor_ok(r: report.InitReport, predicted: float, direction: str) -> bool:
    per = r.backward_per_layer if direction == "backward" else r.forward_per_layer
    return abs(math.log(per / predicted)) < TOL_LOG


def test_five_seeds_and_every_model(reports: dict[str, list[report.InitReport]]) -> None:
    assert list(reports) == ["torch_default", "lecun_normal", "he_normal"]
    assert all(len(v) == 5 for v in reports.values())
    tables = [r.table() for r in reports["he_normal"]]
    assert len(set(tables)) == 5  # five independent draws, not one repeated


@pytest.mark.parametrize("model", ["torch_default", "lecun_normal", "he_normal"])
def test_backward_factor_is_sqrt_of_half_the_scale(
    reports: dict[str, list[report.InitReport]], model: str
) -> None:
    """Prose: the gradient shrinks by 1/sqrt 6 (PyTorch), 1/sqrt 2 (LeCun), 1 (He) per layer."""
    assert all(_factor_ok(r, PREDICTED[model], "backward") for r in reports[model])
    for other, predicted in PREDICTED.items():
        if other != model:  # power: the same check with another model's prediction fails
            assert not any(_factor_ok(r, predicted, "backward") for r in reports[model])


@pytest.mark.parametrize("model", ["lecun_normal", "he_normal"])
def test_forward_factor_without_biases_matches_backward(
    reports: dict[str, list[report.InitReport]], model: str
) -> None:
    """Prose: LeCun shrinks the activations by 1/sqrt 2 going up too; He keeps them flat."""
    assert all(_factor_ok(r, PREDICTED[model], "forward") for r in reports[model])
    wrong = PREDICTED["he_normal" if model == "lecun_normal" else "lecun_normal"]
    assert not any(_factor_ok(r, wrong, "forward") for r in reports[model])


def test_flags_fire_for_every_hidden_layer_of_the_wrong_scales_and_never_for_he(
    reports: dict[str, list[report.InitReport]],
) -> None:
    for model in ("torch_default", "lecun_normal"):
        for r in reports[model]:
            assert r.flagged == list(range(1, DEPTH + 1)), (model, r.flagged)
            assert "relu wants 2" in r.diagnosis
    for r in reports["he_normal"]:
        assert r.flagged == []
    # Prose: the largest He drift is of the size eq-ym-fluctuation predicts (sd 0.30 in log).
    fluct = 0.5 * math.sqrt(5 * (DEPTH - 1) / WIDTH)
    he_drift = [
        abs(math.log(r.activation_std[DEPTH - 1] / r.activation_std[0]))
        for r in reports["he_normal"]
    ]
    assert max(he_drift) < 3 * fluct


def test_pytorch_default_diagnosis_names_a_sixth_of_he(
    reports: dict[str, list[report.InitReport]],
) -> None:
    for r in reports["torch_default"]:
        # n Var(w) of U(+-1/sqrt n) is 1/3; the median over 19 layers of 65536 weights each has
        # relative sd sqrt(0.8/65536) = 0.0035, so "0.17x" (1/6 = 0.1667) is printed every time
        assert "Var(w) is 0.17x He's 2/n_in (median fan_in·Var(w) = 0.33" in r.diagnosis


def test_bias_floor_of_the_pytorch_default(reports: dict[str, list[report.InitReport]]) -> None:
    """Prose: std(z_20) sits at the fixed point sqrt(2/(5n)) of q = q/6 + 1/(3n) (eq-ym-bias-floor).

    At the floor z is almost all bias: its std over 256 units of U(+-1/sqrt n) biases has relative
    sd sqrt(0.8/256)/2 = 0.028, so 15 % is 5 sd. The wrong floor (Var(b) = bound^2 instead of
    bound^2/3, i.e. sqrt(6/(5n)), 1.73 times larger) is run through the same check and fails.
    """
    floor = math.sqrt(2 / (5 * WIDTH))
    wrong = math.sqrt(6 / (5 * WIDTH))
    z20 = [r.layers[DEPTH - 1].preactivation_std for r in reports["torch_default"]]
    assert all(abs(z / floor - 1) < 0.15 for z in z20), z20
    assert not any(abs(z / wrong - 1) < 0.15 for z in z20)
    # and the forward factor levels off: far above the backward 1/sqrt 6
    assert all(r.forward_per_layer > 0.8 for r in reports["torch_default"])


def test_dead_units(reports: dict[str, list[report.InitReport]]) -> None:
    """Prose: about half the units of layer 20 are dead with PyTorch's default (negative bias at
    the floor); He leaves fewer, but still some (correlated inputs, not scale).

    Binomial sd of a fraction over 256 units is at most 0.031; 0.4 is 3 sd below one half.
    """
    for torch, he in zip(reports["torch_default"], reports["he_normal"], strict=True):
        assert torch.layers[DEPTH - 1].dead > 0.4
        assert 0.05 < he.layers[DEPTH - 1].dead < torch.layers[DEPTH - 1].dead
        assert torch.layers[0].dead == 0.0 and he.layers[0].dead == 0.0
