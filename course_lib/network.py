r"""Deterministic multilayer-perceptron kernels: activations, forward and backward passes, losses.

Nothing in this module draws random numbers: weights, biases and inputs come from the caller
(sampling lives in :mod:`course_lib.experiments`). A layer computes

.. math::

    p^{(\ell)} = a^{(\ell-1)} W^{(\ell)} + b^{(\ell)}, \qquad a^{(\ell)} = f(p^{(\ell)}),
    \qquad a^{(0)} = X,

(the book's notation: :math:`p` is the pre-activation, ``z`` in the code, and :math:`\mathcal L`
the loss) with weights in the ``(fan_in, fan_out)`` layout, so that a batch ``X`` of shape
``(batch, fan_in)`` flows through ``X @ W``. The backward pass applies the chain rule

.. math::

    \frac{\partial \mathcal L}{\partial p^{(\ell)}}
    = \frac{\partial \mathcal L}{\partial a^{(\ell)}} \odot f'(p^{(\ell)}), \quad
    \frac{\partial \mathcal L}{\partial W^{(\ell)}}
    = (a^{(\ell-1)})^\top \frac{\partial \mathcal L}{\partial p^{(\ell)}}, \quad
    \frac{\partial \mathcal L}{\partial b^{(\ell)}}
    = \sum_{\text{batch}} \frac{\partial \mathcal L}{\partial p^{(\ell)}}, \quad
    \frac{\partial \mathcal L}{\partial a^{(\ell-1)}}
    = \frac{\partial \mathcal L}{\partial p^{(\ell)}} (W^{(\ell)})^\top.

Two memory modes
----------------
``keep="all"`` stores every pre-activation and activation (and, in :func:`backward`, every
gradient); that is what histograms and exercises need. ``keep="stats"`` stores only a
:class:`LayerStats` summary per layer (mean, std, min, max, saturated fraction, fixed-bin
histogram counts), so a depth-100 net does not hold 200 batch-sized arrays. Backward needs each
layer's input and pre-activation, so in statistics mode the forward pass keeps *checkpoints*: the
input of every ``k``-th layer (``k = ceil(sqrt(depth))`` by default). :func:`backward` walks the
segments from the top, recomputes one segment's activations from its checkpoint, back-propagates
through it and drops it. Memory falls from ``2·depth`` arrays to about ``depth/k + 2k`` (about
``3·sqrt(depth)``) at the price of one extra forward pass (Chen et al. 2016, "Training deep nets
with sublinear memory cost"). ``checkpoint_every=1`` keeps every layer input (fastest backward,
``depth`` arrays); ``checkpoint_every=depth`` keeps only ``X`` (least memory, still one extra
forward pass, but a ``depth``-long segment). Measured (benchmarks/bench_network.py, depth 100,
width 256, batch 512, forward + backward): peak 450 MiB with ``keep="all"`` against 36 MiB with
``keep="stats"``, at 2.5 times the time (the extra forward pass and five histograms per layer).

Chapters: "Why initialization matters" (book/why_init.md), "Variance" (book/variance.md),
"Symmetry" (book/symmetry.md), the scheme chapters and the ``ps3_deep_signal`` exercise.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

from ._validation import check_choice, check_positive

__all__ = [
    "ACTIVATIONS",
    "SELU_ALPHA_NET",
    "SELU_LAMBDA_NET",
    "BackwardPass",
    "ForwardPass",
    "LayerStats",
    "activate",
    "activation_derivative",
    "backward",
    "cross_entropy",
    "default_hist_range",
    "forward",
    "layer_stats",
    "log_softmax",
    "mean_squared_error",
    "saturation_fraction",
    "softmax",
    "softmax_cross_entropy",
]

FloatArray = npt.NDArray[np.floating]
Keep = Literal["all", "stats"]

ACTIVATIONS: tuple[str, ...] = (
    "linear",
    "tanh",
    "sigmoid",
    "relu",
    "leaky_relu",
    "selu",
    "elu",
    "gelu",
    "silu",
)
"""The activations :func:`activate`, :func:`forward` and :func:`backward` accept."""

SELU_ALPHA_NET = 1.6732632423543772848170429916717
"""SELU's alpha (Klambauer et al. 2017)."""
SELU_LAMBDA_NET = 1.0507009873554804934193349852946
"""SELU's scale lambda (Klambauer et al. 2017)."""

