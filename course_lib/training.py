r"""A small NumPy MLP trainer: mini-batch SGD with momentum and softmax cross-entropy.

:func:`train_mlp` trains a fully connected net (hidden activation of your choice, linear output
layer, softmax cross-entropy) and returns a :class:`History` with the per-epoch losses and
accuracies, optionally the per-layer gradient norms, and the final weights. It is meant for the
course's comparisons of initializations on the digits data: a 64-100-100-10 net trains for 30
epochs in well under a second.

Randomness (SPEC 7): the keyword-only ``rng`` is split with ``rng.spawn(3)`` into independent
streams for the initial weights, the mini-batch order and the dropout masks, so the same seed
gives the same history, and switching dropout on does not change the initial weights.

Chapter: "Initialization in practice" (book/practice.md), "Comparing schemes"
(book/comparing.md).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar, cast

import numpy as np
import numpy.typing as npt

from . import network as _net
from ._validation import RNGLike, as_generator, check_choice
from .experiments import Initializer, init_network, resolve_initializer

__all__ = [
    "History",
    "accuracy",
    "compare_initializers",
    "compare_setups",
    "learning_rate_grid",
    "predict_logits",
    "scaled_initializer",
    "train_mlp",
]

FloatArray = npt.NDArray[np.floating]


@dataclass
class History:
    """What :func:`train_mlp` measured.

    Attributes
    ----------
    epoch : ndarray of int, shape (E + 1,)
        ``0, 1, ..., E``; row 0 is the untrained network (E is the number of epochs run, which
        early stopping or divergence can make smaller than ``epochs``).
    train_loss, train_acc : ndarray, shape (E + 1,)
        Mean softmax cross-entropy and accuracy on the whole training set after each epoch
        (no dropout at evaluation).
    val_loss, val_acc : ndarray, shape (E + 1,)
        The same on the validation set (``nan`` without one).
    grad_norms : ndarray, shape (E + 1, n_layers), or None
        With ``record_grad_norms=True``: Frobenius norms of each layer's loss gradient
        :math:`\\partial \\mathcal L/\\partial W^{(\\ell)}` (weight decay excluded); row 0 is the
        full-batch gradient at initialization, row ``e`` the mean over epoch ``e``'s mini-batches.
    weights, biases : list of ndarray
        The parameters at the end (the best epoch's if early stopping restored them).
    best_epoch : int
        Epoch with the lowest validation loss (training loss without validation data).
    stopped_early, diverged : bool
        Whether early stopping fired; whether the loss became non-finite (training stops).
    label : str
        The initializer's name (for legends).
    activation : str
    seconds : float
        Wall-clock training time (not part of the reproducible result).
    """

    epoch: npt.NDArray[np.int64]
    train_loss: npt.NDArray[np.float64]
    train_acc: npt.NDArray[np.float64]
    val_loss: npt.NDArray[np.float64]
    val_acc: npt.NDArray[np.float64]
    grad_norms: npt.NDArray[np.float64] | None
    weights: list[FloatArray]
    biases: list[FloatArray]
    best_epoch: int
    stopped_early: bool
    diverged: bool
    label: str
    activation: str
    seconds: float = field(default=0.0, compare=False)


def predict_logits(
    X: npt.ArrayLike,
    weights: Sequence[npt.ArrayLike],
    biases: Sequence[npt.ArrayLike | None] | None,
    activation: str,
) -> FloatArray:
    """Logits of the trained net (hidden ``activation``, linear output): a forward pass.

    Notes
    -----
    Calls :func:`course_lib.network.forward` with ``output_activation="linear"``.
    """
    return _net.forward(X, weights, activation, biases=biases, output_activation="linear").output


def accuracy(logits: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Fraction of rows whose largest logit is at the true label."""
    z = np.asarray(logits)
    labels = np.asarray(y)
    if z.ndim != 2 or labels.shape != (z.shape[0],):
        raise ValueError(
            f"shape mismatch: logits have shape {z.shape}, labels have shape {labels.shape}"
        )
    return float(np.mean(np.argmax(z, axis=1) == labels))


def _check_xy(
    X: npt.ArrayLike, y: npt.ArrayLike, name: str
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    Xa = np.asarray(X, dtype=np.float64)
    ya = np.asarray(y)
    if Xa.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {Xa.shape}")
    if ya.shape != (Xa.shape[0],):
        raise ValueError(
            f"shape mismatch: {name} has shape {Xa.shape} but its labels have shape {ya.shape}"
        )
    return Xa, _net._integer_labels(ya)


def _loss_acc(
    X: FloatArray, y: npt.NDArray[np.int64], ws: list[FloatArray], bs: list[FloatArray], act: str
) -> tuple[float, float]:
    a = X
    L = len(ws)
    for i in range(L):
        z = a @ ws[i] + bs[i]
        a = _net._act_fast(z, act, 0.01) if i < L - 1 else z
    with np.errstate(over="ignore", invalid="ignore"):
        loss = _net.cross_entropy(a, y)
    return loss, float(np.mean(np.argmax(a, axis=1) == y))


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Run small matrix products on one BLAS thread (restored afterwards).

    The trainer's products are small (a batch of 32 by 100 units): BLAS threads cost more in
    synchronization than they save, and on a busy machine they can slow training down several
    times (measured 2.9 s vs 7.5 s for 30 epochs of a 64-100-100-10 net under load).
    """
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - threadpoolctl is a declared dependency
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _blas_single_threaded(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _single_threaded_blas():
            return fn(*args, **kwargs)

    return wrapper


@_blas_single_threaded
def train_mlp(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    layer_sizes: Sequence[int],
    *,
    initializer: Initializer,
    activation: str,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    X_val: npt.ArrayLike | None = None,
    y_val: npt.ArrayLike | None = None,
    rng: RNGLike,
    record_grad_norms: bool = False,
    dropout: float = 0.0,
    early_stopping_patience: int | None = None,
    restore_best: bool = True,
    bias_init: float = 0.0,
) -> History:
    r"""Train an MLP classifier with mini-batch SGD with momentum on softmax cross-entropy.

    Parameters
    ----------
    X : array_like, shape (samples, features)
    y : array_like of int, shape (samples,)
        Class labels ``0..layer_sizes[-1]-1``.
    layer_sizes : sequence of int
        ``[features, hidden..., classes]``, e.g. ``[64, 100, 100, 10]``.
    initializer : callable or str
        ``init(shape, rng=rng)`` or a name from :mod:`course_lib.initializers`; biases start at
        ``bias_init`` (0).
    activation : str
        Hidden activation, one of :data:`course_lib.network.ACTIVATIONS`; the output is linear.
    epochs, batch_size : int
    lr, momentum : float
        Learning rate :math:`\eta` and momentum :math:`\mu \in [0, 1)`.
    weight_decay : float
        L2 coefficient :math:`\lambda` on the weights (not the biases).
    X_val, y_val : array_like, optional
        Validation set (needed for early stopping).
    rng : Generator, seed or None
        Keyword-only (SPEC 7).
    record_grad_norms : bool
        Record per-layer gradient norms (see :class:`History`).
    dropout : float in [0, 1)
        Probability of dropping a hidden unit during training (inverted dropout: kept units are
        scaled by :math:`1/(1-p)`, so nothing changes at evaluation).
    early_stopping_patience : int, optional
        Stop after this many epochs without a lower validation loss.
    restore_best : bool
        With early stopping, return the best epoch's weights.

    Returns
    -------
    History

    Raises
    ------
    ValueError
        Bad sizes, shapes, labels or hyper-parameters (the message names them).

    Notes
    -----
    Each step on a mini-batch :math:`B` computes :math:`g = \nabla_W \big(\frac{1}{|B|}
    \sum_{b\in B} \ell_b\big) + \lambda W` and updates :math:`v \leftarrow \mu v - \eta g`,
    :math:`W \leftarrow W + v` (classical momentum). Mini-batches follow a fresh permutation each
    epoch. If the training loss becomes non-finite the run stops with ``diverged=True``, which is
    what a badly scaled initialization can do. The matrix products run on one BLAS thread
    (threadpoolctl; restored afterwards): for these small products threads only add overhead.
    Chapter: "Initialization in practice" (book/practice.md).
    """
    start_time = time.perf_counter()
    gen = as_generator(rng)
    act = check_choice(activation, _net.ACTIVATIONS, name="activation")
    Xa, ya = _check_xy(X, y, "X")
    sizes = [int(s) for s in layer_sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"layer_sizes needs at least two positive sizes, got {layer_sizes!r}")
    if sizes[0] != Xa.shape[1]:
        raise ValueError(
            f"shape mismatch: layer_sizes[0] = {sizes[0]} but X has shape {Xa.shape} "
            f"({Xa.shape[1]} features)"
        )
    n_classes = sizes[-1]
    if ya.size and (ya.min() < 0 or ya.max() >= n_classes):
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1} (layer_sizes[-1] = {n_classes} classes), got "
            f"{int(ya.min())}..{int(ya.max())}"
        )
    have_val = X_val is not None or y_val is not None
    if have_val:
        if X_val is None or y_val is None:
            raise ValueError("give both X_val and y_val, or neither")
        Xv, yv = _check_xy(X_val, y_val, "X_val")
        if Xv.shape[1] != sizes[0]:
            raise ValueError(
                f"shape mismatch: X_val has shape {Xv.shape}, the net expects {sizes[0]} features"
            )
    n_epochs = _int_at_least(epochs, 0, "epochs")
    bsz = _int_at_least(batch_size, 1, "batch_size")
    eta = float(lr)
    if not (math.isfinite(eta) and eta > 0):
        raise ValueError(f"lr must be a finite positive number, got {lr!r}")
    mu = float(momentum)
    if not 0.0 <= mu < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
    wd = float(weight_decay)
    if not (math.isfinite(wd) and wd >= 0):
        raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay!r}")
    p_drop = float(dropout)
    if not 0.0 <= p_drop < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
    patience = None
    if early_stopping_patience is not None:
        patience = _int_at_least(early_stopping_patience, 1, "early_stopping_patience")
        if not have_val:
            raise ValueError("early_stopping_patience needs a validation set (X_val, y_val)")

    init_gen, order_gen, drop_gen = gen.spawn(3)
    init = resolve_initializer(initializer)
    label = (
        initializer if isinstance(initializer, str) else getattr(initializer, "__name__", "init")
    )
    ws, _ = init_network(sizes, init, rng=init_gen)
    bs: list[FloatArray] = [np.full(s, float(bias_init)) for s in sizes[1:]]
    vw = [np.zeros_like(w) for w in ws]
    vb = [np.zeros_like(b) for b in bs]
    L = len(ws)
    n = Xa.shape[0]

    tl, ta, vl, va, gn = [], [], [], [], []

    def evaluate() -> None:
        loss, acc = _loss_acc(Xa, ya, ws, bs, act)
        tl.append(loss)
        ta.append(acc)
        if have_val:
            loss_v, acc_v = _loss_acc(Xv, yv, ws, bs, act)
            vl.append(loss_v)
            va.append(acc_v)
        else:
            vl.append(math.nan)
            va.append(math.nan)

    def gradients(
        Xb: FloatArray, yb: npt.NDArray[np.int64], masks: bool
    ) -> tuple[list[FloatArray], list[FloatArray], float]:
        inputs: list[FloatArray] = []
        derivs: list[FloatArray] = []
        a = Xb
        for i in range(L):
            inputs.append(a)
            z = a @ ws[i] + bs[i]
            if i == L - 1:
                a = z
                break
            a = _net._act_fast(z, act, 0.01)
            d = _net._derivative_from(z, a, act, 0.01)
            if masks and p_drop > 0:
                keep = (drop_gen.random(a.shape) >= p_drop) / (1.0 - p_drop)
                a = a * keep
                d = d * keep
            derivs.append(d)
        with np.errstate(over="ignore", invalid="ignore"):
            loss, g = _net.softmax_cross_entropy(a, yb)
        dws: list[FloatArray] = [np.empty(0)] * L
        dbs: list[FloatArray] = [np.empty(0)] * L
        for i in range(L - 1, -1, -1):
            dws[i] = inputs[i].T @ g
            dbs[i] = g.sum(axis=0)
            if i > 0:
                g = (g @ ws[i].T) * derivs[i - 1]
        return dws, dbs, loss

    evaluate()
    if record_grad_norms:
        with np.errstate(over="ignore", invalid="ignore"):
            dws0, _, _ = gradients(Xa, ya, masks=False)
        gn.append([float(np.linalg.norm(d)) for d in dws0])

    best_loss = math.inf
    best_epoch = 0
    best_params: tuple[list[FloatArray], list[FloatArray]] | None = None
    stopped_early = False
    diverged = not math.isfinite(tl[0])
    since_best = 0
    monitor = vl if have_val else tl
    if math.isfinite(monitor[0]):
        best_loss = monitor[0]
        best_params = ([w.copy() for w in ws], [b.copy() for b in bs])

    for epoch in range(1, n_epochs + 1):
        if diverged:
            break
        order = order_gen.permutation(n)
        norm_sum = np.zeros(L)
        n_batches = 0
        with np.errstate(over="ignore", invalid="ignore"):
            for s in range(0, n, bsz):
                idx = order[s : s + bsz]
                dws, dbs, _ = gradients(Xa[idx], ya[idx], masks=True)
                if record_grad_norms:
                    norm_sum += [float(np.linalg.norm(d)) for d in dws]
                n_batches += 1
                for i in range(L):
                    g_w = dws[i] + wd * ws[i] if wd else dws[i]
                    vw[i] = mu * vw[i] - eta * g_w
                    vb[i] = mu * vb[i] - eta * dbs[i]
                    ws[i] = ws[i] + vw[i]
                    bs[i] = bs[i] + vb[i]
        if record_grad_norms:
            gn.append(list(norm_sum / max(n_batches, 1)))
        evaluate()
        if not math.isfinite(tl[-1]):
            diverged = True
            break
        if monitor[-1] < best_loss:
            best_loss = monitor[-1]
            best_epoch = epoch
            since_best = 0
            if patience is not None and restore_best:
                best_params = ([w.copy() for w in ws], [b.copy() for b in bs])
        else:
            since_best += 1
            if patience is not None and since_best >= patience:
                stopped_early = True
                break

    if stopped_early and restore_best and best_params is not None:
        ws, bs = best_params
    return History(
        epoch=np.arange(len(tl)),
        train_loss=np.asarray(tl, dtype=np.float64),
        train_acc=np.asarray(ta, dtype=np.float64),
        val_loss=np.asarray(vl, dtype=np.float64),
        val_acc=np.asarray(va, dtype=np.float64),
        grad_norms=np.asarray(gn, dtype=np.float64) if record_grad_norms else None,
        weights=ws,
        biases=bs,
        best_epoch=best_epoch,
        stopped_early=stopped_early,
        diverged=diverged,
        label=str(label),
        activation=act,
        seconds=time.perf_counter() - start_time,
    )


def compare_setups(
    setups: Mapping[str, Mapping[str, Any]],
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    layer_sizes: Sequence[int],
    *,
    rng: RNGLike,
    n_replicates: int = 1,
    **common: Any,
) -> dict[str, list[History]]:
    """Train the same net under several set-ups, as a paired comparison over replicates.

    Parameters
    ----------
    setups : mapping label -> mapping of keyword arguments
        Each set-up's arguments to :func:`train_mlp` (``initializer``, ``lr``, ``dropout``, ...);
        they override ``common``.
    X, y, layer_sizes
        As in :func:`train_mlp`.
    rng : Generator, seed or SeedSequence
        Keyword-only; ``rng.spawn(n_replicates)`` gives one child per replicate.
    n_replicates : int
        Independent runs per set-up (the book uses at least 5 for a claim).
    **common
        Arguments shared by every set-up (``activation``, ``epochs``, ``X_val``, ...).

    Returns
    -------
    dict label -> list of History
        One History per replicate, in spawn order.

    Notes
    -----
    Replicate ``r`` uses the same child generator's seed for every set-up, so the runs share
    their initial draws, mini-batch order and dropout masks (common random numbers) and differ
    only in what the set-up changes: differences between set-ups are not blurred by the data
    order. This is the one paired-comparison function of the course; :func:`compare_initializers`
    and :func:`course_lib.papers.train_schemes` call it. Chapter: book/practice.md.
    """
    gen = as_generator(rng)
    R = _int_at_least(n_replicates, 1, "n_replicates")
    items = [(str(k), dict(v)) for k, v in setups.items()]
    if not items:
        raise ValueError("setups must name at least one set-up")
    seeds = [cast(np.random.SeedSequence, c.bit_generator.seed_seq) for c in gen.spawn(R)]
    out: dict[str, list[History]] = {}
    for label, kw in items:
        out[label] = [
            train_mlp(X, y, layer_sizes, rng=np.random.default_rng(seed), **{**common, **kw})
            for seed in seeds
        ]
    return out


def compare_initializers(
    initializers: Sequence[Initializer] | Mapping[str, Initializer],
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    layer_sizes: Sequence[int],
    *,
    rng: RNGLike,
    n_replicates: int = 1,
    **train_kwargs: Any,
) -> dict[str, list[History]]:
    """Train the same net from several initializations, as a paired comparison.

    Parameters
    ----------
    initializers : sequence of (name or callable), or mapping label -> initializer
    X, y, layer_sizes
        As in :func:`train_mlp`.
    rng : Generator, seed or None
        Keyword-only; ``rng.spawn(n_replicates)`` gives one seed per replicate.
    n_replicates : int
        Independent runs per initializer.
    **train_kwargs
        Passed to :func:`train_mlp` (``activation``, ``epochs``, ``lr``, ``X_val``, ...).

    Returns
    -------
    dict label -> list of History
        One History per replicate.

    Notes
    -----
    :func:`compare_setups` with one set-up per initializer: replicate ``r`` uses the same seed
    for every initializer (common random numbers), so the runs differ only in the initial
    weights. Chapter: "Initialization in practice" (book/practice.md).
    """
    if isinstance(initializers, Mapping):
        items = [(str(k), v) for k, v in initializers.items()]
    else:
        items = [
            (v if isinstance(v, str) else getattr(v, "__name__", repr(v)), v) for v in initializers
        ]
    if not items:
        raise ValueError("initializers must name at least one initializer")
    labels = [k for k, _ in items]
    if len(set(labels)) != len(labels):
        raise ValueError(f"initializer labels must be distinct, got {labels}")
    out = compare_setups(
        {label: {"initializer": init} for label, init in items},
        X,
        y,
        layer_sizes,
        rng=rng,
        n_replicates=n_replicates,
        **train_kwargs,
    )
    for label, runs in out.items():
        for h in runs:
            h.label = label
    return out


def scaled_initializer(base: Initializer, factor: float) -> Callable[..., FloatArray]:
    """The initializer ``factor * base(shape, rng=rng)``, named ``"<factor> x <base>"``.

    Chapter: book/practice.md (weights ten times smaller than He's; the learning-rate grid).
    """
    draw = resolve_initializer(base)
    c = float(factor)
    if not (math.isfinite(c) and c > 0):
        raise ValueError(f"factor must be a finite positive number, got {factor!r}")

    def scaled(shape: Sequence[int], *, rng: RNGLike = None) -> FloatArray:
        return c * draw(tuple(shape), rng=rng)

    name = base if isinstance(base, str) else getattr(base, "__name__", "init")
    scaled.__name__ = f"{c:g} x {name}"
    return scaled


def learning_rate_grid(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    layer_sizes: Sequence[int],
    *,
    initializer: Initializer,
    scales: Sequence[float],
    lrs: Sequence[float],
    rng: RNGLike,
    n_replicates: int = 1,
    **train_kwargs: Any,
) -> npt.NDArray[np.float64]:
    r"""Final training loss for every (initialization scale, learning rate) pair, per replicate.

    Returns
    -------
    ndarray, shape (n_replicates, len(scales), len(lrs))
        ``train_loss[-1]`` of the net initialized with ``scale * initializer`` and trained at
        ``lr``; replicate ``r`` shares its seed across the grid (:func:`compare_setups`).

    Notes
    -----
    The step :math:`\eta\,\partial\mathcal L/\partial W` matters relative to the size of
    :math:`W`, so a learning rate is good or bad only together with an initialization scale.
    Chapter: book/practice.md.
    """
    cells = [(i, j) for i in range(len(scales)) for j in range(len(lrs))]
    setups = {
        f"{i},{j}": {"initializer": scaled_initializer(initializer, scales[i]), "lr": lrs[j]}
        for i, j in cells
    }
    runs = compare_setups(
        setups, X, y, layer_sizes, rng=rng, n_replicates=n_replicates, **train_kwargs
    )
    R = len(next(iter(runs.values())))
    out = np.empty((R, len(scales), len(lrs)))
    for i, j in cells:
        for r, h in enumerate(runs[f"{i},{j}"]):
            out[r, i, j] = float(h.train_loss[-1])
    return out


def _int_at_least(value: int, low: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)
