"""Benchmark of course_lib.network (prints numbers, asserts nothing).

1. Forward pass of a 10-layer, width-500 MLP on a batch of 1000 with ``network.forward``
   (keep="all") against a bare ``a = f(a @ W)`` loop; median of interleaved repeats in the same
   run. Target: ratio <= 1.3. Also shown: the same bare loop when it keeps every z and a (what
   keep="all" must do): keeping 20 arrays of 4 MB costs fresh memory, which is most of the gap.
2. Peak memory (tracemalloc) and time of forward + backward at depth 100 with keep="stats"
   (per-layer summaries, sqrt(depth) checkpoints) against keep="all".
3. ``training.train_mlp`` on the digits data: a 64-100-100-10 net, 30 epochs.

Run: ``.venv/bin/python benchmarks/bench_network.py`` (or ``make bench``).
"""

from __future__ import annotations

import math
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from course_lib import data, network, training


def _median_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():  # interleaved, so load changes hit both alike
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_forward(repeats: int = 21) -> None:
    rng = np.random.default_rng(0)
    depth, width, batch = 10, 500, 1000
    ws = [rng.normal(0, 1 / math.sqrt(width), size=(width, width)) for _ in range(depth)]
    X = rng.normal(size=(batch, width))
    print(f"forward pass, {depth} layers x {width} units, batch {batch} (median of {repeats})")
    for act, f in (("tanh", np.tanh), ("relu", lambda z: np.maximum(z, 0.0))):

        def bare(f: Callable[[np.ndarray], np.ndarray] = f) -> np.ndarray:  # type: ignore[type-arg]
            a = X
            for W in ws:
                a = f(a @ W)
            return a

        def bare_keep(f: Callable[[np.ndarray], np.ndarray] = f) -> list[np.ndarray]:  # type: ignore[type-arg]
            a, kept = X, []
            for W in ws:
                z = a @ W
                a = f(z)
                kept += [z, a]
            return kept

        def ours(act: str = act) -> network.ForwardPass:
            return network.forward(X, ws, act)

        def ours_stats(act: str = act) -> network.ForwardPass:
            return network.forward(X, ws, act, keep="stats")

        np.testing.assert_allclose(ours().output, bare(), rtol=1e-12)
        med = _median_times(
            {"bare": bare, "bare_keep": bare_keep, "all": ours, "stats": ours_stats}, repeats
        )
        print(
            f"  {act:5s} bare loop {med['bare'] * 1e3:6.1f} ms | bare loop keeping z and a "
            f"{med['bare_keep'] * 1e3:6.1f} ms | forward(keep='all') {med['all'] * 1e3:6.1f} ms"
            f" | forward(keep='stats') {med['stats'] * 1e3:6.1f} ms"
        )
        print(
            f"        ratios to the bare loop: keep='all' {med['all'] / med['bare']:.2f}, "
            f"keep='stats' {med['stats'] / med['bare']:.2f}; keep='all' to the bare loop that "
            f"also keeps its arrays: {med['all'] / med['bare_keep']:.2f}"
        )


def bench_memory(depth: int = 100, width: int = 256, batch: int = 512) -> None:
    rng = np.random.default_rng(1)
    ws = [rng.normal(0, 1 / math.sqrt(width), size=(width, width)) for _ in range(depth)]
    X = rng.normal(size=(batch, width))
    G = rng.normal(size=(batch, width))
    array_mb = batch * width * 8 / 2**20
    print(
        f"forward + backward, depth {depth}, width {width}, batch {batch} "
        f"(one activation array = {array_mb:.2f} MiB; weights allocated before measuring)"
    )
    for keep in ("all", "stats"):

        def run(keep: str = keep) -> None:
            fp = network.forward(X, ws, "tanh", keep=keep)  # type: ignore[arg-type]
            network.backward(fp, ws, G, keep=keep)  # type: ignore[arg-type]

        tracemalloc.start()
        t = time.perf_counter()
        run()
        seconds = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # time again without tracemalloc's overhead
        t = time.perf_counter()
        run()
        plain = time.perf_counter() - t
        print(
            f"  keep={keep!r:8s} peak {peak / 2**20:8.1f} MiB ({peak / 2**20 / array_mb:5.1f} "
            f"arrays)  time {plain:6.2f} s (under tracemalloc {seconds:.2f} s)"
        )


def bench_training(epochs: int = 30) -> None:
    X, y = data.load_digits()
    Xtr, Xte, ytr, yte = data.train_test_split(X, y, test_fraction=0.25, rng=0)
    Xtr, mu, sd = data.standardize(Xtr)
    Xte, _, _ = data.standardize(Xte, mu, sd)
    times = []
    for seed in range(3):
        h = training.train_mlp(
            Xtr,
            ytr,
            [64, 100, 100, 10],
            initializer="he_normal",
            activation="relu",
            epochs=epochs,
            batch_size=32,
            lr=0.01,
            momentum=0.9,
            X_val=Xte,
            y_val=yte,
            rng=seed,
        )
        times.append(h.seconds)
    print(
        f"train_mlp 64-100-100-10 relu, {epochs} epochs, batch 32, {len(ytr)} digits: median "
        f"{statistics.median(times):.2f} s per net (val acc {h.val_acc[-1]:.3f})"
    )


if __name__ == "__main__":
    bench_forward()
    bench_memory()
    bench_training()