_KEEPS = ("all", "stats")

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _quiet_overflow(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` without overflow/invalid warnings: an exploding network is a result to show
    (its statistics become inf or nan), not an error."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with np.errstate(over="ignore", invalid="ignore"):
            return fn(*args, **kwargs)

    return wrapper


_erf = np.frompyfunc(math.erf, 1, 1)


def _std_normal_cdf(x: FloatArray) -> FloatArray:
    """Phi(x) elementwise, exact to double precision (``math.erf``; NumPy has no erf)."""
    out: FloatArray = (0.5 * (1.0 + _erf(x / math.sqrt(2.0)))).astype(x.dtype)
    return out


def _check_activation(name: str) -> str:
    return check_choice(name, ACTIVATIONS, name="activation")


def _as_float(x: npt.ArrayLike, *, name: str) -> FloatArray:
    arr = np.asarray(x)
    if arr.dtype in (np.float32, np.float64):
        return arr
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float64)


# --------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------


def activate(z: npt.ArrayLike, name: str, *, negative_slope: float = 0.01) -> FloatArray:
    r"""Apply the activation ``name`` elementwise.

    Parameters
    ----------
    z : array_like
        Pre-activations.
    name : {"linear", "tanh", "sigmoid", "relu", "leaky_relu", "selu", "elu", "gelu", "silu"}
        The activation.
    negative_slope : float, default 0.01
        Slope of ``leaky_relu`` for negative inputs (PyTorch's default).

    Returns
    -------
    ndarray
        ``f(z)``, same shape (float32 stays float32, everything else becomes float64).

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`ACTIVATIONS`.

    Notes
    -----
    .. math::

        \operatorname{sigmoid}(z) = \frac{1}{1 + e^{-z}}, \quad
        \operatorname{relu}(z) = \max(z, 0), \quad
        \operatorname{leaky\_relu}(z) = \begin{cases} z & z > 0 \\ s z & z \le 0 \end{cases}, \quad
        \operatorname{selu}(z) = \lambda \begin{cases} z & z > 0 \\
            \alpha (e^{z} - 1) & z \le 0 \end{cases}

    with :math:`\lambda \approx 1.0507`, :math:`\alpha \approx 1.6733`; and
    :math:`\operatorname{elu}(z) = z` for :math:`z > 0`, :math:`e^{z} - 1` otherwise
    (:math:`\alpha = 1`), :math:`\operatorname{gelu}(z) = z\,\Phi(z)` (the exact, erf-based form,
    PyTorch's default), :math:`\operatorname{silu}(z) = z\,\sigma(z)` (also called swish).
    The sigmoid is evaluated
    as :math:`1/(1+e^{-|z|})` or :math:`e^{-|z|}/(1+e^{-|z|})` so that it never overflows.
    Chapter: "Why initialization matters" (book/why_init.md).
    """
    _check_activation(name)
    x = _as_float(z, name="z")
    if name == "linear":
        return x.copy()
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "leaky_relu":
        return np.where(x > 0, x, negative_slope * x).astype(x.dtype, copy=False)
    if name == "sigmoid":
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))).astype(x.dtype, copy=False)
    if name == "gelu":
        return x * _std_normal_cdf(x)
    if name == "silu":
        return x * activate(x, "sigmoid")
    # selu
    out = SELU_LAMBDA_NET * np.where(x > 0, x, SELU_ALPHA_NET * np.expm1(np.minimum(x, 0.0)))
    return out.astype(x.dtype, copy=False)


def activation_derivative(
    z: npt.ArrayLike, name: str, *, negative_slope: float = 0.01
) -> FloatArray:
    r"""The derivative :math:`f'(z)` of the activation ``name``, elementwise.

    Notes
    -----
    .. math::

        \tanh'(z) = 1 - \tanh^2 z, \quad \sigma'(z) = \sigma(z)(1 - \sigma(z)), \quad
        \operatorname{relu}'(z) = [z > 0], \quad
        \operatorname{selu}'(z) = \lambda \begin{cases} 1 & z > 0 \\
            \alpha e^{z} & z \le 0 \end{cases}, \quad
        \operatorname{elu}'(z) = \begin{cases} 1 & z > 0 \\ e^{z} & z \le 0 \end{cases},

    .. math::

        \operatorname{gelu}'(z) = \Phi(z) + z\,\varphi(z), \quad
        \operatorname{silu}'(z) = \sigma(z)\,\bigl(1 + z\,(1 - \sigma(z))\bigr).

    At the kink ``z = 0`` of relu, leaky_relu and selu the left derivative is returned (0, the
    negative slope, and :math:`\lambda\alpha`), as PyTorch and Keras do.
    Chapter: "Variance" (book/variance.md), the backward pass.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`ACTIVATIONS`.
    """
    _check_activation(name)
    x = _as_float(z, name="z")
    if name == "linear":
        return np.ones_like(x)
    if name == "tanh":
        t = np.tanh(x)
        return 1.0 - t * t
    if name == "relu":
        return (x > 0).astype(x.dtype)
    if name == "leaky_relu":
        return np.where(x > 0, 1.0, negative_slope).astype(x.dtype, copy=False)
    if name == "sigmoid":
        s = activate(x, "sigmoid")
        return s * (1.0 - s)
    if name == "elu":
        return np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0))).astype(x.dtype, copy=False)
    if name == "gelu":
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return _std_normal_cdf(x) + x * pdf
    if name == "silu":
        s = activate(x, "sigmoid")
        return s * (1.0 + x * (1.0 - s))
    out = SELU_LAMBDA_NET * np.where(x > 0, 1.0, SELU_ALPHA_NET * np.exp(np.minimum(x, 0.0)))
    return out.astype(x.dtype, copy=False)


def _derivative_from(z: FloatArray, a: FloatArray, name: str, slope: float) -> FloatArray:
    """f'(z) computed from the stored activation where that is cheaper (tanh, sigmoid, selu)."""
    if name == "linear":
        return np.ones_like(z)
    if name == "tanh":
        return 1.0 - a * a
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, slope).astype(z.dtype, copy=False)
    if name in ("elu", "gelu", "silu"):
        return activation_derivative(z, name)
    # selu: for z <= 0, a = lambda*alpha*(e^z - 1) so f'(z) = lambda*alpha*e^z = a + lambda*alpha
    la = SELU_LAMBDA_NET * SELU_ALPHA_NET
    return np.where(z > 0, SELU_LAMBDA_NET, a + la).astype(z.dtype, copy=False)


