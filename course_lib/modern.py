"""What came after He: LSUV, SELU self-normalization, batch normalization at initialization, and
orthogonal initialization's dynamical isometry.

Deterministic kernels (``selu_mapping``, ``selu_fixed_point``, ``batchnorm_forward_stds``,
``input_output_jacobian``, ``jacobian_singular_values``) are kept apart from the sampling routines
(``lsuv`` and the chapter experiments ``isometry_spectra``, ``lsuv_comparison``,
``selu_depth_profile``, ``batchnorm_scale_sensitivity``, at the end), which take a keyword-only
``rng`` (SPEC 7); the chapters run them over several seeds with ``course_lib.seeds.over_seeds``.

Used by the chapter "After He: orthogonal, LSUV, SELU and normalization" (book/papers/beyond.md).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._validation import RNGLike, as_generator, check_choice, check_positive
from .network import SELU_ALPHA_NET, SELU_LAMBDA_NET, activate, activation_derivative

__all__ = [
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "LSUVResult",
    "activation_second_moment",
    "batchnorm_forward_stds",
    "batchnorm_scale_sensitivity",
    "input_output_jacobian",
    "isometry_spectra",
    "jacobian_singular_values",
    "lsuv",
    "lsuv_comparison",
    "selu_depth_profile",
    "selu_fixed_point",
    "selu_fixed_point_iteration",
    "selu_mapping",
]

FloatArray = npt.NDArray[np.float64]

SELU_ALPHA = SELU_ALPHA_NET
"""SELU's alpha (Klambauer et al. 2017), chosen with ``SELU_LAMBDA`` so (0, 1) is a fixed point."""
SELU_LAMBDA = SELU_LAMBDA_NET
"""SELU's scale lambda (Klambauer et al. 2017)."""

_ACTIVATIONS = ("linear", "tanh", "relu", "selu", "sigmoid", "leaky_relu")


def _act(z: FloatArray, name: str) -> FloatArray:
    """The activation, from :mod:`course_lib.network` (one implementation for the whole library)."""
    return np.asarray(activate(z, name), dtype=np.float64)


def _act_grad(z: FloatArray, name: str) -> FloatArray:
    """The activation's derivative, from :mod:`course_lib.network`."""
    return np.asarray(activation_derivative(z, name), dtype=np.float64)


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def selu_mapping(
    mu: float, nu: float, *, omega: float = 0.0, tau: float = 1.0
) -> tuple[float, float]:
    r"""Mean and variance of SELU's output for Gaussian pre-activations (Klambauer et al. 2017).

    If a layer's inputs have mean ``mu`` and variance ``nu`` and its weights satisfy
    :math:`\sum_i w_i = \omega` and :math:`\sum_i w_i^2 = \tau`, the pre-activation is taken as
    :math:`z \sim \mathcal{N}(\mu\omega, \nu\tau)` and the function returns
    :math:`(\mathbb{E}[\mathrm{selu}(z)], \operatorname{Var}[\mathrm{selu}(z)])` in closed form.

    Notes
    -----
    With :math:`m = \mu\omega`, :math:`s = \sqrt{\nu\tau}` and :math:`\lambda, \alpha` SELU's
    constants,

    .. math::

        \mathbb{E}[\mathrm{selu}(z)] = \lambda\Big(m\,\Phi(m/s) + s\,\varphi(m/s)
            + \alpha\big(e^{m + s^2/2}\,\Phi(-m/s - s) - \Phi(-m/s)\big)\Big)

    and the second moment follows the same way with :math:`e^{2m + 2s^2}\Phi(-m/s - 2s)`. LeCun
    normal weights (:math:`\omega = 0`, :math:`\tau = n \cdot 1/n = 1`) make :math:`(0, 1)` a
    fixed point: that is what "self-normalizing" means. Chapter: book/papers/beyond.md.
    """
    check_positive(nu, name="nu")
    check_positive(tau, name="tau")
    lam, alpha = SELU_LAMBDA, SELU_ALPHA
    m = mu * omega
    s = math.sqrt(nu * tau)
    r = m / s
    # Positive part: E[z 1{z>0}] and E[z^2 1{z>0}].
    e_pos = m * _Phi(r) + s * _phi(r)
    e2_pos = (m * m + s * s) * _Phi(r) + m * s * _phi(r)
    # Negative part: E[(e^z - 1) 1{z<=0}] and E[(e^z - 1)^2 1{z<=0}].
    e_exp = math.exp(m + 0.5 * s * s) * _Phi(-r - s)
    e_exp2 = math.exp(2.0 * m + 2.0 * s * s) * _Phi(-r - 2.0 * s)
    p_neg = _Phi(-r)
    e_neg = e_exp - p_neg
    e2_neg = e_exp2 - 2.0 * e_exp + p_neg
    mean = lam * (e_pos + alpha * e_neg)
    second = lam * lam * (e2_pos + alpha * alpha * e2_neg)
    return mean, second - mean * mean


