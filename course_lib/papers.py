"""The experiments of the paper-reproduction chapters, shared by the book and its tests.

Each function samples networks with a keyword-only ``rng`` (SPEC 7) and returns plain numbers and
arrays, so the chapter that plots them and the test that checks their headline claims compute the
very same values. Chapters: book/papers/glorot2010.md and book/papers/he2015.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import initializers as init
from . import network, training
from ._validation import RNGLike, as_generator
from .data import DigitsSplit, digits_split  # one home: course_lib.data
from .seeds import DEFAULT_SEEDS, over_seeds

__all__ = [
    "AtInit",
    "PaperExperiment",
    "glorot2010_experiment",
    "glorot2010_schemes",
    "he2015_experiment",
    "he2015_learning_rates",
    "he2015_schemes",
    "network_at_init",
    "train_schemes",
]

FloatArray = npt.NDArray[np.float64]


def he2015_schemes() -> dict[str, init.Initializer]:
    """The two initializations of He et al.'s Figure 3: Var(w) = 1/n and Var(w) = 2/n."""
    return {"Var(w) = 1/n": init.lecun_normal, "Var(w) = 2/n (He)": init.he_normal}


def glorot2010_schemes() -> dict[str, init.Initializer]:
    """Glorot & Bengio's 'standard' heuristic U(±1/√n) and their normalized initialization."""
    return {
        "standard U(±1/√n)": init.standard_uniform,
        "normalized (Xavier uniform)": init.xavier_uniform,
    }


@dataclass(frozen=True)
class AtInit:
    """One freshly initialized network's per-layer statistics on a batch.

    ``activations`` and ``gradients`` hold the hidden layers' activations and back-propagated
    gradients ``dL/dz`` (for histograms); ``act_std``/``grad_std`` their standard deviations;
    ``weight_grad_norms`` the Frobenius norm of every weight matrix's gradient (output layer
    included); ``loss`` the softmax cross-entropy at initialization.
    """

    activations: list[FloatArray]
    gradients: list[FloatArray]
    act_std: FloatArray
    grad_std: FloatArray
    weight_grad_norms: FloatArray
    loss: float


def network_at_init(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    layer_sizes: Sequence[int],
    initializer: init.Initializer,
    activation: str,
    *,
    rng: RNGLike,
) -> AtInit:
    r"""Draw one network and measure its forward and backward signal at initialization.

    Notes
    -----
    The loss is the mean softmax cross-entropy of linear output logits; its gradient
    :math:`(\operatorname{softmax}(z) - t)/B` is back-propagated with
    :func:`course_lib.network.backward`. Weights are drawn layer by layer from ``rng``.
    """
    gen = as_generator(rng)
    sizes = [int(s) for s in layer_sizes]
    weights = [initializer((a, b), rng=gen) for a, b in itertools.pairwise(sizes)]
    fp = network.forward(X, weights, activation, output_activation="linear")
    loss, grad_logits = network.softmax_cross_entropy(fp.output, y)
    bp = network.backward(fp, weights, grad_logits, activation)
    hidden = len(sizes) - 2
    acts = [np.asarray(a, dtype=np.float64) for a in fp.activations[:hidden]]
    grads = [np.asarray(g, dtype=np.float64) for g in bp.preactivation_grads[:hidden]]
    return AtInit(
        activations=acts,
        gradients=grads,
        act_std=np.array([a.std() for a in acts]),
        grad_std=np.array([g.std() for g in grads]),
        weight_grad_norms=np.array([float(np.linalg.norm(g)) for g in bp.weight_grads]),
        loss=float(loss),
    )


def train_schemes(
    data: DigitsSplit,
    layer_sizes: Sequence[int],
    schemes: Mapping[str, init.Initializer],
    activation: str,
    *,
    rng: RNGLike,
    n_seeds: int = 1,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float = 0.9,
) -> dict[str, list[training.History]]:
    """Train every scheme on the same data with ``n_seeds`` independent streams each.

    A thin wrapper of :func:`course_lib.training.compare_initializers` (the one paired
    comparison of the course): seed ``k`` of every scheme uses the same child of
    ``rng.spawn(n_seeds)``, so the schemes differ only in their initializer. Gradient norms are
    recorded and no epoch is restored.
    """
    return training.compare_initializers(
        schemes,
        data.X_train,
        data.y_train,
        layer_sizes,
        rng=rng,
        n_replicates=n_seeds,
        activation=activation,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        momentum=momentum,
        X_val=data.X_test,
        y_val=data.y_test,
        record_grad_norms=True,
        restore_best=False,
    )


@dataclass(frozen=True)
class PaperExperiment:
    """Everything a reproduction chapter shows: statistics at initialization and training runs.

    ``at_init[label]`` and ``runs[label]`` hold one entry per seed (children of the chapter's
    generator, in spawn order).
    """

    layer_sizes: list[int]
    at_init: dict[str, list[AtInit]]
    runs: dict[str, list[training.History]]


def _at_init_over_seeds(
    X: FloatArray,
    y: npt.NDArray[np.int64],
    sizes: Sequence[int],
    schemes: Mapping[str, init.Initializer],
    activation: str,
    *,
    rng: np.random.Generator,
    n_seeds: int,
) -> dict[str, list[AtInit]]:
    per_seed = over_seeds(
        lambda g: {
            label: network_at_init(X, y, sizes, maker, activation, rng=g)
            for label, maker in schemes.items()
        },
        n_seeds=n_seeds,
        rng=rng,
    )
    return {label: [d[label] for d in per_seed] for label in schemes}