def _act_fast(z: FloatArray, name: str, slope: float) -> FloatArray:
    """Activation without validation (the hot loop of :func:`forward`)."""
    if name == "linear":
        return z
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    return activate(z, name, negative_slope=slope)


def saturation_fraction(
    a: npt.ArrayLike, activation: str, *, tol: float = 0.05, negative_slope: float = 0.01
) -> float:
    r"""Fraction of activations on a flat (saturated) part of the activation.

    Parameters
    ----------
    a : array_like
        Activations ``f(z)`` (not pre-activations).
    activation : str
        One of :data:`ACTIVATIONS`.
    tol : float, default 0.05
        Distance from the asymptote that counts as saturated.

    Returns
    -------
    float
        The fraction of entries that are saturated (0.0 for an empty array).

    Notes
    -----
    A unit is saturated where its derivative is (nearly) zero, so almost no gradient passes:

    - tanh: :math:`|a| \ge 1 - \text{tol}` (then :math:`f' = 1 - a^2 \le 2\,\text{tol}`);
    - sigmoid: :math:`a \le \text{tol}` or :math:`a \ge 1 - \text{tol}`
      (Glorot & Bengio 2010 watched the top layer's sigmoid sit at 0);
    - relu: :math:`a \le 0` (a "dead" unit, zero gradient);
    - leaky_relu: :math:`a \le 0` (the gradient is only the negative slope);
    - selu: :math:`a \le -\lambda\alpha(1 - \text{tol})` (near the lower asymptote
      :math:`-\lambda\alpha`);
    - elu: :math:`a \le -(1 - \text{tol})` (near the lower asymptote :math:`-1`);
    - linear, gelu, silu: never (always 0.0; gelu and silu have no flat asymptote of
      :math:`f` with a zero derivative on a half-line that a threshold on :math:`a` can pick out).

    Chapter: "Why initialization matters" (book/why_init.md) and "Glorot & Bengio 2010"
    (book/papers/glorot2010.md).
    """
    _check_activation(activation)
    x = np.asarray(a, dtype=np.float64)
    if x.size == 0:
        return 0.0
    return float(np.count_nonzero(_saturated_mask(x, activation, tol))) / x.size


def _saturated_mask(
    x: npt.NDArray[np.float64], activation: str, tol: float
) -> npt.NDArray[np.bool_]:
    out: npt.NDArray[np.bool_]
    if activation == "tanh":
        out = np.abs(x) >= 1.0 - tol
    elif activation == "sigmoid":
        out = (x <= tol) | (x >= 1.0 - tol)
    elif activation in ("relu", "leaky_relu"):
        out = x <= 0
    elif activation == "selu":
        out = x <= -SELU_LAMBDA_NET * SELU_ALPHA_NET * (1.0 - tol)
    elif activation == "elu":
        out = x <= -(1.0 - tol)
    else:
        out = np.zeros(x.shape, dtype=bool)
    return out


# --------------------------------------------------------------------------------------------
# Per-layer statistics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerStats:
    """Summary of one layer's values (activations, pre-activations or gradients).

    Attributes
    ----------
    mean, std, min, max : float
        Over all entries (``std`` with ddof=0).
    saturated : float
        Fraction saturated (see :func:`saturation_fraction`); ``nan`` where not meaningful
        (pre-activations, gradients).
    counts : ndarray of int64, shape (bins,)
        Histogram counts over the fixed bins ``edges``.
    edges : ndarray, shape (bins + 1,)
        Bin edges (uniform; the same for every layer of one pass, so histograms compare).
    below, above : int
        Entries outside ``[edges[0], edges[-1]]`` (not in ``counts``).
    size : int
        Number of entries summarized.
    """

    mean: float
    std: float
    min: float
    max: float
    saturated: float
    counts: npt.NDArray[np.int64]
    edges: npt.NDArray[np.float64]
    below: int
    above: int
    size: int

    @property
    def var(self) -> float:
        """The variance ``std**2``."""
        return self.std * self.std


def default_hist_range(activation: str | None) -> tuple[float, float]:
    """Default histogram range: the activation's image for tanh/sigmoid, else (-5, 5)."""
    if activation == "tanh":
        return (-1.0, 1.0)
    if activation == "sigmoid":
        return (0.0, 1.0)
    return (-5.0, 5.0)


