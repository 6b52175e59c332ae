r"""Residual MLPs at initialization: why their variance grows with depth, and the fixes.

A residual block adds its branch to the stream,
:math:`x^{(\ell+1)} = x^{(\ell)} + \alpha\, s^{(\ell)}\, F^{(\ell)}(x^{(\ell)})`. This module holds
the deterministic kernels (:func:`residual_forward`, :func:`residual_backward`), the drawing of the
weights for each initialization scheme (:func:`init_residual`, the only place that samples), the
variance recursion the chapter derives (:func:`predicted_variance`), the measurement over depths
(:func:`residual_depth_sweep`) and a short training comparison on the digits
(:func:`train_residual`, :func:`residual_training_comparison`).

The branch is pre-activation (He et al. 2016, identity mappings): with one layer
:math:`F(x) = \operatorname{relu}(x) W_1`; with two layers
:math:`F(x) = \operatorname{relu}(\operatorname{relu}(x) W_1) W_2`; with ``normalize=True`` the
branch ends in a per-sample normalization with gain :math:`\gamma`,
:math:`F(x) = \gamma\,\operatorname{norm}(\operatorname{relu}(\operatorname{relu}(x) W_1) W_2)`
(the place of the last batch normalization of a ResNet branch, whose :math:`\gamma` Goyal et al.
2017 set to zero).

Schemes (:data:`SCHEMES`): ``"plain"`` (He-normal branch layers, :math:`\alpha = 1`), ``"scaled"``
(:math:`\alpha = 1/\sqrt{L}`), ``"zero_last"`` (last branch layer zero; with ``normalize=True``
:math:`\gamma = 0`, Goyal et al. 2017), ``"skipinit"`` (a learnable scalar :math:`s^{(\ell)} = 0`,
De & Smith 2020), ``"fixup"`` (Zhang et al. 2019: branch layers before the last rescaled by
:math:`L^{-1/(2m-2)}`, last layer zero, scalar multiplier :math:`s^{(\ell)} = 1`, scalar biases 0).

Chapter: "Residual networks" (book/papers/residual.md).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from . import initializers as _init
from . import network as _net
from ._validation import RNGLike, as_generator, check_choice
from .data import DigitsSplit
from .seeds import SeedSummary, over_seeds, summarize
from .training import _single_threaded_blas, accuracy

__all__ = [
    "SCHEMES",
    "ResidualBackward",
    "ResidualForward",
    "ResidualNet",
    "ResidualTraining",
    "branch_gain",
    "growth_comparison",
    "growth_per_block",
    "init_residual",
    "predicted_variance",
    "residual_backward",
    "residual_depth_sweep",
    "residual_forward",
    "residual_training_comparison",
    "train_residual",
]

FloatArray = npt.NDArray[np.float64]

#: The initialization schemes :func:`init_residual` knows.
SCHEMES = ("plain", "scaled", "zero_last", "skipinit", "fixup")

_EPS = 1e-5


@dataclass
class ResidualNet:
    r"""The parameters of a residual MLP of ``depth`` blocks on a stream of width ``width``.

    Attributes
    ----------
    w1, w2 : list of ndarray, shape (width, width)
        Branch weights per block (``w2`` is empty for one-layer branches).
    gamma : ndarray, shape (depth,)
        Gain of the branch-final normalization (used only with ``normalize=True``).
    scale : ndarray, shape (depth,)
        Scalar branch multiplier :math:`s^{(\ell)}` (SkipInit / Fixup; 1 otherwise).
    bias : ndarray, shape (depth, 2)
        Fixup's scalar biases, added before each branch layer (0 at initialization).
    alpha : float
        Fixed branch scaling :math:`\alpha` (:math:`1/\sqrt{L}` for ``"scaled"``).
    normalize : bool
        Whether the branch ends in a normalization with gain :math:`\gamma`.
    w_in, w_out : ndarray or None
        Input and output layers for classification (:func:`train_residual`).
    scheme : str
    learn_scale : bool
        Whether :math:`s^{(\ell)}` is trained (SkipInit, Fixup).
    """

    w1: list[FloatArray]
    w2: list[FloatArray]
    gamma: FloatArray
    scale: FloatArray
    bias: FloatArray
    alpha: float
    normalize: bool
    scheme: str
    learn_scale: bool = False
    w_in: FloatArray | None = None
    w_out: FloatArray | None = None

    @property
    def depth(self) -> int:
        """Number of residual blocks :math:`L`."""
        return len(self.w1)

    @property
    def branch_layers(self) -> int:
        """Layers per branch :math:`m` (1 or 2)."""
        return 2 if self.w2 else 1


def _pos_int(value: int, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def init_residual(
    depth: int,
    width: int,
    *,
    scheme: str = "plain",
    branch_layers: int = 2,
    normalize: bool = False,
    n_in: int | None = None,
    n_out: int | None = None,
    rng: RNGLike,
) -> ResidualNet:
    r"""Draw a residual MLP's weights for one initialization scheme.

    Parameters
    ----------
    depth : int
        Number of residual blocks :math:`L \ge 1`.
    width : int
        Width of the stream and of the branches.
    scheme : {"plain", "scaled", "zero_last", "skipinit", "fixup"}
        See the module docstring.
    branch_layers : {1, 2}
        Layers per branch :math:`m`. Fixup needs :math:`m = 2` (its exponent
        :math:`-1/(2m-2)` is undefined for :math:`m = 1`).
    normalize : bool
        End each branch with a per-sample normalization and gain :math:`\gamma` (needs ``m = 2``).
    n_in, n_out : int, optional
        Add a He-normal input layer ``(n_in, width)`` and a zero-initialized output layer
        ``(width, n_out)`` for classification (Fixup also zero-initializes the classifier; we
        do it for every scheme so the schemes differ only in their blocks).
    rng : Generator, seed or None
        Keyword-only (SPEC 7).

    Returns
    -------
    ResidualNet

    Notes
    -----
    Branch layers are He normal, :math:`\operatorname{Var}(w) = 2/n`
    (:func:`course_lib.initializers.he_normal`), so each one keeps the second moment of a
    symmetric input (chapter "He"). Fixup multiplies every branch layer but the last by
    :math:`L^{-1/(2m-2)}` (:math:`L^{-1/2}` for :math:`m = 2`) and zeroes the last. Chapter:
    "Residual networks" (book/papers/residual.md).
    """
    L = _pos_int(depth, "depth")
    n = _pos_int(width, "width")
    check_choice(scheme, SCHEMES, name="scheme")
    if branch_layers not in (1, 2):
        raise ValueError(f"branch_layers must be 1 or 2, got {branch_layers!r}")
    if scheme == "fixup" and branch_layers != 2:
        raise ValueError(
            "fixup needs branch_layers=2: its rescaling L**(-1/(2m-2)) is undefined for m = 1"
        )
    if normalize and branch_layers != 2:
        raise ValueError("normalize=True needs branch_layers=2 (the norm follows the last layer)")
    if normalize and scheme == "fixup":
        raise ValueError("fixup is the normalization-free scheme; use normalize=False with it")
    gen = as_generator(rng)
    w_in = _init.he_normal((int(n_in), n), rng=gen) if n_in is not None else None
    w1: list[FloatArray] = []
    w2: list[FloatArray] = []
    fixup_mult = L ** (-1.0 / (2 * branch_layers - 2)) if scheme == "fixup" else 1.0
    for _ in range(L):
        first = _init.he_normal((n, n), rng=gen)
        if branch_layers == 1:
            w1.append(np.zeros((n, n)) if scheme == "zero_last" else first)
            continue
        second = _init.he_normal((n, n), rng=gen)
        w1.append(first * fixup_mult)
        zero_second = scheme == "fixup" or (scheme == "zero_last" and not normalize)
        w2.append(np.zeros((n, n)) if zero_second else second)
    gamma = np.full(L, 0.0 if (normalize and scheme == "zero_last") else 1.0)
    scale = np.full(L, 0.0 if scheme == "skipinit" else 1.0)
    w_out = np.zeros((n, int(n_out))) if n_out is not None else None
    return ResidualNet(
        w1=w1,
        w2=w2,
        gamma=gamma,
        scale=scale,
        bias=np.zeros((L, 2)),
        alpha=1.0 / math.sqrt(L) if scheme == "scaled" else 1.0,
        normalize=bool(normalize),
        scheme=scheme,
        learn_scale=scheme in ("skipinit", "fixup"),
        w_in=w_in,
        w_out=w_out,
    )


@dataclass
class ResidualForward:
    """What :func:`residual_forward` computed.

    Attributes
    ----------
    output : ndarray, shape (batch, width)
        The stream after the last block, divided by ``exp(log_scale)``.
    log_var : ndarray, shape (depth + 1,)
        Natural log of the stream's mean square :math:`q^{(\\ell)} = \\overline{(x^{(\\ell)})^2}`
        after each block (entry 0 is the input); in logs so that depth 1000 does not overflow.
    branch_log_var : ndarray, shape (depth,)
        Log mean square of each block's branch output :math:`\\alpha s^{(\\ell)} F^{(\\ell)}`.
    log_scale : float
        ``output * exp(log_scale)`` is the true stream (see Notes of :func:`residual_forward`).
    cache : list
        What :func:`residual_backward` needs (masks, normalized outputs); empty with
        ``keep_cache=False``.
    """

    output: FloatArray
    log_var: FloatArray
    branch_log_var: FloatArray
    log_scale: float
    cache: list[tuple[FloatArray, ...]] = field(default_factory=list)


def _branch(
    x: FloatArray, net: ResidualNet, l: int  # noqa: E741
) -> tuple[FloatArray, tuple[FloatArray, ...]]:
    """One branch output ``alpha * s_l * F_l(x)`` and what its backward pass needs."""
    b = net.bias[l]
    a0 = np.maximum(x + b[0], 0.0)
    h = a0 @ net.w1[l]
    if net.branch_layers == 1:
        return (net.alpha * net.scale[l]) * h, (a0, h)
    a1 = np.maximum(h + b[1], 0.0)
    o = a1 @ net.w2[l]
    if not net.normalize:
        return (net.alpha * net.scale[l]) * o, (a0, a1, o)
    mu = o.mean(axis=1, keepdims=True)
    s = np.sqrt(o.var(axis=1, keepdims=True) + _EPS)
    u = (o - mu) / s
    return (net.alpha * net.scale[l] * net.gamma[l]) * u, (a0, a1, u, s)


def _ms(x: FloatArray) -> float:
    """Mean square (one BLAS dot product: cheaper than ``np.mean(x * x)`` per block)."""
    flat = x.reshape(-1)
    return float(flat @ flat) / max(flat.size, 1)


def _log_ms(x: FloatArray) -> float:
    ms = _ms(x)
    return math.log(ms) if ms > 0 else -math.inf


def residual_forward(
    X: npt.ArrayLike, net: ResidualNet, *, keep_cache: bool = True
) -> ResidualForward:
    r"""Forward pass through the residual blocks, with the stream's mean square per block.

    Parameters
    ----------
    X : array_like, shape (batch, width)
        Input to the first block (the stream :math:`x^{(0)}`).
    net : ResidualNet
        From :func:`init_residual`.
    keep_cache : bool
        Keep what :func:`residual_backward` needs (memory: about two ``batch x width`` arrays
        per block).

    Returns
    -------
    ResidualForward

    Notes
    -----
    Block :math:`\ell` computes
    :math:`x^{(\ell+1)} = x^{(\ell)} + \alpha s^{(\ell)} F^{(\ell)}(x^{(\ell)})`. Over the draw of
    the branch weights (zero mean, independent of :math:`x^{(\ell)}`) the cross term vanishes, so

    .. math::

        \mathbb{E}\,\lVert x^{(\ell+1)}\rVert^2 = \mathbb{E}\,\lVert x^{(\ell)}\rVert^2
            + \alpha^2 (s^{(\ell)})^2\, \mathbb{E}\,\lVert F^{(\ell)}(x^{(\ell)})\rVert^2 .

    For a He branch, :math:`\mathbb{E}[\lVert F(x)\rVert^2 \mid x] = 2\lVert
    \operatorname{relu}(x)\rVert^2 \approx \lVert x\rVert^2` (:func:`branch_gain`), hence
    :math:`q^{(L)} = (1 + \alpha^2)^L q^{(0)}` (:func:`predicted_variance`). Without normalization
    the blocks are positively homogeneous, :math:`F(cx) = cF(x)` for :math:`c > 0`, so the stream is
    divided by its root mean square after each block and the logarithm of that factor is carried
    in ``log_scale``: depth 1000 with :math:`q^{(L)} \approx 2^{1000} q^{(0)}` does not overflow and
    the normalized pass is exactly the true one rescaled. Deterministic; no randomness inside.
    Chapter: "Residual networks" (book/papers/residual.md).
    """
    x = np.array(X, dtype=np.float64)
    width = net.w1[0].shape[0]
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(
            f"X must have shape (batch, {width}) for a stream of width {width}, got {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("X contains non-finite values")
    homogeneous = not net.normalize and not np.any(net.bias)
    log_var = [_log_ms(x)]
    branch_lv: list[float] = []
    cache: list[tuple[FloatArray, ...]] = []
    log_scale = 0.0
    for l in range(net.depth):  # noqa: E741
        f, c = _branch(x, net, l)
        x = x + f
        branch_lv.append(_log_ms(f) + 2 * log_scale)
        ms_x = _ms(x)
        log_var.append((math.log(ms_x) if ms_x > 0 else -math.inf) + 2 * log_scale)
        if keep_cache:
            cache.append((*c, np.array(log_scale)))
        if homogeneous:
            rms = math.sqrt(ms_x)
            if rms > 0:
                x = x / rms
                log_scale += math.log(rms)
    return ResidualForward(
        output=x,
        log_var=np.asarray(log_var),
        branch_log_var=np.asarray(branch_lv),
        log_scale=log_scale,
        cache=cache,
    )


@dataclass
class ResidualBackward:
    """What :func:`residual_backward` computed.

    Attributes
    ----------
    grad_input : ndarray, shape (batch, width)
        :math:`\\partial\\mathcal L / \\partial x^{(0)}` divided by ``exp(log_scale)``.
    log_grad_var : ndarray, shape (depth + 1,)
        Log mean square of :math:`\\delta^{(\\ell)} = \\partial\\mathcal L/\\partial x^{(\\ell)}`,
        entry ``l`` for the input of block ``l`` (entry ``depth`` is the given output gradient).
    log_scale : float
    w1_grads, w2_grads : list of ndarray
        Gradients of the branch weights (true scale), for :func:`train_residual`.
    scale_grads : ndarray, shape (depth,)
        Gradients of the scalar multipliers :math:`s^{(\\ell)}`.
    bias_grads : ndarray, shape (depth, 2)
        Gradients of Fixup's scalar biases.
    """

    grad_input: FloatArray
    log_grad_var: FloatArray
    log_scale: float
    w1_grads: list[FloatArray]
    w2_grads: list[FloatArray]
    scale_grads: FloatArray
    bias_grads: FloatArray


def residual_backward(
    fp: ResidualForward, net: ResidualNet, grad_output: npt.ArrayLike, *,
    weight_grads: bool = True,
) -> ResidualBackward:
    r"""Back-propagate ``grad_output``, :math:`\partial\mathcal L/\partial x^{(L)}`, to the input.

    Parameters
    ----------
    fp : ResidualForward
        From :func:`residual_forward` with ``keep_cache=True`` on the same ``net``.
    net : ResidualNet
    grad_output : array_like, shape (batch, width)
    weight_grads : bool
        Also compute the parameters' gradients (``False`` leaves them empty/zero: the stream's
        gradient statistics cost three fewer products per block).

    Returns
    -------
    ResidualBackward

    Notes
    -----
    :math:`\delta^{(\ell)} = \delta^{(\ell+1)} + \alpha s^{(\ell)} J^\top \delta^{(\ell+1)}`, with
    :math:`J` the Jacobian of :math:`F^{(\ell)}` at :math:`x^{(\ell)}`. For a He branch the
    transposed Jacobian multiplies the mean square of a gradient independent of the weights by
    :math:`n\operatorname{Var}(w)/2 = 1` per layer on average, so

    .. math::

        \mathbb{E}\,\lVert \delta^{(\ell)}\rVert^2 = (1 + \alpha^2)\,\mathbb{E}\,\lVert
        \delta^{(\ell+1)}\rVert^2 ,

    the same factor as the forward pass, now from the output down. The pass is linear in
    :math:`\delta`, so it is rescaled to unit mean square after each block (the log of the factor
    is carried); weight gradients are returned at their true scale when that is finite.
    Deterministic. Chapter: "Residual networks" (book/papers/residual.md).
    """
    if not fp.cache or len(fp.cache) != net.depth:
        raise ValueError(
            "fp has no cache for this net: run residual_forward(X, net, keep_cache=True) first"
        )
    g = np.array(grad_output, dtype=np.float64)
    if g.shape != fp.output.shape:
        raise ValueError(
            f"grad_output must have the output's shape {fp.output.shape}, got {g.shape}"
        )
    L = net.depth
    log_g = [0.0] * (L + 1)
    log_g[L] = _log_ms(g)
    g_scale = 0.0
    w1g: list[FloatArray] = [np.empty(0)] * L
    w2g: list[FloatArray] = [np.empty(0)] * L
    sg = np.zeros(L)
    bg = np.zeros((L, 2))
    for l in range(L - 1, -1, -1):  # noqa: E741
        c = fp.cache[l]
        x_scale = float(c[-1])
        # the cached activations are those of the stream divided by exp(x_scale); the branch
        # is homogeneous whenever that scale is nonzero, so F and its weight gradients follow
        true = math.exp(x_scale + g_scale) if x_scale + g_scale < 700 else math.inf
        a0 = c[0]
        coef = net.alpha * net.scale[l]
        if net.branch_layers == 1:
            h = c[1]
            dh = coef * g
            if weight_grads:
                w1g[l] = (a0.T @ dh) * true
            sg[l] = float(np.sum(g * h)) * net.alpha * true
            da0 = dh @ net.w1[l].T
        else:
            a1 = c[1]
            if net.normalize:
                u, s = c[2], c[3]
                sg[l] = float(np.sum(g * u)) * net.alpha * net.gamma[l] * true
                du = coef * net.gamma[l] * g
                do = (du - du.mean(axis=1, keepdims=True)
                      - u * (du * u).mean(axis=1, keepdims=True)) / s
            else:
                o = c[2]
                sg[l] = float(np.sum(g * o)) * net.alpha * true
                do = coef * g
            if weight_grads:
                w2g[l] = (a1.T @ do) * true
            da1 = (do @ net.w2[l].T) * (a1 > 0)
            bg[l, 1] = float(np.sum(da1)) * math.exp(g_scale)
            if weight_grads:
                w1g[l] = (a0.T @ da1) * true
            da0 = da1 @ net.w1[l].T
        da0 = da0 * (a0 > 0)
        bg[l, 0] = float(np.sum(da0)) * math.exp(g_scale)
        g = g + da0
        ms_g = _ms(g)
        log_g[l] = (math.log(ms_g) if ms_g > 0 else -math.inf) + 2 * g_scale
        rms = math.sqrt(ms_g)
        if rms > 0:
            g = g / rms
            g_scale += math.log(rms)
    return ResidualBackward(
        grad_input=g,
        log_grad_var=np.asarray(log_g),
        log_scale=g_scale,
        w1_grads=w1g,
        w2_grads=w2g,
        scale_grads=sg,
        bias_grads=bg,
    )


def branch_gain(branch_layers: int = 2, *, normalize: bool = False) -> float:
    r"""The factor :math:`c` in :math:`\mathbb{E}\lVert F(x)\rVert^2 = c\,\lVert x\rVert^2` for He.

    Notes
    -----
    Conditionally on :math:`x`, :math:`h = \operatorname{relu}(x) W_1` has independent
    zero-mean Gaussian entries of variance :math:`\operatorname{Var}(w)\lVert
    \operatorname{relu}(x)\rVert^2`, so over :math:`W_1`

    .. math::

        \mathbb{E}\lVert h\rVert^2 = n \cdot \tfrac{2}{n}\, \lVert\operatorname{relu}(x)\rVert^2,
        \qquad \mathbb{E}\lVert \operatorname{relu}(h)\rVert^2 = \tfrac12 \mathbb{E}\lVert h
        \rVert^2 ,

    and each further He layer after a ReLU keeps the mean square. With
    :math:`\lVert\operatorname{relu}(x)\rVert^2 \approx \lVert x\rVert^2/2` for a symmetric
    stream, :math:`c = 1` for one or two layers. With the branch-final normalization the
    branch's mean square is :math:`\gamma^2` per unit whatever :math:`x` is, and this function
    returns ``nan`` (no multiplicative gain: the growth is additive, see
    :func:`predicted_variance`). Chapter: "Residual networks" (book/papers/residual.md).
    """
    if branch_layers not in (1, 2):
        raise ValueError(f"branch_layers must be 1 or 2, got {branch_layers!r}")
    return math.nan if normalize else 1.0


def predicted_variance(
    depth: int,
    *,
    scheme: str = "plain",
    normalize: bool = False,
    q0: float = 1.0,
) -> FloatArray:
    r"""The stream's mean square :math:`q^{(\ell)}`, :math:`\ell = 0..L`, predicted for a scheme.

    Parameters
    ----------
    depth : int
        :math:`L`.
    scheme : str
        One of :data:`SCHEMES`.
    normalize : bool
        Branch-final normalization (gain :math:`\gamma = 1`, or 0 for ``"zero_last"``).
    q0 : float
        Mean square of the input.

    Returns
    -------
    ndarray, shape (depth + 1,)

    Notes
    -----
    From :math:`q^{(\ell+1)} = q^{(\ell)} + \alpha^2 s^2 \,\overline{F^2}`:

    - He branches, no normalization: :math:`\overline{F^2} = c\,q^{(\ell)}` with :math:`c = 1`, so
      :math:`q^{(\ell)} = (1 + \alpha^2)^\ell q^{(0)}`: :math:`2^\ell q^{(0)}` for ``"plain"`` and
      :math:`(1 + 1/L)^\ell q^{(0)} \le e\, q^{(0)}` for ``"scaled"``.
    - Branch-final normalization: :math:`\overline{F^2} = \gamma^2`, so
      :math:`q^{(\ell)} = q^{(0)} + \ell\,\alpha^2\gamma^2`, linear in depth.
    - ``"zero_last"``, ``"skipinit"``, ``"fixup"``: the branch is zero at initialization and
      :math:`q^{(\ell)} = q^{(0)}`.

    Chapter: "Residual networks" (book/papers/residual.md).
    """
    L = _pos_int(depth, "depth")
    check_choice(scheme, SCHEMES, name="scheme")
    if not (math.isfinite(q0) and q0 > 0):
        raise ValueError(f"q0 must be a finite positive number, got {q0!r}")
    l = np.arange(L + 1, dtype=np.float64)  # noqa: E741
    alpha2 = 1.0 / L if scheme == "scaled" else 1.0
    if scheme in ("zero_last", "skipinit", "fixup"):
        return np.full(L + 1, float(q0))
    if normalize:
        return q0 + l * alpha2
    return q0 * (1.0 + alpha2) ** l


def residual_depth_sweep(
    depths: Sequence[int],
    schemes: Sequence[str],
    *,
    width: int = 64,
    batch: int = 64,
    branch_layers: int = 2,
    normalize: bool = False,
    rng: RNGLike,
) -> dict[tuple[str, int], tuple[float, float]]:
    r"""Measure the forward and backward growth of residual MLPs of several depths.

    For every scheme and depth, draws one network and a standard-normal input and output
    gradient (all from ``rng``), and returns
    the pair :math:`\log_2 (q^{(L)}/q^{(0)})`,
    :math:`\log_2 (\overline{(\delta^{(0)})^2}/\overline{(\delta^{(L)})^2})`: how many factors of
    two the forward mean square and the gradient's mean square grew through the stack.

    Notes
    -----
    The prediction for He branches without normalization is :math:`L\log_2(1 + \alpha^2)` for
    both, i.e. :math:`L` for ``"plain"`` and :math:`L\log_2(1 + 1/L) \le \log_2 e` for
    ``"scaled"`` (:func:`predicted_variance`). Chapter: "Residual networks"
    (book/papers/residual.md).
    """
    gen = as_generator(rng)
    out: dict[tuple[str, int], tuple[float, float]] = {}
    for scheme in schemes:
        for depth in depths:
            net = init_residual(
                depth, width, scheme=scheme, branch_layers=branch_layers, normalize=normalize,
                rng=gen,
            )
            X = gen.standard_normal((batch, width))
            G = gen.standard_normal((batch, width))
            fp = residual_forward(X, net)
            bp = residual_backward(fp, net, G, weight_grads=False)
            ln2 = math.log(2.0)
            out[scheme, int(depth)] = (
                float((fp.log_var[-1] - fp.log_var[0]) / ln2),
                float((bp.log_grad_var[0] - bp.log_grad_var[-1]) / ln2),
            )
    return out


def growth_comparison(
    depths: Sequence[int] = (10, 100, 1000),
    *,
    zero_depth: int = 100,
    width: int = 64,
    batch: int = 32,
    rng: RNGLike,
) -> dict[tuple[str, int], tuple[float, float]]:
    r"""The chapter's comparison of schemes: forward and backward growth in factors of two.

    Keys are ``(name, depth)`` with ``name`` in ``"plain"``, ``"scaled"`` (at every depth of
    ``depths``), ``"normalized"`` (plain He branches ending in a normalization, :math:`\gamma = 1`)
    and, at ``zero_depth`` only (they are exactly the identity, whatever the depth),
    ``"zero_last"``, ``"skipinit"``, ``"fixup"`` and ``"zero_gamma"``; values are the pair of
    :func:`residual_depth_sweep`. All draws come from ``rng``.

    Notes
    -----
    Predictions: :math:`L` for ``"plain"``, :math:`L\log_2(1+1/L) \le \log_2 e` for
    ``"scaled"``, :math:`\log_2(1 + L)` for ``"normalized"`` and 0 for the zero-initialized
    schemes (:func:`predicted_variance`). Chapter: "Residual networks" (book/papers/residual.md).
    """
    gen = as_generator(rng)
    def sweep(ds: Sequence[int], schemes: Sequence[str], normalize: bool = False) -> dict[
        tuple[str, int], tuple[float, float]
    ]:
        return residual_depth_sweep(
            ds, schemes, width=width, batch=batch, normalize=normalize, rng=gen
        )

    plain = sweep(depths, ("plain", "scaled"))
    normed = sweep(depths, ("plain",), normalize=True)
    zero = sweep((zero_depth,), ("zero_last", "skipinit", "fixup"))
    zero_gamma = sweep((zero_depth,), ("zero_last",), normalize=True)
    out = {(s, int(d)): plain[s, int(d)] for s in ("plain", "scaled") for d in depths}
    out |= {("normalized", int(d)): normed["plain", int(d)] for d in depths}
    out |= {(s, int(zero_depth)): zero[s, int(zero_depth)] for s in ("zero_last", "skipinit",
                                                                      "fixup")}
    out["zero_gamma", int(zero_depth)] = zero_gamma["zero_last", int(zero_depth)]
    return out


def growth_per_block(
    widths: Sequence[int], *, depth: int = 30, batch: int = 32, rng: RNGLike
) -> list[float]:
    r"""Measured forward growth of a plain He residual stack, in factors of two per block.

    One network per width (a child of ``rng`` each); returns
    :math:`\log_2(q^{(L)}/q^{(0)})/L` for each width.

    Notes
    -----
    The mean of the per-block factor :math:`q^{(\ell+1)}/q^{(\ell)}` is 2 at any width
    (:func:`predicted_variance`), but its logarithm averages to less than :math:`\log_2 2 = 1`
    (Jensen's inequality), by about half the factor's relative variance, which is of order
    :math:`1/n`: narrow stacks fall further short of one factor of two per block. Chapter:
    "Residual networks" (book/papers/residual.md).
    """
    children = as_generator(rng).spawn(len(widths))
    return [
        residual_depth_sweep((depth,), ("plain",), width=int(w), batch=batch, rng=c)[
            "plain", int(depth)
        ][0] / depth
        for w, c in zip(widths, children, strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# Training on the digits
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResidualTraining:
    """One training run of :func:`train_residual`.

    Attributes
    ----------
    train_loss : ndarray, shape (epochs + 1,)
        Mean cross-entropy on the training set after each epoch (entry 0: at initialization);
        ``inf`` from the epoch the run diverged.
    test_acc : ndarray, shape (epochs + 1,)
        Test accuracy after each epoch (chance, 0.1, once diverged).
    diverged : bool
    seconds : float
    """

    train_loss: FloatArray
    test_acc: FloatArray
    diverged: bool
    seconds: float


def _classify(X: FloatArray, net: ResidualNet, keep_cache: bool) -> tuple[FloatArray, FloatArray,
                                                                           ResidualForward]:
    assert net.w_in is not None and net.w_out is not None
    x0 = X @ net.w_in
    fp = residual_forward(x0, net, keep_cache=keep_cache)
    xL = fp.output * math.exp(fp.log_scale) if fp.log_scale < 700 else fp.output * math.inf
    return x0, xL @ net.w_out, fp


def train_residual(
    data: DigitsSplit,
    *,
    depth: int,
    width: int = 32,
    scheme: str = "plain",
    normalize: bool = False,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 0.02,
    momentum: float = 0.9,
    rng: RNGLike,
) -> ResidualTraining:
    r"""Train a residual MLP classifier on the digits with SGD with momentum.

    The network is ``X @ w_in`` (He normal), ``depth`` two-layer residual blocks of
    :func:`init_residual`'s ``scheme``, then a linear classifier (zero at initialization for
    every scheme). The loss and its gradient are :func:`course_lib.network.softmax_cross_entropy`
    and the accuracy is :func:`course_lib.training.accuracy`, as in
    :func:`course_lib.training.train_mlp`.

    Notes
    -----
    Classical momentum :math:`v \leftarrow \mu v - \eta g`, :math:`w \leftarrow w + v` (the rule
    of :func:`course_lib.training.train_mlp`) on every weight, on SkipInit's and Fixup's scalar
    multipliers and on Fixup's scalar biases. A non-finite loss stops the run (``diverged``).
    ``rng`` is split into the weights' and the mini-batch order's streams. Chapter: "Residual
    networks" (book/papers/residual.md).
    """
    start = time.perf_counter()
    init_gen, order_gen = as_generator(rng).spawn(2)
    n_classes = int(max(data.y_train.max(), data.y_test.max())) + 1
    net = init_residual(
        depth, width, scheme=scheme, normalize=normalize, n_in=data.X_train.shape[1],
        n_out=n_classes, rng=init_gen,
    )
    params: list[FloatArray] = [net.w_in, *net.w1, *net.w2, net.w_out]  # type: ignore[list-item]
    if net.learn_scale:
        params += [net.scale]
    if scheme == "fixup":
        params += [net.bias]
    vel = [np.zeros_like(p) for p in params]
    mu, eta = float(momentum), float(lr)
    losses: list[float] = []
    accs: list[float] = []
    diverged = False

    def evaluate() -> None:
        if not all(np.all(np.isfinite(p)) for p in params):
            losses.append(math.inf)
            accs.append(0.1)
            return
        with np.errstate(all="ignore"):
            _, logits, _ = _classify(data.X_train, net, False)
            loss = _net.cross_entropy(logits, data.y_train) if np.all(np.isfinite(logits)) \
                else math.inf
            _, test_logits, _ = _classify(data.X_test, net, False)
        losses.append(loss)
        finite = np.all(np.isfinite(test_logits))
        accs.append(accuracy(test_logits, data.y_test) if finite else 0.1)

    with _single_threaded_blas():
        evaluate()
        n = data.X_train.shape[0]
        for _ in range(_pos_int(epochs, "epochs", 0)):
            if not math.isfinite(losses[-1]):
                diverged = True
                break
            order = order_gen.permutation(n)
            with np.errstate(all="ignore"):
                for s in range(0, n, batch_size):
                    idx = order[s : s + batch_size]
                    Xb = data.X_train[idx]
                    _, logits, fp = _classify(Xb, net, True)
                    if not np.all(np.isfinite(logits)):
                        break
                    _, g_logits = _net.softmax_cross_entropy(logits, data.y_train[idx])
                    xL = fp.output * math.exp(fp.log_scale)
                    g_out = net.w_out.T  # type: ignore[union-attr]
                    bp = residual_backward(fp, net, g_logits @ g_out)
                    g_x0 = bp.grad_input * math.exp(bp.log_scale)
                    grads: list[FloatArray] = [Xb.T @ g_x0, *bp.w1_grads, *bp.w2_grads,
                                               xL.T @ g_logits]
                    if net.learn_scale:
                        grads.append(bp.scale_grads)
                    if scheme == "fixup":
                        grads.append(bp.bias_grads)
                    for p, v, gr in zip(params, vel, grads, strict=True):
                        v *= mu
                        v -= eta * gr
                        p += v
            evaluate()
    if not math.isfinite(losses[-1]):
        diverged = True
    n_pad = _pos_int(epochs, "epochs", 0) + 1 - len(losses)
    return ResidualTraining(
        train_loss=np.asarray(losses + [math.inf] * n_pad),
        test_acc=np.asarray(accs + [0.1] * n_pad),
        diverged=diverged,
        seconds=time.perf_counter() - start,
    )


def residual_training_comparison(
    data: DigitsSplit,
    schemes: Sequence[str],
    *,
    depth: int,
    n_seeds: int = 5,
    rng: RNGLike,
    **kwargs: float | int | bool,
) -> dict[str, tuple[list[ResidualTraining], SeedSummary]]:
    """Train every scheme over ``n_seeds`` seeds; summarize the final test accuracy.

    Each scheme gets the same children of ``rng`` (``course_lib.seeds.over_seeds``), so
    seed ``i`` of every scheme sees the same data order. Returns, per scheme, the runs and the
    ``course_lib.seeds.SeedSummary`` of their final test accuracies. Chapter: "Residual
    networks" (book/papers/residual.md).
    """
    def one_seed(g: np.random.Generator) -> dict[str, ResidualTraining]:
        # every scheme starts from an identical copy of this seed's generator
        return {
            s: train_residual(data, depth=depth, scheme=s, rng=copy.deepcopy(g), **kwargs)  # type: ignore[arg-type]
            for s in schemes
        }

    per_seed = over_seeds(one_seed, n_seeds=n_seeds, rng=rng)
    out: dict[str, tuple[list[ResidualTraining], SeedSummary]] = {}
    for scheme in schemes:
        runs = [r[scheme] for r in per_seed]
        out[scheme] = (runs, summarize([r.test_acc[-1] for r in runs]))
    return out
