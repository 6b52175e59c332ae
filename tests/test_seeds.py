"""course_lib.seeds: one run per spawned generator, and the summary the book quotes."""

from __future__ import annotations

import numpy as np
import pytest

import course_lib as cl


def test_over_seeds_spawns_independent_reproducible_children() -> None:
    draws = cl.over_seeds(lambda g: float(g.standard_normal()), n_seeds=5, rng=3)
    again = cl.over_seeds(lambda g: float(g.standard_normal()), n_seeds=5, rng=3)
    assert draws == again
    assert len(set(draws)) == 5
    # The children are rng.spawn's, so they match a manual spawn.
    manual = [float(c.standard_normal()) for c in np.random.default_rng(3).spawn(5)]
    assert draws == manual


def test_summary_median_and_range() -> None:
    s = cl.summarize([0.3, 0.1, 0.2, 0.5, 0.4])
    assert (s.median, s.low, s.high, s.n) == (0.3, 0.1, 0.5, 5)
    assert s.spread == pytest.approx(0.4)
    assert s.text() == "0.30 (0.10 to 0.50 over 5 seeds)"
    assert s.all_below(0.6) and not s.all_below(0.5)
    assert s.all_above(0.0) and not s.all_above(0.1)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_over_seeds_rejects_bad_counts(bad: object) -> None:
    with pytest.raises(ValueError, match="n_seeds"):
        cl.over_seeds(lambda g: 0.0, n_seeds=bad, rng=0)  # type: ignore[arg-type]


def test_summarize_rejects_empty_and_nan() -> None:
    with pytest.raises(ValueError, match="at least one"):
        cl.summarize([])
    with pytest.raises(ValueError, match="non-finite"):
        cl.summarize([1.0, float("nan")])