@_quiet_overflow
def layer_stats(
    values: npt.ArrayLike,
    *,
    hist_range: tuple[float, float] = (-5.0, 5.0),
    bins: int = 50,
    activation: str | None = None,
    tol: float = 0.05,
) -> LayerStats:
    """Summarize ``values`` into a :class:`LayerStats` (deterministic).

    Parameters
    ----------
    values : array_like
        Any shape; all entries are pooled.
    hist_range : (float, float)
        Histogram range; ``bins`` uniform bins cover it, values outside are counted in
        ``below``/``above``.
    bins : int
        Number of bins.
    activation : str, optional
        If given, ``saturated`` is :func:`saturation_fraction` of ``values`` for it; else ``nan``.

    Notes
    -----
    Overflowing values (an exploding network) give inf/nan statistics without warnings.
    Chapter: "Why initialization matters" (book/why_init.md), per-layer histograms.
    """
    x = np.asarray(values, dtype=np.float64)
    lo, hi = float(hist_range[0]), float(hist_range[1])
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"hist_range must be finite with low < high, got {hist_range!r}")
    if int(bins) < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    edges = np.linspace(lo, hi, int(bins) + 1)
    if x.size == 0:
        nan = float("nan")
        return LayerStats(nan, nan, nan, nan, nan, np.zeros(int(bins), np.int64), edges, 0, 0, 0)
    flat = x.ravel()
    vmin, vmax = float(flat.min()), float(flat.max())
    counts, _ = np.histogram(flat, bins=int(bins), range=(lo, hi))
    below = int(np.count_nonzero(flat < lo)) if vmin < lo else 0
    above = int(np.count_nonzero(flat > hi)) if vmax > hi else 0
    sat = saturation_fraction(flat, activation, tol=tol) if activation is not None else float("nan")
    return LayerStats(
        mean=float(flat.mean()),
        std=float(flat.std()),
        min=vmin,
        max=vmax,
        saturated=sat,
        counts=counts.astype(np.int64),
        edges=edges,
        below=below,
        above=above,
        size=int(flat.size),
    )


# --------------------------------------------------------------------------------------------
# Forward pass
# --------------------------------------------------------------------------------------------


@dataclass
class ForwardPass:
    """Result of :func:`forward`.

    Attributes
    ----------
    inputs : ndarray
        The input batch ``X`` (not copied).
    preactivations, activations : list of ndarray
        One per layer (``X`` is not in ``activations``); empty lists when ``keep="stats"``.
        For a linear layer the activation *is* the pre-activation array (no copy is made).
    output : ndarray
        The last layer's activation (always kept).
    activation, output_activation : str
        Hidden and last-layer activation names.
    keep : {"all", "stats"}
    activation_stats, preactivation_stats : list of LayerStats
        Per-layer summaries; computed during the pass for ``keep="stats"``, on first access
        for ``keep="all"`` (so a plain forward pass pays nothing for them).
    checkpoints : dict[int, ndarray]
        For ``keep="stats"``: the input of layer ``i`` for every checkpointed ``i`` (always 0).
    """

    inputs: FloatArray
    preactivations: list[FloatArray]
    activations: list[FloatArray]
    output: FloatArray
    activation: str
    output_activation: str
    keep: str
    negative_slope: float
    biases: list[FloatArray | None] | None
    checkpoints: dict[int, FloatArray] = field(default_factory=dict)
    hist_range: tuple[float, float] | None = None
    preact_hist_range: tuple[float, float] = (-5.0, 5.0)
    bins: int = 50
    _act_stats: list[LayerStats] | None = None
    _pre_stats: list[LayerStats] | None = None

    @property
    def depth(self) -> int:
        """Number of layers."""
        if self.keep == "all":
            return len(self.activations)
        assert self._act_stats is not None
        return len(self._act_stats)

    def layer_activation(self, i: int) -> str:
        """The activation used by layer ``i`` (the output activation for the last layer)."""
        return self.output_activation if i == self.depth - 1 else self.activation

    @property
    def activation_stats(self) -> list[LayerStats]:
        """Per-layer :class:`LayerStats` of the activations."""
        if self._act_stats is None:
            self._act_stats = [
                _act_layer_stats(a, self.layer_activation(i), self.hist_range, self.bins)
                for i, a in enumerate(self.activations)
            ]
        return self._act_stats

    @property
    def preactivation_stats(self) -> list[LayerStats]:
        """Per-layer :class:`LayerStats` of the pre-activations (``saturated`` is nan)."""
        if self._pre_stats is None:
            self._pre_stats = [
                layer_stats(z, hist_range=self.preact_hist_range, bins=self.bins)
                for z in self.preactivations
            ]
        return self._pre_stats

    def stds(self) -> npt.NDArray[np.float64]:
        """Per-layer standard deviation of the activations (ddof=0)."""
        return np.array([s.std for s in self.activation_stats])


def _act_layer_stats(
    a: FloatArray, act: str, hist_range: tuple[float, float] | None, bins: int
) -> LayerStats:
    rng_ = hist_range if hist_range is not None else default_hist_range(act)
    return layer_stats(a, hist_range=rng_, bins=bins, activation=act)


