"""Figures for the course: per-layer histograms, std-by-depth curves, training curves.

Every function takes results (arrays, :class:`course_lib.network.LayerStats`,
:class:`course_lib.training.History`) and returns a matplotlib :class:`~matplotlib.figure.Figure`
built with the object-oriented API: nothing is shown, no pyplot state is touched, and no title
is set (the book's captions describe the figure). Panels carry their layer as a small label
inside the axes.

The figures are instances of :class:`CourseFigure`, a ``Figure`` that also renders itself as
PNG for IPython (``_repr_png_``), so a returned figure displays (and ``myst_nb.glue`` stores an
image) whatever the matplotlib backend, including ``MPLBACKEND=Agg``, and exactly once.

Import on demand: ``from course_lib import plotting``. Chapters: "Why initialization matters"
(book/why_init.md), "Comparing schemes" (book/comparing.md), "Initialization in practice"
(book/practice.md).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._validation import check_choice
from .network import LayerStats
from .training import History

__all__ = [
    "CourseFigure",
    "layer_histograms",
    "std_by_depth",
    "training_curves",
    "weight_histograms",
]

KINDS = ("activations", "preactivations", "gradients", "weights", "weight gradients")
_XLABEL = {
    "activations": "activation value",
    "preactivations": "pre-activation value",
    "gradients": r"back-propagated gradient $\partial\mathcal{L}/\partial a$",
    "weights": "weight value",
    "weight gradients": r"weight gradient $\partial\mathcal{L}/\partial W$",
}
METRICS = ("loss", "accuracy", "train_loss", "val_loss", "train_acc", "val_acc")


class CourseFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that renders itself as PNG in IPython."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


def _new_figure(figsize: tuple[float, float]) -> CourseFigure:
    return CourseFigure(figsize=figsize, layout="constrained")


Series = Sequence[npt.ArrayLike] | Sequence[LayerStats]


def _as_series(values: Series | Mapping[str, Series]) -> dict[str | None, list[Any]]:
    if isinstance(values, Mapping):
        out: dict[str | None, list[Any]] = {_legend_label(k): list(v) for k, v in values.items()}
    else:
        out = {None: list(values)}
    if not out or any(len(v) == 0 for v in out.values()):
        raise ValueError("values_per_layer must hold at least one layer")
    lengths = {len(v) for v in out.values()}
    if len(lengths) != 1:
        raise ValueError(f"every series must have the same number of layers, got {sorted(lengths)}")
    return out


def _legend_label(label: object) -> str:
    """matplotlib hides labels that start with "_" (a function named ``_init``): strip them."""
    text = str(label).lstrip("_")
    return text or "series"


def _grid(n: int, ncols: int | None) -> tuple[int, int]:
    cols = min(n, 5) if ncols is None else max(1, int(ncols))
    return math.ceil(n / cols), cols


def layer_histograms(
    values_per_layer: Series | Mapping[str, Series],
    *,
    kind: str = "activations",
    bins: int = 50,
    hist_range: tuple[float, float] | None = None,
    layers: Sequence[int] | None = None,
    ncols: int | None = None,
    density: bool = True,
    logy: bool = False,
    panel_size: tuple[float, float] = (2.0, 1.6),
) -> CourseFigure:
    """One histogram panel per layer, with shared axes and layer labels.

    Parameters
    ----------
    values_per_layer : sequence of arrays or of LayerStats, or a mapping label -> such a sequence
        One entry per layer: raw values (e.g. ``ForwardPass.activations``) or
        :class:`~course_lib.network.LayerStats` (e.g. ``ForwardPass.activation_stats``; their
        fixed bins are used). A mapping overlays several series (e.g. schemes) with a legend.
    kind : {"activations", "preactivations", "gradients", "weights", "weight gradients"}
        Sets the x-axis label.
    bins, hist_range : int, (float, float)
        Bins for raw values; the default range covers all values of all layers (shared bins).
    layers : sequence of int, optional
        0-based layer indices to show (default all); panels are labelled 1-based.
    ncols : int, optional
        Panels per row (default up to 5).
    density : bool
        Normalize each histogram to unit area (so layers of different sizes compare).
    logy : bool
        Logarithmic count axis.

    Returns
    -------
    CourseFigure
        ``len(layers)`` axes (plus hidden spare cells of the grid), no titles.

    Notes
    -----
    Chapter: "Why initialization matters" (book/why_init.md), Glorot & Bengio's per-layer
    histograms (book/papers/glorot2010.md).
    """
    check_choice(kind, KINDS, name="kind")
    series = _as_series(values_per_layer)
    n_layers = len(next(iter(series.values())))
    idx = list(range(n_layers))
    if layers is not None:
        idx = [int(i) for i in layers]
        bad = [i for i in idx if not 0 <= i < n_layers]
        if bad or not idx:
            raise ValueError(f"layers must be indices in 0..{n_layers - 1}, got {list(layers)!r}")
    if int(bins) < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    raw = [v for s in series.values() for v in s if not isinstance(v, LayerStats)]
    if hist_range is None and raw:
        lo = min(float(np.min(v)) for v in raw)
        hi = max(float(np.max(v)) for v in raw)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("values contain non-finite numbers; pass range=(low, high)")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        hist_range = (lo, hi)
    rows, cols = _grid(len(idx), ncols)
    fig = _new_figure((panel_size[0] * cols, panel_size[1] * rows))
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    flat: list[Axes] = list(axes.ravel())
    for ax in flat[len(idx) :]:
        ax.set_visible(False)
    for ax, i in zip(flat, idx, strict=False):
        for label, s in series.items():
            v = s[i]
            if isinstance(v, LayerStats):
                counts, edges = v.counts.astype(float), v.edges
            else:
                counts, edges = np.histogram(
                    np.ravel(np.asarray(v, dtype=float)), bins=int(bins), range=hist_range
                )
                counts = counts.astype(float)
            if density and counts.sum() > 0:
                counts = counts / (counts.sum() * np.diff(edges))
            ax.stairs(
                counts,
                edges,
                fill=len(series) == 1,
                alpha=0.8 if len(series) == 1 else 1.0,
                label=label,
            )
        ax.text(
            0.97, 0.92, f"layer {i + 1}", transform=ax.transAxes, ha="right", va="top", fontsize=8
        )
        if logy:
            ax.set_yscale("log")
    for ax in axes[-1]:
        if ax.get_visible():
            ax.set_xlabel(_XLABEL[kind], fontsize=8)
    for r in range(rows):
        axes[r, 0].set_ylabel("density" if density else "count", fontsize=8)
    if len(series) > 1:
        flat[0].legend(fontsize=7, loc="upper left")
    return fig


def weight_histograms(
    weights: Sequence[npt.ArrayLike] | Mapping[str, Sequence[npt.ArrayLike]],
    **kwargs: Any,
) -> CourseFigure:
    """Per-layer histograms of weight matrices: :func:`layer_histograms` with ``kind="weights"``."""
    kwargs.setdefault("kind", "weights")
    return layer_histograms(weights, **kwargs)


def std_by_depth(
    forward: Mapping[str, npt.ArrayLike],
    backward: Mapping[str, npt.ArrayLike] | None = None,
    *,
    logy: bool = True,
    forward_label: str = "std of the activations",
    backward_label: str = r"std of $\partial\mathcal{L}/\partial a$",
    band: bool = True,
    figsize: tuple[float, float] | None = None,
) -> CourseFigure:
    """Standard deviation per layer for several schemes/activations (one curve each).

    Parameters
    ----------
    forward : mapping label -> array of shape (layers,) or (replicates, layers)
        E.g. ``{"xavier, tanh": stats.activation_std}``. With replicates the curve is their
        geometric mean (arithmetic with ``logy=False``) and a band shows their min..max.
    backward : mapping, optional
        The same for the back-propagated gradients: a second panel beside the first.
    logy : bool
        Logarithmic y axis (the default: std grows or shrinks geometrically with depth).
    band : bool
        Shade the replicate range.

    Returns
    -------
    CourseFigure
        One axes (forward) or two (forward, backward); x is the layer (1-based); no titles.

    Notes
    -----
    A scheme that preserves the variance gives a flat line; :math:`\\sigma_l = c^l \\sigma_0`
    gives a straight line of slope :math:`\\log c` on the log axis. Chapter: "Comparing
    schemes" (book/comparing.md).
    """
    panels: list[tuple[Mapping[str, npt.ArrayLike], str]] = [(forward, forward_label)]
    if backward is not None:
        panels.append((backward, backward_label))
    for mapping, _ in panels:
        if not isinstance(mapping, Mapping) or not mapping:
            raise ValueError("forward (and backward) must be non-empty mappings label -> stds")
    size = figsize or (4.2 * len(panels), 3.2)
    fig = _new_figure(size)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (mapping, ylabel) in zip(axes, panels, strict=True):
        for label, values in mapping.items():
            arr = np.asarray(values, dtype=float)
            if arr.ndim == 1:
                arr = arr[None, :]
            if arr.ndim != 2 or arr.shape[1] == 0:
                raise ValueError(
                    f"stds for {label!r} must have shape (layers,) or (replicates, layers), "
                    f"got {np.shape(values)}"
                )
            layers = np.arange(1, arr.shape[1] + 1)
            if logy:
                with np.errstate(divide="ignore"):
                    center = np.exp(np.mean(np.log(arr), axis=0))
            else:
                center = arr.mean(axis=0)
            (line,) = ax.plot(layers, center, marker="o", markersize=3, label=_legend_label(label))
            if band and arr.shape[0] > 1:
                ax.fill_between(
                    layers, arr.min(axis=0), arr.max(axis=0), color=line.get_color(), alpha=0.2
                )
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("layer")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    return fig


def _history_series(h: History, key: str) -> npt.NDArray[np.float64]:
    return np.asarray(getattr(h, key), dtype=float)


def training_curves(
    histories: Sequence[History] | Mapping[str, History],
    *,
    metric: str = "loss",
    logy: bool | None = None,
    figsize: tuple[float, float] | None = None,
) -> CourseFigure:
    """Per-epoch curves of several training runs.

    Parameters
    ----------
    histories : sequence of History or mapping label -> History
        A sequence is labelled by each History's ``label``.
    metric : {"loss", "accuracy", "train_loss", "val_loss", "train_acc", "val_acc"}
        ``"loss"``/``"accuracy"`` draw training (solid) and validation (dashed, when present)
        in the same colour; the others draw that one series.
    logy : bool, optional
        Logarithmic y axis (default: on for losses).

    Returns
    -------
    CourseFigure
        One axes; x is the epoch (0 = before training); no title.

    Notes
    -----
    Chapter: "Initialization in practice" (book/practice.md).
    """
    check_choice(metric, METRICS, name="metric")
    if isinstance(histories, Mapping):
        items = [(_legend_label(k), h) for k, h in histories.items()]
    else:
        items = [(_legend_label(getattr(h, "label", "run")), h) for h in histories]
    if not items:
        raise ValueError("histories must hold at least one History")
    for label, h in items:
        if not isinstance(h, History):
            raise ValueError(
                f"{label!r} is a {type(h).__name__}, not a course_lib.training.History"
            )
    is_loss = "loss" in metric
    fig = _new_figure(figsize or (5.5, 3.6))
    ax = fig.add_subplot()
    for label, h in items:
        if metric in ("loss", "accuracy"):
            key = "loss" if metric == "loss" else "acc"
            (line,) = ax.plot(h.epoch, _history_series(h, f"train_{key}"), label=f"{label} (train)")
            val = _history_series(h, f"val_{key}")
            if np.isfinite(val).any():
                ax.plot(
                    h.epoch,
                    val,
                    linestyle="--",
                    color=line.get_color(),
                    label=f"{label} (validation)",
                )
        else:
            ax.plot(h.epoch, _history_series(h, metric), label=label)
    if logy if logy is not None else is_loss:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    names = {
        "loss": "cross-entropy loss",
        "accuracy": "accuracy",
        "train_loss": "training loss",
        "val_loss": "validation loss",
        "train_acc": "training accuracy",
        "val_acc": "validation accuracy",
    }
    ax.set_ylabel(names[metric])
    ax.legend(fontsize=7)
    return fig
