"""Cost of course_lib.initializers against the bare NumPy Generator calls (and Keras).

For each initializer and dtype the script times, in the same run and interleaved, the
initializer and the bare ``numpy.random.Generator`` call that draws the same numbers:

* float64 normal:   ``rng.normal(0, std, shape)`` (exactly the numbers he_normal returns)
* float32 normal:   ``rng.standard_normal(shape, dtype=float32)`` (the same draws, unscaled;
  ``Generator.normal`` has no dtype)
* float64 uniform:  ``rng.uniform(-b, b, shape)`` (exactly the same numbers)
* float32 uniform:  ``rng.random(shape, dtype=float32)`` (the same draws, not yet mapped to
  [-b, b); ``Generator.uniform`` has no dtype)
* truncated normal: ``rng.standard_normal(shape, dtype)`` -- no single NumPy call draws a
  truncated normal, so this is the floor (rejection needs 1/0.9545 = 1.048 times as many
  draws) -- and Keras' ``HeNormal`` on its NumPy backend, the same numbers in float64.
* orthogonal: ``np.linalg.qr(rng.standard_normal((m, m)))`` on a smaller square matrix.
* zeros/constant: ``np.zeros``/``np.full`` (``np.zeros`` gets lazily zeroed pages from the
  OS, so both take microseconds and their ratio is noise).

Each entry is the median of ``--repeats`` timings (default 5), the two contenders interleaved
in every repeat. ``--clock cpu`` times the calling thread's CPU time instead of wall time,
which is steadier on a shared machine (not meaningful for the multithreaded QR). Ratios > 1
mean course_lib is slower. Targets: <= 1.15 against the bare call; truncated normal faster
than Keras. No assertions: the numbers are for the reader.

Run:  ``.venv/bin/python benchmarks/bench_initializers.py [--size 4096] [--repeats 5]``
(on a busy machine prefix ``OPENBLAS_NUM_THREADS=1``: spinning BLAS threads make the QR
timings meaningless when the cores are oversubscribed).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from course_lib import initializers as ci

Thunk = Callable[[], object]


def compare(
    fns: list[Thunk], repeats: int, clock: Callable[[], float]
) -> list[tuple[float, float]]:
    """(median, min) seconds of each thunk; the thunks are interleaved in every repeat."""
    for fn in fns:  # warm-up (page faults, lazy imports, BLAS threads)
        fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = clock()
            fn()
            samples[i].append(clock() - start)
    return [(statistics.median(s), min(s)) for s in samples]


def _ours(
    init: Callable[..., object],
    shape: tuple[int, ...],
    rng: np.random.Generator,
    dtype: npt.DTypeLike,
) -> Thunk:
    return lambda: init(shape, rng=rng, dtype=dtype)


def _bare_normal(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: npt.DTypeLike, std: float
) -> tuple[str, Thunk]:
    if np.dtype(dtype) == np.float64:
        return "rng.normal(0, s)", lambda: rng.normal(0.0, std, shape)
    return "rng.standard_normal", lambda: rng.standard_normal(shape, dtype=np.float32)


def _bare_uniform(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: npt.DTypeLike, bound: float
) -> tuple[str, Thunk]:
    if np.dtype(dtype) == np.float64:
        return "rng.uniform(-b, b)", lambda: rng.uniform(-bound, bound, shape)
    return "rng.random", lambda: rng.random(shape, dtype=np.float32)


def _bare_linear(rng: np.random.Generator, n: int, dtype: npt.DTypeLike, bound: float) -> Thunk:
    if np.dtype(dtype) == np.float64:
        return lambda: (rng.uniform(-bound, bound, (n, n)), rng.uniform(-bound, bound, n))
    return lambda: (rng.random((n, n), dtype=np.float32), rng.random(n, dtype=np.float32))


def cases(
    n: int, m: int, dtype: npt.DTypeLike, rng: np.random.Generator
) -> list[tuple[str, Thunk, str, Thunk]]:
    """(name, course_lib thunk, bare-call name, bare-call thunk) for one dtype."""
    shape = (n, n)
    fan_in, fan_out = ci.compute_fans(shape)
    out: list[tuple[str, Thunk, str, Thunk]] = []
    for scheme, var in [
        ("lecun", 1 / fan_in),
        ("xavier", 2 / (fan_in + fan_out)),
        ("he", 2 / fan_in),
    ]:
        name_n, bare_n = _bare_normal(rng, shape, dtype, math.sqrt(var))
        name_u, bare_u = _bare_uniform(rng, shape, dtype, math.sqrt(3 * var))
        out.append(
            (
                f"{scheme}_normal",
                _ours(getattr(ci, f"{scheme}_normal"), shape, rng, dtype),
                name_n,
                bare_n,
            )
        )
        out.append(
            (
                f"{scheme}_uniform",
                _ours(getattr(ci, f"{scheme}_uniform"), shape, rng, dtype),
                name_u,
                bare_u,
            )
        )
        out.append(
            (
                f"{scheme}_truncated_normal",
                _ours(getattr(ci, f"{scheme}_truncated_normal"), shape, rng, dtype),
                "rng.standard_normal (floor)",
                _bare_normal(rng, shape, np.float32, 1.0)[1]
                if np.dtype(dtype) == np.float32
                else (lambda: rng.standard_normal(shape)),
            )
        )
    bound = 1 / math.sqrt(fan_in)
    name_u, bare_u = _bare_uniform(rng, shape, dtype, bound)
    out.append(("standard_uniform", _ours(ci.standard_uniform, shape, rng, dtype), name_u, bare_u))
    out.append(
        (
            "torch_linear_default",
            lambda: ci.torch_linear_default(n, n, rng=rng, dtype=dtype),
            name_u + " weight+bias",
            _bare_linear(rng, n, dtype, bound),
        )
    )
    out.append(
        (
            "zeros",
            lambda: ci.zeros(shape, dtype=dtype),
            "np.zeros",
            lambda: np.zeros(shape, dtype=dtype),
        )
    )
    out.append(
        (
            "constant",
            lambda: ci.constant(shape, 0.1, dtype=dtype),
            "np.full",
            lambda: np.full(shape, 0.1, dtype=dtype),
        )
    )
    out.append(
        (
            f"orthogonal {m}x{m}",
            lambda: ci.orthogonal((m, m), rng=rng, dtype=dtype),
            "standard_normal + qr",
            lambda: np.linalg.qr(rng.standard_normal((m, m))),
        )
    )
    return out


def keras_thunk(n: int, dtype_name: str) -> Thunk:
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    import keras

    init: Any = keras.initializers.HeNormal(seed=keras.random.SeedGenerator(0))
    return lambda: init((n, n), dtype=dtype_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="n for the (n, n) arrays")
    parser.add_argument("--ortho-size", type=int, default=512, help="m for orthogonal (m, m)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--no-keras", action="store_true")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.thread_time
    rng = np.random.default_rng(0)
    n = args.size

    print(
        f"shape ({n}, {n}); orthogonal ({args.ortho_size}, {args.ortho_size}); "
        f"{args.repeats} interleaved repeats; {args.clock} clock; ms are medians; "
        "ratio = course_lib / other (median, and min in brackets)"
    )
    print(_header("bare ms", "bare call"))
    for dtype in (np.float32, np.float64):
        for name, ours, bare_name, bare in cases(n, args.ortho_size, dtype, rng):
            t_ours, t_bare = compare([ours, bare], args.repeats, clock)
            print(_row(name, np.dtype(dtype).name, t_ours, t_bare, bare_name), flush=True)
    if args.no_keras:
        return
    print()
    print(_header("keras ms", "other"))
    for dtype in (np.float32, np.float64):
        dname = np.dtype(dtype).name
        ours = _ours(ci.he_truncated_normal, (n, n), rng, dtype)
        t_ours, t_keras = compare([ours, keras_thunk(n, dname)], args.repeats, clock)
        print(_row("he_truncated_normal", dname, t_ours, t_keras, "keras HeNormal"), flush=True)


def _header(other: str, label: str) -> str:
    return (
        f"{'initializer':<26}{'dtype':<9}{'ours ms':>9}{other:>9}{'ratio':>7}{'(min)':>8}  {label}"
    )


def _row(
    name: str, dname: str, ours: tuple[float, float], other: tuple[float, float], label: str
) -> str:
    return (
        f"{name:<26}{dname:<9}{1e3 * ours[0]:9.1f}{1e3 * other[0]:9.1f}"
        f"{ours[0] / other[0]:7.2f}{f'({ours[1] / other[1]:.2f})':>8}  {label}"
    )


if __name__ == "__main__":
    main()