def selu_fixed_point_iteration(
    mu: float, nu: float, *, steps: int, omega: float = 0.0, tau: float = 1.0
) -> FloatArray:
    """Iterate :func:`selu_mapping` from ``(mu, nu)``; return the ``(steps + 1, 2)`` trajectory.

    Notes
    -----
    The trajectory approaches the fixed point :math:`(0, 1)` for LeCun-normal weights, which is
    the layer-by-layer picture of a self-normalizing network. Chapter: book/papers/beyond.md.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    out = np.empty((steps + 1, 2))
    out[0] = (mu, nu)
    for k in range(steps):
        out[k + 1] = selu_mapping(float(out[k, 0]), float(out[k, 1]), omega=omega, tau=tau)
    return out


@dataclass(frozen=True)
class LSUVResult:
    """Weights after LSUV, with each layer's final output variance and the iterations it took."""

    weights: list[FloatArray]
    variances: FloatArray
    iterations: list[int]


def lsuv(
    layer_sizes: Sequence[int],
    X: npt.ArrayLike,
    activation: str,
    *,
    rng: RNGLike = None,
    initializer: Callable[..., FloatArray] | None = None,
    tol: float = 0.02,
    max_iter: int = 10,
) -> LSUVResult:
    r"""Layer-sequential unit-variance initialization (Mishkin & Matas 2016).

    Each weight matrix starts orthogonal (or from ``initializer(shape, rng=rng)``); then, layer by
    layer, a batch ``X`` is propagated and the layer's weights are divided by the standard
    deviation of its pre-activations until their variance is within ``tol`` of 1.

    Notes
    -----
    The update is :math:`W_l \leftarrow W_l / \sqrt{\operatorname{Var}(X_{l-1} W_l)}`, repeated
    until :math:`|\operatorname{Var}(X_{l-1}W_l) - 1| < \mathrm{tol}` (at most ``max_iter`` times).
    It needs no derivation for the activation at hand: the data does the work that
    :math:`2/n_\text{in}` does for ReLU analytically. Chapter: book/papers/beyond.md.

    Raises
    ------
    ValueError
        For an unknown activation, fewer than two layer sizes, a batch whose width is not
        ``layer_sizes[0]``, or non-positive ``tol``/``max_iter``.
    """
    check_choice(activation, _ACTIVATIONS, name="activation")
    check_positive(tol, name="tol")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    sizes = [int(s) for s in layer_sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"layer_sizes needs at least two positive sizes, got {list(layer_sizes)}")
    h = np.asarray(X, dtype=np.float64)
    if h.ndim != 2 or h.shape[1] != sizes[0]:
        raise ValueError(f"X must have shape (batch, {sizes[0]}), got {h.shape}")
    gen = as_generator(rng)
    if initializer is None:
        from .initializers import orthogonal

        initializer = orthogonal
    weights: list[FloatArray] = []
    variances = np.empty(len(sizes) - 1)
    iterations: list[int] = []
    for layer, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = np.asarray(initializer((n_in, n_out), rng=gen), dtype=np.float64)
        z = h @ w
        var = float(z.var())
        k = 0
        while abs(var - 1.0) >= tol and k < max_iter:
            if var <= 0.0:
                raise ValueError(f"layer {layer} has zero output variance; LSUV cannot rescale it")
            w = w / math.sqrt(var)
            z = h @ w
            var = float(z.var())
            k += 1
        weights.append(w)
        variances[layer] = var
        iterations.append(k)
        h = _act(z, activation)
    return LSUVResult(weights, variances, iterations)