def _check_network(
    X: FloatArray,
    weights: Sequence[npt.ArrayLike],
    biases: Sequence[npt.ArrayLike | None] | None,
) -> tuple[list[FloatArray], list[FloatArray | None] | None]:
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (batch, features), got shape {X.shape}")
    if len(weights) == 0:
        raise ValueError("weights must contain at least one matrix")
    ws: list[FloatArray] = []
    fan = X.shape[1]
    for i, w in enumerate(weights):
        W = _as_float(w, name=f"weights[{i}]")
        if W.ndim != 2:
            raise ValueError(f"weights[{i}] must be 2-D (fan_in, fan_out), got shape {W.shape}")
        if W.shape[0] != fan:
            src = (
                f"X has shape {X.shape}" if i == 0 else f"weights[{i - 1}] has shape {ws[-1].shape}"
            )
            raise ValueError(
                f"shape mismatch: weights[{i}] has shape {W.shape}, so it expects {W.shape[0]} "
                f"inputs, but {src} and feeds it {fan}"
            )
        ws.append(W)
        fan = W.shape[1]
    if biases is None:
        return ws, None
    if len(biases) != len(ws):
        raise ValueError(
            f"biases must have one entry (or None) per weight matrix: got {len(biases)} "
            f"biases for {len(ws)} weights"
        )
    bs: list[FloatArray | None] = []
    for i, (b, W) in enumerate(zip(biases, ws, strict=True)):
        if b is None:
            bs.append(None)
            continue
        B = _as_float(b, name=f"biases[{i}]")
        if B.shape != (W.shape[1],):
            raise ValueError(
                f"shape mismatch: biases[{i}] has shape {B.shape}, expected ({W.shape[1]},) "
                f"to match weights[{i}] of shape {W.shape}"
            )
        bs.append(B)
    return ws, bs


def _layer(
    a: FloatArray, W: FloatArray, b: FloatArray | None, act: str, slope: float
) -> tuple[FloatArray, FloatArray]:
    z = a @ W
    if b is not None:
        z += b
    return z, _act_fast(z, act, slope)


def _checkpoint_every(depth: int, checkpoint_every: int | None) -> int:
    if checkpoint_every is None:
        return max(1, math.ceil(math.sqrt(depth)))
    k = int(checkpoint_every)
    if k < 1:
        raise ValueError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    return k


@_quiet_overflow
def forward(
    X: npt.ArrayLike,
    weights: Sequence[npt.ArrayLike],
    activation: str,
    *,
    biases: Sequence[npt.ArrayLike | None] | None = None,
    output_activation: str | None = None,
    keep: Keep = "all",
    negative_slope: float = 0.01,
    checkpoint_every: int | None = None,
    hist_range: tuple[float, float] | None = None,
    bins: int = 50,
) -> ForwardPass:
    r"""Forward pass of an MLP, keeping every layer (``keep="all"``) or only statistics.

    Parameters
    ----------
    X : array_like, shape (batch, fan_in)
        Input batch.
    weights : sequence of array_like
        ``weights[l]`` has shape ``(fan_in_l, fan_out_l)``; consecutive shapes must chain.
    activation : str
        Hidden activation, one of :data:`ACTIVATIONS`.
    biases : sequence of array_like or None, optional
        ``biases[l]`` of shape ``(fan_out_l,)`` or ``None`` for a layer without bias; ``None``
        (the default) means no biases at all.
    output_activation : str, optional
        Activation of the last layer (``"linear"`` for logits); defaults to ``activation``.
    keep : {"all", "stats"}
        ``"all"`` keeps every pre-activation and activation; ``"stats"`` keeps per-layer
        :class:`LayerStats` and the checkpoints :func:`backward` needs.
    negative_slope : float
        For ``leaky_relu``.
    checkpoint_every : int, optional
        ``keep="stats"`` only: keep the input of every ``k``-th layer (default
        ``ceil(sqrt(depth))``).
    hist_range : (float, float), optional
        Histogram range of the activation statistics (default: :func:`default_hist_range`).
    bins : int
        Number of histogram bins.

    Returns
    -------
    ForwardPass

    Raises
    ------
    ValueError
        Unknown activation or ``keep``; shapes that do not chain (the message names them).

    Notes
    -----
    :math:`z_l = a_{l-1} W_l + b_l`, :math:`a_l = f(z_l)`, :math:`a_0 = X`. The input ``X`` and
    the weights are not copied. Overflow does not warn: an exploding network shows up as inf or
    nan in its outputs and statistics. In ``keep="stats"`` mode the peak memory is about
    ``depth/k + 3`` batch-sized arrays instead of ``2·depth`` (see the module docstring).
    Chapters: "Why initialization matters" (book/why_init.md), "Comparing schemes"
    (book/comparing.md).
    """
    act = _check_activation(activation)
    out_act = act if output_activation is None else _check_activation(output_activation)
    check_choice(keep, _KEEPS, name="keep")
    x = _as_float(X, name="X")
    ws, bs = _check_network(x, weights, biases)
    depth = len(ws)
    slope = float(negative_slope)
    pre_range = (-5.0, 5.0) if hist_range is None else hist_range
    fp = ForwardPass(
        inputs=x,
        preactivations=[],
        activations=[],
        output=x,
        activation=act,
        output_activation=out_act,
        keep=keep,
        negative_slope=slope,
        biases=bs,
        hist_range=hist_range,
        preact_hist_range=pre_range,
        bins=int(bins),
    )
    a = x
    if keep == "all":
        for i, W in enumerate(ws):
            z, a = _layer(
                a, W, None if bs is None else bs[i], out_act if i == depth - 1 else act, slope
            )
            fp.preactivations.append(z)
            fp.activations.append(a)
        fp.output = a
        return fp
    k = _checkpoint_every(depth, checkpoint_every)
    act_stats: list[LayerStats] = []
    pre_stats: list[LayerStats] = []
    for i, W in enumerate(ws):
        if i % k == 0:
            fp.checkpoints[i] = a
        f = out_act if i == depth - 1 else act
        z, a = _layer(a, W, None if bs is None else bs[i], f, slope)
        pre_stats.append(layer_stats(z, hist_range=pre_range, bins=int(bins)))
        act_stats.append(_act_layer_stats(a, f, hist_range, int(bins)))
        del z
    fp.output = a
    fp._act_stats = act_stats
    fp._pre_stats = pre_stats
    return fp


