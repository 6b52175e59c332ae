"""course_lib.training: the trainer learns digits, is reproducible, its gradients are right, and
its options (weight decay, dropout, early stopping, gradient norms) do what they say."""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
import pytest

from course_lib import data, network, training

FloatArray = npt.NDArray[np.float64]


def lecun(shape: tuple[int, int], *, rng: np.random.Generator | None = None) -> FloatArray:
    """Local N(0, 1/fan_in) initializer (independent of course_lib.initializers)."""
    return np.random.default_rng(rng).normal(0.0, 1.0 / math.sqrt(shape[0]), size=shape)


def zeros(shape: tuple[int, int], *, rng: np.random.Generator | None = None) -> FloatArray:
    return np.zeros(shape)


@functools.cache
def digits() -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    X, y = data.load_digits()
    Xtr, Xte, ytr, yte = data.train_test_split(X, y, test_fraction=0.25, rng=0)
    Xtr, mu, sd = data.standardize(Xtr)
    Xte, _, _ = data.standardize(Xte, mu, sd)
    return Xtr, Xte, ytr, yte


def _train(**kw: object) -> training.History:
    Xtr, Xte, ytr, yte = digits()
    args: dict[str, object] = dict(
        initializer=lecun,
        activation="tanh",
        epochs=8,
        batch_size=32,
        lr=0.01,
        momentum=0.9,
        X_val=Xte,
        y_val=yte,
        rng=1,
    )
    args.update(kw)
    return training.train_mlp(Xtr, ytr, [64, 32, 10], **args)  # type: ignore[arg-type]


def test_trainer_learns_digits() -> None:
    h = _train(record_grad_norms=True)
    assert h.epoch.tolist() == list(range(9))
    assert h.train_loss[0] > 1.5  # about log(10) = 2.3 at init
    assert h.train_loss[-1] < 0.2 * h.train_loss[0]
    assert h.val_acc[-1] > 0.9 and h.val_acc[0] < 0.3
    assert h.grad_norms is not None and h.grad_norms.shape == (9, 2)
    assert np.all(h.grad_norms > 0)
    assert not h.diverged and not h.stopped_early
    assert [w.shape for w in h.weights] == [(64, 32), (32, 10)]
    assert [b.shape for b in h.biases] == [(32,), (10,)]
    assert h.label == "lecun" and h.activation == "tanh"
    # the History's final weights reproduce its last evaluation
    _Xtr, Xte, _ytr, yte = digits()
    logits = training.predict_logits(Xte, h.weights, h.biases, "tanh")
    assert training.accuracy(logits, yte) == pytest.approx(h.val_acc[-1])
    assert network.cross_entropy(logits, yte) == pytest.approx(h.val_loss[-1])


def test_trainer_is_reproducible() -> None:
    a = _train(epochs=3, dropout=0.2)
    b = _train(epochs=3, dropout=0.2)
    np.testing.assert_array_equal(a.train_loss, b.train_loss)
    for w1, w2 in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(w1, w2)
    c = _train(epochs=3, dropout=0.2, rng=2)
    assert c.train_loss[-1] != a.train_loss[-1]
    # dropout has its own stream: the initial network does not depend on it
    d = _train(epochs=3, dropout=0.0)
    assert d.train_loss[0] == a.train_loss[0] and d.train_loss[-1] != a.train_loss[-1]


def test_trainer_gradient_matches_the_network_backward_pass() -> None:
    """One full-batch SGD step without momentum moves the weights by -lr·dL/dW, with dL/dW
    from course_lib.network.backward (itself checked against finite differences)."""
    Xtr, _, ytr, _ = digits()
    X, y = Xtr[:40], ytr[:40]
    h0 = training.train_mlp(
        X, y, [64, 16, 10], initializer=lecun, activation="selu", epochs=0, rng=3, lr=0.1
    )
    h1 = training.train_mlp(
        X,
        y,
        [64, 16, 10],
        initializer=lecun,
        activation="selu",
        epochs=1,
        batch_size=40,
        lr=0.1,
        momentum=0.0,
        rng=3,
    )
    fp = network.forward(X, h0.weights, "selu", biases=h0.biases, output_activation="linear")
    _, g = network.softmax_cross_entropy(fp.output, y)
    bp = network.backward(fp, h0.weights, g)
    for w0, w1, dw in zip(h0.weights, h1.weights, bp.weight_grads, strict=True):
        np.testing.assert_allclose(w1, w0 - 0.1 * dw, rtol=1e-10, atol=1e-13)
    for b0, b1, db in zip(h0.biases, h1.biases, bp.bias_grads, strict=True):
        assert db is not None
        np.testing.assert_allclose(b1, b0 - 0.1 * db, rtol=1e-10, atol=1e-13)