def batchnorm_forward_stds(
    X: npt.ArrayLike,
    weights: Sequence[npt.ArrayLike],
    activation: str,
    *,
    normalize: bool = True,
    eps: float = 1e-5,
) -> FloatArray:
    r"""Per-layer standard deviation of the activations, with or without batch normalization.

    With ``normalize=True`` each layer's pre-activations are standardized over the batch (batch
    normalization at initialization, with :math:`\gamma = 1, \beta = 0`) before the activation.

    Notes
    -----
    :math:`\hat z_{bj} = (z_{bj} - \bar z_j)/\sqrt{s_j^2 + \epsilon}` makes every layer's input to
    the nonlinearity zero-mean, unit-variance whatever the scale of :math:`W`, which is why a
    batch-normalized network is far less sensitive to its initialization. Deterministic.
    Chapter: book/practice.md and book/papers/beyond.md.
    """
    check_choice(activation, _ACTIVATIONS, name="activation")
    h = np.asarray(X, dtype=np.float64)
    stds = np.empty(len(weights))
    for layer, w in enumerate(weights):
        wa = np.asarray(w, dtype=np.float64)
        if wa.ndim != 2 or wa.shape[0] != h.shape[1]:
            raise ValueError(f"weight {layer} has shape {wa.shape}, expected ({h.shape[1]}, ...)")
        z = h @ wa
        if normalize:
            z = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + eps)
        h = _act(z, activation)
        stds[layer] = h.std()
    return stds


def input_output_jacobian(
    x: npt.ArrayLike, weights: Sequence[npt.ArrayLike], activation: str
) -> FloatArray:
    r"""The network's input-output Jacobian :math:`\partial h_L / \partial x` at one input ``x``.

    Notes
    -----
    For :math:`h_l = \phi(h_{l-1} W_l)` (row vectors),
    :math:`J = W_1 D_1 W_2 D_2 \cdots W_L D_L` with :math:`D_l = \operatorname{diag}\phi'(z_l)`.
    Dynamical isometry (Saxe et al. 2014; Pennington et al. 2017) means all singular values of
    :math:`J` are close to 1. Deterministic. Chapter: book/papers/beyond.md.
    """
    check_choice(activation, _ACTIVATIONS, name="activation")
    h = np.asarray(x, dtype=np.float64).reshape(1, -1)
    jac = np.eye(h.shape[1])
    for layer, w in enumerate(weights):
        wa = np.asarray(w, dtype=np.float64)
        if wa.ndim != 2 or wa.shape[0] != h.shape[1]:
            raise ValueError(f"weight {layer} has shape {wa.shape}, expected ({h.shape[1]}, ...)")
        z = h @ wa
        jac = (jac @ wa) * _act_grad(z, activation)
        h = _act(z, activation)
    return jac


def jacobian_singular_values(
    x: npt.ArrayLike, weights: Sequence[npt.ArrayLike], activation: str
) -> FloatArray:
    """Singular values of :func:`input_output_jacobian`, largest first. Deterministic."""
    jac = input_output_jacobian(x, weights, activation)
    return np.asarray(np.linalg.svd(jac, compute_uv=False), dtype=np.float64)


