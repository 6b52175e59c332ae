r"""The scikit-learn digits set, shipped with the package, and input normalization.

``course_lib/data/digits.csv.gz`` holds scikit-learn's ``load_digits()`` (1797 images of 8x8
pixels with grey levels 0..16, and their labels 0..9) as 65 comma-separated integer columns, the
last being the label. Nothing is downloaded and scikit-learn is not imported at run time.

Normalization is fitted on the training set and applied unchanged to the test set: statistics
computed on the test set would leak it into the model.

Chapter: "Inputs" (book/inputs.md); the training runs of "Initialization in practice"
(book/practice.md).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import numpy.typing as npt

from ._validation import RNGLike, as_generator, check_positive

__all__ = [
    "DIGITS_SHAPE",
    "DigitsSplit",
    "center",
    "digits_split",
    "load_digits",
    "scale",
    "standardize",
    "train_test_split",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DIGITS_SHAPE = (1797, 64)
"""Shape of the digits feature matrix."""


@cache
def _read_digits() -> tuple[FloatArray, IntArray]:
    raw = resources.files("course_lib").joinpath("data", "digits.csv.gz").read_bytes()
    table = np.loadtxt(
        gzip.decompress(raw).decode("ascii").splitlines(), delimiter=",", dtype=np.int64
    )
    if table.shape != (DIGITS_SHAPE[0], DIGITS_SHAPE[1] + 1):
        raise RuntimeError(
            f"course_lib/data/digits.csv.gz has shape {table.shape}, expected (1797, 65)"
        )
    X = table[:, :-1].astype(np.float64)
    y = table[:, -1].astype(np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def load_digits() -> tuple[FloatArray, IntArray]:
    """The scikit-learn digits data set, from the copy shipped in ``course_lib/data``.

    Returns
    -------
    X : ndarray of float64, shape (1797, 64)
        Pixel grey levels 0..16 (row-major 8x8 images).
    y : ndarray of int64, shape (1797,)
        Labels 0..9.

    Notes
    -----
    Identical to ``sklearn.datasets.load_digits(return_X_y=True)`` (tested). The arrays are
    fresh copies, so callers may modify them. Chapter: "Inputs" (book/inputs.md).
    """
    X, y = _read_digits()
    return X.copy(), y.copy()


def _as_2d(X: npt.ArrayLike, name: str = "X") -> FloatArray:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {arr.shape}")
    return arr


def scale(X: npt.ArrayLike, max_value: float = 16.0) -> FloatArray:
    r"""Divide by ``max_value`` so that inputs in ``0..max_value`` land in ``[0, 1]``.

    Notes
    -----
    :math:`x' = x / x_{\max}`. The mean stays positive: scaling alone does not center the inputs
    (LeCun et al. 1998, "Efficient BackProp"). Chapter: "Inputs" (book/inputs.md).
    """
    m = check_positive(max_value, name="max_value")
    return np.asarray(X, dtype=np.float64) / m


def center(X: npt.ArrayLike, mean: npt.ArrayLike | None = None) -> tuple[FloatArray, FloatArray]:
    r"""Subtract the per-feature mean (fitted on ``X`` unless ``mean`` is given).

    Parameters
    ----------
    X : array_like, shape (samples, features)
    mean : array_like, shape (features,), optional
        The training set's mean, to apply to a test set.

    Returns
    -------
    X_centered, mean : ndarray
        Pass ``mean`` on to the test set: ``center(X_test, mean)``.

    Notes
    -----
    :math:`x'_{ij} = x_{ij} - \bar x_j` with :math:`\bar x_j = \frac1N \sum_i x_{ij}` over the
    training set. Chapter: "Inputs" (book/inputs.md).
    """
    arr = _as_2d(X)
    if mean is None:
        mu = arr.mean(axis=0)
    else:
        mu = np.asarray(mean, dtype=np.float64)
        if mu.shape != (arr.shape[1],):
            raise ValueError(
                f"shape mismatch: mean has shape {mu.shape}, X has shape {arr.shape} "
                f"(expected ({arr.shape[1]},))"
            )
    return arr - mu, mu


def standardize(
    X: npt.ArrayLike,
    mean: npt.ArrayLike | None = None,
    std: npt.ArrayLike | None = None,
    *,
    eps: float = 1e-8,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Center each feature and divide by its standard deviation (fitted on ``X`` unless given).

    Parameters
    ----------
    X : array_like, shape (samples, features)
    mean, std : array_like, shape (features,), optional
        The training set's statistics, to apply to a test set; give both or neither.
    eps : float
        Features whose std is below ``eps`` (constant pixels: several digits pixels are always
        0) are divided by 1 instead, so they stay 0 rather than becoming NaN.

    Returns
    -------
    X_standardized, mean, std : ndarray
        ``std`` is returned with the ``eps`` replacement applied, ready for the test set.

    Notes
    -----
    :math:`x'_{ij} = (x_{ij} - \bar x_j) / s_j` with the training mean and population
    standard deviation (ddof = 0). Chapter: "Inputs" (book/inputs.md).
    """
    arr = _as_2d(X)
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std (from the training set) or neither")
    centered, mu = center(arr, mean)
    if std is None:
        sd = arr.std(axis=0)
    else:
        sd = np.asarray(std, dtype=np.float64)
        if sd.shape != (arr.shape[1],):
            raise ValueError(
                f"shape mismatch: std has shape {sd.shape}, X has shape {arr.shape} "
                f"(expected ({arr.shape[1]},))"
            )
        if np.any(sd < 0):
            raise ValueError("std must be non-negative")
    sd = np.where(sd < eps, 1.0, sd)
    return centered / sd, mu, sd


