"""Shared argument normalization: random generators (SPEC 7), shapes and choices.

Every sampling function in :mod:`course_lib` accepts a keyword-only ``rng`` and
passes it through :func:`as_generator`; nothing touches the global
``np.random`` state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeAlias

import numpy as np

RNGLike: TypeAlias = (
    np.random.Generator
    | np.random.BitGenerator
    | np.random.SeedSequence
    | int
    | Sequence[int]
    | None
)
"""Anything :func:`numpy.random.default_rng` accepts (SPEC 7)."""

ShapeLike: TypeAlias = int | Sequence[int]


def as_generator(rng: RNGLike) -> np.random.Generator:
    """Normalize ``rng`` to a :class:`numpy.random.Generator` (SPEC 7).

    A ``Generator`` is returned as is, so the caller's stream advances; a seed,
    ``SeedSequence`` or ``BitGenerator`` builds a new one; ``None`` draws fresh
    OS entropy. The legacy ``RandomState`` is refused, because mixing it in
    would make results depend on the global-state API the course avoids.

    Raises
    ------
    TypeError
        If ``rng`` is a ``numpy.random.RandomState`` or of an unsupported type.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.RandomState):
        raise TypeError(
            "rng must be a numpy.random.Generator, a seed or None; got a legacy "
            "RandomState. Use np.random.default_rng(seed) instead."
        )
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"rng must be a numpy.random.Generator, a seed (int or sequence of ints), "
            f"a SeedSequence, a BitGenerator or None; got {rng!r}"
        ) from exc


def as_shape(shape: ShapeLike, *, min_ndim: int = 0, name: str = "shape") -> tuple[int, ...]:
    """Return ``shape`` as a tuple of non-negative Python ints.

    Raises
    ------
    ValueError
        If an entry is negative or not an integer, or there are fewer than
        ``min_ndim`` dimensions.
    """
    if isinstance(shape, (int, np.integer)):
        dims: tuple[int, ...] = (int(shape),)
    else:
        try:
            items = list(shape)
        except TypeError as exc:
            raise ValueError(f"{name} must be an int or a sequence of ints, got {shape!r}") from exc
        out = []
        for d in items:
            if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
                raise ValueError(f"{name} must contain only integers, got {shape!r}")
            out.append(int(d))
        dims = tuple(out)
    if any(d < 0 for d in dims):
        raise ValueError(f"{name} must not contain negative dimensions, got {dims}")
    if len(dims) < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions, got {dims} ({len(dims)} dimension"
            f"{'' if len(dims) == 1 else 's'})"
        )
    return dims


def check_choice(value: str, allowed: Iterable[str], *, name: str) -> str:
    """Return ``value`` if it is in ``allowed``; otherwise raise a ``ValueError`` listing them."""
    allowed_t = tuple(allowed)
    if not isinstance(value, str) or value not in allowed_t:
        options = ", ".join(repr(a) for a in allowed_t)
        raise ValueError(f"unknown {name} {value!r}; expected one of {options}")
    return value


def check_positive(value: float, *, name: str) -> float:
    """Return ``value`` as float if it is finite and strictly positive; else ``ValueError``."""
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return v
