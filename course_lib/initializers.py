r"""Weight initializers: fans, gains, ``variance_scaling`` and the named schemes.

Layout convention: a weight of shape ``(..., fan_in, fan_out)`` is used as ``x @ W``
(Keras/JAX/TensorFlow); a convolution kernel is ``(*kernel, in_channels, out_channels)``.
PyTorch's ``(out, in, *kernel)`` layout appears only in :func:`torch_fans` and
:func:`torch_linear_default`.

Every scheme is "choose a target variance :math:`v`, then a zero-mean family with that
variance":

* ``normal``: the untruncated :math:`N(0, v)`, i.e. :math:`\sigma = \sqrt{v}`;
* ``uniform``: :math:`U(-b, b)` with :math:`b = \sqrt{3v}`;
* ``truncated_normal``: :math:`N(0, \sigma'^2)` cut at :math:`\pm 2\sigma'` with
  :math:`\sigma' = \sqrt{v}/0.87962566103423978`, so that the variance after the cut is
  :math:`v` (Keras' convention).

All sampling goes through a :class:`numpy.random.Generator` passed as the keyword-only
``rng`` (SPEC 7); nothing here reads or advances the global ``np.random`` state. Draws use
the generator's native ``float32``/``float64`` support and are scaled in place, so an
initializer costs about as much as the bare NumPy call that draws the same numbers.

With ``dtype=np.float64`` the uniform, normal and truncated-normal samplers return exactly the
numbers Keras 3's NumPy backend returns for the same generator state (same stream order, same
scale arithmetic, same rejection order); ``tests/test_keras_conformance.py`` checks this bit
for bit. :func:`orthogonal` uses Keras' draws and sign convention too, but Keras factors in
float32, so the two agree to float32 rounding only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, overload

import numpy as np
import numpy.typing as npt

from ._validation import RNGLike, ShapeLike, as_generator, as_shape, check_choice, check_positive

__all__ = [
    "FAN_MODES",
    "INITIALIZERS",
    "NONLINEARITIES",
    "TRUNCATED_NORMAL_STD_FACTOR",
    "VARIANCE_SCALING_DISTRIBUTIONS",
    "Initializer",
    "calculate_gain",
    "compute_fans",
    "constant",
    "get_initializer",
    "glorot_normal",
    "glorot_truncated_normal",
    "glorot_uniform",
    "he_normal",
    "he_normal_truncated",
    "he_truncated_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_truncated_normal",
    "lecun_uniform",
    "normal",
    "orthogonal",
    "scheme_variance",
    "standard_uniform",
    "torch_fans",
    "torch_linear_default",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_truncated_normal",
    "xavier_uniform",
    "zeros",
]

TRUNCATED_NORMAL_STD_FACTOR = 0.87962566103423978
"""Standard deviation of :math:`N(0, 1)` restricted to :math:`[-2, 2]` (Keras' constant).

The truncated samplers divide the target standard deviation by it before cutting at
:math:`\\pm 2\\sigma'`, so the variance after truncation is the target.
"""

FAN_MODES: tuple[str, ...] = ("fan_in", "fan_out", "fan_avg")
"""Fan modes of :func:`variance_scaling`."""

VARIANCE_SCALING_DISTRIBUTIONS: tuple[str, ...] = (
    "normal",
    "uniform",
    "truncated_normal",
    "untruncated_normal",
)
"""Distributions of :func:`variance_scaling` (``"untruncated_normal"`` is Keras' name for
``"normal"``; note that Keras' own ``"normal"`` means *truncated*)."""

NONLINEARITIES: tuple[str, ...] = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
)
"""Names accepted by :func:`calculate_gain` (PyTorch's table)."""

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Draw normals/uniforms in blocks of this many entries so that scaling and the truncation
# test run on data still in cache (2**16 float64 = 512 KiB).
_BLOCK = 1 << 16

FloatArray = npt.NDArray[np.float64]
_F = TypeVar("_F", bound=np.floating[Any])


class Initializer(Protocol):
    """Anything that can be called as ``init(shape, rng=rng)`` and returns a float64 array."""

    def __call__(self, shape: ShapeLike, *, rng: RNGLike = None) -> FloatArray: ...


# --------------------------------------------------------------------------------------------
# deterministic helpers: fans, gains, dtype
# --------------------------------------------------------------------------------------------


def compute_fans(shape: ShapeLike) -> tuple[int, int]:
    r"""Fan-in and fan-out of a weight of shape ``(..., fan_in, fan_out)``.

    Parameters
    ----------
    shape : int or sequence of int
        A dense weight ``(in, out)`` or a convolution kernel ``(*kernel, in, out)``.

    Returns
    -------
    fan_in, fan_out : int
        For 2-D ``(in, out)``; for :math:`\geq 3` dimensions both are multiplied by the
        receptive-field size :math:`\prod \text{kernel}`.

    Raises
    ------
    ValueError
        For fewer than 2 dimensions (a bias or a scalar has no fans) or a negative dimension.

    Notes
    -----
    For a kernel :math:`(k_1, \dots, k_d, c_\text{in}, c_\text{out})`,
    :math:`\text{fan}_\text{in} = c_\text{in}\prod_j k_j` (the number of inputs one output unit
    sums) and :math:`\text{fan}_\text{out} = c_\text{out}\prod_j k_j`. This is Keras'
    ``compute_fans`` for 2 or more dimensions; Keras also accepts 0-D and 1-D shapes, this
    function refuses them. Introduced in book/lecun.md; convolution kernels in
    book/frameworks.md.

    Examples
    --------
    >>> compute_fans((784, 256))
    (784, 256)
    >>> compute_fans((3, 3, 64, 128))
    (576, 1152)
    """
    dims = as_shape(shape, min_ndim=2)
    receptive = math.prod(dims[:-2])
    return dims[-2] * receptive, dims[-1] * receptive


def torch_fans(shape: ShapeLike) -> tuple[int, int]:
    r"""Fan-in and fan-out for PyTorch's ``(out, in, *kernel)`` weight layout.

    Parameters
    ----------
    shape : int or sequence of int
        ``(out_features, in_features)`` for ``nn.Linear`` or ``(out, in, *kernel)`` for
        ``nn.Conv*d``.

    Returns
    -------
    fan_in, fan_out : int

    Raises
    ------
    ValueError
        For fewer than 2 dimensions or a negative dimension.

    Notes
    -----
    :math:`\text{fan}_\text{in} = \text{shape}[1]\prod\text{shape}[2:]`,
    :math:`\text{fan}_\text{out} = \text{shape}[0]\prod\text{shape}[2:]` (PyTorch's
    ``_calculate_fan_in_and_fan_out``). The same kernel stored as ``(kh, kw, in, out)`` has the
    same fans under :func:`compute_fans`. Chapter: book/frameworks.md.

    Examples
    --------
    >>> torch_fans((256, 784))
    (784, 256)
    >>> torch_fans((128, 64, 3, 3))
    (576, 1152)
    """
    dims = as_shape(shape, min_ndim=2)
    receptive = math.prod(dims[2:])
    return dims[1] * receptive, dims[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""PyTorch's recommended gain for a nonlinearity (``torch.nn.init.calculate_gain``).

    Parameters
    ----------
    nonlinearity : str
        One of :data:`NONLINEARITIES`.
    param : float, optional
        Negative slope of ``"leaky_relu"`` (default 0.01); ignored otherwise.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For an unknown nonlinearity (the message lists the allowed names) or a ``param`` that
        is not a real number (``bool`` is refused, as in PyTorch).

    Notes
    -----
    ==========================================  ===========================================
    nonlinearity                                gain
    ==========================================  ===========================================
    linear, conv*, conv_transpose*, sigmoid     :math:`1`
    tanh                                        :math:`5/3`
    relu                                        :math:`\sqrt{2}`
    leaky_relu                                  :math:`\sqrt{2/(1+a^2)}`, :math:`a` = slope
    selu                                        :math:`3/4`
    ==========================================  ===========================================

    The weight standard deviation is then :math:`\text{gain}/\sqrt{\text{fan}}`. Chapter:
    book/frameworks.md.
    """
    check_choice(nonlinearity, NONLINEARITIES, name="nonlinearity")
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4.0
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(
            param, (int, float, np.integer, np.floating)
        ):
            raise ValueError(f"negative_slope must be a real number, got {param!r}")
        else:
            slope = float(param)
            if not math.isfinite(slope):
                raise ValueError(f"negative_slope must be finite, got {param!r}")
        return math.sqrt(2.0 / (1.0 + slope**2))
    return 1.0


def _float_dtype(dtype: npt.DTypeLike) -> np.dtype[Any]:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dt not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _scaled_variance(shape: tuple[int, ...], scale: float, mode: str) -> float:
    # Same arithmetic as Keras' VarianceScaling, so the std is bit-identical:
    # scale / max(1, fan) with fan_avg = (fan_in + fan_out) / 2.
    fan_in, fan_out = compute_fans(shape)
    if mode == "fan_in":
        fan = float(fan_in)
    elif mode == "fan_out":
        fan = float(fan_out)
    else:
        fan = (fan_in + fan_out) / 2.0
    return scale / max(1.0, fan)


# --------------------------------------------------------------------------------------------
# sampling kernels (no validation; draw with the generator's native dtype, scale in place)
# --------------------------------------------------------------------------------------------


def _fill_normal(out: npt.NDArray[Any], std: float, gen: np.random.Generator) -> None:
    gen.standard_normal(out=out, dtype=out.dtype)
    out *= std


def _normal(
    shape: tuple[int, ...], dtype: np.dtype[Any], std: float, gen: np.random.Generator
) -> npt.NDArray[Any]:
    """N(0, std^2) draws. float64: one pass through ``Generator.normal`` (the numbers of
    ``std * standard_normal``, bit for bit, as Keras draws them); float32: native float32 draws
    scaled in place (NumPy's ``normal`` has no float32 form)."""
    if dtype == np.float64:
        return gen.normal(0.0, std, size=shape)
    out = _empty(shape, dtype)
    _fill_normal(out, std, gen)
    return out


def _uniform(
    shape: tuple[int, ...], dtype: np.dtype[Any], bound: float, gen: np.random.Generator
) -> npt.NDArray[Any]:
    # U(-b, b) = 2b * U[0, 1) - b. float64: Generator.uniform does exactly this in one C loop.
    # float32 (Generator.uniform has no dtype): draw float32 natively in cache-sized blocks and
    # apply the same affine map in place.
    if dtype == np.float64:
        return gen.uniform(-bound, bound, size=shape)
    out = np.empty(shape, dtype=dtype)
    width = bound - (-bound)
    flat = out.reshape(-1)
    for start in range(0, flat.size, _BLOCK):
        block = flat[start : start + _BLOCK]
        gen.random(out=block, dtype=dtype)
        block *= width
        block -= bound
    return out


def _fill_truncated_normal(out: npt.NDArray[Any], std: float, gen: np.random.Generator) -> None:
    # Vectorized rejection, block by block: draw z ~ N(0, 1) into the unfilled tail, keep the
    # draws with |z| <= 2, write std * z of the kept ones (in draw order) to the front of the
    # tail, and draw again only as many as were rejected. Testing |z| <= 2 before scaling is
    # exactly the test |fl(std * z)| <= 2 std: rounding is monotone, and the next float above
    # 2 already lands a full ulp above 2 std. Keeping the accepted draws in stream order makes
    # float64 output equal to Keras' NumPy backend (which filters whole batches and appends).
    flat = out.reshape(-1)
    filled = 0
    n = flat.size
    while filled < n:
        tail = flat[filled : filled + _BLOCK]
        gen.standard_normal(out=tail, dtype=out.dtype)
        keep = np.abs(tail) <= 2.0
        k = int(np.count_nonzero(keep))
        if k < tail.size:
            np.multiply(tail[keep], std, out=tail[:k])
        else:
            tail *= std
        filled += k


def _empty(shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    return np.empty(shape, dtype=dtype)


# --------------------------------------------------------------------------------------------
# distributions with explicit parameters
# --------------------------------------------------------------------------------------------


@overload
def normal(shape: ShapeLike, std: float, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def normal(
    shape: ShapeLike, std: float, *, rng: RNGLike = None, dtype: type[_F]
) -> npt.NDArray[_F]: ...
@overload
def normal(
    shape: ShapeLike, std: float, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def normal(
    shape: ShapeLike, std: float, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""Untruncated :math:`N(0, \text{std}^2)` samples.

    Parameters
    ----------
    shape : int or sequence of int
        Output shape (any number of dimensions).
    std : float
        Standard deviation, > 0.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}
        Output dtype; the generator draws it natively.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Negative dimension, non-positive ``std`` or a dtype other than float32/float64.

    Notes
    -----
    Draws :math:`z \sim N(0, 1)` with ``rng.standard_normal(dtype=...)`` and returns
    :math:`\text{std}\cdot z`, so :math:`\operatorname{Var} = \text{std}^2`. Chapter:
    book/lecun.md.
    """
    dims = as_shape(shape)
    s = check_positive(std, name="std")
    dt = _float_dtype(dtype)
    gen = as_generator(rng)
    return _normal(dims, dt, s, gen)


@overload
def uniform(shape: ShapeLike, bound: float, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def uniform(
    shape: ShapeLike, bound: float, *, rng: RNGLike = None, dtype: type[_F]
) -> npt.NDArray[_F]: ...
@overload
def uniform(
    shape: ShapeLike, bound: float, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def uniform(
    shape: ShapeLike, bound: float, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""Samples of :math:`U(-\text{bound}, \text{bound})`.

    Parameters
    ----------
    shape : int or sequence of int
        Output shape (any number of dimensions).
    bound : float
        Half-width, > 0.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}
        Output dtype; the generator draws it natively.

    Returns
    -------
    numpy.ndarray
        Every entry in :math:`[-\text{bound}, \text{bound}]` (the upper end is excluded
        up to floating-point rounding, as in ``Generator.uniform``).

    Raises
    ------
    ValueError
        Negative dimension, non-positive ``bound`` or a dtype other than float32/float64.

    Notes
    -----
    :math:`\operatorname{Var}\,U(-b, b) = b^2/3`, so a target variance :math:`v` needs
    :math:`b = \sqrt{3v}` (forgetting the :math:`\sqrt{3}` is a classic mistake). Computed as
    :math:`2b\,u - b` with :math:`u \sim U[0, 1)`, the same arithmetic as
    ``Generator.uniform(-b, b)``. Chapter: book/lecun.md.
    """
    dims = as_shape(shape)
    b = check_positive(bound, name="bound")
    dt = _float_dtype(dtype)
    gen = as_generator(rng)
    return _uniform(dims, dt, b, gen)


@overload
def truncated_normal(shape: ShapeLike, std: float, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def truncated_normal(
    shape: ShapeLike, std: float, *, rng: RNGLike = None, dtype: type[_F]
) -> npt.NDArray[_F]: ...
@overload
def truncated_normal(
    shape: ShapeLike, std: float, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def truncated_normal(
    shape: ShapeLike, std: float, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r""":math:`N(0, \text{std}^2)` restricted to :math:`[-2\,\text{std}, 2\,\text{std}]`.

    ``std`` is the standard deviation *before* truncation; the result has standard deviation
    :math:`\text{std}\times 0.87962566103423978`.

    Parameters
    ----------
    shape : int or sequence of int
        Output shape (any number of dimensions).
    std : float
        Pre-truncation standard deviation, > 0.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}
        Output dtype; the generator draws it natively.

    Returns
    -------
    numpy.ndarray
        Every entry in :math:`[-2\,\text{std}, 2\,\text{std}]`.

    Raises
    ------
    ValueError
        Negative dimension, non-positive ``std`` or a dtype other than float32/float64.

    Notes
    -----
    Vectorized rejection: draw :math:`N(0, \text{std}^2)`, keep the entries with
    :math:`|x| \le 2\,\text{std}` (probability 0.9545), redraw only the rejected ones.
    The truncated variance is :math:`\text{std}^2\,(1 - 4\varphi(2)/(2\Phi(2)-1))
    = (0.87962566\ldots\,\text{std})^2`, and its kurtosis is 2.3655. Chapter:
    book/frameworks.md.
    """
    dims = as_shape(shape)
    s = check_positive(std, name="std")
    dt = _float_dtype(dtype)
    gen = as_generator(rng)
    out = _empty(dims, dt)
    _fill_truncated_normal(out, s, gen)
    return out


# --------------------------------------------------------------------------------------------
# variance scaling and the named schemes
# --------------------------------------------------------------------------------------------


@overload
def variance_scaling(
    shape: ShapeLike,
    *,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    rng: RNGLike = None,
) -> FloatArray: ...
@overload
def variance_scaling(
    shape: ShapeLike,
    *,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    rng: RNGLike = None,
    dtype: type[_F],
) -> npt.NDArray[_F]: ...
@overload
def variance_scaling(
    shape: ShapeLike,
    *,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    rng: RNGLike = None,
    dtype: npt.DTypeLike,
) -> npt.NDArray[np.floating[Any]]: ...
def variance_scaling(
    shape: ShapeLike,
    *,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    rng: RNGLike = None,
    dtype: npt.DTypeLike = np.float64,
) -> npt.NDArray[np.floating[Any]]:
    r"""Zero-mean weights with variance ``scale / fan`` (Keras' ``VarianceScaling``).

    Parameters
    ----------
    shape : int or sequence of int
        Weight shape ``(..., fan_in, fan_out)``, at least 2-D.
    scale : float
        Numerator of the variance, > 0 (1 for LeCun and Xavier, 2 for He).
    mode : {"fan_in", "fan_out", "fan_avg"}
        Which fan divides: ``fan_in``, ``fan_out`` or :math:`(\text{fan}_\text{in} +
        \text{fan}_\text{out})/2`.
    distribution : {"truncated_normal", "normal", "uniform", "untruncated_normal"}
        ``"normal"`` is the *untruncated* normal (PyTorch semantics, the course's formulas);
        ``"untruncated_normal"`` is accepted as Keras' name for it. Beware: in Keras,
        ``distribution="normal"`` means truncated.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}
        Output dtype.

    Returns
    -------
    numpy.ndarray
        An array of ``shape``.

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, a negative dimension, non-positive ``scale``, an unknown
        ``mode`` or ``distribution`` (the message lists the allowed values), or a dtype other
        than float32/float64.

    Notes
    -----
    With :math:`v = \text{scale}/\max(1, \text{fan})`:

    * ``normal``: :math:`N(0, v)`;
    * ``uniform``: :math:`U(-\sqrt{3v}, \sqrt{3v})`;
    * ``truncated_normal``: :math:`N(0, \sigma'^2)` cut at :math:`\pm 2\sigma'`,
      :math:`\sigma' = \sqrt{v}/0.87962566103423978`, whose variance is exactly :math:`v`.

    LeCun is ``(1, "fan_in")``, Xavier/Glorot ``(1, "fan_avg")``, He ``(2, "fan_in")``.
    Chapters: book/lecun.md, book/xavier.md, book/he.md; the Keras view in
    book/frameworks.md.
    """
    dims = as_shape(shape, min_ndim=2)
    s = check_positive(scale, name="scale")
    check_choice(mode, FAN_MODES, name="mode")
    check_choice(distribution, VARIANCE_SCALING_DISTRIBUTIONS, name="distribution")
    dt = _float_dtype(dtype)
    gen = as_generator(rng)
    var = _scaled_variance(dims, s, mode)
    if distribution == "uniform":
        return _uniform(dims, dt, math.sqrt(3.0 * var), gen)
    if distribution != "truncated_normal":
        return _normal(dims, dt, math.sqrt(var), gen)
    out = _empty(dims, dt)
    _fill_truncated_normal(out, math.sqrt(var) / TRUNCATED_NORMAL_STD_FACTOR, gen)
    return out


_SCHEMES: dict[str, tuple[float, str]] = {
    "lecun": (1.0, "fan_in"),
    "xavier": (1.0, "fan_avg"),
    "glorot": (1.0, "fan_avg"),
    "he": (2.0, "fan_in"),
}


@overload
def lecun_normal(shape: ShapeLike, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def lecun_normal(shape: ShapeLike, *, rng: RNGLike = None, dtype: type[_F]) -> npt.NDArray[_F]: ...
@overload
def lecun_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def lecun_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""LeCun normal: untruncated :math:`N(0, 1/\text{fan}_\text{in})`.

    Parameters
    ----------
    shape : int or sequence of int
        ``(..., fan_in, fan_out)``, at least 2-D.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, a negative dimension, or an unsupported dtype.

    Notes
    -----
    :math:`\operatorname{Var}(w) = 1/\text{fan}_\text{in}` keeps
    :math:`\operatorname{Var}(\sum_i w_i x_i) = \text{fan}_\text{in}\operatorname{Var}(w)
    \operatorname{Var}(x)` equal to :math:`\operatorname{Var}(x)`. Equals
    ``variance_scaling(shape, scale=1, mode="fan_in", distribution="normal")``.
    Chapter: book/lecun.md.
    """
    return variance_scaling(
        shape, scale=1.0, mode="fan_in", distribution="normal", rng=rng, dtype=dtype
    )


@overload
def lecun_uniform(shape: ShapeLike, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def lecun_uniform(shape: ShapeLike, *, rng: RNGLike = None, dtype: type[_F]) -> npt.NDArray[_F]: ...
@overload
def lecun_uniform(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def lecun_uniform(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""LeCun uniform: :math:`U(\pm\sqrt{3/\text{fan}_\text{in}})`.

    Parameters
    ----------
    shape : int or sequence of int
        ``(..., fan_in, fan_out)``, at least 2-D.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, a negative dimension, or an unsupported dtype.

    Notes
    -----
    :math:`\operatorname{Var}(w) = 1/\text{fan}_\text{in}`, bound
    :math:`b = \sqrt{3/\text{fan}_\text{in}}`. Chapter: book/lecun.md.
    """
    return variance_scaling(
        shape, scale=1.0, mode="fan_in", distribution="uniform", rng=rng, dtype=dtype
    )


@overload
def lecun_truncated_normal(shape: ShapeLike, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def lecun_truncated_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: type[_F]
) -> npt.NDArray[_F]: ...
@overload
def lecun_truncated_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def lecun_truncated_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""LeCun truncated normal (Keras ``LecunNormal``): variance :math:`1/\text{fan}_\text{in}`.

    Parameters
    ----------
    shape : int or sequence of int
        ``(..., fan_in, fan_out)``, at least 2-D.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, a negative dimension, or an unsupported dtype.

    Notes
    -----
    :math:`N(0, \sigma'^2)` cut at :math:`\pm 2\sigma'` with
    :math:`\sigma' = \sqrt{1/\text{fan}_\text{in}}/0.87962566103423978`, so the variance is
    exactly :math:`1/\text{fan}_\text{in}`. Chapters: book/lecun.md, book/frameworks.md.
    """
    return variance_scaling(
        shape, scale=1.0, mode="fan_in", distribution="truncated_normal", rng=rng, dtype=dtype
    )


@overload
def xavier_normal(shape: ShapeLike, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def xavier_normal(shape: ShapeLike, *, rng: RNGLike = None, dtype: type[_F]) -> npt.NDArray[_F]: ...
@overload
def xavier_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def xavier_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""Xavier/Glorot normal: untruncated :math:`N(0, 2/(n_\text{in}+n_\text{out}))`.

    Parameters
    ----------
    shape : int or sequence of int
        ``(..., fan_in, fan_out)``, at least 2-D.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, a negative dimension, or an unsupported dtype.

    Notes
    -----
    The compromise :math:`\operatorname{Var}(w) = 2/(\text{fan}_\text{in}+\text{fan}_\text{out})`
    between the forward condition :math:`1/\text{fan}_\text{in}` and the backward condition
    :math:`1/\text{fan}_\text{out}`; std :math:`\sqrt{2/(\text{fan}_\text{in}+
    \text{fan}_\text{out})}` (not :math:`\sqrt{3/\cdot}`, which belongs to no scheme).
    Chapter: book/xavier.md.
    """
    return variance_scaling(
        shape, scale=1.0, mode="fan_avg", distribution="normal", rng=rng, dtype=dtype
    )


@overload
def xavier_uniform(shape: ShapeLike, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def xavier_uniform(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: type[_F]
) -> npt.NDArray[_F]: ...
@overload
def xavier_uniform(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def xavier_uniform(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""Xavier/Glorot uniform: :math:`U(\pm\sqrt{6/(\text{fan}_\text{in}+\text{fan}_\text{out})})`.

    Parameters
    ----------
    shape : int or sequence of int
        ``(..., fan_in, fan_out)``, at least 2-D.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, a negative dimension, or an unsupported dtype.

    Notes
    -----
    Glorot & Bengio's "normalized initialization" (their eq. 16):
    :math:`\operatorname{Var}(w) = 2/(\text{fan}_\text{in}+\text{fan}_\text{out})`,
    :math:`b = \sqrt{3\operatorname{Var}} = \sqrt{6/(\text{fan}_\text{in}+\text{fan}_\text{out})}`.
    Chapter: book/xavier.md.
    """
    return variance_scaling(
        shape, scale=1.0, mode="fan_avg", distribution="uniform", rng=rng, dtype=dtype
    )


@overload
def xavier_truncated_normal(shape: ShapeLike, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def xavier_truncated_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: type[_F]
) -> npt.NDArray[_F]: ...
@overload
def xavier_truncated_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def xavier_truncated_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""Xavier/Glorot truncated normal: variance :math:`2/(n_\text{in}+n_\text{out})`.

    Parameters
    ----------
    shape : int or sequence of int
        ``(..., fan_in, fan_out)``, at least 2-D.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, a negative dimension, or an unsupported dtype.

    Notes
    -----
    :math:`N(0, \sigma'^2)` cut at :math:`\pm 2\sigma'`,
    :math:`\sigma' = \sqrt{2/(\text{fan}_\text{in}+\text{fan}_\text{out})}/0.87962566103423978`.
    (Keras' ``GlorotNormal`` is this truncated form.) Chapters: book/xavier.md,
    book/frameworks.md.
    """
    return variance_scaling(
        shape, scale=1.0, mode="fan_avg", distribution="truncated_normal", rng=rng, dtype=dtype
    )


@overload
def he_normal(shape: ShapeLike, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def he_normal(shape: ShapeLike, *, rng: RNGLike = None, dtype: type[_F]) -> npt.NDArray[_F]: ...
@overload
def he_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def he_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""He (Kaiming) normal: untruncated :math:`N(0, 2/\text{fan}_\text{in})`.

    Parameters
    ----------
    shape : int or sequence of int
        ``(..., fan_in, fan_out)``, at least 2-D.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, a negative dimension, or an unsupported dtype.

    Notes
    -----
    ReLU zeroes half of a symmetric pre-activation, so :math:`E[\mathrm{relu}(z)^2] =
    \operatorname{Var}(z)/2`; :math:`\operatorname{Var}(w) = 2/\text{fan}_\text{in}` restores
    the factor 2. PyTorch's ``kaiming_normal_(nonlinearity="relu")``. Chapter: book/he.md.
    """
    return variance_scaling(
        shape, scale=2.0, mode="fan_in", distribution="normal", rng=rng, dtype=dtype
    )


@overload
def he_uniform(shape: ShapeLike, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def he_uniform(shape: ShapeLike, *, rng: RNGLike = None, dtype: type[_F]) -> npt.NDArray[_F]: ...
@overload
def he_uniform(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def he_uniform(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""He (Kaiming) uniform: :math:`U(\pm\sqrt{6/\text{fan}_\text{in}})`.

    Parameters
    ----------
    shape : int or sequence of int
        ``(..., fan_in, fan_out)``, at least 2-D.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, a negative dimension, or an unsupported dtype.

    Notes
    -----
    :math:`\operatorname{Var}(w) = 2/\text{fan}_\text{in}`, bound
    :math:`b = \sqrt{3\cdot 2/\text{fan}_\text{in}}`. Chapter: book/he.md.
    """
    return variance_scaling(
        shape, scale=2.0, mode="fan_in", distribution="uniform", rng=rng, dtype=dtype
    )


@overload
def he_truncated_normal(shape: ShapeLike, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def he_truncated_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: type[_F]
) -> npt.NDArray[_F]: ...
@overload
def he_truncated_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def he_truncated_normal(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""He truncated normal (Keras ``HeNormal``): variance :math:`2/\text{fan}_\text{in}`.

    Parameters
    ----------
    shape : int or sequence of int
        ``(..., fan_in, fan_out)``, at least 2-D.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, a negative dimension, or an unsupported dtype.

    Notes
    -----
    :math:`N(0, \sigma'^2)` cut at :math:`\pm 2\sigma'`,
    :math:`\sigma' = \sqrt{2/\text{fan}_\text{in}}/0.87962566103423978`; every entry lies in
    :math:`[-2\sigma', 2\sigma']` and the variance is exactly :math:`2/\text{fan}_\text{in}`.
    Chapters: book/he.md, book/frameworks.md.
    """
    return variance_scaling(
        shape, scale=2.0, mode="fan_in", distribution="truncated_normal", rng=rng, dtype=dtype
    )


glorot_normal = xavier_normal
glorot_uniform = xavier_uniform
glorot_truncated_normal = xavier_truncated_normal
he_normal_truncated = he_truncated_normal


@overload
def standard_uniform(shape: ShapeLike, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def standard_uniform(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: type[_F]
) -> npt.NDArray[_F]: ...
@overload
def standard_uniform(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def standard_uniform(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""Glorot & Bengio's "standard" heuristic :math:`U(\pm 1/\sqrt{\text{fan}_\text{in}})`.

    Parameters
    ----------
    shape : int or sequence of int
        ``(..., fan_in, fan_out)``, at least 2-D.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, a negative dimension, or an unsupported dtype.

    Notes
    -----
    :math:`\operatorname{Var}(w) = 1/(3\,\text{fan}_\text{in})`: a third of what the forward
    condition needs, so activations shrink by :math:`1/\sqrt{3}` per linear layer. It is the
    baseline Glorot & Bengio (2010, eq. 1) improve on. Chapter: book/xavier.md.
    """
    dims = as_shape(shape, min_ndim=2)
    dt = _float_dtype(dtype)
    gen = as_generator(rng)
    fan_in, _ = compute_fans(dims)
    return _uniform(dims, dt, 1.0 / math.sqrt(max(1, fan_in)), gen)


@overload
def orthogonal(shape: ShapeLike, *, gain: float = 1.0, rng: RNGLike = None) -> FloatArray: ...
@overload
def orthogonal(
    shape: ShapeLike, *, gain: float = 1.0, rng: RNGLike = None, dtype: type[_F]
) -> npt.NDArray[_F]: ...
@overload
def orthogonal(
    shape: ShapeLike, *, gain: float = 1.0, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def orthogonal(
    shape: ShapeLike, *, gain: float = 1.0, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""A (semi-)orthogonal matrix times ``gain``, reshaped to ``shape`` (Saxe et al.).

    The shape is flattened to :math:`(r, c) = (\prod\text{shape}[:-1], \text{shape}[-1])`;
    the result has orthonormal columns if :math:`r \ge c`, orthonormal rows otherwise.

    Parameters
    ----------
    shape : int or sequence of int
        At least 2-D.
    gain : float
        Multiplier, > 0.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7).
    dtype : {numpy.float64, numpy.float32}
        Output dtype (the QR factorization always runs in float64).

    Returns
    -------
    numpy.ndarray
        ``W`` with :math:`W^\top W = \text{gain}^2 I_c` (tall or square) or
        :math:`W W^\top = \text{gain}^2 I_r` (wide), after reshaping to :math:`(r, c)`.

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, a negative dimension, non-positive ``gain`` or an unsupported
        dtype.

    Notes
    -----
    Draw :math:`A \in \mathbb{R}^{\max(r,c)\times\min(r,c)}` with i.i.d. :math:`N(0,1)`
    entries, factor :math:`A = QR`, and multiply column :math:`j` of :math:`Q` by
    :math:`\operatorname{sign}(R_{jj})` so that :math:`Q` is Haar-distributed (Mezzadri,
    2007); transpose if :math:`r < c`. Every singular value is ``gain``, so a linear layer
    preserves norms exactly; the entries have mean 0 and variance
    :math:`\text{gain}^2/\max(r, c)`. Same algorithm and draw order as Keras' ``Orthogonal``.
    Chapter: book/practice.md.
    """
    dims = as_shape(shape, min_ndim=2)
    g = check_positive(gain, name="gain")
    dt = _float_dtype(dtype)
    gen = as_generator(rng)
    rows = math.prod(dims[:-1])
    cols = dims[-1]
    if rows == 0 or cols == 0:
        return np.zeros(dims, dtype=dt)
    a = gen.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return np.asarray(g * q.reshape(dims), dtype=dt)


@overload
def zeros(
    shape: ShapeLike,
    *,
    rng: RNGLike = None,
) -> FloatArray: ...
@overload
def zeros(shape: ShapeLike, *, rng: RNGLike = None, dtype: type[_F]) -> npt.NDArray[_F]: ...
@overload
def zeros(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def zeros(
    shape: ShapeLike, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""All zeros (``rng`` is accepted and ignored, so it fits ``init(shape, rng=rng)``).

    Parameters
    ----------
    shape : int or sequence of int
        Any shape (biases included).
    rng : ignored
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        A negative dimension or an unsupported dtype.

    Notes
    -----
    :math:`W = 0`: every hidden unit computes the same function and receives the same
    gradient, so the units never differ (the symmetry problem); fine for biases.
    Chapter: book/symmetry.md.
    """
    del rng
    return np.zeros(as_shape(shape), dtype=_float_dtype(dtype))


@overload
def constant(shape: ShapeLike, value: float, *, rng: RNGLike = None) -> FloatArray: ...
@overload
def constant(
    shape: ShapeLike, value: float, *, rng: RNGLike = None, dtype: type[_F]
) -> npt.NDArray[_F]: ...
@overload
def constant(
    shape: ShapeLike, value: float, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> npt.NDArray[np.floating[Any]]: ...
def constant(
    shape: ShapeLike, value: float, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[np.floating[Any]]:
    r"""Every entry equal to ``value`` (``rng`` accepted and ignored).

    Parameters
    ----------
    shape : int or sequence of int
        Any shape.
    value : float
        A finite number.
    rng : ignored
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        A negative dimension, a non-finite ``value`` or an unsupported dtype.

    Notes
    -----
    :math:`W_{ij} = c`: like zeros, all units stay identical under gradient descent.
    Chapter: book/symmetry.md.
    """
    del rng
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"value must be a finite number, got {value!r}")
    return np.full(as_shape(shape), v, dtype=_float_dtype(dtype))


@overload
def torch_linear_default(
    in_features: int, out_features: int, *, rng: RNGLike = None
) -> tuple[FloatArray, FloatArray]: ...
@overload
def torch_linear_default(
    in_features: int, out_features: int, *, rng: RNGLike = None, dtype: type[_F]
) -> tuple[npt.NDArray[_F], npt.NDArray[_F]]: ...
@overload
def torch_linear_default(
    in_features: int, out_features: int, *, rng: RNGLike = None, dtype: npt.DTypeLike
) -> tuple[npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]]]: ...
def torch_linear_default(
    in_features: int, out_features: int, *, rng: RNGLike = None, dtype: npt.DTypeLike = np.float64
) -> tuple[npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]]]:
    r"""PyTorch's default ``nn.Linear`` init: weight and bias :math:`U(\pm 1/\sqrt{n_\text{in}})`.

    Parameters
    ----------
    in_features, out_features : int
        ``in_features`` >= 1, ``out_features`` >= 0.
    rng : numpy.random.Generator or seed, optional
        Keyword-only source of randomness (SPEC 7); the weight is drawn first, then the bias.
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    weight : numpy.ndarray, shape (out_features, in_features)
        PyTorch layout; use ``weight.T`` for ``x @ W``.
    bias : numpy.ndarray, shape (out_features,)

    Raises
    ------
    ValueError
        ``in_features`` < 1, ``out_features`` < 0 or an unsupported dtype.

    Notes
    -----
    ``reset_parameters`` calls ``kaiming_uniform_(weight, a=sqrt(5))``: gain
    :math:`\sqrt{2/(1+5)} = 1/\sqrt{3}`, bound :math:`\text{gain}\sqrt{3/n_\text{in}} =
    1/\sqrt{n_\text{in}}`, so :math:`\operatorname{Var}(w) = 1/(3 n_\text{in})`, a third of
    LeCun's :math:`1/n_\text{in}`; the bias uses the same bound. Chapter: book/frameworks.md.
    """
    for name, value, low in (("in_features", in_features, 1), ("out_features", out_features, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    dt = _float_dtype(dtype)
    gen = as_generator(rng)
    bound = 1.0 / math.sqrt(int(in_features))
    weight = _uniform((int(out_features), int(in_features)), dt, bound, gen)
    bias = _uniform((int(out_features),), dt, bound, gen)
    return weight, bias


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------

INITIALIZERS: dict[str, Initializer] = {
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "lecun_truncated_normal": lecun_truncated_normal,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "xavier_truncated_normal": xavier_truncated_normal,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "glorot_truncated_normal": glorot_truncated_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "he_truncated_normal": he_truncated_normal,
    "he_normal_truncated": he_normal_truncated,
    "standard_uniform": standard_uniform,
    "orthogonal": orthogonal,
    "zeros": zeros,
}
"""Every initializer that fits ``init(shape, rng=rng)``, by name."""


def get_initializer(name_or_callable: str | Initializer | Callable[..., Any]) -> Initializer:
    """Look up an initializer by name, or return a callable unchanged.

    Parameters
    ----------
    name_or_callable : str or callable
        A key of :data:`INITIALIZERS` or anything callable as ``init(shape, rng=rng)``.

    Returns
    -------
    Initializer

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones) or a non-callable object.

    Notes
    -----
    Lets experiment functions take ``initializer="he_normal"`` as well as a function.
    Chapter: book/comparing.md.
    """
    if isinstance(name_or_callable, str):
        check_choice(name_or_callable, INITIALIZERS, name="initializer")
        return INITIALIZERS[name_or_callable]
    if callable(name_or_callable):
        return name_or_callable
    raise ValueError(
        f"initializer must be a name ({', '.join(INITIALIZERS)}) or a callable, "
        f"got {name_or_callable!r}"
    )


def scheme_variance(name: str, shape: ShapeLike) -> float:
    r"""The analytic variance of the entries a named initializer draws for ``shape``.

    Parameters
    ----------
    name : str
        A key of :data:`INITIALIZERS`.
    shape : int or sequence of int
        At least 2-D.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Unknown name (the message lists the known ones), fewer than 2 dimensions or a negative
        dimension.

    Notes
    -----
    LeCun :math:`1/\text{fan}_\text{in}`, Xavier/Glorot
    :math:`2/(\text{fan}_\text{in}+\text{fan}_\text{out})`, He :math:`2/\text{fan}_\text{in}`
    (for every distribution: the truncated forms are rescaled to the same variance),
    ``standard_uniform`` :math:`1/(3\,\text{fan}_\text{in})`, ``orthogonal``
    :math:`1/\max(r, c)` with :math:`(r, c) = (\prod\text{shape}[:-1], \text{shape}[-1])`,
    ``zeros`` 0. Used as the target in tests and plots. Chapter: book/comparing.md.
    """
    check_choice(name, INITIALIZERS, name="initializer")
    dims = as_shape(shape, min_ndim=2)
    if name == "zeros":
        return 0.0
    if name == "orthogonal":
        return 1.0 / max(1, math.prod(dims[:-1]), dims[-1])
    if name == "standard_uniform":
        return 1.0 / (3.0 * max(1, compute_fans(dims)[0]))
    family = name.split("_", 1)[0]
    scale, mode = _SCHEMES[family]
    return _scaled_variance(dims, scale, mode)
