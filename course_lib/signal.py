r"""Mean-field signal propagation: the length map, its fixed point, the backward factor
:math:`\chi`, the correlation map, order and chaos, depth scales and critical gains.

A wide fully connected net with weights :math:`W_{ij} \sim N(0, \sigma_w^2/n)` and biases
:math:`b_i \sim N(0, \sigma_b^2)` has, at each layer, pre-activations that are (over the draw of
the weights) Gaussian with a variance :math:`q^l` that follows a deterministic map
(Poole et al. 2016; Schoenholz et al. 2017):

.. math::

    q^{l+1} = \sigma_w^2\,\mathrm E_{z}\bigl[f(\sqrt{q^l} z)^2\bigr] + \sigma_b^2,
    \qquad z \sim N(0, 1).

Two inputs with correlation :math:`c^l` have correlation :math:`c^{l+1}` given by the
*correlation map*, whose slope at :math:`c = 1` is the backward factor
:math:`\chi = \sigma_w^2\,\mathrm E[f'(\sqrt{q^*} z)^2]` that multiplies the squared gradient per
layer. :math:`\chi < 1` is the ordered phase (inputs become alike, gradients vanish),
:math:`\chi > 1` the chaotic phase (inputs decorrelate, gradients explode), :math:`\chi = 1` the
edge of chaos.

Every expectation here is a deterministic Gauss-Hermite quadrature
(:func:`numpy.polynomial.hermite_e.hermegauss`, probabilists' weight :math:`e^{-z^2/2}`);
only :func:`simulate_signal` samples (keyword-only ``rng``, SPEC 7), and it pushes the inputs
through :func:`course_lib.network.forward` with weights from
:func:`course_lib.experiments.init_network`.

Accuracy. With the default ``n_points = 300`` (an even number, so no node sits on the kink of
ReLU-like activations at 0) the one-dimensional expectations are exact for polynomials of degree
< 600, agree with the closed forms of ReLU (:math:`q/2`, :math:`\chi = \sigma_w^2/2`) to
rounding, and with a 400 001-point trapezoid rule to better than 1e-7 for tanh, sigmoid and
GELU at :math:`q \le 3`. Accuracy falls as :math:`q` grows, because :math:`f(\sqrt q z)`
then varies on a scale :math:`1/\sqrt q` comparable to the node spacing: for the sigmoid at
:math:`q = 44` (:math:`\sigma_w^2 = 100`) the relative error of :math:`\chi` is about 2e-4,
for tanh at :math:`q = 10` about 1e-4 (2e-6 for the length map); ``tests/test_signal.py``
checks these bounds. The two-dimensional correlation map uses a product
rule of ``n_points = 128`` nodes per axis; for ReLU it matches the arc-cosine kernel of Cho & Saul
(2009) to 2e-3 (the kink along a line in the plane limits Gauss-Hermite to slow algebraic
convergence); for the smooth activations its slope at :math:`c = 1` matches the
one-dimensional :math:`\chi` to about 1e-4 (sigmoid at :math:`q^* \approx 17`) or better.
That is far below the Monte Carlo noise of a width-500 network (about 0.03 in :math:`c`), the
use the chapter makes of it.

Chapter: "Signal propagation beyond the variance" (book/papers/signal_propagation.md).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from numpy.polynomial.hermite_e import hermegauss

from . import network as _net
from ._validation import RNGLike, as_generator, check_positive
from .experiments import init_network
from .initializers import NONLINEARITIES, calculate_gain
from .seeds import DEFAULT_SEEDS, over_seeds

__all__ = [
    "DEFAULT_POINTS",
    "DEFAULT_POINTS_2D",
    "GAIN_TABLE_ACTIVATIONS",
    "MAX_POINTS",
    "DepthScales",
    "DivergentSignalError",
    "GainRow",
    "MapComparison",
    "SignalTrajectory",
    "backward_gain",
    "chi",
    "chi_grid",
    "correlation_fixed_point",
    "correlation_map",
    "correlation_slope",
    "coverage",
    "critical_gain",
    "critical_sigma_w2",
    "depth_scales",
    "expected_saturation",
    "fixed_point",
    "gain_table",
    "gaussian_expectation",
    "length_map",
    "length_map_slope",
    "map_vs_monte_carlo",
    "phase",
    "propagate",
    "simulate_signal",
    "variance_gain",
]

FloatArray = npt.NDArray[np.float64]
ArrayFn = Callable[[FloatArray], FloatArray]
ActivationLike = str | ArrayFn

DEFAULT_POINTS = 300
"""Gauss-Hermite nodes of the one-dimensional expectations (even: no node on a kink at 0; 300 is
about the largest rule :func:`numpy.polynomial.hermite_e.hermegauss` computes without overflow)."""
MAX_POINTS = 300
"""Largest accepted rule."""
DEFAULT_POINTS_2D = 128
"""Nodes per axis of the two-dimensional product rule of the correlation map."""

GAIN_TABLE_ACTIVATIONS: tuple[str, ...] = (
    "linear",
    "relu",
    "leaky_relu",
    "tanh",
    "sigmoid",
    "selu",
    "elu",
    "gelu",
    "silu",
)
"""The activations :func:`gain_table` reports by default."""

_Q_MAX = 1e12  # a length-map iterate beyond this counts as divergent
_Q_DEAD = 1e-30  # a fixed point below this times q0 is reported as 0 (the signal dies out)
_Q_TINY = 1e-200  # chi at q* = 0 is evaluated here (the limit q -> 0+)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


class DivergentSignalError(ValueError):
    """The length map has no finite fixed point: the forward signal grows without bound."""


@dataclass(frozen=True)
class _Act:
    f: ArrayFn
    df: ArrayFn | None
    label: str


def _resolve(activation: ActivationLike, derivative: ArrayFn | None) -> _Act:
    if isinstance(activation, str):
        name = activation
        if name not in _net.ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; use one of {', '.join(_net.ACTIVATIONS)}, "
                "or pass a callable f together with derivative=f'"
            )

        def f(x: FloatArray) -> FloatArray:
            return np.asarray(_net.activate(x, name), dtype=np.float64)

        def df(x: FloatArray) -> FloatArray:
            return np.asarray(_net.activation_derivative(x, name), dtype=np.float64)

        return _Act(f, derivative if derivative is not None else df, name)
    if not callable(activation):
        raise ValueError(
            f"activation must be a name from course_lib.network.ACTIVATIONS or a callable, "
            f"got {activation!r}"
        )
    if derivative is not None and not callable(derivative):
        raise ValueError(f"derivative must be a callable f'(x), got {derivative!r}")
    return _Act(activation, derivative, getattr(activation, "__name__", "callable"))


def _need_derivative(act: _Act) -> ArrayFn:
    if act.df is None:
        raise ValueError(
            f"the activation {act.label!r} was given as a callable without its derivative; "
            "pass derivative=f' (needed for chi, the correlation slope and the depth scales)"
        )
    return act.df


@functools.lru_cache(maxsize=16)
def _nodes(n_points: int) -> tuple[FloatArray, FloatArray]:
    x, w = hermegauss(n_points)
    return x.astype(np.float64), (w / _SQRT_2PI).astype(np.float64)


def _check_points(n_points: int, name: str = "n_points") -> int:
    if (
        isinstance(n_points, bool)
        or not isinstance(n_points, int | np.integer)
        or not 2 <= n_points <= MAX_POINTS
    ):
        raise ValueError(
            f"{name} must be an integer from 2 to {MAX_POINTS} (larger Gauss-Hermite rules "
            f"overflow), got {n_points!r}"
        )
    return int(n_points)


def _check_q(q: float, name: str = "q") -> float:
    qf = float(q)
    if not math.isfinite(qf) or qf < 0:
        raise ValueError(f"{name} must be a finite variance >= 0, got {q!r}")
    return qf


def _check_sigmas(sigma_w2: float, sigma_b2: float) -> tuple[float, float]:
    sw = check_positive(sigma_w2, name="sigma_w2")
    sb = float(sigma_b2)
    if not math.isfinite(sb) or sb < 0:
        raise ValueError(f"sigma_b2 must be a finite variance >= 0, got {sigma_b2!r}")
    return float(sw), sb


def _apply(fn: ArrayFn, x: FloatArray, label: str) -> FloatArray:
    with np.errstate(over="ignore", invalid="ignore"):
        y = np.asarray(fn(x), dtype=np.float64)
    if y.shape != x.shape:
        raise ValueError(f"{label} must act elementwise: input shape {x.shape}, output {y.shape}")
    return y


def gaussian_expectation(g: ArrayFn, *, n_points: int = DEFAULT_POINTS) -> float:
    r"""Expectation :math:`\mathrm E[g(z)]` for :math:`z \sim N(0, 1)` by Gauss-Hermite quadrature.

    Parameters
    ----------
    g : callable
        Elementwise function of a float64 array.
    n_points : int, default :data:`DEFAULT_POINTS`
        Number of nodes.

    Returns
    -------
    float

    Notes
    -----
    .. math::

        \mathrm E[g(z)] = \frac{1}{\sqrt{2\pi}} \int g(x) e^{-x^2/2}\,dx
        \approx \sum_{i=1}^{n} \frac{w_i}{\sqrt{2\pi}}\, g(x_i),

    with the nodes :math:`x_i` and weights :math:`w_i` of
    :func:`numpy.polynomial.hermite_e.hermegauss`; exact for polynomials of degree
    :math:`< 2n`. Chapter: "Signal propagation beyond the variance".
    """
    x, w = _nodes(_check_points(n_points))
    return float(w @ _apply(g, x, "g"))


def length_map(
    q: float | npt.ArrayLike,
    activation: ActivationLike,
    *,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    n_points: int = DEFAULT_POINTS,
) -> FloatArray:
    r"""The length (variance) map :math:`q \mapsto \sigma_w^2\mathrm E[f(\sqrt q z)^2]+\sigma_b^2`.

    Parameters
    ----------
    q : float or array_like
        Pre-activation variance(s) of layer :math:`l` (>= 0).
    activation : str or callable
        A name from :data:`course_lib.network.ACTIVATIONS` or an elementwise callable.
    sigma_w2 : float
        :math:`\sigma_w^2 = n \operatorname{Var}(w)` (> 0), keyword-only.
    sigma_b2 : float, default 0.0
        Bias variance :math:`\sigma_b^2` (>= 0).
    n_points : int
        Gauss-Hermite nodes.

    Returns
    -------
    ndarray
        :math:`q^{l+1}`, same shape as ``q`` (a 0-d array for a scalar).

    Notes
    -----
    .. math::

        q^{l+1} = \sigma_w^2 \int \mathcal Dz\, f\bigl(\sqrt{q^l} z\bigr)^2 + \sigma_b^2,
        \qquad \mathcal Dz = \frac{e^{-z^2/2}}{\sqrt{2\pi}}\,dz.

    Chapter: "Signal propagation beyond the variance", equation ``eq-sp-length``.
    """
    act = _resolve(activation, None)
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    qa = np.asarray(q, dtype=np.float64)
    if not np.all(np.isfinite(qa)) or np.any(qa < 0):
        raise ValueError(f"q must be finite variances >= 0, got {q!r}")
    x, w = _nodes(_check_points(n_points))
    u = np.sqrt(qa)[..., None] * x
    fu = _apply(act.f, u, "activation")
    out: FloatArray = sw * (fu * fu) @ w + sb
    return out


def length_map_slope(
    q: float,
    activation: ActivationLike,
    *,
    sigma_w2: float,
    derivative: ArrayFn | None = None,
    n_points: int = DEFAULT_POINTS,
) -> float:
    r"""Slope :math:`dq^{l+1}/dq^l` of the length map at ``q`` (> 0).

    Parameters
    ----------
    q : float
        Variance (> 0).
    activation : str or callable
        A name from :data:`course_lib.network.ACTIVATIONS` or an elementwise callable.
    sigma_w2 : float
        Keyword-only weight variance.
    derivative : callable, optional
        :math:`f'`, required for a callable activation.
    n_points : int
        Gauss-Hermite nodes.

    Returns
    -------
    float

    Notes
    -----
    By Stein's lemma (:math:`\mathrm E[z\,g(z)] = \mathrm E[g'(z)]`),

    .. math::

        \frac{d q^{l+1}}{d q^l} = \frac{\sigma_w^2}{\sqrt q}\,\mathrm E\bigl[z\,f(\sqrt q z)
        f'(\sqrt q z)\bigr] = \sigma_w^2\,\mathrm E\bigl[f'(\sqrt q z)^2 + f(\sqrt q z)
        f''(\sqrt q z)\bigr],

    the quantity whose logarithm sets the depth scale :math:`\xi_q` (Schoenholz et al. 2017).
    Chapter: "Signal propagation beyond the variance".
    """
    act = _resolve(activation, derivative)
    df = _need_derivative(act)
    sw, _ = _check_sigmas(sigma_w2, 0.0)
    qf = _check_q(q)
    if qf == 0:
        raise ValueError("length_map_slope needs q > 0 (at q = 0 use chi: the slope is f'(0)^2)")
    x, w = _nodes(_check_points(n_points))
    u = math.sqrt(qf) * x
    return float(
        sw
        * (w @ (x * _apply(act.f, u, "activation") * _apply(df, u, "derivative")))
        / math.sqrt(qf)
    )


def fixed_point(
    activation: ActivationLike,
    *,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    q0: float = 1.0,
    rtol: float = 1e-12,
    n_points: int = DEFAULT_POINTS,
) -> float:
    r"""The fixed point :math:`q^*` the length map reaches from ``q0``.

    Parameters
    ----------
    activation : str or callable
    sigma_w2, sigma_b2 : float
        Keyword-only weight and bias variances.
    q0 : float, default 1.0
        Starting variance (> 0).
    rtol : float
        Relative tolerance of the root.
    n_points : int

    Returns
    -------
    float
        :math:`q^*` (0.0 when the signal dies out, i.e. the root lies below :math:`10^{-30} q_0`,
        e.g. tanh with :math:`\sigma_w^2 < 1`,
        :math:`\sigma_b = 0`; ``q0`` itself when every :math:`q` is fixed, e.g. ReLU at
        :math:`\sigma_w^2 = 2`, :math:`\sigma_b = 0`).

    Raises
    ------
    DivergentSignalError
        (a ``ValueError``) when the iterates grow past 1e12: there is no finite fixed point
        (ReLU above criticality, :math:`\sigma_w^2 > 2`).

    Notes
    -----
    For the activations here the map :math:`L(q)` is increasing, so the iteration
    :math:`q^{l+1} = L(q^l)` moves monotonically from ``q0`` towards the nearest root of
    :math:`L(q) = q` in the direction of :math:`L(q_0) - q_0`. That root is bracketed by
    quadrupling (or quartering) :math:`q` and then found by bisection in :math:`\log q`, which
    gives the limit of the iteration without its slow convergence near criticality.
    Chapter: "Signal propagation beyond the variance", equation ``eq-sp-fixed``.
    """
    act = _resolve(activation, None)
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    q_start = check_positive(q0, name="q0")
    n = _check_points(n_points)

    def g(q: float) -> float:
        return float(length_map(q, act.f, sigma_w2=sw, sigma_b2=sb, n_points=n)) - q

    g0 = g(q_start)
    if not math.isfinite(g0):
        raise DivergentSignalError(f"the length map is not finite at q0 = {q_start}")
    if abs(g0) <= 1e-12 * q_start:
        return q_start
    lo, hi = q_start, q_start
    if g0 > 0:  # the iteration grows: look upwards for g < 0
        while True:
            hi = 4.0 * lo
            gh = g(hi)
            if math.isfinite(gh) and gh <= 0:
                break
            if hi > _Q_MAX or not math.isfinite(gh):
                raise DivergentSignalError(
                    f"the length map of {act.label} with sigma_w2={sw:g}, sigma_b2={sb:g} has no "
                    "finite fixed point above q0: the forward signal grows without bound "
                    "(the network is above criticality); lower sigma_w2"
                )
            lo = hi
    else:  # the iteration shrinks: look downwards for g > 0
        while True:
            lo = 0.25 * hi
            if lo < _Q_DEAD * q_start:
                return 0.0
            if g(lo) >= 0:
                break
            hi = lo
    # invariant g(lo) > 0 >= g(hi); bisect in log q
    while hi - lo > rtol * hi:
        mid = math.sqrt(lo * hi)
        if g(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def chi(
    activation: ActivationLike,
    *,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    q: float | None = None,
    derivative: ArrayFn | None = None,
    n_points: int = DEFAULT_POINTS,
) -> float:
    r"""The backward factor :math:`\chi = \sigma_w^2\,\mathrm E[f'(\sqrt{q^*} z)^2]`.

    Parameters
    ----------
    activation : str or callable
    sigma_w2, sigma_b2 : float
        Keyword-only weight and bias variances.
    q : float, optional
        Evaluate at this variance instead of the fixed point :func:`fixed_point`.
    derivative : callable, optional
        :math:`f'`, required when ``activation`` is a callable.
    n_points : int

    Returns
    -------
    float

    Notes
    -----
    In a wide net the squared gradient with respect to the pre-activations is multiplied by
    :math:`\chi` per layer (Schoenholz et al. 2017, eq. 9):

    .. math::

        \chi = \sigma_w^2 \int \mathcal Dz\, f'\bigl(\sqrt{q^*} z\bigr)^2 .

    When :math:`q^* = 0` (the signal dies out) the limit :math:`q \to 0^+` is returned,
    :math:`\sigma_w^2 (f'(0^-)^2 + f'(0^+)^2)/2`. :math:`\chi` is also the slope of the
    correlation map at :math:`c = 1` (see :func:`correlation_slope`).
    Chapter: "Signal propagation beyond the variance", equation ``eq-sp-chi``.
    """
    act = _resolve(activation, derivative)
    df = _need_derivative(act)
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    n = _check_points(n_points)
    qs = fixed_point(act.f, sigma_w2=sw, sigma_b2=sb, n_points=n) if q is None else _check_q(q)
    x, w = _nodes(n)
    # at q* = 0 take the limit q -> 0+ (the mean of f'(0-)^2 and f'(0+)^2 at a kink): the
    # symmetric nodes of an even rule at a tiny scale do exactly that
    d = _apply(df, math.sqrt(max(qs, _Q_TINY)) * x, "derivative")
    return float(sw * (w @ (d * d)))


def _cross(
    f: ArrayFn, g: ArrayFn, q1: float, q2: float, c: FloatArray, n_points: int
) -> FloatArray:
    r"""E[f(u1) g(u2)] with Var u1 = q1, Var u2 = q2, corr(u1, u2) = c (vectorized over c)."""
    x, w = _nodes(n_points)
    z1 = x[:, None]
    z2 = x[None, :]
    ww = np.outer(w, w)
    fu1 = _apply(f, math.sqrt(q1) * x, "activation")[:, None]
    out = np.empty(c.shape, dtype=np.float64)
    for idx, ci in np.ndenumerate(c):
        s = math.sqrt(max(0.0, 1.0 - ci * ci))
        gu2 = _apply(g, math.sqrt(q2) * (ci * z1 + s * z2), "activation")
        out[idx] = float(np.sum(ww * fu1 * gu2))
    return out


def _check_c(c: float | npt.ArrayLike) -> FloatArray:
    ca = np.asarray(c, dtype=np.float64)
    if not np.all(np.isfinite(ca)) or np.any(np.abs(ca) > 1):
        raise ValueError(f"correlations must lie in [-1, 1], got {c!r}")
    return ca


def _q_star(act: _Act, sw: float, sb: float, q: float | None, n: int) -> float:
    qs = fixed_point(act.f, sigma_w2=sw, sigma_b2=sb, n_points=n) if q is None else _check_q(q)
    if qs == 0:
        raise ValueError(
            "the variance is 0 (the signal dies out: q* = 0), so correlations are undefined; "
            "use sigma_b2 > 0 or a larger sigma_w2, or pass q > 0 explicitly"
        )
    return qs


def correlation_map(
    c: float | npt.ArrayLike,
    activation: ActivationLike,
    *,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    q: float | None = None,
    n_points: int = DEFAULT_POINTS_2D,
) -> FloatArray:
    r"""The correlation map :math:`c^{l+1} = (\sigma_w^2\mathrm E[f(u_1)f(u_2)]+\sigma_b^2)/q^*`.

    Parameters
    ----------
    c : float or array_like
        Correlation(s) :math:`c^l \in [-1, 1]` between two inputs' pre-activations.
    activation : str or callable
    sigma_w2, sigma_b2 : float
        Keyword-only weight and bias variances.
    q : float, optional
        Both inputs' variance (default: the fixed point :math:`q^*`, where the map is defined).
    n_points : int, default :data:`DEFAULT_POINTS_2D`
        Nodes per axis of the product Gauss-Hermite rule.

    Returns
    -------
    ndarray
        :math:`c^{l+1}`, same shape as ``c``.

    Raises
    ------
    ValueError
        If the variance is 0 (correlations undefined) or ``c`` lies outside [-1, 1].

    Notes
    -----
    With :math:`u_1 = \sqrt{q^*} z_1`, :math:`u_2 = \sqrt{q^*}(c z_1 + \sqrt{1 - c^2} z_2)`,
    :math:`z_1, z_2` independent standard normals (Poole et al. 2016, eq. 5):

    .. math::

        c^{l+1} = \frac{1}{q^*}\Bigl(\sigma_w^2 \int \mathcal Dz_1 \mathcal Dz_2\,
        f(u_1) f(u_2) + \sigma_b^2\Bigr).

    :math:`c = 1` is always a fixed point at :math:`q = q^*`.
    Chapter: "Signal propagation beyond the variance", equation ``eq-sp-corr``.
    """
    act = _resolve(activation, None)
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    n = _check_points(n_points)
    ca = _check_c(c)
    qs = _q_star(act, sw, sb, q, n)
    return (sw * _cross(act.f, act.f, qs, qs, ca, n) + sb) / qs


def correlation_slope(
    c: float | npt.ArrayLike,
    activation: ActivationLike,
    *,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    q: float | None = None,
    derivative: ArrayFn | None = None,
    n_points: int = DEFAULT_POINTS_2D,
) -> FloatArray:
    r"""Slope :math:`\chi_c = dc^{l+1}/dc^l = \sigma_w^2 \mathrm E[f'(u_1) f'(u_2)]` of the map.

    Parameters
    ----------
    c : float or array_like
        Correlation(s) in [-1, 1].
    activation : str or callable
        A name from :data:`course_lib.network.ACTIVATIONS` or an elementwise callable.
    sigma_w2, sigma_b2 : float
        Keyword-only weight and bias variances.
    q : float, optional
        Variance (default: the fixed point :math:`q^*`).
    derivative : callable, optional
        :math:`f'`, required for a callable activation.
    n_points : int
        Nodes per axis of the two-dimensional rule.

    Returns
    -------
    ndarray
        :math:`\chi_c`, same shape as ``c``.

    Notes
    -----
    Differentiating :func:`correlation_map` under the integral and integrating by parts
    (Poole et al. 2016; Schoenholz et al. 2017, eq. 5):

    .. math::

        \chi_c = \frac{\partial c^{l+1}}{\partial c^l} = \sigma_w^2 \int \mathcal Dz_1
        \mathcal Dz_2\, f'(u_1)\, f'(u_2),

    which at :math:`c = 1` (:math:`u_1 = u_2`) is :math:`\chi` (:func:`chi`).
    Chapter: "Signal propagation beyond the variance".
    """
    act = _resolve(activation, derivative)
    df = _need_derivative(act)
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    n = _check_points(n_points)
    ca = _check_c(c)
    qs = _q_star(act, sw, sb, q, n)
    return sw * _cross(df, df, qs, qs, ca, n)


def correlation_fixed_point(
    activation: ActivationLike,
    *,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    derivative: ArrayFn | None = None,
    tol: float = 1e-10,
    n_points: int = DEFAULT_POINTS_2D,
) -> float:
    r"""The stable fixed point :math:`c^*` of the correlation map.

    Parameters
    ----------
    activation : str or callable
        A name from :data:`course_lib.network.ACTIVATIONS` or an elementwise callable.
    sigma_w2, sigma_b2 : float
        Keyword-only weight and bias variances.
    derivative : callable, optional
        :math:`f'`, required for a callable activation.
    tol : float
        Absolute tolerance of the bisection.
    n_points : int
        Nodes per axis of the two-dimensional rule.

    Returns
    -------
    float
        1.0 in the ordered phase (:math:`\chi \le 1`); in the chaotic phase the stable root
        :math:`c^* < 1` of :math:`c^{l+1}(c) = c`.

    Notes
    -----
    :math:`c = 1` is always fixed and is stable iff :math:`\chi \le 1`. When :math:`\chi > 1`
    the map lies below the diagonal just left of 1, and at :math:`c = -1` it lies on or above it
    (:math:`c^{l+1} \ge -1`); bisection keeping :math:`g(c) = c^{l+1}(c) - c` non-negative at the
    lower end and negative at the upper one converges to a downward crossing, a stable fixed
    point. Chapter: "Signal propagation beyond the variance".
    """
    act = _resolve(activation, derivative)
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    n = _check_points(n_points)
    if chi(act.f, sigma_w2=sw, sigma_b2=sb, derivative=_need_derivative(act)) <= 1.0:
        return 1.0
    qs = _q_star(act, sw, sb, None, n)

    def g(c: float) -> float:
        return float((sw * _cross(act.f, act.f, qs, qs, np.array(c), n) + sb) / qs) - c

    hi = 1.0 - 1e-3
    while g(hi) >= 0:  # chi is barely above 1: move closer to 1
        hi = 1.0 - (1.0 - hi) / 10
        if 1.0 - hi < 1e-9:
            return 1.0
    lo = -1.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if g(mid) >= 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def phase(
    activation: ActivationLike,
    *,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    derivative: ArrayFn | None = None,
    atol: float = 1e-6,
) -> Literal["order", "chaos", "critical"]:
    r"""``"order"`` if :math:`\chi < 1`, ``"chaos"`` if :math:`\chi > 1`, else ``"critical"``.

    Parameters
    ----------
    activation : str or callable
        A name from :data:`course_lib.network.ACTIVATIONS` or an elementwise callable.
    sigma_w2, sigma_b2 : float
        Keyword-only weight and bias variances.
    derivative : callable, optional
        :math:`f'`, required for a callable activation.
    atol : float
        Band around :math:`\chi = 1` reported as critical.

    Returns
    -------
    {"order", "chaos", "critical"}

    Notes
    -----
    Chapter: "Signal propagation beyond the variance" (order, chaos and the edge of chaos).
    """
    x = chi(activation, sigma_w2=sigma_w2, sigma_b2=sigma_b2, derivative=derivative)
    if abs(x - 1.0) <= atol:
        return "critical"
    return "order" if x < 1.0 else "chaos"


@dataclass(frozen=True)
class DepthScales:
    r"""Fixed points, slopes and depth scales of one :math:`(f, \sigma_w^2, \sigma_b^2)`.

    Attributes
    ----------
    q_star : float
        Fixed point of the length map.
    chi_1 : float
        :math:`\chi` at :math:`q^*` (slope of the correlation map at 1).
    c_star : float
        Stable fixed point of the correlation map.
    chi_c : float
        Slope of the correlation map at :math:`c^*`.
    xi_q : float
        :math:`-1/\ln L'(q^*)`: layers over which :math:`q^l` approaches :math:`q^*`.
    xi_c : float
        :math:`-1/\ln \chi_c`: layers over which :math:`c^l` approaches :math:`c^*`
        (infinite at the edge of chaos).
    """

    q_star: float
    chi_1: float
    c_star: float
    chi_c: float
    xi_q: float
    xi_c: float


def _xi(slope: float) -> float:
    if slope <= 0:
        return 0.0
    if slope >= 1.0:
        return math.inf
    return -1.0 / math.log(slope)


def depth_scales(
    activation: ActivationLike,
    *,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    derivative: ArrayFn | None = None,
) -> DepthScales:
    r"""The depth scales :math:`\xi_q` and :math:`\xi_c` of Schoenholz et al. (2017).

    Parameters
    ----------
    activation : str or callable
        A name from :data:`course_lib.network.ACTIVATIONS` or an elementwise callable.
    sigma_w2, sigma_b2 : float
        Keyword-only weight and bias variances.
    derivative : callable, optional
        :math:`f'`, required for a callable activation.

    Returns
    -------
    DepthScales

    Notes
    -----
    Near the fixed points, :math:`|q^l - q^*| \sim e^{-l/\xi_q}` and
    :math:`|c^l - c^*| \sim e^{-l/\xi_c}`, with

    .. math::

        \xi_q^{-1} = -\ln\Bigl(\frac{dq^{l+1}}{dq^l}\Big|_{q^*}\Bigr), \qquad
        \xi_c^{-1} = -\ln \chi_c, \quad
        \chi_c = \sigma_w^2 \int \mathcal Dz_1 \mathcal Dz_2\, f'(u_1^*) f'(u_2^*),

    :math:`u^*` at :math:`(q^*, c^*)`. In the ordered phase :math:`c^* = 1` and
    :math:`\chi_c = \chi`, so :math:`\xi_c = -1/\ln\chi` diverges at the edge of chaos
    :math:`\chi = 1`: only there can information about the input travel arbitrarily deep.
    Chapter: "Signal propagation beyond the variance", equation ``eq-sp-xi``.
    """
    act = _resolve(activation, derivative)
    df = _need_derivative(act)
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    qs = fixed_point(act.f, sigma_w2=sw, sigma_b2=sb)
    chi_1 = chi(act.f, sigma_w2=sw, sigma_b2=sb, q=qs, derivative=df)
    cs = correlation_fixed_point(act.f, sigma_w2=sw, sigma_b2=sb, derivative=df)
    if cs == 1.0:
        chi_c = chi_1
    else:
        chi_c = float(correlation_slope(cs, act.f, sigma_w2=sw, sigma_b2=sb, q=qs, derivative=df))
    slope_q = length_map_slope(qs, act.f, sigma_w2=sw, derivative=df) if qs > 0 else chi_1
    return DepthScales(qs, chi_1, cs, chi_c, _xi(slope_q), _xi(chi_c))


def critical_sigma_w2(
    activation: ActivationLike,
    *,
    sigma_b2: float = 0.0,
    derivative: ArrayFn | None = None,
    rtol: float = 1e-10,
    max_sigma_w2: float = 1e6,
) -> float:
    r"""The weight variance :math:`\sigma_w^2` on the edge of chaos, :math:`\chi = 1`.

    Parameters
    ----------
    activation : str or callable
    sigma_b2 : float, default 0.0
        Bias variance (keyword-only).
    derivative : callable, optional
        Required for a callable activation.
    rtol : float
        Relative tolerance in :math:`\sigma_w^2`.
    max_sigma_w2 : float
        Search limit.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        When :math:`\chi < 1` up to ``max_sigma_w2``, or when :math:`\chi` stays below 1 until
        the forward signal diverges (the boundary found is then not an edge of chaos: the
        fixed point :math:`q^*` disappears while :math:`\chi < 1`, as for GELU and SiLU at
        small :math:`\sigma_b^2`).

    Notes
    -----
    Solves :math:`\chi(\sigma_w^2) = \sigma_w^2\,\mathrm E[f'(\sqrt{q^*(\sigma_w^2)}\,z)^2] = 1`
    by bisection in :math:`\log\sigma_w^2`, with :math:`q^*` recomputed at every trial
    (:func:`fixed_point`). A trial whose forward signal diverges counts as chaotic
    (:math:`\chi > 1`). ReLU with :math:`\sigma_b = 0` gives exactly 2, He's value.
    Chapter: "Signal propagation beyond the variance", equation ``eq-sp-gains``.
    """
    act = _resolve(activation, derivative)
    df = _need_derivative(act)
    _, sb = _check_sigmas(1.0, sigma_b2)

    def above(sw: float) -> bool:
        try:
            return chi(act.f, sigma_w2=sw, sigma_b2=sb, derivative=df) > 1.0
        except DivergentSignalError:
            return True

    lo = hi = 1.0
    if above(1.0):
        while above(lo):
            hi = lo
            lo = lo / 2
            if lo < 1e-8:
                raise ValueError(f"chi > 1 already for sigma_w2 < 1e-8 for {act.label}")
    else:
        while not above(hi):
            lo = hi
            hi = hi * 2
            if hi > max_sigma_w2:
                raise ValueError(
                    f"chi < 1 for every sigma_w2 up to {max_sigma_w2:g} for {act.label} with "
                    f"sigma_b2={sb:g}: no edge of chaos in range; raise max_sigma_w2"
                )
    while hi - lo > rtol * hi:
        mid = math.sqrt(lo * hi)
        if above(mid):
            hi = mid
        else:
            lo = mid
    chi_lo = chi(act.f, sigma_w2=lo, sigma_b2=sb, derivative=df)
    if abs(chi_lo - 1.0) > 1e-3:
        raise ValueError(
            f"no edge of chaos for {act.label} with sigma_b2={sb:g}: chi rises only to "
            f"{chi_lo:.3f} before the forward signal diverges (no finite fixed point) at "
            f"sigma_w2 = {hi:.4g}; the net jumps from order to explosion"
        )
    return 0.5 * (lo + hi)


def chi_grid(
    activation: ActivationLike,
    sigma_w2: npt.ArrayLike,
    sigma_b2: npt.ArrayLike,
    *,
    derivative: ArrayFn | None = None,
) -> FloatArray:
    r""":math:`\chi` on a grid of :math:`(\sigma_b^2, \sigma_w^2)`; ``nan`` where q diverges.

    Parameters
    ----------
    activation : str or callable
    sigma_w2, sigma_b2 : array_like, 1-d
        Grid values.
    derivative : callable, optional

    Returns
    -------
    ndarray, shape (len(sigma_b2), len(sigma_w2))

    Notes
    -----
    The phase diagram of the chapter: :math:`\chi < 1` order, :math:`\chi > 1` chaos, the
    contour :math:`\chi = 1` the edge of chaos. Chapter: "Signal propagation beyond the variance".
    """
    act = _resolve(activation, derivative)
    df = _need_derivative(act)
    ws = np.atleast_1d(np.asarray(sigma_w2, dtype=np.float64))
    bs = np.atleast_1d(np.asarray(sigma_b2, dtype=np.float64))
    out = np.full((bs.size, ws.size), np.nan)
    for i, sb in enumerate(bs):
        for j, sw in enumerate(ws):
            try:
                out[i, j] = chi(act.f, sigma_w2=float(sw), sigma_b2=float(sb), derivative=df)
            except DivergentSignalError:
                pass
    return out


def expected_saturation(activation: str, q: float, *, tol: float = 0.05) -> float:
    r"""Fraction of units saturated when pre-activations are :math:`N(0, q)`.

    Parameters
    ----------
    activation : {"sigmoid", "tanh", "relu"}
    q : float
        Pre-activation variance (> 0).
    tol : float, default 0.05
        The threshold of :func:`course_lib.network.saturation_fraction`.

    Returns
    -------
    float

    Notes
    -----
    With the definitions of :func:`course_lib.network.saturation_fraction`:
    sigmoid :math:`P(|u| \ge \operatorname{logit}(1 - \text{tol}))`, tanh
    :math:`P(|u| \ge \operatorname{artanh}(1 - \text{tol}))`, both
    :math:`\operatorname{erfc}(t/\sqrt{2q})`; ReLU :math:`P(u \le 0) = 1/2`.
    Chapter: "Signal propagation beyond the variance" (what saturation costs at :math:`\chi = 1`).
    """
    qf = check_positive(q, name="q")
    t = float(tol)
    if not 0 < t < 0.5:
        raise ValueError(f"tol must lie in (0, 0.5), got {tol!r}")
    if activation == "relu":
        return 0.5
    if activation == "sigmoid":
        thr = math.log((1.0 - t) / t)
    elif activation == "tanh":
        thr = math.atanh(1.0 - t)
    else:
        raise ValueError(
            f"expected_saturation has closed forms for sigmoid, tanh and relu, got {activation!r}"
        )
    return math.erfc(thr / math.sqrt(2.0 * qf))


def critical_gain(activation: ActivationLike, *, derivative: ArrayFn | None = None) -> float:
    r"""The gain :math:`\sqrt{\sigma_w^2}` that puts a bias-free net on the edge of chaos.

    Parameters
    ----------
    activation : str or callable
        A name from :data:`course_lib.network.ACTIVATIONS` or an elementwise callable.
    derivative : callable, optional
        :math:`f'`, required for a callable activation.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Where the bias-free net has no edge of chaos (see :func:`critical_sigma_w2`).

    Notes
    -----
    :math:`g_\chi = \sqrt{\sigma_w^{2,\mathrm{crit}}}` with :math:`\chi = 1` at
    :math:`\sigma_b = 0` (:func:`critical_sigma_w2`); weights :math:`N(0, g_\chi^2/n)` keep the
    squared gradient constant on average through a deep net, at the variance :math:`q^*` the
    forward pass itself settles at. Chapter: "Signal propagation beyond the variance".
    """
    return math.sqrt(critical_sigma_w2(activation, sigma_b2=0.0, derivative=derivative))


def variance_gain(activation: ActivationLike, *, n_points: int = DEFAULT_POINTS) -> float:
    r"""The gain :math:`1/\sqrt{\mathrm E[f(z)^2]}`, :math:`z \sim N(0, 1)`.

    Parameters
    ----------
    activation : str or callable
        A name from :data:`course_lib.network.ACTIVATIONS` or an elementwise callable.
    n_points : int
        Gauss-Hermite nodes.

    Returns
    -------
    float

    Notes
    -----
    With :math:`\operatorname{Var}(w) = g^2/n` and unit-variance pre-activations,
    the next layer's pre-activation variance is :math:`g^2\,\mathrm E[f(z)^2]`
    (:func:`length_map` at :math:`q = 1`, :math:`\sigma_b = 0`). The gain

    .. math::

        g_q = \frac{1}{\sqrt{\mathrm E[f(z)^2]}}

    makes :math:`q = 1` a fixed point of the length map: the forward variance is preserved at
    unit scale. For positively homogeneous :math:`f` (linear, ReLU, leaky ReLU) it is exactly
    PyTorch's ``calculate_gain``. Chapter: "Signal propagation beyond the variance".
    """
    act = _resolve(activation, None)
    m2 = gaussian_expectation(lambda x: act.f(x) ** 2, n_points=n_points)
    if not m2 > 0:
        raise ValueError(f"E[f(z)^2] is {m2} for {act.label}: no gain can restore the variance")
    return 1.0 / math.sqrt(m2)


def backward_gain(
    activation: ActivationLike,
    *,
    derivative: ArrayFn | None = None,
    n_points: int = DEFAULT_POINTS,
) -> float:
    r"""The gain :math:`1/\sqrt{\mathrm E[f'(z)^2]}`, :math:`z \sim N(0, 1)`: :math:`\chi = 1` at
    :math:`q = 1`.

    Parameters
    ----------
    activation : str or callable
        A name from :data:`course_lib.network.ACTIVATIONS` or an elementwise callable.
    derivative : callable, optional
        :math:`f'`, required for a callable activation.
    n_points : int
        Gauss-Hermite nodes.

    Returns
    -------
    float

    Notes
    -----
    With :math:`\operatorname{Var}(w) = g^2/n` and unit-variance pre-activations the squared
    gradient is multiplied per layer by :math:`\chi = g^2\,\mathrm E[f'(z)^2]`
    (:func:`chi` at :math:`q = 1`), so

    .. math::

        g_\chi = \frac{1}{\sqrt{\mathrm E[f'(z)^2]}}

    preserves the backward signal at unit scale. It equals :func:`variance_gain` for positively
    homogeneous :math:`f`; elsewhere the two differ, and no single gain preserves both at
    :math:`q = 1`. Chapter: "Signal propagation beyond the variance".
    """
    act = _resolve(activation, derivative)
    df = _need_derivative(act)
    m2 = gaussian_expectation(lambda x: df(x) ** 2, n_points=n_points)
    if not m2 > 0:
        raise ValueError(f"E[f'(z)^2] is {m2} for {act.label}: no gain can restore the gradient")
    return 1.0 / math.sqrt(m2)


@dataclass(frozen=True)
class GainRow:
    """One row of :func:`gain_table`.

    Attributes
    ----------
    activation : str
    pytorch : float or None
        ``calculate_gain(activation)`` (PyTorch's table), ``None`` where PyTorch has no entry.
    forward : float
        :func:`variance_gain`, :math:`1/\\sqrt{E[f(z)^2]}` (forward variance kept at :math:`q=1`).
    backward : float
        :func:`backward_gain`, :math:`1/\\sqrt{E[f'(z)^2]}` (:math:`\\chi = 1` at :math:`q=1`).
    critical : float or None
        :func:`critical_gain` (:math:`\\chi = 1` at the forward fixed point, zero biases);
        ``None`` where the bias-free net has no edge of chaos (GELU, SiLU).
    """

    activation: str
    pytorch: float | None
    forward: float
    backward: float
    critical: float | None


def gain_table(activations: Sequence[str] = GAIN_TABLE_ACTIVATIONS) -> list[GainRow]:
    r"""PyTorch's gains beside the two computed at unit pre-activation variance.

    Parameters
    ----------
    activations : sequence of str
        Names from :data:`course_lib.network.ACTIVATIONS`.

    Returns
    -------
    list of GainRow

    Notes
    -----
    The *forward gain* :math:`g_q = 1/\sqrt{\mathrm E[f(z)^2]}` makes :math:`q = 1` a fixed point
    of the length map; the *backward gain* :math:`g_\chi = 1/\sqrt{\mathrm E[f'(z)^2]}` makes
    :math:`\chi = 1` at :math:`q = 1`; the *critical gain* (:func:`critical_gain`) makes
    :math:`\chi = 1` at the fixed point the bias-free net settles at. For linear, ReLU and
    leaky ReLU the first two equal PyTorch's gain
    exactly; for tanh :math:`g_q \approx 1.593` is within 5% of PyTorch's 5/3. PyTorch's sigmoid
    gain 1 and SELU gain 3/4 follow neither rule (PyTorch documents 3/4 as a choice that trades
    SELU's self-normalization for more stable gradients). Chapter: "Signal propagation beyond
    the variance".
    """
    rows: list[GainRow] = []
    for name in activations:
        if not isinstance(name, str) or name not in _net.ACTIVATIONS:
            raise ValueError(
                f"gain_table takes names from {', '.join(_net.ACTIVATIONS)}, got {name!r}"
            )
        torch = calculate_gain(name) if name in NONLINEARITIES else None
        try:
            crit: float | None = critical_gain(name)
        except ValueError:
            crit = None
        rows.append(GainRow(name, torch, variance_gain(name), backward_gain(name), crit))
    return rows


# --------------------------------------------------------------------------------------------
# Iterating the maps, and Monte Carlo through a real network
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalTrajectory:
    r"""Per-layer variances and correlation of two inputs.

    Attributes
    ----------
    q : ndarray, shape (depth + 1, 2)
        :math:`q^l` of each input, layer 0 (the input pre-activations) to ``depth``.
    c : ndarray, shape (depth + 1,)
        :math:`c^l` between the two inputs.
    saturated : ndarray, shape (depth + 1,) or None
        Monte Carlo only: the fraction of the layer's activations :math:`f(h^l)` (both inputs)
        that are saturated, :func:`course_lib.network.saturation_fraction`.
    """

    q: FloatArray
    c: FloatArray
    saturated: FloatArray | None = None


def propagate(
    activation: ActivationLike,
    *,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    q0: float,
    c0: float,
    depth: int,
    n_points: int = DEFAULT_POINTS_2D,
) -> SignalTrajectory:
    r"""Iterate the mean-field maps from :math:`(q^0, q^0, c^0)` for ``depth`` layers.

    Parameters
    ----------
    activation : str or callable
        A name from :data:`course_lib.network.ACTIVATIONS` or an elementwise callable.
    sigma_w2, sigma_b2 : float
        Keyword-only weight and bias variances.
    q0, c0 : float
        Layer-0 variance (> 0) of both inputs and their correlation.
    depth : int
        Number of layers.
    n_points : int
        Nodes per axis of the two-dimensional rule.

    Returns
    -------
    SignalTrajectory

    Raises
    ------
    DivergentSignalError
        When the variance grows past 1e12.

    Notes
    -----
    The general covariance map, with :math:`u_a \sim N(0, q_a^l)`,
    :math:`\operatorname{corr}(u_1, u_2) = c^l`:

    .. math::

        q_a^{l+1} = \sigma_w^2 \mathrm E[f(u_a)^2] + \sigma_b^2, \qquad
        c^{l+1} = \frac{\sigma_w^2 \mathrm E[f(u_1) f(u_2)] + \sigma_b^2}
        {\sqrt{q_1^{l+1} q_2^{l+1}}},

    which reduces to :func:`length_map` and :func:`correlation_map` at :math:`q = q^*`.
    :func:`simulate_signal` measures the same quantities in a sampled network.
    Chapter: "Signal propagation beyond the variance".
    """
    act = _resolve(activation, None)
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    q = check_positive(q0, name="q0")
    c = float(_check_c(c0))
    L = _positive_int(depth, "depth")
    n = _check_points(n_points)
    qs = np.empty((L + 1, 2))
    cs = np.empty(L + 1)
    qs[0] = q
    cs[0] = c
    for layer in range(1, L + 1):
        q_next = float(length_map(q, act.f, sigma_w2=sw, sigma_b2=sb, n_points=DEFAULT_POINTS))
        if not math.isfinite(q_next) or q_next > _Q_MAX:
            raise DivergentSignalError(f"the length map diverges by layer {layer}")
        cov = sw * float(_cross(act.f, act.f, q, q, np.array(c), n)) + sb
        c = min(1.0, max(-1.0, cov / q_next))
        q = q_next
        qs[layer] = q
        cs[layer] = c
    return SignalTrajectory(qs, cs)


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def simulate_signal(
    activation: str,
    *,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    q0: float,
    c0: float,
    depth: int,
    width: int,
    rng: RNGLike,
) -> SignalTrajectory:
    r"""Monte Carlo: two inputs through one random deep net; measure :math:`q^l` and :math:`c^l`.

    Parameters
    ----------
    activation : str
        A name from :data:`course_lib.network.ACTIVATIONS`.
    sigma_w2, sigma_b2 : float
        Weights :math:`N(0, \sigma_w^2/n)`, biases :math:`N(0, \sigma_b^2)`.
    q0, c0 : float
        The two layer-0 pre-activation vectors have mean square exactly ``q0`` and empirical
        correlation exactly ``c0``.
    depth, width : int
        Number of layers and units per layer.
    rng : Generator, int or SeedSequence
        Keyword-only (SPEC 7); inputs, then weights (via
        :func:`course_lib.experiments.init_network`), then biases are drawn from it.

    Returns
    -------
    SignalTrajectory
        ``q[l, a] = mean_i (h_{a,i}^l)^2`` and ``c[l] = h_1^l \cdot h_2^l / |h_1^l| |h_2^l|``.

    Notes
    -----
    The layer-0 vectors :math:`h^0_a` are made exact by Gram-Schmidt; the net computes
    :math:`h^{l} = f(h^{l-1}) W_l + b_l` with :func:`course_lib.network.forward` fed
    :math:`f(h^0)`. Given layer :math:`l`, the :math:`n` units of layer :math:`l + 1` are
    independent bivariate Gaussians with the covariance of the mean-field map evaluated at the
    *empirical* :math:`(q^l, c^l)`; so :math:`\hat q^{l+1}` has relative standard deviation
    :math:`\sqrt{2/n}` per layer and the empirical correlation a standard deviation near
    :math:`(1 - c^2)/\sqrt n`. Chapter: "Signal propagation beyond the variance".
    """
    act = _net._check_activation(activation)
    sw, sb = _check_sigmas(sigma_w2, sigma_b2)
    q = check_positive(q0, name="q0")
    c = float(_check_c(c0))
    L = _positive_int(depth, "depth")
    n = _positive_int(width, "width")
    if n < 2:
        raise ValueError("width must be at least 2 (two inputs need two directions)")
    gen = as_generator(rng)
    g = gen.standard_normal((2, n))
    e1 = g[0] / np.linalg.norm(g[0])
    v = g[1] - (g[1] @ e1) * e1
    e2 = v / np.linalg.norm(v)
    scale = math.sqrt(q * n)
    h0 = np.stack([scale * e1, scale * (c * e1 + math.sqrt(1.0 - c * c) * e2)])
    std = math.sqrt(sw / n)

    def normal(shape: tuple[int, ...], *, rng: RNGLike = None) -> FloatArray:
        return std * as_generator(rng).standard_normal(shape)

    weights, _ = init_network([n] * (L + 1), normal, rng=gen)
    biases = [sb**0.5 * gen.standard_normal(n) for _ in range(L)] if sb > 0 else None
    fp = _net.forward(_net.activate(h0, act), weights, act, biases=biases, keep="all")
    hs = [h0, *fp.preactivations]
    sat = np.array([_net.saturation_fraction(_net.activate(h, act), act) for h in hs])
    qs = np.array([np.mean(h * h, axis=1) for h in hs])
    with np.errstate(invalid="ignore", divide="ignore"):
        cs = np.array(
            [float(h[0] @ h[1]) / math.sqrt(float(h[0] @ h[0]) * float(h[1] @ h[1])) for h in hs]
        )
    return SignalTrajectory(qs, cs, sat)


@dataclass(frozen=True)
class MapComparison:
    """The mean-field prediction and its Monte Carlo measurements over several seeds.

    Attributes
    ----------
    theory : SignalTrajectory
        :func:`propagate`.
    runs : tuple of SignalTrajectory
        :func:`simulate_signal`, one per spawned seed.
    """

    theory: SignalTrajectory
    runs: tuple[SignalTrajectory, ...]

    def q_runs(self) -> FloatArray:
        """Shape ``(n_seeds, depth + 1)``: each run's :math:`q^l`, averaged over the two inputs."""
        return np.array([r.q.mean(axis=1) for r in self.runs])

    def c_runs(self) -> FloatArray:
        """Shape ``(n_seeds, depth + 1)``: each run's :math:`c^l`."""
        return np.array([r.c for r in self.runs])


def coverage(runs: npt.ArrayLike, theory: npt.ArrayLike, *, skip_input: bool = True) -> float:
    r"""Fraction of layers at which ``theory`` lies within the range of the runs.

    Parameters
    ----------
    runs : array_like, shape (n_seeds, depth + 1)
        One measured curve per seed (e.g. :meth:`MapComparison.c_runs`).
    theory : array_like, shape (depth + 1,)
        The map's prediction.
    skip_input : bool, default True
        Leave out layer 0, where runs and theory agree by construction.

    Returns
    -------
    float

    Notes
    -----
    If the prediction is the median of each layer's sampling distribution, the range of
    :math:`K` independent runs contains it with probability :math:`1 - 2 \cdot 2^{-K}`
    (94% for :math:`K = 5`), so the expected coverage is about that; a biased prediction
    falls outside far more often. Chapter: "Signal propagation beyond the variance".
    """
    r = np.asarray(runs, dtype=np.float64)
    t = np.asarray(theory, dtype=np.float64)
    if r.ndim != 2 or t.shape != r.shape[1:]:
        raise ValueError(
            f"runs must have shape (n_seeds, n_layers) and theory (n_layers,), got {r.shape} "
            f"and {t.shape}"
        )
    if skip_input:
        r, t = r[:, 1:], t[1:]
    inside = (r.min(axis=0) <= t) & (t <= r.max(axis=0))
    return float(np.mean(inside))


def map_vs_monte_carlo(
    activation: str,
    *,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    q0: float = 1.0,
    c0: float = 0.5,
    depth: int = 30,
    width: int = 500,
    n_seeds: int = DEFAULT_SEEDS,
    rng: RNGLike,
) -> MapComparison:
    r"""Iterate the maps and measure the same quantities in ``n_seeds`` sampled networks.

    Parameters
    ----------
    activation : str
    sigma_w2, sigma_b2, q0, c0, depth, width
        As in :func:`propagate` and :func:`simulate_signal`.
    n_seeds : int, default 5
        Independent networks, one per child of ``rng`` (``course_lib.seeds.over_seeds``).
    rng : Generator, int or SeedSequence
        Keyword-only.

    Returns
    -------
    MapComparison

    Notes
    -----
    The chapter's figure and its claim tests both call this function with the chapter's
    generator, so the numbers in the text are the ones the tests check.
    Chapter: "Signal propagation beyond the variance".
    """
    theory = propagate(activation, sigma_w2=sigma_w2, sigma_b2=sigma_b2, q0=q0, c0=c0, depth=depth)
    runs = over_seeds(
        lambda g: simulate_signal(
            activation,
            sigma_w2=sigma_w2,
            sigma_b2=sigma_b2,
            q0=q0,
            c0=c0,
            depth=depth,
            width=width,
            rng=g,
        ),
        n_seeds=n_seeds,
        rng=rng,
    )
    return MapComparison(theory, tuple(runs))