def test_weight_decay_shrinks_weights() -> None:
    plain = _train(epochs=4)
    decayed = _train(epochs=4, weight_decay=0.05)
    norm = lambda h: sum(float(np.sum(w * w)) for w in h.weights)  # noqa: E731
    assert norm(decayed) < 0.8 * norm(plain)


def test_early_stopping_restores_the_best_epoch() -> None:
    # a large learning rate makes the validation loss rise after a few epochs
    h = _train(epochs=40, lr=0.05, early_stopping_patience=3)
    assert h.stopped_early
    assert len(h.epoch) < 41
    assert h.best_epoch == int(np.argmin(h.val_loss))
    assert len(h.epoch) - 1 == h.best_epoch + 3
    _, Xte, _, yte = digits()
    logits = training.predict_logits(Xte, h.weights, h.biases, "tanh")
    assert network.cross_entropy(logits, yte) == pytest.approx(h.val_loss[h.best_epoch])


def test_zero_init_cannot_learn_hidden_features() -> None:
    """With zero weights and tanh the hidden layer never moves (see the symmetry chapter): the
    net is stuck at a linear function of nothing, i.e. class frequencies."""
    h = _train(initializer=zeros, epochs=3, record_grad_norms=True)
    assert np.all(h.weights[0] == 0.0) and np.all(h.weights[1] == 0.0)
    assert h.grad_norms is not None and np.all(h.grad_norms == 0.0)
    assert h.val_acc[-1] < 0.2


def test_divergence_is_reported() -> None:
    def huge(shape: tuple[int, int], *, rng: np.random.Generator | None = None) -> FloatArray:
        return np.random.default_rng(rng).normal(0.0, 1e3, size=shape)

    h = _train(initializer=huge, activation="relu", epochs=20, lr=10.0)
    assert h.diverged and len(h.epoch) < 21 and not np.isfinite(h.train_loss[-1])
    assert not _train(epochs=2).diverged


def test_bad_input() -> None:
    Xtr, Xte, ytr, _yte = digits()
    kw = dict(initializer=lecun, activation="tanh", rng=0)
    with pytest.raises(ValueError, match=r"layer_sizes\[0\] = 10.*64 features"):
        training.train_mlp(Xtr, ytr, [10, 10], **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.4"):
        training.train_mlp(Xtr, ytr, [64, 5], **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="momentum"):
        training.train_mlp(Xtr, ytr, [64, 10], momentum=1.0, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dropout"):
        training.train_mlp(Xtr, ytr, [64, 10], dropout=1.0, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="validation"):
        training.train_mlp(Xtr, ytr, [64, 10], early_stopping_patience=2, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'relu'"):
        training.train_mlp(Xtr, ytr, [64, 10], initializer=lecun, activation="swish", rng=0)
    with pytest.raises(ValueError, match=r"shape \(1348, 64\) but its labels have shape \(3,\)"):
        training.train_mlp(Xtr, ytr[:3], [64, 10], **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both X_val and y_val"):
        training.train_mlp(Xtr, ytr, [64, 10], X_val=Xte, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lr"):
        training.train_mlp(Xtr, ytr, [64, 10], lr=0.0, **kw)  # type: ignore[arg-type]


def test_initializer_name_and_blas_threads_restored() -> None:
    from threadpoolctl import threadpool_info

    before = [(p["filepath"], p["num_threads"]) for p in threadpool_info()]
    h = _train(initializer="he_normal", activation="relu", epochs=1)
    assert h.label == "he_normal" and h.train_loss[-1] < h.train_loss[0]
    assert [(p["filepath"], p["num_threads"]) for p in threadpool_info()] == before


def test_compare_initializers_is_paired() -> None:
    Xtr, _Xte, ytr, _yte = digits()
    runs = training.compare_initializers(
        {"lecun": lecun, "zeros": zeros},
        Xtr[:300],
        ytr[:300],
        [64, 16, 10],
        rng=5,
        n_replicates=2,
        activation="tanh",
        epochs=2,
        lr=0.01,
    )
    assert list(runs) == ["lecun", "zeros"] and all(len(v) == 2 for v in runs.values())
    assert runs["lecun"][0].label == "lecun"
    # replicates differ; the same replicate of a different call is identical
    assert runs["lecun"][0].train_loss[-1] != runs["lecun"][1].train_loss[-1]
    again = training.train_mlp(
        Xtr[:300],
        ytr[:300],
        [64, 16, 10],
        initializer=lecun,
        activation="tanh",
        epochs=2,
        lr=0.01,
        rng=np.random.default_rng(np.random.default_rng(5).spawn(2)[1].bit_generator.seed_seq),
    )
    np.testing.assert_array_equal(again.train_loss, runs["lecun"][1].train_loss)
    with pytest.raises(ValueError, match="distinct"):
        training.compare_initializers([lecun, lecun], Xtr, ytr, [64, 10], rng=0, activation="tanh")
