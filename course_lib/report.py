r"""A per-layer report of a network at initialization: is the signal preserved, or does it drift?

Every scheme of the course keeps two numbers roughly constant from layer to layer: the standard
deviation of the activations going forward and that of the gradients coming back. This module
measures both for *your* network and prints them as a table, one row per layer, like a framework's
model summary:

- :func:`init_report` takes the network as weight matrices (``(fan_in, fan_out)`` layout,
  optional biases) and activation names, runs :func:`course_lib.network.forward` and
  :func:`course_lib.network.backward` once on a batch ``X`` and summarizes what they return;
- :func:`report_from_arrays` builds the same report from per-layer arrays captured elsewhere,
  for example by PyTorch forward/backward hooks, a Keras model that returns its intermediate
  outputs, or a JAX function that returns its intermediates.

Both end in one summarizing function, so a report computed from hooks and one computed by
``course_lib`` from the same arrays are the same table.

The drift rule. The forward reference is the first layer and the forward flag looks at
:math:`\operatorname{std}(a^{(\ell)})/\operatorname{std}(a^{(1)})`; the backward reference is the
top *hidden* layer :math:`L-1` (the output layer's gradient is the upstream gradient itself, on the
loss's scale) and the flag looks at :math:`\operatorname{std}(\partial \mathcal L/\partial
a^{(\ell)}) / \operatorname{std}(\partial \mathcal L/\partial a^{(L-1)})`. A layer is flagged when
the ratio leaves :math:`[1/\text{factor}, \text{factor}]`. The output layer takes part in the
forward rule only when its activation is the hidden one (logits have their own scale).

Chapter: "Applying it to your own model" (book/papers/your_model.md).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import network as _net
from ._validation import RNGLike, as_generator, check_choice, check_positive

__all__ = [
    "WORKED_MODELS",
    "InitReport",
    "LayerReport",
    "init_report",
    "report_from_arrays",
    "worked_example_reports",
]

FloatArray = npt.NDArray[np.floating[Any]]

# The scale n_in * Var(w) that keeps the forward variance for each activation, and its name.
# Sigmoid has none: its mean 1/2 is not zero, so no weight variance makes the map a fixed point.
_TARGET_SCALE: dict[str, tuple[float, str] | None] = {
    "relu": (2.0, "He's 2/n_in"),
    "leaky_relu": (2.0, "Kaiming's 2/((1+a^2) n_in)"),
    "tanh": (1.0, "LeCun's 1/n_in"),
    "linear": (1.0, "LeCun's 1/n_in"),
    "selu": (1.0, "LeCun's 1/n_in"),
    "sigmoid": None,
}


@dataclass(frozen=True)
class LayerReport:
    """One layer's row of an :class:`InitReport`.

    Attributes
    ----------
    layer : int
        1-based position.
    name : str
        A label (``"layer 3"``, or the framework's layer name).
    activation : str or None
        The layer's activation (``None`` if unknown: then ``dead``/``saturated`` are nan).
    shape : tuple of int or None
        The weight's ``(fan_in, fan_out)``, if the weights were given.
    weight_std : float
        :math:`\\operatorname{std}(W^{(\\ell)})` (nan without weights).
    scale : float
        :math:`\\text{fan\\_in}\\cdot\\operatorname{Var}(W^{(\\ell)})`: 1 for LeCun, 2 for He, 1/3
        for PyTorch's ``nn.Linear`` default (nan without weights).
    preactivation_std, activation_std : float
        :math:`\\operatorname{std}(p^{(\\ell)})` and :math:`\\operatorname{std}(a^{(\\ell)})` over
        all entries (ddof 0; nan if not captured).
    grad_std : float
        :math:`\\operatorname{std}(\\partial \\mathcal L/\\partial a^{(\\ell)})` (the
        back-propagated gradient).
    preactivation_grad_std, weight_grad_std : float
        :math:`\\operatorname{std}(\\partial \\mathcal L/\\partial p^{(\\ell)})`,
        :math:`\\operatorname{std}(\\partial \\mathcal L/\\partial W^{(\\ell)})` (nan if not
        captured).
    dead : float
        Fraction of units (last axis) that are saturated for *every* example of the batch (a
        ReLU unit that outputs 0 for all of them gets no gradient at all).
    saturated : float
        Fraction of entries on a flat part of the activation
        (:func:`course_lib.network.saturation_fraction`; for ReLU, :math:`a \\le 0`).
    forward_ratio, backward_ratio : float
        ``activation_std`` over the forward reference's, ``grad_std`` over the backward
        reference's (nan where the layer takes no part in the rule).
    flags : tuple of str
        ``"forward"`` and/or ``"backward"`` when the ratio leaves ``[1/factor, factor]``.
    """

    layer: int
    name: str
    activation: str | None
    shape: tuple[int, int] | None
    weight_std: float
    scale: float
    preactivation_std: float
    activation_std: float
    grad_std: float
    preactivation_grad_std: float
    weight_grad_std: float
    dead: float
    saturated: float
    forward_ratio: float
    backward_ratio: float
    flags: tuple[str, ...]


@dataclass(frozen=True)
class InitReport:
    """Per-layer statistics of a network at initialization, with drift flags and a diagnosis.

    Attributes
    ----------
    layers : tuple of LayerReport
        One row per layer, input side first.
    factor : float
        The drift threshold: flagged when a ratio is above ``factor`` or below ``1/factor``.
    batch : int
        Number of examples the statistics were computed on.
    upstream : str
        Where the output gradient came from (e.g. ``"softmax cross-entropy"``).
    forward_reference, backward_reference : int or None
        The 1-based layers the ratios are taken against (``None``: no such rule).
    forward_per_layer, backward_per_layer : float
        Geometric-mean factor per layer of ``activation_std`` (reference to the last layer of
        the forward rule) and of ``grad_std`` (from the reference down to layer 1); nan with
        fewer than two layers in the rule.
    diagnosis : str
        One line: what drifts, by how much per layer, and what that means for ``Var(w)``.
    """

    layers: tuple[LayerReport, ...]
    factor: float
    batch: int
    upstream: str
    forward_reference: int | None
    backward_reference: int | None
    forward_per_layer: float
    backward_per_layer: float
    diagnosis: str

    @property
    def depth(self) -> int:
        """Number of layers."""
        return len(self.layers)

    def column(self, name: str) -> FloatArray:
        """One numeric attribute of every layer as an array, e.g. ``column("grad_std")``."""
        fields = [f for f in LayerReport.__dataclass_fields__ if f not in _NON_NUMERIC]
        check_choice(name, fields, name="column")
        return np.array([float(getattr(r, name)) for r in self.layers])

    @property
    def activation_std(self) -> FloatArray:
        """``std(a_l)`` per layer."""
        return self.column("activation_std")

    @property
    def grad_std(self) -> FloatArray:
        """``std(dL/da_l)`` per layer."""
        return self.column("grad_std")

    @property
    def flagged(self) -> list[int]:
        """1-based numbers of the layers with at least one flag."""
        return [r.layer for r in self.layers if r.flags]

    @property
    def ok(self) -> bool:
        """True when no layer is flagged."""
        return not self.flagged

    def table(self) -> str:
        """The report as fixed-width text: a header, one line per layer, the diagnosis."""
        head = (
            "layer",
            "name",
            "shape",
            "act",
            "n·Var(W)",
            "std(z)",
            "std(a)",
            "dead",
            "sat",
            "std(dL/da)",
            "std(dL/dW)",
            "flags",
        )
        rows = [head]
        for r in self.layers:
            flags = []
            if "forward" in r.flags:
                flags.append(f"fwd {r.forward_ratio:.2g}x")
            if "backward" in r.flags:
                flags.append(f"bwd {r.backward_ratio:.2g}x")
            rows.append(
                (
                    str(r.layer),
                    r.name,
                    "?" if r.shape is None else f"{r.shape[0]}x{r.shape[1]}",
                    r.activation or "?",
                    _fmt(r.scale, ".2f"),
                    _fmt(r.preactivation_std, ".3g"),
                    _fmt(r.activation_std, ".3g"),
                    _fmt(r.dead, ".0%"),
                    _fmt(r.saturated, ".0%"),
                    _fmt(r.grad_std, ".3g"),
                    _fmt(r.weight_grad_std, ".3g"),
                    ", ".join(flags),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = [
            f"Initialization report: {self.depth} layers, batch {self.batch}, upstream gradient: "
            f"{self.upstream}",
            f"flags: std outside x{1 / self.factor:.3g}..x{self.factor:.3g} of layer "
            f"{self.forward_reference or '-'} (fwd, std(a)) or of layer "
            f"{self.backward_reference or '-'} (bwd, std(dL/da))",
        ]
        for k, row in enumerate(rows):
            cells = [
                c.ljust(w) if i in (1, 2, 3, 11) else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
            if k == 0:
                lines.append("-" * len(lines[-1]))
        lines.append(f"Diagnosis: {self.diagnosis}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


_NON_NUMERIC = ("name", "activation", "shape", "flags")


def _fmt(x: float, spec: str) -> str:
    if math.isnan(x):
        return "-"
    return format(x, spec)


# --------------------------------------------------------------------------------------------
# From weights: one forward and one backward pass of course_lib.network
# --------------------------------------------------------------------------------------------


def _split_activations(activation: str | Sequence[str], depth: int) -> tuple[str, str]:
    """Hidden and output activation from one name or one name per layer."""
    if isinstance(activation, str):
        return activation, activation
    names = list(activation)
    if len(names) != depth:
        raise ValueError(
            f"got {len(names)} activation names for {depth} weight matrices: give one name, "
            "or one per layer"
        )
    hidden = set(names[:-1])
    if len(hidden) > 1:
        raise ValueError(
            f"the hidden layers use different activations {names[:-1]}; course_lib.network "
            "applies one hidden activation (and its own output activation): use "
            "report_from_arrays with arrays captured from your framework instead"
        )
    return (names[0] if depth > 1 else names[-1]), names[-1]


def init_report(
    X: npt.ArrayLike,
    weights: Sequence[npt.ArrayLike],
    activation: str | Sequence[str],
    *,
    biases: Sequence[npt.ArrayLike | None] | None = None,
    output_activation: str | None = None,
    labels: npt.ArrayLike | None = None,
    grad_output: npt.ArrayLike | None = None,
    rng: RNGLike = None,
    factor: float = 2.0,
    names: Sequence[str] | None = None,
    negative_slope: float = 0.01,
) -> InitReport:
    r"""Report every layer's activation and gradient statistics of a network at initialization.

    Parameters
    ----------
    X : array_like, shape (batch, fan_in)
        A batch of (preprocessed) inputs, as the network will see them.
    weights : sequence of array_like
        ``weights[l]`` of shape ``(fan_in_l, fan_out_l)`` (PyTorch's ``(out, in)`` weight is
        ``weight.T`` here).
    activation : str or sequence of str
        The hidden activation (one of :data:`course_lib.network.ACTIVATIONS`), or one name per
        layer (the hidden ones must agree; the last is the output activation).
    biases : sequence of (array_like or None), optional
        One bias vector (or ``None``) per layer.
    output_activation : str, optional
        The last layer's activation (``"linear"`` for logits); default: ``activation``.
    labels : array_like, optional
        Integer class labels of shape ``(batch,)``: the upstream gradient is then that of the
        mean softmax cross-entropy of the output (:func:`course_lib.network.softmax_cross_entropy`).
    grad_output : array_like, optional
        An upstream gradient ``dL/d(output)`` of the output's shape, used as given.
    rng : numpy.random.Generator, seed or None
        Keyword-only (SPEC 7). Without ``labels`` and ``grad_output`` the upstream gradient is
        drawn from it, :math:`G_{bj} \sim N(0, 1)`, once, after nothing else.
    factor : float, default 2.0
        Drift threshold (> 1): a ratio above ``factor`` or below ``1/factor`` is flagged.
    names : sequence of str, optional
        Layer labels (default ``"layer 1"``, ...).
    negative_slope : float
        For ``leaky_relu``.

    Returns
    -------
    InitReport

    Raises
    ------
    ValueError
        Unknown activation, shapes that do not chain (named), both ``labels`` and
        ``grad_output``, labels out of range, ``factor <= 1``.

    Notes
    -----
    One :func:`course_lib.network.forward` with ``keep="all"`` and one
    :func:`course_lib.network.backward` give
    :math:`p^{(\ell)} = a^{(\ell-1)}W^{(\ell)} + b^{(\ell)}`, :math:`a^{(\ell)} = f(p^{(\ell)})`,
    :math:`\partial \mathcal L/\partial a^{(\ell)}` and
    :math:`\partial \mathcal L/\partial W^{(\ell)}`; the statistics are those of
    :func:`report_from_arrays`. For a ReLU layer of fan-in :math:`n`,

    .. math::

        \frac{\operatorname{Var}(p^{(\ell+1)})}{\operatorname{Var}(p^{(\ell)})}
        = \frac{n \operatorname{Var}(w)}{2},

    so a per-layer factor :math:`r` of the standard deviation means
    :math:`\operatorname{Var}(w) \approx r^2 \cdot 2/n`: the diagnosis states :math:`r^2` as a
    multiple of the scheme that preserves the variance for the activation (He for ReLU, LeCun
    for tanh, linear and SELU). Chapter: "Applying it to your own model"
    (book/papers/your_model.md).
    """
    depth = len(weights)
    if depth == 0:
        raise ValueError("weights must contain at least one matrix")
    hidden, out = _split_activations(activation, depth)
    if output_activation is not None:
        out = output_activation
    if labels is not None and grad_output is not None:
        raise ValueError("give labels (softmax cross-entropy) or grad_output, not both")
    fac = _check_factor(factor)
    fp = _net.forward(
        X,
        weights,
        hidden,
        biases=biases,
        output_activation=out,
        keep="all",
        negative_slope=negative_slope,
    )
    if labels is not None:
        _, g = _net.softmax_cross_entropy(fp.output, labels)
        upstream = "softmax cross-entropy"
    elif grad_output is not None:
        g = np.asarray(grad_output, dtype=np.float64)
        upstream = "given"
    else:
        g = as_generator(rng).standard_normal(fp.output.shape)
        upstream = "N(0, 1) random"
    bp = _net.backward(fp, weights, g, keep="all")
    acts = [hidden] * (depth - 1) + [out]
    return _summarize(
        activations=fp.activations,
        activation_names=acts,
        preactivations=fp.preactivations,
        grads=bp.activation_grads,
        preactivation_grads=bp.preactivation_grads,
        weights=[np.asarray(w) for w in weights],
        weight_grads=bp.weight_grads,
        names=names,
        factor=fac,
        upstream=upstream,
        negative_slope=negative_slope,
    )


# --------------------------------------------------------------------------------------------
# From arrays captured elsewhere (framework hooks)
# --------------------------------------------------------------------------------------------


def report_from_arrays(
    activations: Sequence[npt.ArrayLike],
    *,
    activation: str | Sequence[str | None] | None = None,
    output_activation: str | None = None,
    preactivations: Sequence[npt.ArrayLike] | None = None,
    grads: Sequence[npt.ArrayLike] | None = None,
    preactivation_grads: Sequence[npt.ArrayLike] | None = None,
    weights: Sequence[npt.ArrayLike] | None = None,
    weight_grads: Sequence[npt.ArrayLike] | None = None,
    names: Sequence[str] | None = None,
    factor: float = 2.0,
    upstream: str = "captured",
    negative_slope: float = 0.01,
) -> InitReport:
    r"""Build an :class:`InitReport` from per-layer arrays captured by framework hooks.

    Parameters
    ----------
    activations : sequence of array_like
        The output :math:`a^{(\ell)}` of every layer, input side first, each of shape
        ``(batch, ..., units)`` (units on the last axis, as in Keras and JAX; move PyTorch's
        convolution channels there with ``moveaxis(1, -1)``).
    activation : str or sequence of (str or None), optional
        The hidden activation (one of :data:`course_lib.network.ACTIVATIONS`) or one name (or
        ``None`` for "not one of them") per layer. Without it ``dead`` and ``saturated`` are nan.
    output_activation : str, optional
        The last layer's activation when ``activation`` is one name.
    preactivations, grads, preactivation_grads : sequence of array_like, optional
        :math:`p^{(\ell)}`, :math:`\partial \mathcal L/\partial a^{(\ell)}`,
        :math:`\partial \mathcal L/\partial p^{(\ell)}`, one per layer, each of the shape of
        ``activations[l]``. Without ``grads`` there is no backward rule (the Keras NumPy backend has
        no gradients).
    weights, weight_grads : sequence of array_like, optional
        :math:`W^{(\ell)}` and :math:`\partial \mathcal L/\partial W^{(\ell)}` in the
        ``(fan_in, fan_out)`` layout (transpose PyTorch's ``(out, in)`` weights).
    names : sequence of str, optional
        Layer labels.
    factor : float
        Drift threshold (> 1).
    upstream : str
        How the output gradient was made (shown in the table's header).

    Returns
    -------
    InitReport

    Raises
    ------
    ValueError
        No layers; a list whose length differs from ``activations``; an array whose shape
        differs from its layer's activation (or, for weights, whose ``fan_out`` differs from
        the layer's units, or whose ``fan_in`` differs from the previous layer's units); an
        unknown activation name; ``factor <= 1``.

    Notes
    -----
    Standard deviations are over all entries with ddof 0 (as in
    :func:`course_lib.network.layer_stats`); a unit is dead when its activation is saturated
    (:func:`course_lib.network.saturation_fraction`) for every example and position. Chapter:
    "Applying it to your own model" (book/papers/your_model.md).
    """
    depth = len(activations)
    if depth == 0:
        raise ValueError("activations must contain at least one array (one per layer)")
    acts = [_as_array(a, f"activations[{i}]") for i, a in enumerate(activations)]
    for i, a in enumerate(acts):
        if a.ndim < 2:
            raise ValueError(
                f"activations[{i}] must have a batch axis and a unit axis, got shape {a.shape}"
            )
    if any(a.shape[0] != acts[0].shape[0] for a in acts):
        raise ValueError(
            "every layer's activations must have the same batch size, got "
            f"{[a.shape[0] for a in acts]}"
        )
    act_names = _activation_names(activation, output_activation, depth)

    def same_shapes(arrays: Sequence[npt.ArrayLike] | None, what: str) -> list[FloatArray] | None:
        if arrays is None:
            return None
        if len(arrays) != depth:
            raise ValueError(f"got {len(arrays)} {what} for {depth} layers: give one per layer")
        out = []
        for i, (x, a) in enumerate(zip(arrays, acts, strict=True)):
            arr = _as_array(x, f"{what}[{i}]")
            if arr.shape != a.shape:
                raise ValueError(
                    f"shape mismatch: {what}[{i}] has shape {arr.shape}, activations[{i}] has "
                    f"shape {a.shape}"
                )
            out.append(arr)
        return out

    pre = same_shapes(preactivations, "preactivations")
    g = same_shapes(grads, "grads")
    dz = same_shapes(preactivation_grads, "preactivation_grads")
    ws: list[FloatArray] | None = None
    if weights is not None:
        if len(weights) != depth:
            raise ValueError(f"got {len(weights)} weights for {depth} layers: give one per layer")
        ws = []
        for i, w in enumerate(weights):
            W = _as_array(w, f"weights[{i}]")
            units = acts[i].shape[-1]
            if W.ndim != 2 or W.shape[1] != units:
                raise ValueError(
                    f"shape mismatch: weights[{i}] has shape {W.shape}, expected (fan_in, "
                    f"{units}) for a layer with {units} units (transpose PyTorch's (out, in) "
                    "weights)"
                )
            if i > 0 and W.shape[0] != acts[i - 1].shape[-1]:
                raise ValueError(
                    f"shape mismatch: weights[{i}] has shape {W.shape}, so it expects "
                    f"{W.shape[0]} inputs, but layer {i} has {acts[i - 1].shape[-1]} units"
                )
            ws.append(W)
    dW: list[FloatArray] | None = None
    if weight_grads is not None:
        if ws is None:
            raise ValueError("weight_grads need the weights too (to check their shapes)")
        if len(weight_grads) != depth:
            raise ValueError(
                f"got {len(weight_grads)} weight_grads for {depth} layers: give one per layer"
            )
        dW = []
        for i, (x, W) in enumerate(zip(weight_grads, ws, strict=True)):
            arr = _as_array(x, f"weight_grads[{i}]")
            if arr.shape != W.shape:
                raise ValueError(
                    f"shape mismatch: weight_grads[{i}] has shape {arr.shape}, weights[{i}] has "
                    f"shape {W.shape}"
                )
            dW.append(arr)
    return _summarize(
        activations=acts,
        activation_names=act_names,
        preactivations=pre,
        grads=g,
        preactivation_grads=dz,
        weights=ws,
        weight_grads=dW,
        names=names,
        factor=_check_factor(factor),
        upstream=str(upstream),
        negative_slope=negative_slope,
    )


def _as_array(x: npt.ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _activation_names(
    activation: str | Sequence[str | None] | None, output_activation: str | None, depth: int
) -> list[str | None]:
    if activation is None or isinstance(activation, str):
        names: list[str | None] = [activation] * depth
        if output_activation is not None:
            names[-1] = output_activation
    else:
        names = list(activation)
        if len(names) != depth:
            raise ValueError(
                f"got {len(names)} activation names for {depth} layers: give one name, or one "
                "per layer"
            )
        if output_activation is not None:
            raise ValueError("give output_activation only with a single activation name")
    for i, n in enumerate(names):
        if n is not None:
            check_choice(n, _net.ACTIVATIONS, name=f"activation of layer {i + 1}")
    return names


def _check_factor(factor: float) -> float:
    f = check_positive(factor, name="factor")
    if f <= 1.0:
        raise ValueError(f"factor must be greater than 1 (e.g. 2.0), got {factor!r}")
    return f


# --------------------------------------------------------------------------------------------
# The one summarizing function
# --------------------------------------------------------------------------------------------


def _std(x: FloatArray | None) -> float:
    """std over all entries, ddof 0: the number :func:`course_lib.network.layer_stats` reports
    (computed here without its histogram, which costs three times the std)."""
    if x is None:
        return float("nan")
    return float(np.asarray(x, dtype=np.float64).std())


@np.errstate(over="ignore", invalid="ignore")
def _summarize(
    *,
    activations: Sequence[FloatArray],
    activation_names: Sequence[str | None],
    preactivations: Sequence[FloatArray] | None,
    grads: Sequence[FloatArray] | None,
    preactivation_grads: Sequence[FloatArray] | None,
    weights: Sequence[FloatArray] | None,
    weight_grads: Sequence[FloatArray] | None,
    names: Sequence[str] | None,
    factor: float,
    upstream: str,
    negative_slope: float,
) -> InitReport:
    depth = len(activations)
    if names is None:
        labels = [f"layer {i + 1}" for i in range(depth)]
    else:
        labels = [str(n) for n in names]
        if len(labels) != depth:
            raise ValueError(f"got {len(labels)} names for {depth} layers: give one per layer")
    nan = float("nan")
    a_std = np.array([_std(a) for a in activations])
    g_std = np.array([_std(g) for g in grads]) if grads is not None else np.full(depth, nan)

    # Forward rule: layers with the hidden activation, against layer 1.
    fwd_layers = list(range(depth - 1))
    if activation_names[-1] == activation_names[0]:
        fwd_layers.append(depth - 1)
    # Backward rule: hidden layers 1..L-1, against the top hidden layer L-1.
    bwd_layers = list(range(depth - 1)) if grads is not None else []
    if len(fwd_layers) < 2:
        fwd_layers = []
    if len(bwd_layers) < 2:
        bwd_layers = []
    fwd_ref = fwd_layers[0] if fwd_layers else None
    bwd_ref = bwd_layers[-1] if bwd_layers else None

    rows: list[LayerReport] = []
    for i, a in enumerate(activations):
        act = activation_names[i]
        if act is not None:
            # the per-entry test of network.saturation_fraction, kept per unit for "dead"
            mask = _net._saturated_mask(np.asarray(a, dtype=np.float64), act, 0.05)
            sat = _net.saturation_fraction(a, act, negative_slope=negative_slope)
            units = mask.reshape(-1, a.shape[-1])
            dead = float(np.mean(np.all(units, axis=0))) if units.shape[0] else nan
        else:
            sat = dead = nan
        W = None if weights is None else weights[i]
        w_std = nan if W is None else _std(W)
        scale = nan if W is None else W.shape[0] * w_std * w_std
        f_ratio = _ratio(a_std, i, fwd_ref) if i in fwd_layers else nan
        b_ratio = _ratio(g_std, i, bwd_ref) if i in bwd_layers else nan
        flags = tuple(
            kind
            for kind, r, used in (
                ("forward", f_ratio, i in fwd_layers),
                ("backward", b_ratio, i in bwd_layers),
            )
            # nan: the layer's or the reference's std is 0 or overflowed
            if used and (math.isnan(r) or not 1.0 / factor <= r <= factor)
        )
        rows.append(
            LayerReport(
                layer=i + 1,
                name=labels[i],
                activation=act,
                shape=None if W is None else (int(W.shape[0]), int(W.shape[1])),
                weight_std=w_std,
                scale=float(scale),
                preactivation_std=_std(None if preactivations is None else preactivations[i]),
                activation_std=float(a_std[i]),
                grad_std=float(g_std[i]),
                preactivation_grad_std=_std(
                    None if preactivation_grads is None else preactivation_grads[i]
                ),
                weight_grad_std=_std(None if weight_grads is None else weight_grads[i]),
                dead=dead,
                saturated=sat,
                forward_ratio=f_ratio,
                backward_ratio=b_ratio,
                flags=flags,
            )
        )
    f_per = _per_layer(a_std, fwd_layers[0], fwd_layers[-1]) if fwd_layers else nan
    b_per = _per_layer(g_std, bwd_layers[-1], bwd_layers[0]) if bwd_layers else nan
    batch = int(activations[0].shape[0])
    hidden_act = activation_names[0]
    diagnosis = _diagnose(rows, f_per, b_per, hidden_act, factor, negative_slope)
    return InitReport(
        layers=tuple(rows),
        factor=factor,
        batch=batch,
        upstream=upstream,
        forward_reference=None if fwd_ref is None else fwd_ref + 1,
        backward_reference=None if bwd_ref is None else bwd_ref + 1,
        forward_per_layer=f_per,
        backward_per_layer=b_per,
        diagnosis=diagnosis,
    )


def _ratio(stds: FloatArray, i: int, ref: int | None) -> float:
    if ref is None:
        return float("nan")
    return float(stds[i] / stds[ref])


def _per_layer(stds: FloatArray, start: int, end: int) -> float:
    """Geometric-mean factor per layer from layer ``start`` to layer ``end`` (0-based)."""
    steps = abs(end - start)
    a, b = float(stds[start]), float(stds[end])
    if steps == 0 or not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        return float("nan")
    return float((b / a) ** (1.0 / steps))


def _diagnose(
    rows: Sequence[LayerReport],
    f_per: float,
    b_per: float,
    act: str | None,
    factor: float,
    slope: float,
) -> str:
    """One line: what drifts and by how much per layer, then the likely cause."""
    fwd = [r.layer for r in rows if "forward" in r.flags]
    bwd = [r.layer for r in rows if "backward" in r.flags]
    parts: list[str] = []
    for flagged, per, what in (
        (fwd, f_per, "activation std"),
        (bwd, b_per, "gradient std (going down)"),
    ):
        if not flagged:
            continue
        if math.isnan(per):
            parts.append(f"{what} overflows or vanishes (layers {_span(flagged)})")
        else:
            verb = "shrinks" if per < 1 else "grows"
            parts.append(f"{what} {verb} by ~{per:.2f} per layer (layers {_span(flagged)} flagged)")
    if not parts:
        dead = [r for r in rows if not math.isnan(r.dead) and r.dead >= 0.5]
        if dead:
            worst = max(dead, key=lambda r: r.dead)
            return (
                f"no std drifts beyond x{factor:g}, but {worst.dead:.0%} of the units of layer "
                f"{worst.layer} are dead on this batch (saturated for every example)"
            )
        return f"no layer's std drifts beyond x{factor:g} of its reference layer"
    nan = float("nan")
    return "; ".join(parts) + _cause(rows, f_per if fwd else nan, b_per if bwd else nan, act, slope)


def _cause(
    rows: Sequence[LayerReport], f_per: float, b_per: float, act: str | None, slope: float
) -> str:
    """The likely cause: the weights' measured scale against the activation's, if known."""
    if act == "sigmoid":
        return ": sigmoid has no variance-preserving scale (its mean is 1/2); use tanh or ReLU"
    target = _TARGET_SCALE.get(act) if act is not None else None
    if target is None:
        return ""
    want, scheme = target
    if act == "leaky_relu":
        want = 2.0 / (1.0 + slope * slope)  # E[f(z)^2] = (1 + a^2) Var(z) / 2
    hidden = [r.scale for r in rows[:-1] if not math.isnan(r.scale)]
    if hidden:
        scale = float(np.median(hidden))
        ratio = scale / want
        msg = (
            f": Var(w) is {ratio:.2f}x {scheme} (median fan_in·Var(w) = {scale:.2f}, {act} "
            f"wants {want:.3g})"
        )
        if 1 / 1.25 <= ratio <= 1.25:
            msg += "; the scale is right, so look at the biases, the inputs or saturation"
        return msg
    # Without weights, infer the scale from the measured factor: r = sqrt(scale / want).
    per = b_per if not math.isnan(b_per) else f_per
    if math.isnan(per):
        return ""
    return f": Var(w) is about {per * per:.2f}x {scheme}"


def _span(layers: Sequence[int]) -> str:
    if len(layers) == 1:
        return str(layers[0])
    if list(layers) == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}"
    return ", ".join(str(x) for x in layers)


# --------------------------------------------------------------------------------------------
# The chapter's worked example (sampling: kept apart from the deterministic report above)
# --------------------------------------------------------------------------------------------

WORKED_MODELS: tuple[str, ...] = ("torch_default", "lecun_normal", "he_normal")
"""The models of :func:`worked_example_reports`: PyTorch's ``nn.Linear`` default, LeCun normal
(the scale of Flax's default and, for square layers, of Keras' Glorot default) and He normal
with zero biases (the fix)."""


def _worked_network(
    model: str, sizes: Sequence[int], gen: np.random.Generator
) -> tuple[list[npt.NDArray[np.float64]], list[npt.NDArray[np.float64] | None]]:
    from .initializers import get_initializer, torch_linear_default

    weights: list[npt.NDArray[np.float64]] = []
    biases: list[npt.NDArray[np.float64] | None] = []
    for n_in, n_out in itertools.pairwise(sizes):
        if model == "torch_default":
            w, b = torch_linear_default(n_in, n_out, rng=gen)
            weights.append(w.T)  # PyTorch's (out, in) -> the course's (in, out)
            biases.append(b)
        else:
            weights.append(np.asarray(get_initializer(model)((n_in, n_out), rng=gen)))
            biases.append(np.zeros(n_out))
    return weights, biases


def worked_example_reports(
    *,
    rng: RNGLike,
    n_seeds: int = 5,
    depth: int = 20,
    width: int = 256,
    batch: int = 256,
    models: Sequence[str] = WORKED_MODELS,
) -> dict[str, list[InitReport]]:
    r"""Reports of a deep ReLU MLP on the digits, per model and seed: the chapter's example.

    Parameters
    ----------
    rng : numpy.random.Generator or seed
        Keyword-only; split with ``rng.spawn(n_seeds)`` (``course_lib.over_seeds``).
        Each child draws a batch of standardized digits, then each model's weights in the order
        of ``models``.
    n_seeds : int
        Independent repetitions (the book uses 5).
    depth, width : int
        Hidden layers and their width; the net is ``64 -> width x depth -> 10`` with ReLU
        hidden layers and linear logits.
    batch : int
        Examples per batch (at most 1797).
    models : sequence of str
        Names from :data:`WORKED_MODELS` or :data:`course_lib.initializers.INITIALIZERS`
        (those get zero biases).

    Returns
    -------
    dict
        ``{model: [InitReport per seed]}``; the upstream gradient is the softmax cross-entropy
        of the batch's labels.

    Notes
    -----
    For ReLU layers of fan-in :math:`n` the gradient std changes by
    :math:`\sqrt{n\operatorname{Var}(w)/2}` per layer: :math:`1/\sqrt 6` for PyTorch's default
    (:math:`n\operatorname{Var}(w) = 1/3`), :math:`1/\sqrt 2` for LeCun, 1 for He. Chapter:
    "Applying it to your own model" (book/papers/your_model.md).
    """
    from .data import load_digits, standardize
    from .seeds import over_seeds

    names = [str(m) for m in models]
    for m in names:
        if m != "torch_default":
            from .initializers import get_initializer

            get_initializer(m)  # unknown names fail here, before any drawing
    if isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    X, y = load_digits()
    if batch > X.shape[0]:
        raise ValueError(f"batch must be at most {X.shape[0]} (the digits), got {batch}")
    Xs = standardize(X)[0]
    sizes = [X.shape[1]] + [int(width)] * int(depth) + [10]

    def one(gen: np.random.Generator) -> dict[str, InitReport]:
        idx = gen.choice(X.shape[0], size=int(batch), replace=False)
        out = {}
        for m in names:
            ws, bs = _worked_network(m, sizes, gen)
            out[m] = init_report(
                Xs[idx], ws, "relu", biases=bs, output_activation="linear", labels=y[idx]
            )
        return out

    runs = over_seeds(one, n_seeds=n_seeds, rng=rng)
    return {m: [run[m] for run in runs] for m in names}