# --------------------------------------------------------------------------------------------
# Backward pass
# --------------------------------------------------------------------------------------------


@dataclass
class BackwardPass:
    """Result of :func:`backward`.

    Attributes
    ----------
    weight_grads : list of ndarray
        ``dL/dW_l``, same shapes as the weights (empty for ``keep="stats"``).
    bias_grads : list of (ndarray or None)
        ``dL/db_l`` (``None`` for a layer without bias; empty for ``keep="stats"``).
    preactivation_grads : list of ndarray
        ``dL/dz_l`` per layer (empty for ``keep="stats"``).
    activation_grads : list of ndarray
        ``dL/da_l`` per layer; the last is ``grad_output`` (empty for ``keep="stats"``).
    input_grad : ndarray
        ``dL/dX`` (always kept).
    weight_grad_norms : ndarray
        Frobenius norm of each ``dL/dW_l`` (always kept).
    preactivation_grad_stats, activation_grad_stats, weight_grad_stats : list of LayerStats
        Per-layer summaries (computed during the pass for ``keep="stats"``, lazily otherwise).
        The histogram range is ``±hist_scale`` for the back-propagated gradients and
        ``±weight_hist_scale`` for the weight gradients (one range for all layers).
    """

    weight_grads: list[FloatArray]
    bias_grads: list[FloatArray | None]
    preactivation_grads: list[FloatArray]
    activation_grads: list[FloatArray]
    input_grad: FloatArray
    weight_grad_norms: npt.NDArray[np.float64]
    keep: str
    hist_scale: float
    bins: int = 50
    weight_hist_scale: float | None = None
    _z_stats: list[LayerStats] | None = None
    _a_stats: list[LayerStats] | None = None
    _w_stats: list[LayerStats] | None = None

    @property
    def preactivation_grad_stats(self) -> list[LayerStats]:
        """Per-layer statistics of ``dL/dz``."""
        if self._z_stats is None:
            r = (-self.hist_scale, self.hist_scale)
            self._z_stats = [
                layer_stats(g, hist_range=r, bins=self.bins) for g in self.preactivation_grads
            ]
        return self._z_stats

    @property
    def activation_grad_stats(self) -> list[LayerStats]:
        """Per-layer statistics of ``dL/da``."""
        if self._a_stats is None:
            r = (-self.hist_scale, self.hist_scale)
            self._a_stats = [
                layer_stats(g, hist_range=r, bins=self.bins) for g in self.activation_grads
            ]
        return self._a_stats

    @property
    def weight_grad_stats(self) -> list[LayerStats]:
        """Per-layer statistics of ``dL/dW``."""
        if self._w_stats is None:
            if not self.weight_grads:
                self._w_stats = []
            else:
                w = _weight_scale(self.weight_grads[-1], self.weight_hist_scale)
                self._w_stats = [
                    layer_stats(g, hist_range=(-w, w), bins=self.bins) for g in self.weight_grads
                ]
        return self._w_stats

    def grad_stds(self) -> npt.NDArray[np.float64]:
        """Per-layer standard deviation of the back-propagated gradient ``dL/da``."""
        return np.array([s.std for s in self.activation_grad_stats])


def _weight_scale(last_dW: FloatArray, given: float | None) -> float:
    if given is not None:
        return given
    s = float(np.std(last_dW))
    return 4.0 * s if s > 0 and np.isfinite(s) else 1.0