def train_test_split(
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    test_fraction: float = 0.25,
    rng: RNGLike,
    stratify: bool = False,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.generic], npt.NDArray[np.generic]]:
    """Shuffle and split into train and test sets.

    Parameters
    ----------
    X : array_like, shape (samples, ...)
    y : array_like, shape (samples,)
    test_fraction : float in (0, 1)
        Share of the samples in the test set (``round(test_fraction * samples)``, at least 1,
        leaving at least 1 for training).
    rng : Generator, seed or None
        Keyword-only (SPEC 7).
    stratify : bool
        If True, each class is split in the same proportion.

    Returns
    -------
    X_train, X_test, y_train, y_test

    Notes
    -----
    A random permutation from ``rng``; the same seed gives the same split.
    Chapter: "Initialization in practice" (book/practice.md).
    """
    gen = as_generator(rng)
    Xa = np.asarray(X, dtype=np.float64)
    ya = np.asarray(y)
    if Xa.ndim < 1 or ya.ndim != 1 or Xa.shape[0] != ya.shape[0]:
        raise ValueError(
            f"shape mismatch: X has shape {Xa.shape} and y has shape {ya.shape}; y must be 1-D "
            "with one label per row of X"
        )
    f = float(test_fraction)
    if not 0.0 < f < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    n = Xa.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 samples to split, got {n}")
    if stratify:
        test_parts = []
        train_parts = []
        for cls in np.unique(ya):
            idx = np.flatnonzero(ya == cls)
            idx = idx[gen.permutation(idx.size)]
            k = round(f * idx.size)
            test_parts.append(idx[:k])
            train_parts.append(idx[k:])
        test_idx = gen.permutation(np.concatenate(test_parts))
        train_idx = gen.permutation(np.concatenate(train_parts))
    else:
        perm = gen.permutation(n)
        k = min(max(round(f * n), 1), n - 1)
        test_idx, train_idx = perm[:k], perm[k:]
    return Xa[train_idx], Xa[test_idx], ya[train_idx], ya[test_idx]


@dataclass(frozen=True)
class DigitsSplit:
    """The digits split into train and test parts, standardized with the training statistics.

    Attributes
    ----------
    X_train, X_test : ndarray, shape (samples, 64)
        Standardized pixels (mean 0 and variance 1 per non-constant pixel on the training part).
    y_train, y_test : ndarray of int64, shape (samples,)
        Labels 0..9.
    """

    X_train: FloatArray
    X_test: FloatArray
    y_train: IntArray
    y_test: IntArray


def digits_split(*, rng: RNGLike, test_fraction: float = 0.25) -> DigitsSplit:
    """Shuffle, split and standardize the digits, as every training chapter does.

    Parameters
    ----------
    rng : Generator, seed or None
        Keyword-only (SPEC 7); draws the permutation of :func:`train_test_split`.
    test_fraction : float in (0, 1)
        Share of the images in the test part.

    Returns
    -------
    DigitsSplit

    Notes
    -----
    :func:`load_digits`, then :func:`train_test_split`, then :func:`standardize` with the mean
    and standard deviation fitted on the training part only, applied unchanged to the test
    part. Chapters: "Preparing the inputs" (book/inputs.md), "Comparing the schemes"
    (book/comparing.md) and the paper chapters.
    """
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_fraction=test_fraction, rng=as_generator(rng)
    )
    X_train_s, mean, std = standardize(X_train)
    X_test_s, _, _ = standardize(X_test, mean, std)
    return DigitsSplit(
        X_train_s, X_test_s, np.asarray(y_train, dtype=np.int64), np.asarray(y_test, dtype=np.int64)
    )