def he2015_experiment(
    *,
    rng: RNGLike,
    depth: int = 30,
    width: int = 64,
    epochs: int = 15,
    lr: float = 0.002,
    batch_size: int = 32,
    init_batch: int = 512,
    n_seeds: int = DEFAULT_SEEDS,
) -> PaperExperiment:
    r"""He et al. (2015), Figure 3, as a fully connected ReLU net on the digits.

    A ``depth``-layer, ``width``-wide plain ReLU MLP with :math:`\operatorname{Var}(w) = 1/n`
    (LeCun normal) and with :math:`2/n` (He normal): statistics at initialization on
    ``init_batch`` training images of ``n_seeds`` networks of each, then ``n_seeds`` paired
    training runs of each. Draws, in order: the train/test split, the networks at init (one
    child per seed), the training seeds (one child per seed).

    Notes
    -----
    With ReLU each layer multiplies the signal's second moment by :math:`n\operatorname{Var}(w)/2`,
    so the :math:`1/n` net's last layer has :math:`2^{-L}` of the input's second moment.
    Chapter: book/papers/he2015.md.
    """
    gen = as_generator(rng)
    data = digits_split(rng=gen)
    sizes = [data.X_train.shape[1]] + [width] * depth + [10]
    schemes = he2015_schemes()
    at_init = _at_init_over_seeds(
        data.X_train[:init_batch], data.y_train[:init_batch], sizes, schemes, "relu",
        rng=gen, n_seeds=n_seeds,
    )
    runs = train_schemes(
        data, sizes, schemes, "relu", rng=gen, n_seeds=n_seeds, epochs=epochs,
        batch_size=batch_size, lr=lr,
    )
    return PaperExperiment(sizes, at_init, runs)


def he2015_learning_rates(
    *,
    rng: RNGLike,
    lr_factors: Sequence[float] = (10.0, 100.0),
    depth: int = 30,
    width: int = 64,
    epochs: int = 15,
    lr: float = 0.002,
    batch_size: int = 32,
    n_seeds: int = DEFAULT_SEEDS,
) -> dict[float, list[training.History]]:
    r"""The :math:`\operatorname{Var}(w) = 1/n` net of :func:`he2015_experiment`, larger steps.

    Returns
    -------
    dict factor -> list of History
        ``n_seeds`` paired runs (:func:`course_lib.training.compare_setups`) at learning rate
        ``factor * lr`` for each factor. Draws: the split, then one child per seed.

    Notes
    -----
    The :math:`1/n` net's gradients are :math:`2^{-L/2}` of the :math:`2/n` net's in every
    layer; a step 10 or 100 times larger is still far too small to restore a scale lost
    multiplicatively. Chapter: book/papers/he2015.md (exercise ex-he2015-lr).
    """
    gen = as_generator(rng)
    data = digits_split(rng=gen)
    sizes = [data.X_train.shape[1]] + [width] * depth + [10]
    factors = [float(f) for f in lr_factors]
    runs = training.compare_setups(
        {f"{f:g}": {"lr": f * lr} for f in factors},
        data.X_train,
        data.y_train,
        sizes,
        rng=gen,
        n_replicates=n_seeds,
        initializer=init.lecun_normal,
        activation="relu",
        epochs=epochs,
        batch_size=batch_size,
        momentum=0.9,
        X_val=data.X_test,
        y_val=data.y_test,
        restore_best=False,
    )
    return {f: runs[f"{f:g}"] for f in factors}


def glorot2010_experiment(
    *,
    rng: RNGLike,
    hidden: int = 5,
    width: int = 256,
    epochs: int = 8,
    n_seeds: int = DEFAULT_SEEDS,
    lr: float = 0.01,
    batch_size: int = 32,
) -> PaperExperiment:
    r"""Glorot & Bengio (2010), Figures 6-7 and a Table-1-style comparison, on the digits.

    A tanh MLP with ``hidden`` layers of ``width`` units, initialized with the heuristic
    :math:`U(\pm 1/\sqrt n)` and with normalized (Xavier uniform) initialization: per-layer
    activations and back-propagated gradients of ``n_seeds`` networks of each at initialization
    on the whole training set, then ``n_seeds`` paired training runs of each.

    Notes
    -----
    The heuristic has :math:`n \operatorname{Var}(w) = 1/3`, so near the linear regime of tanh the
    signal's variance shrinks by about 3 per layer going up and the gradient's going down.
    Chapter: book/papers/glorot2010.md.
    """
    gen = as_generator(rng)
    data = digits_split(rng=gen)
    sizes = [data.X_train.shape[1]] + [width] * hidden + [10]
    schemes = glorot2010_schemes()
    at_init = _at_init_over_seeds(
        data.X_train, data.y_train, sizes, schemes, "tanh", rng=gen, n_seeds=n_seeds
    )
    runs = train_schemes(
        data, sizes, schemes, "tanh", rng=gen, n_seeds=n_seeds, epochs=epochs,
        batch_size=batch_size, lr=lr,
    )
    return PaperExperiment(sizes, at_init, runs)