def selu_fixed_point(
    *, tau: float = 1.0, omega: float = 0.0, mu: float = 0.0, nu: float = 1.0, steps: int = 500
) -> tuple[float, float]:
    r"""Where the exact SELU map settles: :func:`selu_fixed_point_iteration` run to convergence.

    Returns
    -------
    (mean, variance) : tuple of float
        The last point of ``steps`` iterations from ``(mu, nu)``.

    Raises
    ------
    ValueError
        If the last two points still differ by more than ``1e-9`` (no fixed point reached).

    Notes
    -----
    For :math:`\tau = 1` (LeCun) the fixed point is :math:`(0, 1)`; for :math:`\tau = 2` (He's
    :math:`\sum_i w_i^2`) the map still settles, far from it. Deterministic.
    Chapter: book/papers/beyond.md.
    """
    traj = selu_fixed_point_iteration(mu, nu, steps=steps, omega=omega, tau=tau)
    if not np.allclose(traj[-1], traj[-2], rtol=0.0, atol=1e-9):
        raise ValueError(
            f"the SELU map did not settle within {steps} steps (tau={tau}); raise steps"
        )
    return float(traj[-1, 0]), float(traj[-1, 1])


def _square_weights(
    maker: Callable[..., FloatArray], width: int, depth: int, gen: np.random.Generator
) -> list[FloatArray]:
    return [np.asarray(maker((width, width), rng=gen), dtype=np.float64) for _ in range(depth)]


def isometry_spectra(
    *, width: int = 128, depth: int = 50, rng: RNGLike
) -> dict[tuple[str, str], FloatArray]:
    r"""Singular values of the input-output Jacobian of orthogonal and Gaussian deep nets.

    Draws one input :math:`x \sim N(0, I)`, then ``depth`` orthogonal and ``depth`` LeCun-normal
    ``width x width`` matrices, and returns :func:`jacobian_singular_values` for each weight
    family (``"orthogonal"``, ``"Gaussian, Var 1/n"``) and activation (``"linear"``, ``"tanh"``).

    Notes
    -----
    A product of orthogonal matrices is orthogonal, so the linear orthogonal net is an exact
    isometry; Gaussian matrices keep the mean squared singular value at 1 but spread the
    spectrum with depth. Chapter: book/papers/beyond.md.
    """
    from . import initializers as _init

    gen = as_generator(rng)
    x0 = gen.standard_normal(int(width))
    families = {
        "orthogonal": _square_weights(_init.orthogonal, width, depth, gen),
        "Gaussian, Var 1/n": _square_weights(_init.lecun_normal, width, depth, gen),
    }
    return {
        (name, act): jacobian_singular_values(x0, ws, act)
        for name, ws in families.items()
        for act in ("linear", "tanh")
    }


def lsuv_comparison(
    X: npt.ArrayLike, layer_sizes: Sequence[int], activation: str, *, rng: RNGLike, tol: float
) -> tuple[LSUVResult, dict[str, FloatArray]]:
    r"""LSUV next to plain orthogonal (gain 1) and He-normal weights on the same batch.

    Returns
    -------
    (LSUVResult, dict label -> ndarray)
        :func:`lsuv` on ``X``, and each fixed scheme's per-layer pre-activation variance.

    Notes
    -----
    With ReLU, orthogonal weights of gain 1 halve the second moment per layer; He's
    :math:`2/n_\text{in}` keeps :math:`\operatorname{Var}(p_l) \approx 2` once the input has
    passed one ReLU. Chapter: book/papers/beyond.md.
    """
    from . import initializers as _init

    gen = as_generator(rng)
    res = lsuv(layer_sizes, X, activation, rng=gen, tol=tol)
    plain: dict[str, FloatArray] = {}
    makers: list[tuple[str, Callable[..., FloatArray]]] = [
        ("orthogonal", _init.orthogonal),
        ("He normal", _init.he_normal),
    ]
    for label, maker in makers:
        h, vs = np.asarray(X, dtype=np.float64), []
        for n_in, n_out in itertools.pairwise(layer_sizes):
            p = h @ maker((int(n_in), int(n_out)), rng=gen)
            vs.append(float(p.var()))
            h = _act(p, activation)
        plain[label] = np.array(vs)
    return res, plain


