"""The claims of book/papers/residual.md, recomputed with the chapter's seeds.

The chapter draws ``sweep_rng, width_rng, train_rng = default_rng(2016).spawn(3)`` and calls the
same ``course_lib.residual`` functions over five seeds; each test asserts what the prose states,
for the median with its range or for every seed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import residual, seeds
from course_lib.data import digits_split

pytestmark = pytest.mark.slow

SEED = 2016
DEPTHS, WIDTH, BATCH = (10, 100, 1000), 64, 32
SCHEMES = ("plain", "scaled", "zero_last", "skipinit", "fixup")


def _rngs() -> list[np.random.Generator]:
    return list(np.random.default_rng(SEED).spawn(3))


@pytest.fixture(scope="module")
def growth() -> list[dict[tuple[str, int], tuple[float, float]]]:
    return seeds.over_seeds(
        lambda g: residual.growth_comparison(DEPTHS, width=WIDTH, batch=BATCH, rng=g),
        rng=_rngs()[0],
    )


def test_plain_stack_grows_by_a_little_under_one_factor_of_two_per_block(
    growth: list[dict[tuple[str, int], tuple[float, float]]],
) -> None:
    # Prose: the prediction is 1000 factors of two forward and backward; the measured slope
    # "falls a little short of 1" (the Jensen gap). Median slope in (0.85, 1), both directions.
    for j in (0, 1):
        slope = seeds.summarize([r["plain", 1000][j] / 1000 for r in growth])
        assert 0.85 < slope.median < 1.0


def test_normalized_branch_grows_linearly(
    growth: list[dict[tuple[str, int], tuple[float, float]]],
) -> None:
    # Prose compares the median with log2(1 + 1000) = 9.97; the seeds spread by about +-0.3.
    s = seeds.summarize([r["normalized", 1000][0] for r in growth])
    assert abs(s.median - math.log2(1001)) < 0.5


def test_scaled_stack_stays_near_log2_e(
    growth: list[dict[tuple[str, int], tuple[float, float]]],
) -> None:
    # Prose: "close to the bound log2 e = 1.44", forward and backward.
    for j in (0, 1):
        s = seeds.summarize([r["scaled", 1000][j] for r in growth])
        assert abs(s.median - math.log2(math.e)) < 0.35
        assert s.high < 2 * math.log2(math.e)


def test_zero_initialized_schemes_are_the_identity_in_every_seed(
    growth: list[dict[tuple[str, int], tuple[float, float]]],
) -> None:
    for name in ("zero_last", "skipinit", "fixup", "zero_gamma"):
        assert max(abs(v) for r in growth for v in r[name, 100]) < 1e-12


def test_narrow_stacks_fall_further_short() -> None:
    slopes = seeds.over_seeds(
        lambda g: residual.growth_per_block((16, 256), depth=30, batch=BATCH, rng=g),
        rng=_rngs()[1],
    )
    narrow = seeds.summarize([s[0] for s in slopes])
    wide = seeds.summarize([s[1] for s in slopes])
    assert narrow.median < wide.median


@pytest.fixture(scope="module")
def training() -> dict[str, tuple[list[residual.ResidualTraining], seeds.SeedSummary]]:
    train_rng = _rngs()[2]
    data = digits_split(rng=train_rng)
    return residual.residual_training_comparison(
        data, SCHEMES, depth=20, epochs=3, rng=train_rng
    )


def test_plain_diverges_and_every_fix_trains_in_every_seed(
    training: dict[str, tuple[list[residual.ResidualTraining], seeds.SeedSummary]],
) -> None:
    runs, _ = training["plain"]
    assert all(r.diverged for r in runs)
    for scheme in SCHEMES[1:]:
        runs, summary = training[scheme]
        assert not any(r.diverged for r in runs)
        assert summary.all_above(0.8)  # prose: every run of every fix ends above 80 %