@_quiet_overflow
def backward(
    forward_pass: ForwardPass,
    weights: Sequence[npt.ArrayLike],
    grad_output: npt.ArrayLike,
    activation: str | None = None,
    *,
    keep: Keep = "all",
    hist_scale: float | None = None,
    weight_hist_scale: float | None = None,
) -> BackwardPass:
    r"""Back-propagate ``grad_output = dL/d(output)`` through the network of ``forward_pass``.

    Parameters
    ----------
    forward_pass : ForwardPass
        From :func:`forward` with the same ``weights`` (either ``keep`` mode).
    weights : sequence of array_like
        The weights used in the forward pass.
    grad_output : array_like, shape (batch, fan_out_last)
        ``dL/da_L``, the gradient of the loss with respect to the network's output (for a mean
        loss it already contains the ``1/batch``).
    activation : str, optional
        Must equal the forward pass's activation if given (a guard against mixing passes).
    keep : {"all", "stats"}
        ``"all"`` keeps every gradient; ``"stats"`` keeps per-layer :class:`LayerStats`, the
        weight-gradient norms and ``dL/dX``.
    hist_scale : float, optional
        Histogram range ``±hist_scale`` of the back-propagated gradients; default
        ``4·std(grad_output)`` (1.0 if that is zero), so that vanishing gradients pile up in the
        centre bins and exploding ones fall outside.
    weight_hist_scale : float, optional
        Histogram range ``±weight_hist_scale`` of the weight gradients; default
        ``4·std(dL/dW)`` of the last layer.

    Returns
    -------
    BackwardPass

    Raises
    ------
    ValueError
        Shape mismatches (named), unknown ``keep``, or an ``activation`` that differs from the
        forward pass's.

    Notes
    -----
    .. math::

        \delta^{(\ell)} = \frac{\partial \mathcal L}{\partial a^{(\ell)}} \odot f'(p^{(\ell)}),
        \quad \frac{\partial \mathcal L}{\partial W^{(\ell)}} = (a^{(\ell-1)})^\top \delta^{(\ell)},
        \quad \frac{\partial \mathcal L}{\partial b^{(\ell)}} = \mathbf 1^\top \delta^{(\ell)},
        \quad \frac{\partial \mathcal L}{\partial a^{(\ell-1)}} = \delta^{(\ell)} (W^{(\ell)})^\top.

    With a statistics-only forward pass, each segment between checkpoints is recomputed from its
    checkpoint (one extra forward pass in total) and released after use; see the module
    docstring for the memory/compute trade-off. Chapters: "Variance" (book/variance.md),
    "Glorot & Bengio 2010" (book/papers/glorot2010.md).
    """
    if not isinstance(forward_pass, ForwardPass):
        raise ValueError(f"forward_pass must be a ForwardPass, got {type(forward_pass).__name__}")
    check_choice(keep, _KEEPS, name="keep")
    if activation is not None:
        _check_activation(activation)
        if activation != forward_pass.activation:
            raise ValueError(
                f"activation {activation!r} differs from the forward pass's "
                f"{forward_pass.activation!r}"
            )
    x = forward_pass.inputs
    ws, bs = _check_network(x, weights, forward_pass.biases)
    depth = len(ws)
    if depth != forward_pass.depth:
        raise ValueError(
            f"got {depth} weight matrices but the forward pass has {forward_pass.depth} layers"
        )
    g = _as_float(grad_output, name="grad_output")
    out_shape = forward_pass.output.shape
    if g.shape != out_shape:
        raise ValueError(
            f"shape mismatch: grad_output has shape {g.shape}, the network output has shape "
            f"{out_shape}"
        )
    if weight_hist_scale is not None:
        weight_hist_scale = check_positive(weight_hist_scale, name="weight_hist_scale")
    if hist_scale is None:
        s = float(np.std(g))
        scale = 4.0 * s if s > 0 and np.isfinite(s) else 1.0
    else:
        scale = check_positive(hist_scale, name="hist_scale")
    bins = forward_pass.bins
    slope = forward_pass.negative_slope
    hr = (-scale, scale)

    wg: list[FloatArray | None] = [None] * depth
    bg: list[FloatArray | None] = [None] * depth
    zg: list[FloatArray | None] = [None] * depth
    ag: list[FloatArray | None] = [None] * depth
    norms = np.zeros(depth)
    z_stats: list[LayerStats | None] = [None] * depth
    a_stats: list[LayerStats | None] = [None] * depth
    w_stats: list[LayerStats | None] = [None] * depth
    w_scale: float | None = None

    # Where to get layer i's (input, z, a): stored lists, or a recomputed segment.
    if forward_pass.keep == "all":
        segments = [(0, depth)]
    else:
        starts = sorted(forward_pass.checkpoints)
        segments = [(s, e) for s, e in zip(starts, [*starts[1:], depth], strict=True)]

    for start, end in reversed(segments):
        if forward_pass.keep == "all":
            inputs = [x, *forward_pass.activations[:-1]]
            zs = forward_pass.preactivations
            acts = forward_pass.activations
            offset = 0
        else:
            a_in = forward_pass.checkpoints[start]
            inputs, zs, acts = [], [], []
            for i in range(start, end):
                f = forward_pass.layer_activation(i)
                z, a_out = _layer(a_in, ws[i], None if bs is None else bs[i], f, slope)
                inputs.append(a_in)
                zs.append(z)
                acts.append(a_out)
                a_in = a_out
            offset = start
        for i in range(end - 1, start - 1, -1):
            j = i - offset
            f = forward_pass.layer_activation(i)
            if keep == "all":
                ag[i] = g
            else:
                a_stats[i] = layer_stats(g, hist_range=hr, bins=bins)
            delta = g * _derivative_from(zs[j], acts[j], f, slope)
            dW = inputs[j].T @ delta
            norms[i] = float(np.linalg.norm(dW))
            if keep == "all":
                zg[i] = delta
                wg[i] = dW
                if bs is not None and bs[i] is not None:
                    bg[i] = delta.sum(axis=0)
            else:
                z_stats[i] = layer_stats(delta, hist_range=hr, bins=bins)
                if w_scale is None:
                    w_scale = _weight_scale(dW, weight_hist_scale)
                w_stats[i] = layer_stats(dW, hist_range=(-w_scale, w_scale), bins=bins)
            g = delta @ ws[i].T
        if forward_pass.keep != "all":
            del inputs, zs, acts

    if keep == "stats":
        return BackwardPass(
            weight_grads=[],
            bias_grads=[],
            preactivation_grads=[],
            activation_grads=[],
            input_grad=g,
            weight_grad_norms=norms,
            keep=keep,
            hist_scale=scale,
            bins=bins,
            _z_stats=[s for s in z_stats if s is not None],
            _a_stats=[s for s in a_stats if s is not None],
            _w_stats=[s for s in w_stats if s is not None],
            weight_hist_scale=weight_hist_scale,
        )
    return BackwardPass(
        weight_grads=[w for w in wg if w is not None],
        bias_grads=bg,
        preactivation_grads=[d for d in zg if d is not None],
        activation_grads=[d for d in ag if d is not None],
        input_grad=g,
        weight_grad_norms=norms,
        keep=keep,
        hist_scale=scale,
        bins=bins,
        weight_hist_scale=weight_hist_scale,
    )


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def softmax(logits: npt.ArrayLike, axis: int = -1) -> FloatArray:
    r"""Numerically stable softmax along ``axis``.

    Notes
    -----
    :math:`\operatorname{softmax}(z)_k = e^{z_k - m} / \sum_j e^{z_j - m}` with
    :math:`m = \max_j z_j`; subtracting the maximum changes nothing mathematically and keeps
    every exponent :math:`\le 0`, so nothing overflows. Chapter: "Initialization in practice"
    (book/practice.md).
    """
    z = _as_float(logits, name="logits")
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    out: FloatArray = e / np.sum(e, axis=axis, keepdims=True)
    return out