def selu_depth_profile(
    *, depth: int = 50, width: int = 256, n_samples: int = 1000, rng: RNGLike
) -> dict[str, tuple[FloatArray, FloatArray]]:
    r"""Mean and std of each layer's activations in a sampled deep SELU net, per initializer.

    Draws a batch :math:`X \sim N(0, 1)` of shape ``(n_samples, width)``, then for LeCun, He and
    Xavier normal weights (in that order) a ``depth``-layer square SELU net.

    Returns
    -------
    dict label -> (means, stds)
        Arrays of length ``depth``.

    Notes
    -----
    LeCun's :math:`\tau = \sum_i w_i^2 \approx 1` makes :math:`(0, 1)` the attracting fixed
    point of the SELU map; He's :math:`\tau \approx 2` moves it, and the per-unit sums
    :math:`\omega = \sum_i w_i` (std :math:`\sqrt 2`) couple the mean into the variance.
    Chapter: book/papers/beyond.md.
    """
    from . import initializers as _init

    gen = as_generator(rng)
    X0 = gen.standard_normal((int(n_samples), int(width)))
    out: dict[str, tuple[FloatArray, FloatArray]] = {}
    for label, maker in [
        ("LeCun normal", _init.lecun_normal),
        ("He normal", _init.he_normal),
        ("Xavier normal", _init.xavier_normal),
    ]:
        h, means, stds = X0, [], []
        for _ in range(int(depth)):
            h = _act(h @ maker((int(width), int(width)), rng=gen), "selu")
            means.append(float(h.mean()))
            stds.append(float(h.std()))
        out[label] = (np.array(means), np.array(stds))
    return out


def batchnorm_scale_sensitivity(
    *,
    factors: Sequence[float],
    depth: int = 20,
    width: int = 128,
    batch: int = 256,
    activation: str = "tanh",
    rng: RNGLike,
) -> tuple[FloatArray, FloatArray]:
    r"""Per-layer activation std of one deep net at several weight scales, without and with BN.

    Draws a batch :math:`X \sim N(0, 1)` of shape ``(batch, width)`` and ``depth`` Gaussian
    matrices with std :math:`1/\sqrt n` (LeCun) once; scale ``c`` multiplies all of them.

    Returns
    -------
    (plain, normalized) : ndarray, shape (len(factors), depth)
        :func:`batchnorm_forward_stds` without and with batch normalization.

    Notes
    -----
    :math:`\operatorname{BN}(x\,(cW)) = \operatorname{BN}(xW)` for :math:`c > 0` (up to
    :math:`\epsilon`), so the normalized rows agree for every ``c``. Chapter: book/practice.md.
    """
    from . import initializers as _init

    gen = as_generator(rng)
    X = gen.standard_normal((int(batch), int(width)))
    base = _square_weights(_init.lecun_normal, width, depth, gen)
    plain = np.array(
        [
            batchnorm_forward_stds(X, [c * w for w in base], activation, normalize=False)
            for c in factors
        ]
    )
    normed = np.array(
        [batchnorm_forward_stds(X, [c * w for w in base], activation) for c in factors]
    )
    return plain, normed


def activation_second_moment(activation: str, *, nodes: int = 101) -> float:
    r""":math:`\operatorname{E}[f(z)^2]` for :math:`z \sim N(0, 1)`, by Gauss-Hermite quadrature.

    Notes
    -----
    With probabilists' Hermite nodes :math:`x_k` and weights :math:`w_k`,
    :math:`\operatorname{E}[g(z)] \approx \sum_k w_k g(x_k) / \sqrt{2\pi}`, exact for polynomials of
    degree below :math:`2\cdot\text{nodes}`. The gain that restores unit variance after ``f`` for
    unit-variance pre-activations is :math:`1/\sqrt{\operatorname{E}[f(z)^2]}`: 1.593 for tanh,
    close to PyTorch's 5/3. Deterministic. Chapter: book/frameworks.md.
    """
    check_choice(activation, _ACTIVATIONS, name="activation")
    if nodes < 2:
        raise ValueError(f"nodes must be >= 2, got {nodes}")
    x, w = np.polynomial.hermite_e.hermegauss(int(nodes))
    return float(np.sum(w * _act(x, activation) ** 2) / math.sqrt(2 * math.pi))
