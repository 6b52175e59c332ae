r"""Experiments: every sampling routine of the course lives here.

Every function takes a keyword-only ``rng`` (SPEC 7), normalized with
:func:`course_lib._validation.as_generator`; independent replicates and grid cells get their own
streams through :meth:`numpy.random.Generator.spawn`, so adding a replicate never changes the
others and the global ``np.random`` state is never touched. The deterministic kernels come from
:mod:`course_lib.network`.

Contents
--------
- :func:`sample_preactivations`, :func:`preactivation_variance_grid`,
  :func:`preactivation_kurtosis`, :func:`variance_relative_standard_error`: the Monte Carlo check
  of :math:`\operatorname{Var}(p) = n \operatorname{Var}(w) \operatorname{Var}(x)`
  ("Variance", book/variance.md).
- :func:`init_network`, :func:`deep_network_statistics`, :func:`scheme_grid`,
  :func:`saturation_by_layer`: per-layer forward and backward statistics of deep nets
  ("Why initialization matters", the scheme chapters, "Comparing schemes").
- :func:`symmetry_demo`: why zero or constant initialization cannot work ("Symmetry",
  book/symmetry.md).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from . import network as _net
from ._validation import RNGLike, ShapeLike, as_generator, check_choice, check_positive
from .initializers import get_initializer

__all__ = [
    "DISTRIBUTIONS",
    "DeepNetworkStatistics",
    "PreactivationVarianceRecord",
    "SymmetryDemo",
    "deep_network_statistics",
    "init_network",
    "preactivation_kurtosis",
    "preactivation_variance_grid",
    "resolve_initializer",
    "sample_preactivations",
    "saturation_by_layer",
    "scheme_grid",
    "symmetry_demo",
    "variance_relative_standard_error",
]

FloatArray = npt.NDArray[np.floating]

DISTRIBUTIONS: tuple[str, ...] = ("normal", "uniform")
"""Distributions of ``w`` and ``x`` in :func:`sample_preactivations`."""

_KURTOSIS = {"normal": 3.0, "uniform": 1.8}

# Draw at most this many numbers at once, so large n * n_samples stays within memory.
_CHUNK = 1 << 21


class InitializerLike(Protocol):
    """Anything called as ``init(shape, rng=rng)`` that returns an array of that shape."""

    def __call__(self, shape: ShapeLike, *, rng: RNGLike = None) -> npt.NDArray[np.float64]: ...


Initializer = InitializerLike | Callable[..., npt.NDArray[np.float64]] | str


# --------------------------------------------------------------------------------------------
# Var(p) = n Var(w) Var(x)
# --------------------------------------------------------------------------------------------


def _draw(gen: np.random.Generator, dist: str, var: float, size: tuple[int, ...]) -> FloatArray:
    if dist == "normal":
        return gen.normal(0.0, math.sqrt(var), size=size)
    bound = math.sqrt(3.0 * var)
    return gen.uniform(-bound, bound, size=size)


def sample_preactivations(
    n_in: int,
    var_w: float,
    var_x: float,
    n_samples: int,
    *,
    rng: RNGLike,
    w_dist: str = "normal",
    x_dist: str = "normal",
) -> FloatArray:
    r"""Draw ``n_samples`` pre-activations :math:`p = \sum_{i=1}^{n} w_i x_i`.

    Every sample uses fresh independent weights and inputs, :math:`w_i` with variance ``var_w``
    and :math:`x_i` with variance ``var_x``, both zero-mean.

    Parameters
    ----------
    n_in : int
        Fan-in ``n`` (number of terms).
    var_w, var_x : float
        Variances (> 0).
    n_samples : int
        Number of pre-activations.
    rng : Generator, seed or None
        Keyword-only (SPEC 7).
    w_dist, x_dist : {"normal", "uniform"}
        ``normal`` is :math:`N(0, \sigma^2)`; ``uniform`` is :math:`U(-b, b)` with
        :math:`b = \sqrt{3\sigma^2}` (same variance).

    Returns
    -------
    ndarray of float64, shape (n_samples,)

    Notes
    -----
    For independent zero-mean :math:`w_i, x_i`,
    :math:`\operatorname{Var}(w_i x_i) = E[w^2]E[x^2] = \operatorname{Var}(w)\operatorname{Var}(x)`
    and the variances of the ``n`` independent terms add:

    .. math:: \operatorname{Var}(p) = n \operatorname{Var}(w) \operatorname{Var}(x).

    The draws are made in chunks of at most about two million numbers, so memory stays bounded.
    Chapter: "Variance" (book/variance.md); exercise ``ps1_variance``.
    """
    gen = as_generator(rng)
    n = _positive_int(n_in, "n_in")
    m = _positive_int(n_samples, "n_samples")
    vw = check_positive(var_w, name="var_w")
    vx = check_positive(var_x, name="var_x")
    check_choice(w_dist, DISTRIBUTIONS, name="w_dist")
    check_choice(x_dist, DISTRIBUTIONS, name="x_dist")
    out = np.empty(m)
    rows = max(1, _CHUNK // n)
    for start in range(0, m, rows):
        stop = min(m, start + rows)
        w = _draw(gen, w_dist, vw, (stop - start, n))
        x = _draw(gen, x_dist, vx, (stop - start, n))
        out[start:stop] = np.einsum("ij,ij->i", w, x)
    return out


def preactivation_kurtosis(n_in: int, *, w_dist: str = "normal", x_dist: str = "normal") -> float:
    r"""Kurtosis :math:`\kappa_p = E[p^4]/E[p^2]^2` of :math:`p = \sum_{i=1}^n w_i x_i`.

    Notes
    -----
    Each term :math:`u_i = w_i x_i` has :math:`E[u^2] = \sigma_w^2\sigma_x^2` and
    :math:`E[u^4] = E[w^4]E[x^4] = \kappa_w\kappa_x\sigma_w^4\sigma_x^4`, so
    :math:`\kappa_u = \kappa_w \kappa_x`. For a sum of ``n`` i.i.d. zero-mean terms the fourth
    cumulant adds, :math:`\kappa_4(p) = n\,\kappa_4(u) = n(\kappa_u - 3)\sigma_u^4`, while
    :math:`\operatorname{Var}(p) = n\sigma_u^2`, hence

    .. math:: \kappa_p = 3 + \frac{\kappa_w \kappa_x - 3}{n}.

    Normal :math:`w, x` (:math:`\kappa = 3`): :math:`3 + 6/n` (9 for ``n = 1``); uniform
    (:math:`\kappa = 1.8`): :math:`3 + 0.24/n`; one of each: :math:`3 + 2.4/n`. The kurtosis
    sets how precisely a sample variance can be measured (see
    :func:`variance_relative_standard_error`). Chapter: "Variance" (book/variance.md).
    """
    n = _positive_int(n_in, "n_in")
    kw = _KURTOSIS[check_choice(w_dist, DISTRIBUTIONS, name="w_dist")]
    kx = _KURTOSIS[check_choice(x_dist, DISTRIBUTIONS, name="x_dist")]
    return 3.0 + (kw * kx - 3.0) / n


def variance_relative_standard_error(kurtosis: float, n_samples: int) -> float:
    r"""Relative standard error of the unbiased sample variance of ``n_samples`` i.i.d. draws.

    Notes
    -----
    For :math:`s^2 = \frac{1}{N-1}\sum (p_j - \bar p)^2` of draws with kurtosis :math:`\kappa`,

    .. math::

        \frac{\operatorname{SD}(s^2)}{\sigma^2} = \sqrt{\frac{\kappa}{N} - \frac{N-3}{N(N-1)}}
        \approx \sqrt{\frac{\kappa - 1}{N}}.

    Chapter: "Variance" (book/variance.md); the hidden tests of the exercises use the same rule.
    """
    n = _positive_int(n_samples, "n_samples")
    if n < 2:
        raise ValueError(f"n_samples must be at least 2 for a sample variance, got {n_samples!r}")
    k = float(kurtosis)
    if not k >= 1.0:
        raise ValueError(f"a kurtosis is at least 1, got {kurtosis!r}")
    return math.sqrt(k / n - (n - 3) / (n * (n - 1)))


@dataclass(frozen=True)
class PreactivationVarianceRecord:
    """One cell of :func:`preactivation_variance_grid`.

    Attributes
    ----------
    n_in, var_w, var_x, w_dist, x_dist, n_samples
        The cell's parameters.
    empirical : float
        Unbiased sample variance of the ``n_samples`` pre-activations.
    theoretical : float
        ``n_in * var_w * var_x``.
    kurtosis : float
        :func:`preactivation_kurtosis` of ``p``.
    rel_std_error : float
        Relative standard error of ``empirical`` (:func:`variance_relative_standard_error`).
    z : float
        ``(empirical / theoretical - 1) / rel_std_error``: how many standard errors off.
    """

    n_in: int
    var_w: float
    var_x: float
    w_dist: str
    x_dist: str
    n_samples: int
    empirical: float
    theoretical: float
    kurtosis: float
    rel_std_error: float
    z: float

    @property
    def ratio(self) -> float:
        """``empirical / theoretical``."""
        return self.empirical / self.theoretical


def preactivation_variance_grid(
    ns: Sequence[int],
    var_ws: Sequence[float],
    var_xs: Sequence[float],
    *,
    n_samples: int,
    rng: RNGLike,
    w_dists: Sequence[str] = ("normal",),
    x_dists: Sequence[str] = ("normal",),
) -> list[PreactivationVarianceRecord]:
    r"""Monte Carlo of :math:`\operatorname{Var}(p) = n\operatorname{Var}(w)\operatorname{Var}(x)`
    over a grid.

    Parameters
    ----------
    ns, var_ws, var_xs : sequences
        Grid axes (fan-in, weight variance, input variance).
    n_samples : int
        Pre-activations per cell.
    rng : Generator, seed or None
        Keyword-only; each cell gets its own child stream (``rng.spawn``).
    w_dists, x_dists : sequences of {"normal", "uniform"}
        Distribution axes.

    Returns
    -------
    list of PreactivationVarianceRecord
        One record per cell, in ``itertools.product(ns, var_ws, var_xs, w_dists, x_dists)`` order.

    Notes
    -----
    The empirical variance of a correct sampler lies within a few ``rel_std_error`` of the
    theory; ``z`` says how many. Chapter: "Variance" (book/variance.md).
    """
    gen = as_generator(rng)
    cells = list(itertools.product(ns, var_ws, var_xs, w_dists, x_dists))
    if not cells:
        raise ValueError("the grid is empty: ns, var_ws, var_xs, w_dists, x_dists need values")
    m = _positive_int(n_samples, "n_samples")
    out = []
    for (n, vw, vx, wd, xd), child in zip(cells, gen.spawn(len(cells)), strict=True):
        p = sample_preactivations(n, vw, vx, m, rng=child, w_dist=wd, x_dist=xd)
        emp = float(np.var(p, ddof=1))
        theo = int(n) * float(vw) * float(vx)
        kappa = preactivation_kurtosis(n, w_dist=wd, x_dist=xd)
        rse = variance_relative_standard_error(kappa, m)
        out.append(
            PreactivationVarianceRecord(
                n_in=int(n),
                var_w=float(vw),
                var_x=float(vx),
                w_dist=wd,
                x_dist=xd,
                n_samples=m,
                empirical=emp,
                theoretical=theo,
                kurtosis=kappa,
                rel_std_error=rse,
                z=(emp / theo - 1.0) / rse,
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------


def resolve_initializer(initializer: Initializer) -> Callable[..., npt.NDArray[np.float64]]:
    """Return ``initializer`` if callable, else look the name up in :mod:`course_lib.initializers`.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    """
    resolved: Callable[..., npt.NDArray[np.float64]] = get_initializer(initializer)
    return resolved


def init_network(
    layer_sizes: Sequence[int],
    initializer: Initializer,
    *,
    rng: RNGLike,
    bias: float | None = None,
) -> tuple[list[FloatArray], list[FloatArray | None] | None]:
    """Draw the weights of an MLP with ``initializer`` (and constant biases if ``bias`` is given).

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_0, n_1, ..., n_L]``; weight ``l`` has shape ``(n_l, n_{l+1})``.
    initializer : callable or str
        ``init(shape, rng=rng)`` or a name from :mod:`course_lib.initializers`.
    rng : Generator, seed or None
        Keyword-only; the weights are drawn from it in layer order.
    bias : float, optional
        Constant value of every bias (the usual choice is 0.0); ``None`` means no biases.

    Returns
    -------
    weights, biases
        ``biases`` is ``None`` when ``bias`` is ``None``.

    Notes
    -----
    Chapter: "Why initialization matters" (book/why_init.md); exercise ``ps3_deep_signal``
    (``init_network``).
    """
    gen = as_generator(rng)
    sizes = [int(s) for s in layer_sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(
            f"layer_sizes needs at least two positive sizes (input and output), got {layer_sizes!r}"
        )
    init = resolve_initializer(initializer)
    weights: list[FloatArray] = []
    for a, b in itertools.pairwise(sizes):
        W = np.asarray(init((a, b), rng=gen), dtype=np.float64)
        if W.shape != (a, b):
            raise ValueError(f"the initializer returned shape {W.shape} for shape {(a, b)}")
        weights.append(W)
    biases: list[FloatArray | None] | None = None
    if bias is not None:
        biases = [np.full(b, float(bias)) for b in sizes[1:]]
    return weights, biases


@dataclass
class DeepNetworkStatistics:
    """Per-layer statistics of :func:`deep_network_statistics`; arrays are (replicate, layer).

    Attributes
    ----------
    activation_std, activation_mean, preactivation_std, saturated : ndarray
        Forward statistics of each layer's activations (``saturated``: see
        :func:`course_lib.network.saturation_fraction`).
    grad_std : ndarray
        Standard deviation of the back-propagated gradient :math:`\\partial L/\\partial a_l`.
    preactivation_grad_std : ndarray
        Standard deviation of :math:`\\partial L/\\partial z_l`.
    weight_grad_std : ndarray
        Standard deviation of :math:`\\partial L/\\partial W_l`.
    activation_counts, grad_counts : ndarray of int, shape (replicate, layer, bins)
        Fixed-bin histogram counts (edges ``activation_edges``, ``grad_edges``).
    activations, preactivations, activation_grads, weight_grads, weights : list of ndarray
        Only with ``keep="all"``: the first replicate's arrays, for histograms.
    """

    depth: int
    width: int
    activation: str
    n_samples: int
    activation_std: FloatArray
    activation_mean: FloatArray
    preactivation_std: FloatArray
    saturated: FloatArray
    grad_std: FloatArray
    preactivation_grad_std: FloatArray
    weight_grad_std: FloatArray
    activation_counts: npt.NDArray[np.int64]
    activation_edges: FloatArray
    grad_counts: npt.NDArray[np.int64]
    grad_edges: FloatArray
    activations: list[FloatArray] = field(default_factory=list)
    preactivations: list[FloatArray] = field(default_factory=list)
    activation_grads: list[FloatArray] = field(default_factory=list)
    weight_grads: list[FloatArray] = field(default_factory=list)
    weights: list[FloatArray] = field(default_factory=list)

    @property
    def layers(self) -> npt.NDArray[np.int64]:
        """Layer numbers 1..depth."""
        return np.arange(1, self.depth + 1)


def deep_network_statistics(
    *,
    depth: int,
    width: int,
    activation: str,
    initializer: Initializer,
    n_samples: int,
    input_std: float = 1.0,
    rng: RNGLike,
    n_replicates: int = 1,
    keep: Literal["all", "stats"] = "stats",
    input_dim: int | None = None,
    bins: int = 50,
    grad_hist_scale: float = 4.0,
    negative_slope: float = 0.01,
) -> DeepNetworkStatistics:
    r"""Forward and backward per-layer statistics of a freshly initialized deep MLP.

    Each replicate draws (from its own child stream) the weights with ``initializer``, an input
    batch :math:`X_{bi} \sim N(0, \text{input\_std}^2)` of shape ``(n_samples, input_dim)`` and
    an output gradient :math:`G_{bj} \sim N(0, 1)`, runs :func:`course_lib.network.forward`
    and back-propagates ``G`` with :func:`course_lib.network.backward`. No biases.

    Parameters
    ----------
    depth, width : int
        Number of layers and units per layer (every layer ``width`` wide).
    activation : str
        One of :data:`course_lib.network.ACTIVATIONS` (every layer, the last included).
    initializer : callable or str
        ``init(shape, rng=rng)`` or a name in :mod:`course_lib.initializers`.
    n_samples : int
        Batch size.
    input_std : float
        Standard deviation of the inputs.
    rng : Generator, seed or None
        Keyword-only; replicates use ``rng.spawn(n_replicates)``.
    n_replicates : int
        Independent networks.
    keep : {"stats", "all"}
        ``"stats"`` keeps summaries only (memory ~ ``3·sqrt(depth)`` batch arrays); ``"all"``
        also returns the first replicate's arrays for histograms.
    input_dim : int, optional
        Input features (default ``width``).
    bins, grad_hist_scale
        Histograms: ``bins`` bins; gradient range ``±grad_hist_scale`` (``G`` has std 1).

    Returns
    -------
    DeepNetworkStatistics

    Notes
    -----
    With zero-mean weights of variance :math:`\sigma_w^2` the forward variance obeys
    :math:`\operatorname{Var}(z_{l+1}) = n_l \sigma_w^2 E[f(z_l)^2]` and the backward variance
    :math:`\operatorname{Var}(\partial L/\partial a_{l-1}) = n_{l}\,\sigma_w^2\,
    E[f'(z_l)^2]\operatorname{Var}(\partial L/\partial a_l)` (Glorot & Bengio 2010; He et al.
    2015); this function measures both. Chapters: "Why initialization matters"
    (book/why_init.md), "Xavier" (book/xavier.md), "He" (book/he.md), "Comparing schemes"
    (book/comparing.md).
    """
    gen = as_generator(rng)
    L = _positive_int(depth, "depth")
    w = _positive_int(width, "width")
    m = _positive_int(n_samples, "n_samples")
    R = _positive_int(n_replicates, "n_replicates")
    d_in = w if input_dim is None else _positive_int(input_dim, "input_dim")
    act = check_choice(activation, _net.ACTIVATIONS, name="activation")
    check_choice(keep, ("all", "stats"), name="keep")
    s_in = check_positive(input_std, name="input_std")
    gscale = check_positive(grad_hist_scale, name="grad_hist_scale")
    init = resolve_initializer(initializer)
    sizes = [d_in] + [w] * L
    shape = (R, L)
    res = {
        k: np.zeros(shape) for k in ("a_std", "a_mean", "z_std", "sat", "g_std", "dz_std", "w_std")
    }
    a_counts = np.zeros((R, L, bins), dtype=np.int64)
    g_counts = np.zeros((R, L, bins), dtype=np.int64)
    a_edges = np.zeros(0)
    g_edges = np.zeros(0)
    out_arrays: dict[str, list[FloatArray]] = {}
    for r, child in enumerate(gen.spawn(R)):
        weights, _ = init_network(sizes, init, rng=child)
        X = child.normal(0.0, s_in, size=(m, d_in))
        G = child.normal(0.0, 1.0, size=(m, w))
        mode: Literal["all", "stats"] = "all" if (keep == "all" and r == 0) else "stats"
        fp = _net.forward(X, weights, act, keep=mode, negative_slope=negative_slope, bins=bins)
        bp = _net.backward(fp, weights, G, keep=mode, hist_scale=gscale)
        a_stats = fp.activation_stats
        for i, s in enumerate(a_stats):
            res["a_std"][r, i] = s.std
            res["a_mean"][r, i] = s.mean
            res["sat"][r, i] = s.saturated
            a_counts[r, i] = s.counts
        a_edges = a_stats[0].edges
        for i, s in enumerate(fp.preactivation_stats):
            res["z_std"][r, i] = s.std
        for i, s in enumerate(bp.activation_grad_stats):
            res["g_std"][r, i] = s.std
            g_counts[r, i] = s.counts
        g_edges = bp.activation_grad_stats[0].edges
        for i, s in enumerate(bp.preactivation_grad_stats):
            res["dz_std"][r, i] = s.std
        for i, s in enumerate(bp.weight_grad_stats):
            res["w_std"][r, i] = s.std
        if mode == "all":
            out_arrays = {
                "activations": fp.activations,
                "preactivations": fp.preactivations,
                "activation_grads": bp.activation_grads,
                "weight_grads": bp.weight_grads,
                "weights": weights,
            }
    return DeepNetworkStatistics(
        depth=L,
        width=w,
        activation=act,
        n_samples=m,
        activation_std=res["a_std"],
        activation_mean=res["a_mean"],
        preactivation_std=res["z_std"],
        saturated=res["sat"],
        grad_std=res["g_std"],
        preactivation_grad_std=res["dz_std"],
        weight_grad_std=res["w_std"],
        activation_counts=a_counts,
        activation_edges=a_edges,
        grad_counts=g_counts,
        grad_edges=g_edges,
        **out_arrays,
    )


def scheme_grid(
    schemes: Sequence[Initializer],
    activations: Sequence[str],
    depths: Sequence[int],
    widths: Sequence[int],
    *,
    n_samples: int,
    n_replicates: int,
    rng: RNGLike,
    input_std: float = 1.0,
) -> list[dict[str, Any]]:
    """Per-layer forward and backward stds over a scheme x activation x depth x width grid.

    Parameters
    ----------
    schemes : sequence of callable or str
        Initializers (names from :mod:`course_lib.initializers` or callables; a callable is
        labelled by its ``__name__``).
    activations, depths, widths : sequences
        Grid axes.
    n_samples : int
        Batch size per network.
    n_replicates : int
        Independent networks per cell.
    rng : Generator, seed or None
        Keyword-only; each cell gets a child stream (``rng.spawn``), each replicate a grandchild.

    Returns
    -------
    list of dict
        A tidy table, one record per (cell, replicate, layer) with keys ``scheme``,
        ``activation``, ``depth``, ``width``, ``replicate``, ``layer`` (1-based),
        ``forward_std``, ``forward_mean``, ``backward_std`` (of dL/da), ``weight_grad_std``,
        ``saturated``.

    Notes
    -----
    Uses :func:`deep_network_statistics` with ``keep="stats"``. Chapter: "Comparing schemes"
    (book/comparing.md).
    """
    gen = as_generator(rng)
    cells = list(itertools.product(schemes, activations, depths, widths))
    if not cells:
        raise ValueError("the grid is empty: schemes, activations, depths, widths need values")
    records: list[dict[str, Any]] = []
    for (scheme, act, depth, width), child in zip(cells, gen.spawn(len(cells)), strict=True):
        label = scheme if isinstance(scheme, str) else getattr(scheme, "__name__", repr(scheme))
        st = deep_network_statistics(
            depth=depth,
            width=width,
            activation=act,
            initializer=scheme,
            n_samples=n_samples,
            input_std=input_std,
            rng=child,
            n_replicates=n_replicates,
        )
        for r in range(st.activation_std.shape[0]):
            for i in range(st.depth):
                records.append(
                    {
                        "scheme": label,
                        "activation": act,
                        "depth": int(depth),
                        "width": int(width),
                        "replicate": r,
                        "layer": i + 1,
                        "forward_std": float(st.activation_std[r, i]),
                        "forward_mean": float(st.activation_mean[r, i]),
                        "backward_std": float(st.grad_std[r, i]),
                        "weight_grad_std": float(st.weight_grad_std[r, i]),
                        "saturated": float(st.saturated[r, i]),
                    }
                )
    return records


def saturation_by_layer(
    *,
    depth: int,
    width: int,
    activation: str,
    initializer: Initializer,
    n_samples: int,
    rng: RNGLike,
    input_std: float = 1.0,
    n_replicates: int = 1,
) -> FloatArray:
    """Fraction of saturated units in each layer, averaged over replicates, shape ``(depth,)``.

    Notes
    -----
    Saturation as in :func:`course_lib.network.saturation_fraction` (tanh: ``|a| >= 0.95``;
    sigmoid: within 0.05 of 0 or 1; relu: ``a <= 0``). Chapter: "Glorot & Bengio 2010"
    (book/papers/glorot2010.md).
    """
    st = deep_network_statistics(
        depth=depth,
        width=width,
        activation=activation,
        initializer=initializer,
        n_samples=n_samples,
        input_std=input_std,
        rng=rng,
        n_replicates=n_replicates,
    )
    out: FloatArray = st.saturated.mean(axis=0)
    return out


# --------------------------------------------------------------------------------------------
# Symmetry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SymmetryDemo:
    """Result of :func:`symmetry_demo`; arrays have one row per step ``0..steps``.

    Attributes
    ----------
    init : str
        What the weights started from.
    loss : ndarray (steps + 1,)
        Training loss before each update (the last entry after the last update).
    max_unit_difference : ndarray (steps + 1,)
        :math:`\\max_{j,k}\\max_i |W^{(1)}_{ij} - W^{(1)}_{ik}|`: the largest difference between
        two hidden units' incoming weights (columns of ``W1``).
    max_outgoing_difference : ndarray (steps + 1,)
        The same for the hidden units' outgoing weights (rows of ``W2``).
    hidden_weight_change : ndarray (steps + 1,)
        :math:`\\max |W^{(1)}_t - W^{(1)}_0|`: whether the hidden weights move at all.
    W1, W2 : ndarray (steps + 1, ...)
        The weights at every step.
    """

    init: str
    activation: str
    loss: FloatArray
    max_unit_difference: FloatArray
    max_outgoing_difference: FloatArray
    hidden_weight_change: FloatArray
    W1: FloatArray
    W2: FloatArray

    @property
    def steps(self) -> npt.NDArray[np.int64]:
        """Step numbers 0..steps."""
        return np.arange(self.loss.shape[0])


def _ordered_matmul(A: FloatArray, B: FloatArray) -> FloatArray:
    """``A @ B`` summed in the same order for every output column (no BLAS).

    BLAS kernels may sum different output columns in different orders (vector body versus
    remainder), so two identical columns of ``B`` can give results that differ in the last bit
    (we measured 1.7e-16 for an 8x7 matrix). Multiplying elementwise and reducing over a middle
    axis adds the terms one by one in index order for every column, so identical columns stay
    bit-identical.
    """
    out: FloatArray = (A[:, :, None] * B[None, :, :]).sum(axis=1)
    return out


def symmetry_demo(
    init: Initializer = "constant",
    *,
    steps: int = 20,
    rng: RNGLike,
    value: float = 0.5,
    activation: str = "tanh",
    n_inputs: int = 4,
    n_hidden: int = 5,
    n_outputs: int = 3,
    n_samples: int = 32,
    lr: float = 0.1,
    exact: bool = True,
) -> SymmetryDemo:
    r"""Train a one-hidden-layer net from a symmetric or random start; track unit differences.

    Parameters
    ----------
    init : "zeros", "constant", "random", an initializer name or a callable
        ``zeros``: every weight 0; ``constant``: every weight ``value``; ``random``: LeCun normal
        :math:`N(0, 1/\text{fan\_in})`; any other name or callable draws both
        weight matrices with it.
    steps : int
        Full-batch gradient-descent steps.
    rng : Generator, seed or None
        Keyword-only; draws the inputs, a random teacher network for the targets and, for a
        random init, the weights.
    value : float
        The constant for ``init="constant"``.
    activation : str
        Hidden activation (output is linear).
    n_inputs, n_hidden, n_outputs, n_samples : int
        Sizes.
    lr : float
        Learning rate.
    exact : bool
        ``True`` computes the matrix products with a column-order-independent kernel so that
        identical units stay bit-identical; ``False`` uses :mod:`course_lib.network` (BLAS),
        where rounding differences of ~1e-16 can appear between otherwise identical units.

    Returns
    -------
    SymmetryDemo

    Notes
    -----
    Network: :math:`H = f(X W_1 + b_1)`, :math:`\hat Y = H W_2 + b_2`, loss
    :math:`\lVert \hat Y - Y\rVert^2/(2B)`; biases start at 0. If every hidden unit starts with
    the same incoming and outgoing weights, every unit computes the same :math:`h_j`, receives
    the same gradient :math:`\partial L/\partial z_j = \delta W_2[j,:]^\top f'(z_j)`, and so gets
    the same update: the units stay identical forever and the layer acts as one unit.

    What really happens from zeros depends on :math:`f(0)`: for tanh and relu, :math:`h = f(0) = 0`,
    so :math:`\partial L/\partial W_2 = H^\top\delta = 0` and
    :math:`\partial L/\partial W_1 = X^\top(\delta W_2^\top \odot f') = 0` because
    :math:`W_2 = 0`: neither weight matrix ever moves, only the output bias learns. For sigmoid,
    :math:`h = 1/2`, so :math:`W_2` moves first and then :math:`W_1` moves too, but with identical
    columns. Chapter: "Symmetry" (book/symmetry.md).
    """
    gen = as_generator(rng)
    act = check_choice(activation, _net.ACTIVATIONS, name="activation")
    T = _nonnegative_int(steps, "steps")
    d, h, k, B = (
        _positive_int(n_inputs, "n_inputs"),
        _positive_int(n_hidden, "n_hidden"),
        _positive_int(n_outputs, "n_outputs"),
        _positive_int(n_samples, "n_samples"),
    )
    eta = check_positive(lr, name="lr")
    X = gen.normal(size=(B, d))
    teacher1 = gen.normal(0.0, 1.0 / math.sqrt(d), size=(d, h))
    teacher2 = gen.normal(0.0, 1.0 / math.sqrt(h), size=(h, k))
    Y = np.tanh(X @ teacher1) @ teacher2
    label: str
    if init == "zeros":
        W1, W2, label = np.zeros((d, h)), np.zeros((h, k)), "zeros"
    elif init == "constant":
        W1, W2, label = np.full((d, h), float(value)), np.full((h, k), float(value)), "constant"
    elif init == "random":
        W1 = gen.normal(0.0, 1.0 / math.sqrt(d), size=(d, h))
        W2 = gen.normal(0.0, 1.0 / math.sqrt(h), size=(h, k))
        label = "random"
    else:
        fn = resolve_initializer(init)
        label = init if isinstance(init, str) else getattr(init, "__name__", "callable")
        W1 = np.asarray(fn((d, h), rng=gen), dtype=np.float64)
        W2 = np.asarray(fn((h, k), rng=gen), dtype=np.float64)
    b1, b2 = np.zeros(h), np.zeros(k)
    W1_hist, W2_hist, losses = [W1.copy()], [W2.copy()], []
    mm: Callable[[FloatArray, FloatArray], FloatArray] = _ordered_matmul if exact else np.matmul
    for _ in range(T + 1):
        if exact:
            Z1 = mm(X, W1) + b1
            H = _net.activate(Z1, act)
            Yh = mm(H, W2) + b2
            loss, G = _net.mean_squared_error(Yh, Y)
            dW2 = mm(H.T, G)
            dH = mm(G, W2.T)
            dZ1 = dH * _net.activation_derivative(Z1, act)
            dW1 = mm(X.T, dZ1)
            db1, db2 = dZ1.sum(axis=0), G.sum(axis=0)
        else:
            fp = _net.forward(X, [W1, W2], act, biases=[b1, b2], output_activation="linear")
            loss, G = _net.mean_squared_error(fp.output, Y)
            bp = _net.backward(fp, [W1, W2], G)
            dW1, dW2 = bp.weight_grads
            db1, db2 = bp.bias_grads
            assert db1 is not None and db2 is not None
        losses.append(loss)
        if len(losses) == T + 1:
            break
        W1 = W1 - eta * dW1
        W2 = W2 - eta * dW2
        b1 = b1 - eta * db1
        b2 = b2 - eta * db2
        W1_hist.append(W1.copy())
        W2_hist.append(W2.copy())
    W1s = np.stack(W1_hist)
    W2s = np.stack(W2_hist)
    # columns of W1 (incoming weights of hidden unit j), rows of W2 (its outgoing weights)
    incoming = np.ptp(W1s, axis=2).max(axis=1)
    outgoing = np.ptp(W2s, axis=1).max(axis=1)
    change = np.abs(W1s - W1s[0]).max(axis=(1, 2))
    return SymmetryDemo(
        init=label,
        activation=act,
        loss=np.asarray(losses),
        max_unit_difference=incoming,
        max_outgoing_difference=outgoing,
        hidden_weight_change=change,
        W1=W1s,
        W2=W2s,
    )


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _nonnegative_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)
