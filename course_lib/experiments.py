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

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from . import network as _net
from ._validation import RNGLike, ShapeLike, as_generator, check_choice, check_positive
from .initializers import get_initializer
from .seeds import DEFAULT_SEEDS, SeedSummary, over_seeds, summarize

__all__ = [
    "DISTRIBUTIONS",
    "INPUT_PREPARATIONS",
    "LECUN_ACTIVATIONS",
    "SYMMETRY_SETTINGS",
    "ComparingTraining",
    "DeepNetworkStatistics",
    "InputsExperiment",
    "PreactivationVarianceRecord",
    "SeedExperiment",
    "SymmetryDemo",
    "comparing_schemes",
    "comparing_training",
    "deep_network_statistics",
    "fixed_std",
    "he_depth_experiment",
    "init_network",
    "input_gradient_variance",
    "inputs_experiment",
    "leaky_relu_second_moments",
    "lecun_depth_experiment",
    "lecun_schemes",
    "preactivation_kurtosis",
    "preactivation_variance_grid",
    "resolve_initializer",
    "sample_preactivations",
    "saturation_by_layer",
    "scheme_grid",
    "scheme_tag",
    "symmetry_demo",
    "symmetry_experiment",
    "variance_relative_standard_error",
    "why_init_experiment",
    "why_init_measures",
    "why_init_networks",
    "xavier_tanh_experiment",
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
        Standard deviation of the back-propagated gradient
        :math:`\\partial \\mathcal L/\\partial a^{(\\ell)}`.
    preactivation_grad_std : ndarray
        Standard deviation of :math:`\\partial \\mathcal L/\\partial p^{(\\ell)}`.
    weight_grad_std : ndarray
        Standard deviation of :math:`\\partial \\mathcal L/\\partial W^{(\\ell)}`.
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
    :math:`\operatorname{Var}(p^{(\ell+1)}) = n^{(\ell)} \sigma_w^2 E[f(p^{(\ell)})^2]` and the
    backward variance :math:`\operatorname{Var}(\partial \mathcal L/\partial a^{(\ell-1)})
    = n^{(\ell)}\,\sigma_w^2\, E[f'(p^{(\ell)})^2]\operatorname{Var}(\partial \mathcal L/\partial
    a^{(\ell)})` (Glorot & Bengio 2010; He et al. 2015); this function measures both. Chapters:
    "Why initialization matters" (book/why_init.md), "Xavier" (book/xavier.md), "He"
    (book/he.md), "Comparing schemes" (book/comparing.md).
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
    the same gradient :math:`\partial \mathcal L/\partial p_j = \delta W_2[j,:]^\top f'(p_j)`, and
    so gets the same update: the units stay identical forever and the layer acts as one unit.

    What really happens from zeros depends on :math:`f(0)`: for tanh and relu, :math:`h = f(0) = 0`,
    so :math:`\partial \mathcal L/\partial W_2 = H^\top\delta = 0` and
    :math:`\partial \mathcal L/\partial W_1 = X^\top(\delta W_2^\top \odot f') = 0` because
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


# ----------------------------------------------------------------------------------------------
# The chapters' experiments, over several seeds. Each chapter calls one of these with its own
# generator and glues the medians and ranges; its claim test calls the same function with the
# same generator (book/intro.md explains how the numbers are quoted). Each function only
# *spawns* from ``rng`` (course_lib.seeds.over_seeds) or draws from it before spawning, as its
# docstring says, so the chapter and the test agree however the rest of the chapter uses ``rng``.
# ----------------------------------------------------------------------------------------------

_T = TypeVar("_T")


@dataclass(frozen=True)
class SeedExperiment(Generic[_T]):
    """One chapter experiment run once per spawned seed.

    Attributes
    ----------
    examples : list
        The full result of the first seed only (``keep="first"``, for an illustration that the
        chapter labels as one draw) or of every seed (``keep="all"``, small results).
    measures : dict of str to SeedSummary
        Every number the chapter quotes, one value per seed: ``.median``, ``.low``, ``.high``.
    """

    examples: list[_T]
    measures: dict[str, SeedSummary]

    @property
    def example(self) -> _T:
        """The first seed's result (what a figure of one draw shows)."""
        return self.examples[0]

    def __getitem__(self, name: str) -> SeedSummary:
        return self.measures[name]


def _measured_over_seeds(
    run: Callable[[np.random.Generator], _T],
    measure: Callable[[_T], dict[str, float]],
    *,
    rng: RNGLike,
    n_seeds: int,
    keep: Literal["first", "all"] = "first",
) -> SeedExperiment[_T]:
    kept: list[_T] = []

    def one(gen: np.random.Generator) -> dict[str, float]:
        result = run(gen)
        if keep == "all" or not kept:
            kept.append(result)
        return measure(result)

    per_seed = over_seeds(one, n_seeds=n_seeds, rng=rng)
    names = list(per_seed[0])
    return SeedExperiment(kept, {k: summarize([m[k] for m in per_seed]) for k in names})


def fixed_std(std: float) -> Callable[..., npt.NDArray[np.float64]]:
    """An initializer drawing :math:`N(0, \\text{std}^2)` whatever the shape.

    Parameters
    ----------
    std : float
        The standard deviation (the "small random numbers" recipes use 0.01 or 1).

    Returns
    -------
    callable
        ``init(shape, *, rng)``, named ``"std <std>"`` for legends.

    Notes
    -----
    The fixed-scale recipes that the scheme chapters compare with: "Why initialization matters"
    (book/why_init.md), "LeCun" (book/lecun.md), "Comparing the schemes" (book/comparing.md).
    """
    s = check_positive(std, name="std")

    def init(shape: ShapeLike, *, rng: RNGLike = None) -> npt.NDArray[np.float64]:
        from .initializers import normal

        return normal(shape, s, rng=rng)

    init.__name__ = f"std {s:g}"
    return init


WhyInitRuns = dict[tuple[str, float], tuple["_net.ForwardPass", "_net.BackwardPass"]]


def why_init_networks(
    *,
    rng: RNGLike,
    width: int = 100,
    depth: int = 5,
    batch: int = 1000,
    stds: Sequence[float] = (1.0, 0.01),
    activations: Sequence[str] = ("sigmoid", "tanh", "relu"),
) -> WhyInitRuns:
    """One draw of the networks of "Why initialization matters": forward and backward passes.

    Parameters
    ----------
    rng : Generator, seed or None
        Keyword-only; draws the standard-normal input batch, then for every activation and
        weight std the ``depth`` weight matrices and a standard-normal output gradient.
    width, depth, batch : int
        A bias-free MLP of ``depth`` square layers of ``width`` units on ``batch`` inputs.
    stds : sequence of float
        Weight standard deviations; every weight is :math:`N(0, s^2)`.
    activations : sequence of str
        Hidden activations (the same after every layer).

    Returns
    -------
    dict
        ``(activation, std) -> (ForwardPass, BackwardPass)``.

    Notes
    -----
    Per layer the pre-activation variance is :math:`n\\operatorname{Var}(w)\\operatorname{E}[x^2]`
    and the gradient's :math:`n_\\text{out}\\operatorname{Var}(w)\\operatorname{E}[f'(p)^2]` times
    the one above. Chapter: "Why initialization matters" (book/why_init.md).
    """
    gen = as_generator(rng)
    w, d, b = (
        _positive_int(width, "width"),
        _positive_int(depth, "depth"),
        _positive_int(batch, "batch"),
    )
    X = gen.standard_normal((b, w))
    runs: WhyInitRuns = {}
    for act in activations:
        for s in stds:
            weights = [gen.normal(0.0, float(s), size=(w, w)) for _ in range(d)]
            fwd = _net.forward(X, weights, act)
            grad_out = gen.standard_normal(fwd.output.shape)
            runs[act, float(s)] = (fwd, _net.backward(fwd, weights, grad_out, act))
    return runs


def why_init_measures(runs: WhyInitRuns, *, sat_tol: float = 0.01) -> dict[str, float]:
    """The numbers "Why initialization matters" quotes, from one draw of :func:`why_init_networks`.

    Parameters
    ----------
    runs : dict
        From :func:`why_init_networks` with sigmoid, tanh and relu at stds 1 and 0.01.
    sat_tol : float
        Distance from an asymptote that counts as saturated.

    Returns
    -------
    dict of str to float
        Layer-5 stds, saturation fractions, gradient ratios, slope statistics (names as glued).

    Notes
    -----
    Deterministic. Chapter: "Why initialization matters" (book/why_init.md).
    """
    big_f, big_b = runs["sigmoid", 1.0]
    small_f, small_b = runs["sigmoid", 0.01]
    sat_big = [_net.saturation_fraction(a, "sigmoid", tol=sat_tol) for a in big_f.activations]
    g_small = np.array([g.std() for g in small_b.preactivation_grads])
    g_big = np.array([g.std() for g in big_b.preactivation_grads])
    slopes = np.concatenate(
        [_net.activation_derivative(z, "sigmoid").ravel() for z in big_f.preactivations]
    )
    out = {
        "sig1_l5_std": float(big_f.activations[-1].std()),
        "sig1_l5_sat": sat_big[-1],
        "sig1_min_sat": min(sat_big),
        "sig1_l1_sat": sat_big[0],
        "sig1_l1_pstd": float(big_f.preactivations[0].std()),
        "sig1_l5_pstd": float(big_f.preactivations[-1].std()),
        "sig001_l5_std": float(small_f.activations[-1].std()),
        "sig001_l5_mean": float(small_f.activations[-1].mean()),
        "sig001_l5_sat": _net.saturation_fraction(small_f.activations[-1], "sigmoid", tol=sat_tol),
        "sig1_ratio": float(big_f.activations[-1].std() / small_f.activations[-1].std()),
        "tanh1_l5_sat": _net.saturation_fraction(
            runs["tanh", 1.0][0].activations[-1], "tanh", tol=sat_tol
        ),
        "sig001_grad_ratio": float(np.exp(np.mean(np.log(g_small[:-1] / g_small[1:])))),
        "sig001_grad_l1_over_l5": float(g_small[0] / g_small[-1]),
        "sig1_mean_slope": float(slopes.mean()),
        "sig1_flat_frac": float(np.mean(slopes < sat_tol)),
        "sig1_grad_l5": float(g_big[-1]),
        "sig1_grad_l1": float(g_big[0]),
    }
    for act in ("tanh", "relu"):
        for s, tag in ((1.0, "1"), (0.01, "001")):
            acts = runs[act, s][0].activations
            out[f"{act}_{tag}_l5_std"] = float(acts[-1].std())
            out[f"{act}_{tag}_l5_over_l1"] = float(acts[-1].std() / acts[0].std())
    return out


def why_init_experiment(
    *, rng: RNGLike, n_seeds: int = DEFAULT_SEEDS, **network: Any
) -> SeedExperiment[WhyInitRuns]:
    """:func:`why_init_networks` once per spawned seed, measured by :func:`why_init_measures`.

    Parameters
    ----------
    rng : Generator, seed or None
        Keyword-only; only spawned from (``rng.spawn(n_seeds)``).
    n_seeds : int
        Independent draws.
    **network
        Passed to :func:`why_init_networks` (``width``, ``depth``, ``batch``).

    Returns
    -------
    SeedExperiment
        ``examples[0]``: the first seed's networks (the chapter's figures, one draw);
        ``measures``: median and range of every quoted number.

    Notes
    -----
    Chapter: "Why initialization matters" (book/why_init.md).
    """
    return _measured_over_seeds(
        lambda g: why_init_networks(rng=g, **network), why_init_measures, rng=rng, n_seeds=n_seeds
    )


INPUT_PREPARATIONS: tuple[str, ...] = ("raw", "scaled", "centred", "standard")
"""The four preparations of the digits compared in "Preparing the inputs" (book/inputs.md)."""


@dataclass(frozen=True)
class InputsExperiment:
    """What "Preparing the inputs" measures.

    Attributes
    ----------
    prepared : dict of str to (X_train, X_test)
        The digits raw (0..16), scaled (/16), scaled and centred, standardized; statistics
        fitted on the training part.
    y_train, y_test : ndarray of int64
    first_layer : dict of str to dict of str to float
        Per preparation: ``pred_variance``
        (:math:`\\operatorname{Var}(w)\\sum_i\\operatorname{Var}(x_i)`), ``pred_second_moment``
        (:math:`\\operatorname{Var}(w)\\sum_i\\operatorname{E}[x_i^2]`),
        ``var_p`` (measured mean of :math:`p^2` on the test images), ``offset_share`` and its
        prediction ``offset_pred``, and ``saturated`` (fraction of :math:`\\tanh(p)` within 0.01
        of :math:`\\pm1`), for one draw of ``units`` first-layer units.
    training : dict of str to SeedExperiment
        Per activation (``"tanh"``, ``"relu"``): every preparation trained from the same initial
        weights and batch order within a seed; ``examples[0]`` maps each preparation to the
        first seed's History; measures ``<prep>_acc``, ``<prep>_loss0``, ``<prep>_loss1``,
        ``standard_loss1_lead`` (smallest other first-epoch loss over the standardized one) and
        ``raw_acc_gap`` (standardized minus raw final accuracy).
    """

    prepared: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]
    y_train: npt.NDArray[np.int64]
    y_test: npt.NDArray[np.int64]
    first_layer: dict[str, dict[str, float]]
    training: dict[str, SeedExperiment[dict[str, Any]]]
    units: int
    epochs: int
    lr: float
    batch_size: int
    hidden: int


