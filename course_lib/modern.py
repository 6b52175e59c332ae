"""What came after He: LSUV, SELU self-normalization, batch normalization at initialization, and
orthogonal initialization's dynamical isometry.

Deterministic kernels (``selu_mapping``, ``batchnorm_forward_stds``, ``input_output_jacobian``,
``jacobian_singular_values``) are kept apart from the one sampling routine (``lsuv``), which takes
a keyword-only ``rng`` (SPEC 7).

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
    "batchnorm_forward_stds",
    "input_output_jacobian",
    "jacobian_singular_values",
    "lsuv",
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
