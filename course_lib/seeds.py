"""Claims made over several seeds: run an experiment once per spawned generator and summarize.

A number that rests on a random draw or on a training run is a sample from a distribution, and on
another CPU (another OpenBLAS kernel, other rounding) a single training trajectory follows a
different path. The book therefore states such numbers over several seeds: the chapter's generator
is split with ``rng.spawn(n_seeds)``, the experiment runs once per child, and the chapter glues the
median and the range (:class:`SeedSummary`). The claim tests call the same function with the same
generator and assert the statement the prose makes, for the median or for every seed.

Chapter: book/intro.md (how to read the numbers in this book).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ._validation import RNGLike, as_generator

__all__ = ["DEFAULT_SEEDS", "SeedSummary", "over_seeds", "summarize"]

#: How many seeds a chapter's claim is made over unless it says otherwise.
DEFAULT_SEEDS = 5

_T = TypeVar("_T")


def over_seeds(
    experiment: Callable[[np.random.Generator], _T], *, n_seeds: int = DEFAULT_SEEDS, rng: RNGLike
) -> list[_T]:
    """Run ``experiment`` once per child of ``rng``.

    Parameters
    ----------
    experiment : callable
        Takes one ``numpy.random.Generator`` and returns a result.
    n_seeds : int, optional
        Number of independent runs (at least 1; the book uses at least 5).
    rng : numpy.random.Generator, int or SeedSequence
        Keyword-only; split with ``rng.spawn(n_seeds)``, so the runs are independent and the
        same ``rng`` always gives the same runs.

    Returns
    -------
    list
        One result per child generator, in spawn order.

    Notes
    -----
    Spawning (not drawing integer seeds) keeps the children statistically independent of each
    other and of anything else the chapter draws from ``rng`` afterwards (SPEC 7).
    """
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int | np.integer) or n_seeds < 1:
        raise ValueError(f"n_seeds must be a positive integer, got {n_seeds!r}")
    gen = as_generator(rng)
    return [experiment(child) for child in gen.spawn(int(n_seeds))]


@dataclass(frozen=True)
class SeedSummary:
    """The median and range of one quantity measured over several seeds.

    Attributes
    ----------
    values : tuple of float
        One value per seed, in spawn order.
    """

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        """Number of seeds."""
        return len(self.values)

    @property
    def median(self) -> float:
        """Median over the seeds."""
        return float(np.median(self.values))

    @property
    def low(self) -> float:
        """Smallest value over the seeds."""
        return float(min(self.values))

    @property
    def high(self) -> float:
        """Largest value over the seeds."""
        return float(max(self.values))

    @property
    def spread(self) -> float:
        """``high - low``: the range over the seeds."""
        return self.high - self.low

    def text(self, fmt: str = ".2f") -> str:
        """The form the book quotes: ``"0.87 (0.85 to 0.89 over 5 seeds)"``.

        Parameters
        ----------
        fmt : str, optional
            A format specification applied to the median and both ends of the range.
        """
        return (
            f"{self.median:{fmt}} ({self.low:{fmt}} to {self.high:{fmt}} over {self.n} seeds)"
        )

    def all_below(self, bound: float) -> bool:
        """True when every seed's value is below ``bound``."""
        return self.high < bound

    def all_above(self, bound: float) -> bool:
        """True when every seed's value is above ``bound``."""
        return self.low > bound


def summarize(values: Iterable[float] | Sequence[float]) -> SeedSummary:
    """Summarize one number per seed.

    Parameters
    ----------
    values : iterable of float
        One finite value per seed (at least one).

    Returns
    -------
    SeedSummary

    Examples
    --------
    >>> summarize([0.9, 0.7, 0.8]).text()
    '0.80 (0.70 to 0.90 over 3 seeds)'
    """
    vals = tuple(float(v) for v in values)
    if not vals:
        raise ValueError("summarize needs at least one value (one per seed)")
    if not all(np.isfinite(vals)):
        raise ValueError(f"summarize got a non-finite value: {vals}")
    return SeedSummary(vals)