def inputs_experiment(
    *,
    rng: RNGLike,
    n_seeds: int = DEFAULT_SEEDS,
    units: int = 2000,
    hidden: int = 64,
    epochs: int = 6,
    lr: float = 0.05,
    batch_size: int = 32,
) -> InputsExperiment:
    """The experiment of "Preparing the inputs": the first layer, then short training runs.

    Parameters
    ----------
    rng : Generator, seed or None
        Keyword-only. Draws, in order: the train/test split, the ``units`` first-layer weight
        columns :math:`N(0, 1/n)`; then spawns ``n_seeds`` children for the training runs.
    n_seeds : int
        Independent training seeds (initial weights and batch order).
    units : int
        First-layer units of the measurement.
    hidden, epochs, lr, batch_size
        The classifier ``[64, hidden, 10]`` trained with SGD, momentum 0.9.

    Returns
    -------
    InputsExperiment

    Notes
    -----
    With zero-mean weights :math:`\\operatorname{Var}(p) = \\operatorname{Var}(w)\\sum_i
    \\operatorname{E}[x_i^2]`; the per-unit offset has expected share
    :math:`\\sum_i\\mu_i^2/\\sum_i\\operatorname{E}[x_i^2]`. tanh is trained with LeCun normal,
    ReLU with He normal. Chapter: "Preparing the inputs" (book/inputs.md).
    """
    from . import training
    from .data import center, load_digits, scale, standardize, train_test_split

    gen = as_generator(rng)
    X, y = load_digits()
    X_train, X_test, y_tr, y_te = train_test_split(X, y, test_fraction=0.25, rng=gen)
    y_train, y_test = np.asarray(y_tr, np.int64), np.asarray(y_te, np.int64)
    S_train, S_test = scale(X_train, 16.0), scale(X_test, 16.0)
    C_train, mean = center(S_train)
    C_test, _ = center(S_test, mean)
    Z_train, mean, std = standardize(S_train)
    Z_test, _, _ = standardize(S_test, mean, std)
    prepared = dict(
        zip(
            INPUT_PREPARATIONS,
            ((X_train, X_test), (S_train, S_test), (C_train, C_test), (Z_train, Z_test)),
            strict=True,
        )
    )
    n = X.shape[1]
    W = gen.normal(0.0, math.sqrt(1.0 / n), size=(n, _positive_int(units, "units")))
    first: dict[str, dict[str, float]] = {}
    for name, (_, Xt) in prepared.items():
        P = Xt @ W
        var_p = float(np.mean(P**2))
        first[name] = {
            "pred_variance": float(Xt.var(axis=0).sum() / n),
            "pred_second_moment": float((Xt**2).mean(axis=0).sum() / n),
            "var_p": var_p,
            "offset_share": float(np.mean(P.mean(axis=0) ** 2) / var_p),
            "offset_pred": float(np.sum(Xt.mean(axis=0) ** 2) / np.sum((Xt**2).mean(axis=0))),
            "saturated": _net.saturation_fraction(np.tanh(P), "tanh", tol=0.01),
        }

    def train_all(act: str, init: str, g: np.random.Generator) -> dict[str, Any]:
        seed = int(g.integers(2**63))  # every preparation: same weights, same batch order
        return {
            name: training.train_mlp(
                Xtr, y_train, [n, hidden, 10], initializer=init, activation=act,
                epochs=epochs, batch_size=batch_size, lr=lr, momentum=0.9,
                X_val=Xte, y_val=y_test, rng=np.random.default_rng(seed),
            )
            for name, (Xtr, Xte) in prepared.items()
        }  # fmt: skip

    def measure(h: dict[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        for name in INPUT_PREPARATIONS:
            out[f"{name}_acc"] = float(h[name].val_acc[-1])
            out[f"{name}_loss0"] = float(h[name].train_loss[0])
            out[f"{name}_loss1"] = float(h[name].train_loss[1])
        others = min(out[f"{k}_loss1"] for k in ("raw", "scaled", "centred"))
        out["standard_loss1_lead"] = others / out["standard_loss1"]
        out["raw_acc_gap"] = out["standard_acc"] - out["raw_acc"]
        return out

    children = gen.spawn(2)
    train_runs: dict[str, SeedExperiment[dict[str, Any]]] = {}
    for (act, init), child in zip(
        (("tanh", "lecun_normal"), ("relu", "he_normal")), children, strict=True
    ):
        train_runs[act] = _measured_over_seeds(
            functools.partial(train_all, act, init), measure, rng=child, n_seeds=n_seeds
        )
    return InputsExperiment(
        prepared, y_train, y_test, first, train_runs, int(units), int(epochs), float(lr),
        int(batch_size), int(hidden),
    )  # fmt: skip


def comparing_schemes() -> dict[str, Initializer]:
    """The five schemes of "Comparing the schemes": LeCun, Xavier, He, std 0.01, std 1.

    Notes
    -----
    Chapter: "Comparing the schemes" (book/comparing.md).
    """
    return {
        "LeCun": "lecun_normal",
        "Xavier": "xavier_normal",
        "He": "he_normal",
        "std 0.01": fixed_std(0.01),
        "std 1": fixed_std(1.0),
    }


@dataclass(frozen=True)
class ComparingTraining:
    """The training runs of "Comparing the schemes".

    Attributes
    ----------
    histories : dict of (activation, scheme) to list of History
        One History per seed; within a seed every scheme of an activation shares the data order.
    measures : dict of str to SeedSummary
        ``<act>_<scheme>_acc1`` and ``_acc2`` (validation accuracy after one and two epochs),
        ``<act>_<scheme>_acc`` (final), ``<act>_<scheme>_loss`` (final training loss),
        ``<act>_<scheme>_diverged`` (1 or 0), for ReLU ``relu_He_lead1`` and
        ``relu_He_lead2`` (He's accuracy after one and two epochs minus the better of LeCun's
        and Xavier's, paired by seed), and ``<act>_sensible_spread`` (largest minus smallest
        final accuracy of LeCun, Xavier and He within a seed).
    layer_sizes : list of int
    """

    histories: dict[tuple[str, str], list[Any]]
    measures: dict[str, SeedSummary]
    layer_sizes: list[int]

    def __getitem__(self, name: str) -> SeedSummary:
        return self.measures[name]


def scheme_tag(scheme: str) -> str:
    """The glue-name form of a scheme label: ``"std 0.01"`` -> ``"std001"``."""
    return scheme.replace(" ", "").replace(".", "")


def comparing_training(
    *,
    rng: RNGLike,
    n_seeds: int = DEFAULT_SEEDS,
    hidden: int = 8,
    width: int = 64,
    epochs: int = 10,
    lr: float = 0.01,
    batch_size: int = 32,
    activations: Sequence[str] = ("tanh", "sigmoid", "relu"),
) -> ComparingTraining:
    """Train a deep MLP on the digits with each scheme of :func:`comparing_schemes`, over seeds.

    Parameters
    ----------
    rng : Generator, seed or None
        Keyword-only. Draws the train/test split (:func:`course_lib.data.digits_split`), then
        spawns one child per activation, which :func:`course_lib.training.compare_initializers`
        splits into ``n_seeds`` paired seeds.
    n_seeds : int
        Seeds per (activation, scheme).
    hidden, width : int
        ``hidden`` hidden layers of ``width`` units.
    epochs, lr, batch_size
        SGD with momentum 0.9.
    activations : sequence of str

    Returns
    -------
    ComparingTraining

    Notes
    -----
    Seed ``k`` of every scheme uses the same data order (common random numbers), so differences
    between schemes within a seed come from the initial weights. Chapter: "Comparing the
    schemes" (book/comparing.md).
    """
    from . import training
    from .data import digits_split

    gen = as_generator(rng)
    data = digits_split(rng=gen)
    sizes = (
        [data.X_train.shape[1]]
        + [_positive_int(width, "width")] * _positive_int(hidden, "hidden")
        + [10]
    )
    schemes = comparing_schemes()
    histories: dict[tuple[str, str], list[Any]] = {}
    for act, child in zip(activations, gen.spawn(len(activations)), strict=True):
        runs = training.compare_initializers(
            schemes, data.X_train, data.y_train, sizes, rng=child, n_replicates=n_seeds,
            activation=act, epochs=epochs, batch_size=batch_size, lr=lr, momentum=0.9,
            X_val=data.X_test, y_val=data.y_test,
        )  # fmt: skip
        for scheme, hs in runs.items():
            histories[act, scheme] = hs
    values: dict[str, list[float]] = {}
    for (act, scheme), hs in histories.items():
        tag = f"{act}_{scheme_tag(scheme)}"
        values[f"{tag}_acc1"] = [float(h.val_acc[min(1, len(h.val_acc) - 1)]) for h in hs]
        values[f"{tag}_acc2"] = [float(h.val_acc[min(2, len(h.val_acc) - 1)]) for h in hs]
        values[f"{tag}_acc"] = [float(h.val_acc[-1]) for h in hs]
        values[f"{tag}_loss"] = [
            float(h.train_loss[-1]) if np.isfinite(h.train_loss[-1]) else float("inf") for h in hs
        ]
        values[f"{tag}_diverged"] = [float(h.diverged) for h in hs]
    for act in activations:
        accs = np.array([values[f"{act}_{s}_acc"] for s in ("LeCun", "Xavier", "He")])
        values[f"{act}_sensible_spread"] = list(accs.max(axis=0) - accs.min(axis=0))
    if "relu" in activations:
        for e in (1, 2):
            he, lecun, xavier = (
                np.array(values[f"relu_{s}_acc{e}"]) for s in ("He", "LeCun", "Xavier")
            )
            values[f"relu_He_lead{e}"] = list(he - np.maximum(lecun, xavier))
    measures = {k: summarize(v) for k, v in values.items() if all(np.isfinite(x) for x in v)}
    return ComparingTraining(histories, measures, sizes)


def _stds_of(
    initializer: Initializer,
    activation: str,
    *,
    depth: int,
    width: int,
    batch: int,
    rng: np.random.Generator,
    backward: bool = False,
) -> dict[str, npt.NDArray[np.float64]]:
    """Per-layer statistics of one bias-free square MLP on standard-normal inputs."""
    init = resolve_initializer(initializer)
    X = rng.standard_normal((batch, width))
    weights = [init((width, width), rng=rng) for _ in range(depth)]
    fp = _net.forward(X, weights, activation, keep="stats")
    stats = fp.activation_stats
    out = {
        "act": np.asarray(fp.stds(), dtype=np.float64),
        "rms": np.array([math.sqrt(s.var + s.mean**2) for s in stats]),
        "sat": np.array([s.saturated for s in stats], dtype=np.float64),
    }
    if backward:
        bp = _net.backward(fp, weights, rng.standard_normal((batch, width)), keep="stats")
        out["grad"] = np.array([s.std for s in bp.preactivation_grad_stats])
        out["wgrad"] = np.array([s.std for s in bp.weight_grad_stats])
    return out


def lecun_schemes() -> dict[str, Initializer]:
    """LeCun normal against the fixed scales 1 and 0.01 (book/lecun.md)."""
    return {"LeCun normal": "lecun_normal", "std 1": fixed_std(1.0), "std 0.01": fixed_std(0.01)}


LECUN_ACTIVATIONS: tuple[str, ...] = ("linear", "tanh", "selu")


def lecun_depth_experiment(
    *,
    rng: RNGLike,
    n_seeds: int = DEFAULT_SEEDS,
    depth: int = 20,
    width: int = 256,
    batch: int = 256,
) -> SeedExperiment[dict[tuple[str, str], dict[str, npt.NDArray[np.float64]]]]:
    """The depth experiment of "LeCun": activation std per layer for three scales, over seeds.

    Parameters
    ----------
    rng : Generator, seed or None
        Keyword-only; only spawned from (one child per seed).
    n_seeds, depth, width, batch : int

    Returns
    -------
    SeedExperiment
        ``examples``: per seed, ``(activation, scheme) -> {"act", "rms", "sat"}`` arrays, plus
        ``("linear", "std 1/n")`` and ``("linear", "LeCun 5")`` for the five-layer mistake.
        ``measures``: the numbers the chapter quotes (``linear_maxdev``, ``tanh_last_sqrt2l``
        = std at the last layer times :math:`\\sqrt{2L}`, ...).

    Notes
    -----
    LeCun's :math:`\\operatorname{Var}(w) = 1/n_\\text{in}` keeps a linear net's variance,
    tanh decays like :math:`1/\\sqrt{2\\ell}`. Chapter: "LeCun" (book/lecun.md).
    """
    d, w, b = (
        _positive_int(depth, "depth"),
        _positive_int(width, "width"),
        _positive_int(batch, "batch"),
    )

    def run(g: np.random.Generator) -> dict[tuple[str, str], dict[str, npt.NDArray[np.float64]]]:
        res = {
            (act, name): _stds_of(init, act, depth=d, width=w, batch=b, rng=g)
            for act in LECUN_ACTIVATIONS
            for name, init in lecun_schemes().items()
        }
        res["linear", "std 1/n"] = _stds_of(
            fixed_std(1.0 / w), "linear", depth=5, width=w, batch=b, rng=g
        )
        res["linear", "LeCun 5"] = _stds_of(
            "lecun_normal", "linear", depth=5, width=w, batch=b, rng=g
        )
        return res

    def measure(r: dict[tuple[str, str], dict[str, npt.NDArray[np.float64]]]) -> dict[str, float]:
        lin = r["linear", "LeCun normal"]["act"]
        tanh = r["tanh", "LeCun normal"]["act"]
        selu = r["selu", "LeCun normal"]["act"]
        return {
            "linear_first": float(lin[0]),
            "linear_last": float(lin[-1]),
            "linear_maxdev": float(np.max(np.abs(lin - 1.0))),
            "tanh_l5": float(tanh[min(4, d - 1)]),
            "tanh_last": float(tanh[-1]),
            "tanh_last_sqrt2l": float(tanh[-1] * math.sqrt(2 * d)),
            "tanh_l5_sqrt10": float(tanh[min(4, d - 1)] * math.sqrt(10)),
            "tanh_decreasing": float(np.all(np.diff(tanh) < 0)),
            "selu_last": float(selu[-1]),
            "selu_maxdev": float(np.max(np.abs(selu - 1.0))),
            "std1_linear_last": float(r["linear", "std 1"]["act"][-1]),
            "std1_linear_log_error": float(
                math.log(r["linear", "std 1"]["act"][-1]) - d * math.log(math.sqrt(w))
            ),
            "std1_tanh_last": float(r["tanh", "std 1"]["act"][-1]),
            "std1_tanh_sat": float(r["tanh", "std 1"]["sat"][-1]),
            "small_linear_last": float(r["linear", "std 0.01"]["act"][-1]),
            "small_linear_log_error": float(
                math.log(r["linear", "std 0.01"]["act"][-1]) - d * math.log(0.01 * math.sqrt(w))
            ),
            "small_tanh_l5": float(r["tanh", "std 0.01"]["act"][min(4, d - 1)]),
            "mistake_l1": float(r["linear", "std 1/n"]["act"][0]),
            "mistake_l5": float(r["linear", "std 1/n"]["act"][-1]),
        }

    return _measured_over_seeds(run, measure, rng=rng, n_seeds=n_seeds, keep="all")


def xavier_tanh_experiment(
    *,
    rng: RNGLike,
    n_seeds: int = DEFAULT_SEEDS,
    depth: int = 10,
    width: int = 256,
    batch: int = 500,
) -> SeedExperiment[dict[str, dict[str, npt.NDArray[np.float64]]]]:
    """The tanh experiment of "Xavier": the :math:`U(\\pm1/\\sqrt n)` heuristic against Xavier.

    Parameters
    ----------
    rng : Generator, seed or None
        Keyword-only; only spawned from (one child per seed, both schemes drawn from it).
    n_seeds, depth, width, batch : int

    Returns
    -------
    SeedExperiment
        ``examples``: per seed, scheme (``"heuristic"``, ``"xavier"``) -> per-layer ``"act"``,
        ``"grad"`` and ``"wgrad"`` stds. ``measures``: ``heur_fwd_factor`` (geometric-mean
        variance factor per layer, layers 6-10), ``heur_bwd_factor`` (layers 5 -> 1), the
        layer-10 and layer-1 stds and the spreads (max/min over layers) of weight gradients and
        activations.

    Notes
    -----
    The heuristic has :math:`\\operatorname{Var}(w) = 1/(3n)`, so near the linear regime each
    layer multiplies the variance by 1/3 both ways. Chapter: "Xavier" (book/xavier.md).
    """
    d, w, b = (
        _positive_int(depth, "depth"),
        _positive_int(width, "width"),
        _positive_int(batch, "batch"),
    )
    h = d // 2

    def run(g: np.random.Generator) -> dict[str, dict[str, npt.NDArray[np.float64]]]:
        return {
            name: _stds_of(init, "tanh", depth=d, width=w, batch=b, rng=g, backward=True)
            for name, init in (("heuristic", "standard_uniform"), ("xavier", "xavier_uniform"))
        }

    def measure(r: dict[str, dict[str, npt.NDArray[np.float64]]]) -> dict[str, float]:
        heur, xav = r["heuristic"], r["xavier"]
        fv, bv = heur["act"] ** 2, heur["grad"] ** 2
        return {
            "heur_fwd_factor": float(np.exp(np.mean(np.log(fv[h:] / fv[h - 1 : -1])))),
            "heur_bwd_factor": float(np.exp(np.mean(np.log(bv[: h - 1] / bv[1:h])))),
            "heur_act_last": float(heur["act"][-1]),
            "heur_grad_first": float(heur["grad"][0]),
            "norm_act_last": float(xav["act"][-1]),
            "norm_grad_first": float(xav["grad"][0]),
            "norm_grad_last": float(xav["grad"][-1]),
            "heur_wgrad_spread": float(heur["wgrad"].max() / heur["wgrad"].min()),
            "heur_act_spread": float(heur["act"].max() / heur["act"].min()),
        }

    return _measured_over_seeds(run, measure, rng=rng, n_seeds=n_seeds, keep="all")


def he_depth_experiment(
    *,
    rng: RNGLike,
    n_seeds: int = 16,
    depth: int = 30,
    width: int = 256,
    batch: int = 256,
    ratio_layer: int = 10,
) -> SeedExperiment[dict[str, dict[str, npt.NDArray[np.float64]]]]:
    """The depth experiment of "He": a bias-free ReLU MLP with He and with LeCun weights.

    Parameters
    ----------
    rng : Generator, seed or None
        Keyword-only; only spawned from (one child per seed; He's network is drawn first).
    n_seeds, depth, width, batch : int
    ratio_layer : int
        The layer at which the He/LeCun ratio is measured.

    Returns
    -------
    SeedExperiment
        ``examples``: per seed, ``"he"``/``"lecun"`` -> per-layer ``"act"`` (std), ``"rms"``
        (:math:`\\sqrt{\\operatorname{E}[x^2]}`) and ``"grad"`` (std of :math:`\\partial\\mathcal
        L/\\partial p`). ``measures``: ``log_ratio`` (log of He's over LeCun's activation std at
        ``ratio_layer``), He's ``std_l10``/``std_last``/``rms_l10``/``rms_last``/
        ``grad_first``/``grad_last``, LeCun's ``lecun_std_last``, ``lecun_grad_first``.

    Notes
    -----
    He's :math:`\\operatorname{Var}(w) = 2/n_\\text{in}` preserves :math:`\\operatorname{E}[x^2]`
    exactly in expectation, so :math:`\\sqrt{\\operatorname{E}[x^2]} = 1` at every layer; LeCun's
    halves it per layer. Chapter: "He" (book/he.md).
    """
    d, w, b = (
        _positive_int(depth, "depth"),
        _positive_int(width, "width"),
        _positive_int(batch, "batch"),
    )
    k = min(_positive_int(ratio_layer, "ratio_layer"), d) - 1

    def run(g: np.random.Generator) -> dict[str, dict[str, npt.NDArray[np.float64]]]:
        return {
            name: _stds_of(init, "relu", depth=d, width=w, batch=b, rng=g, backward=True)
            for name, init in (("he", "he_normal"), ("lecun", "lecun_normal"))
        }

    def measure(r: dict[str, dict[str, npt.NDArray[np.float64]]]) -> dict[str, float]:
        he, lecun = r["he"], r["lecun"]
        return {
            "log_ratio": float(math.log(he["act"][k] / lecun["act"][k])),
            "std_l10": float(he["act"][k]),
            "std_last": float(he["act"][-1]),
            "rms_l10": float(he["rms"][k]),
            "rms_last": float(he["rms"][-1]),
            "grad_first": float(he["grad"][0]),
            "grad_last": float(he["grad"][-1]),
            "lecun_std_last": float(lecun["act"][-1]),
            "lecun_grad_first": float(lecun["grad"][0]),
        }

    return _measured_over_seeds(run, measure, rng=rng, n_seeds=n_seeds, keep="all")


SYMMETRY_SETTINGS: tuple[tuple[str, str], ...] = (
    ("constant", "tanh"),
    ("constant", "sigmoid"),
    ("constant", "relu"),
    ("zeros", "tanh"),
    ("zeros", "linear"),
    ("zeros", "relu"),
    ("zeros", "sigmoid"),
    ("random", "tanh"),
)
"""The (initialization, hidden activation) pairs of "Zero and constant initialization"."""


def symmetry_experiment(
    *, rng: RNGLike, n_seeds: int = DEFAULT_SEEDS, steps: int = 300, **demo: Any
) -> SeedExperiment[dict[tuple[str, str], SymmetryDemo]]:
    """:func:`symmetry_demo` for every setting of :data:`SYMMETRY_SETTINGS`, over seeds.

    Parameters
    ----------
    rng : Generator, seed or None
        Keyword-only; only spawned from. Within a seed every setting trains on the same task
        (inputs and teacher): each call gets a generator seeded with one number drawn from the
        seed's child.
    n_seeds, steps : int
    **demo
        Passed to :func:`symmetry_demo`.

    Returns
    -------
    SeedExperiment
        ``examples[0]``: the first seed's demos (the chapter's table); ``measures``:
        ``symmetric_maxdiff`` (largest difference between twin units, incoming or outgoing,
        over all steps and symmetric settings: 0 exactly), ``const_moved``, ``const_loss``,
        ``random_loss``, ``loss_ratio`` (constant over random final loss, tanh),
        ``random_diff``, ``zeros_moved`` (largest hidden-weight change from zeros with
        :math:`f(0) = 0`), ``zeros_w2`` and ``zeros_sig_moved``.

    Notes
    -----
    Chapter: "Zero and constant initialization" (book/symmetry.md).
    """

    def run(g: np.random.Generator) -> dict[tuple[str, str], SymmetryDemo]:
        task_seed = int(g.integers(2**32))
        return {
            (init, act): symmetry_demo(
                init, steps=steps, rng=np.random.default_rng(task_seed), activation=act, **demo
            )
            for init, act in SYMMETRY_SETTINGS
        }

    def measure(d: dict[tuple[str, str], SymmetryDemo]) -> dict[str, float]:
        const, rand = d["constant", "tanh"], d["random", "tanh"]
        symmetric = [v for (init, _), v in d.items() if init != "random"]
        f0_zero = [d["zeros", a] for a in ("tanh", "linear", "relu")]
        return {
            "symmetric_maxdiff": float(
                max(
                    max(v.max_unit_difference.max(), v.max_outgoing_difference.max())
                    for v in symmetric
                )
            ),
            "const_moved": float(const.hidden_weight_change[-1]),
            "const_loss": float(const.loss[-1]),
            "random_loss": float(rand.loss[-1]),
            "loss_ratio": float(const.loss[-1] / rand.loss[-1]),
            "random_diff": float(rand.max_unit_difference[-1]),
            "zeros_moved": float(max(v.hidden_weight_change.max() for v in f0_zero)),
            "zeros_w2": float(max(np.abs(v.W2).max() for v in f0_zero)),
            "zeros_loss_drop": float(min(v.loss[0] - v.loss[-1] for v in f0_zero)),
            "zeros_sig_moved": float(d["zeros", "sigmoid"].hidden_weight_change[-1]),
        }

    return _measured_over_seeds(run, measure, rng=rng, n_seeds=n_seeds)


def input_gradient_variance(
    n_in: int, n_out: int, *, batch: int, var_w: float, var_g: float, rng: RNGLike
) -> float:
    """Sample variance of :math:`\\partial\\mathcal L/\\partial x = \\delta W^\\top` for one layer.

    Parameters
    ----------
    n_in, n_out : int
        The layer's fans; ``W`` has shape ``(n_in, n_out)`` with :math:`N(0, \\text{var\\_w})`
        entries.
    batch : int
        Rows of the incoming gradient :math:`\\delta`, :math:`N(0, \\text{var\\_g})` entries.
    var_w, var_g : float
    rng : Generator, seed or None
        Keyword-only; draws ``W``, then :math:`\\delta`.

    Returns
    -------
    float
        The pooled sample variance of the ``(batch, n_in)`` input gradients.

    Notes
    -----
    The backward rule :math:`\\operatorname{Var}(\\partial\\mathcal L/\\partial x) =
    n_\\text{out}\\operatorname{Var}(w)\\operatorname{Var}(\\partial\\mathcal L/\\partial p)`: the
    fan-out takes the place of the fan-in. Chapter: "Variance" (book/variance.md).
    """
    gen = as_generator(rng)
    W = gen.normal(
        0.0,
        math.sqrt(check_positive(var_w, name="var_w")),
        size=(_positive_int(n_in, "n_in"), _positive_int(n_out, "n_out")),
    )
    delta = gen.normal(
        0.0,
        math.sqrt(check_positive(var_g, name="var_g")),
        size=(_positive_int(batch, "batch"), n_out),
    )
    return float((delta @ W.T).var())


def leaky_relu_second_moments(
    *,
    rng: RNGLike,
    slopes: Sequence[float] = (0.2, 0.5),
    n_seeds: int = 6,
    depth: int = 30,
    width: int = 256,
    batch: int = 256,
) -> dict[tuple[float, str], SeedSummary]:
    """Second moment after ``depth`` leaky-ReLU layers, plain He against the generalized rule.

    Parameters
    ----------
    rng : Generator, seed or None
        Keyword-only; only spawned from: one child per (slope, rule), split into ``n_seeds``.
    slopes : sequence of float
        Negative slopes :math:`a`.
    n_seeds, depth, width, batch : int

    Returns
    -------
    dict
        ``(a, "he")`` and ``(a, "generalized")`` -> :class:`~course_lib.seeds.SeedSummary` of
        :math:`\\operatorname{E}[x^2]` at the last layer, one value per network.

    Notes
    -----
    With :math:`\\operatorname{Var}(w) = s/n_\\text{in}` each leaky-ReLU layer multiplies the
    second moment by :math:`s(1 + a^2)/2` in expectation: 1 for the generalized rule
    :math:`s = 2/(1 + a^2)`, :math:`(1 + a^2)^{L}` after :math:`L` layers for plain He
    (:math:`s = 2`). Chapter: "He" (book/he.md).
    """
    from .initializers import variance_scaling

    d, w, b = (
        _positive_int(v, k) for v, k in ((depth, "depth"), (width, "width"), (batch, "batch"))
    )
    rules = ("he", "generalized")
    cells = [(float(a), name) for a in slopes for name in rules]
    out: dict[tuple[float, str], SeedSummary] = {}
    for (a, name), child in zip(cells, as_generator(rng).spawn(len(cells)), strict=True):
        scale = 2.0 if name == "he" else 2.0 / (1.0 + a * a)

        def one(g: np.random.Generator, a: float = a, scale: float = scale) -> float:
            X = g.standard_normal((b, w))
            weights = [
                variance_scaling((w, w), scale=scale, mode="fan_in", distribution="normal", rng=g)
                for _ in range(d)
            ]
            fp = _net.forward(X, weights, "leaky_relu", negative_slope=a, keep="stats")
            s = fp.activation_stats[-1]
            return float(s.var + s.mean**2)

        out[a, name] = summarize(over_seeds(one, n_seeds=n_seeds, rng=child))
    return out