def log_softmax(logits: npt.ArrayLike, axis: int = -1) -> FloatArray:
    r"""Numerically stable :math:`\log\operatorname{softmax}` (log-sum-exp, max subtracted)."""
    z = _as_float(logits, name="logits")
    shifted = z - np.max(z, axis=axis, keepdims=True)
    out: FloatArray = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return out


def _integer_labels(y: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Class labels as int64; whole-valued floats are accepted, anything else raises ValueError."""
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
        raise ValueError(f"integer labels expected, got dtype {y.dtype}")
    return y.astype(np.int64)


def _labels_to_targets(labels: npt.ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    y = np.asarray(labels)
    if y.ndim == 1:
        if y.shape[0] != shape[0]:
            raise ValueError(
                f"shape mismatch: labels have shape {y.shape}, logits have shape {shape}"
            )
        y = _integer_labels(y)
        if y.size and (y.min() < 0 or y.max() >= shape[1]):
            raise ValueError(
                f"labels must lie in 0..{shape[1] - 1} for {shape[1]} classes, got "
                f"{int(y.min())}..{int(y.max())}"
            )
        t = np.zeros(shape)
        t[np.arange(shape[0]), y] = 1.0
        return t
    if y.shape != shape:
        raise ValueError(
            f"shape mismatch: one-hot labels have shape {y.shape}, logits have shape {shape}"
        )
    return y.astype(np.float64)


def softmax_cross_entropy(logits: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[float, FloatArray]:
    r"""Mean softmax cross-entropy of ``logits`` and its gradient with respect to the logits.

    Parameters
    ----------
    logits : array_like, shape (batch, classes)
    labels : array_like
        Integer class labels of shape ``(batch,)`` or targets (one-hot or probabilities) of shape
        ``(batch, classes)``.

    Returns
    -------
    loss : float
        :math:`\mathcal L = -\frac1B \sum_b \sum_k t_{bk} \log\operatorname{softmax}(z_b)_k`.
    grad : ndarray, shape (batch, classes)
        :math:`\partial \mathcal L / \partial z = (\operatorname{softmax}(z) - t) / B`.

    Raises
    ------
    ValueError
        Shape mismatches (named), labels out of range.

    Notes
    -----
    Computed through :func:`log_softmax`, so huge logits give a finite loss. Chapter:
    "Initialization in practice" (book/practice.md), training on digits.
    """
    z = _as_float(logits, name="logits")
    if z.ndim != 2:
        raise ValueError(f"logits must be 2-D (batch, classes), got shape {z.shape}")
    t = _labels_to_targets(labels, z.shape)
    batch = max(z.shape[0], 1)
    logp = log_softmax(z, axis=1)
    loss = float(-np.sum(t * logp) / batch)
    grad = (np.exp(logp) - t) / batch
    return loss, grad


def cross_entropy(logits: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Mean softmax cross-entropy of ``logits`` (not probabilities).

    See :func:`softmax_cross_entropy`, which also returns the gradient.
    """
    return softmax_cross_entropy(logits, labels)[0]


def mean_squared_error(
    predictions: npt.ArrayLike, targets: npt.ArrayLike
) -> tuple[float, FloatArray]:
    r"""Loss :math:`L = \lVert \hat Y - Y \rVert^2 / (2B)` and its gradient :math:`(\hat Y - Y)/B`.

    ``B`` is the batch size ``predictions.shape[0]`` (the ``ps1_variance`` convention).
    Chapter: "Symmetry" (book/symmetry.md).
    """
    p = _as_float(predictions, name="predictions")
    t = _as_float(targets, name="targets")
    if p.shape != t.shape:
        raise ValueError(
            f"shape mismatch: predictions have shape {p.shape}, targets have shape {t.shape}"
        )
    if p.ndim == 0:
        raise ValueError("predictions must have a batch dimension")
    batch = max(p.shape[0], 1)
    diff = p - t
    return float(np.sum(diff * diff) / (2 * batch)), diff / batch
