"""course_lib.data: the shipped digits equal scikit-learn's, normalization fits on train only."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from course_lib import data


def test_load_digits_equals_sklearn() -> None:
    from sklearn.datasets import load_digits as sklearn_load_digits  # a test dependency

    X, y = data.load_digits()
    Xs, ys = sklearn_load_digits(return_X_y=True)
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(X, Xs)
    np.testing.assert_array_equal(y, ys)
    assert X.min() == 0 and X.max() == 16
    assert set(np.unique(y)) == set(range(10))


def test_load_digits_returns_fresh_copies() -> None:
    X, y = data.load_digits()
    X[0, 0] = 99.0
    y[0] = 7
    X2, y2 = data.load_digits()
    assert X2[0, 0] == 0.0 and y2[0] == 0


def test_load_digits_imports_no_sklearn() -> None:
    code = "import sys, course_lib; course_lib.load_digits(); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_scale_center_standardize_fit_on_train() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(loc=3.0, scale=2.0, size=(200, 5))
    train[:, 4] = 7.0  # a constant feature
    test = rng.normal(loc=3.0, scale=2.0, size=(50, 5))
    np.testing.assert_allclose(data.scale(np.array([[0.0, 8.0, 16.0]])), [[0, 0.5, 1.0]])
    c, mu = data.center(train)
    np.testing.assert_allclose(c.mean(axis=0), 0.0, atol=1e-12)
    c_test, _ = data.center(test, mu)
    np.testing.assert_allclose(c_test, test - train.mean(axis=0))
    s, mu, sd = data.standardize(train)
    np.testing.assert_allclose(s.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(s[:, :4].std(axis=0), 1.0)
    assert np.all(s[:, 4] == 0.0) and sd[4] == 1.0  # constant pixel: 0, not NaN
    s_test, _, _ = data.standardize(test, mu, sd)
    np.testing.assert_allclose(s_test, (test - train.mean(axis=0)) / sd)
    # the test set is not re-fitted: its mean is not exactly 0
    assert np.abs(s_test[:, :4].mean(axis=0)).max() > 1e-3


def test_train_test_split_is_a_seeded_partition() -> None:
    X, y = data.load_digits()
    Xtr, Xte, ytr, yte = data.train_test_split(X, y, test_fraction=0.2, rng=1)
    assert len(Xte) == round(0.2 * 1797) and len(Xtr) + len(Xte) == 1797
    rows = {(*tuple(r), int(c)) for r, c in zip(X, y, strict=True)}
    got = {
        (*tuple(r), int(c)) for r, c in zip(np.vstack([Xtr, Xte]), np.r_[ytr, yte], strict=True)
    }
    assert got == rows
    again = data.train_test_split(X, y, test_fraction=0.2, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(again[1], Xte)
    other = data.train_test_split(X, y, test_fraction=0.2, rng=2)
    assert not np.array_equal(other[1], Xte)
    _, _, _ytr_s, yte_s = data.train_test_split(X, y, test_fraction=0.2, rng=3, stratify=True)
    counts = np.bincount(yte_s, minlength=10) / np.bincount(y, minlength=10)
    np.testing.assert_allclose(counts, 0.2, atol=0.01)


def test_bad_input() -> None:
    X, y = data.load_digits()
    with pytest.raises(ValueError, match="test_fraction"):
        data.train_test_split(X, y, test_fraction=1.0, rng=0)
    with pytest.raises(ValueError, match=r"X has shape \(1797, 64\) and y has shape \(5,\)"):
        data.train_test_split(X, y[:5], test_fraction=0.5, rng=0)
    with pytest.raises(ValueError, match="max_value"):
        data.scale(X, 0)
    with pytest.raises(ValueError, match=r"mean has shape \(3,\)"):
        data.center(X, np.zeros(3))
    with pytest.raises(ValueError, match="both"):
        data.standardize(X, mean=np.zeros(64))
    with pytest.raises(ValueError, match="2-D"):
        data.center(np.zeros(4))
    with pytest.raises(TypeError, match="RandomState"):
        data.train_test_split(X, y, rng=np.random.RandomState(0))
