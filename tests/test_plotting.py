"""course_lib.plotting: Figures with the right axes, shared scales, labels, no titles, no pyplot."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

from course_lib import experiments, network, plotting, training


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """These tests multiply small matrices: BLAS threads only add contention (5x slower on a
    busy 2-core machine), and the results do not depend on the thread count."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _visible_axes(fig: Figure) -> list:  # type: ignore[type-arg]
    return [ax for ax in fig.axes if ax.get_visible()]


def _assert_no_titles(fig: Figure) -> None:
    assert fig._suptitle is None  # type: ignore[attr-defined]
    for ax in fig.axes:
        for loc in ("left", "center", "right"):
            assert ax.get_title(loc=loc) == ""


def _init(shape: tuple[int, int], *, rng: np.random.Generator | None = None) -> np.ndarray:  # type: ignore[type-arg]
    return np.random.default_rng(rng).normal(0, 1 / np.sqrt(shape[0]), size=shape)


def test_layer_histograms_from_arrays_and_stats() -> None:
    rng = np.random.default_rng(0)
    ws = [_init((20, 20), rng=rng) for _ in range(7)]
    X = rng.normal(size=(50, 20))
    fp = network.forward(X, ws, "tanh")
    fig = plotting.layer_histograms(fp.activations)
    assert isinstance(fig, Figure)
    vis = _visible_axes(fig)
    assert len(vis) == 7
    assert len(fig.axes) == 10  # a 2 x 5 grid, three spare cells hidden
    # shared axes: every panel has the same limits
    assert len({ax.get_xlim() for ax in vis}) == 1 and len({ax.get_ylim() for ax in vis}) == 1
    labels = [t.get_text() for ax in vis for t in ax.texts]
    assert labels == [f"layer {i}" for i in range(1, 8)]
    _assert_no_titles(fig)
    lean = network.forward(X, ws, "tanh", keep="stats")
    fig2 = plotting.layer_histograms(lean.activation_stats, layers=[0, 3, 6], ncols=3)
    assert len(_visible_axes(fig2)) == 3 and len(fig2.axes) == 3
    _assert_no_titles(fig2)
    bp = network.backward(fp, ws, rng.normal(size=(50, 20)))
    fig3 = plotting.layer_histograms(
        {"tanh": bp.activation_grads, "tanh copy": bp.activation_grads}, kind="gradients", logy=True
    )
    assert fig3.axes[0].get_legend() is not None
    assert "gradient" in fig3.axes[-3].get_xlabel() or any(
        "gradient" in ax.get_xlabel() for ax in fig3.axes
    )
    fig4 = plotting.weight_histograms(ws)
    assert any(ax.get_xlabel() == "weight value" for ax in fig4.axes)


def test_std_by_depth_curves() -> None:
    st = {
        name: experiments.deep_network_statistics(
            depth=5,
            width=16,
            activation=act,
            initializer=_init,
            n_samples=32,
            rng=1,
            n_replicates=3,
        )
        for name, act in (("lecun, tanh", "tanh"), ("lecun, relu", "relu"))
    }
    fig = plotting.std_by_depth({k: v.activation_std for k, v in st.items()})
    assert len(fig.axes) == 1 and fig.axes[0].get_yscale() == "log"
    assert len(fig.axes[0].get_lines()) == 2
    _assert_no_titles(fig)
    fig2 = plotting.std_by_depth(
        {k: v.activation_std for k, v in st.items()},
        {k: v.grad_std for k, v in st.items()},
        logy=False,
    )
    assert len(fig2.axes) == 2 and fig2.axes[1].get_yscale() == "linear"
    assert fig2.axes[0].get_xlabel() == "layer"
    np.testing.assert_array_equal(fig2.axes[0].get_lines()[0].get_xdata(), [1, 2, 3, 4, 5])
    _assert_no_titles(fig2)


def test_training_curves() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = (X[:, 0] > 0).astype(int)
    kw = dict(activation="tanh", epochs=3, batch_size=20, lr=0.05, rng=0)
    hs = [
        training.train_mlp(X, y, [5, 8, 2], initializer=_init, X_val=X, y_val=y, **kw),  # type: ignore[arg-type]
        training.train_mlp(X, y, [5, 8, 2], initializer=_init, **kw),  # type: ignore[arg-type]
    ]
    fig = plotting.training_curves(hs, metric="loss")
    assert len(fig.axes) == 1
    assert len(fig.axes[0].get_lines()) == 3  # train+val for the first, train for the second
    # the initializer is called "_init"; matplotlib would hide a legend label starting with "_"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "init (train)",
        "init (validation)",
        "init (train)",
    ]
    assert fig.axes[0].get_yscale() == "log"
    _assert_no_titles(fig)
    fig2 = plotting.training_curves({"a": hs[0], "b": hs[1]}, metric="val_acc")
    assert [ln.get_label() for ln in fig2.axes[0].get_lines()] == ["a", "b"]
    assert fig2.axes[0].get_ylabel() == "validation accuracy"


def test_figures_render_and_do_not_use_pyplot() -> None:
    """A returned figure renders to PNG by itself (so it displays and glues under any backend,
    MPLBACKEND=Agg included) and plotting never imports pyplot (checked in a fresh process)."""
    code = (
        "import sys; from course_lib import plotting; "
        "png = plotting.std_by_depth({'x': [1.0, 0.5, 0.25]})._repr_png_(); "
        "print(png[:8] == b'\\x89PNG\\r\\n\\x1a\\n', len(png) > 1000, "
        "'matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "False"]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="'activations'"):
        plotting.layer_histograms([np.zeros(3)], kind="biases")
    with pytest.raises(ValueError, match="at least one layer"):
        plotting.layer_histograms([])
    with pytest.raises(ValueError, match="same number of layers"):
        plotting.layer_histograms({"a": [np.zeros(3)], "b": [np.zeros(3), np.zeros(3)]})
    with pytest.raises(ValueError, match=r"indices in 0\.\.0"):
        plotting.layer_histograms([np.zeros(3)], layers=[2])
    with pytest.raises(ValueError, match="non-finite"):
        plotting.layer_histograms([np.array([np.nan, 1.0])])
    with pytest.raises(ValueError, match="non-empty"):
        plotting.std_by_depth({})
    with pytest.raises(ValueError, match="shape"):
        plotting.std_by_depth({"x": np.zeros((2, 2, 2))})
    with pytest.raises(ValueError, match="'val_acc'"):
        plotting.training_curves([], metric="f1")
    with pytest.raises(ValueError, match="at least one"):
        plotting.training_curves([])
    with pytest.raises(ValueError, match=r"not a course_lib\.training\.History"):
        plotting.training_curves({"x": 3})  # type: ignore[dict-item]
