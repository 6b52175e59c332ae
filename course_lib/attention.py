r"""A small NumPy transformer at initialization: attention, LayerNorm, GELU MLP, pre-/post-LN.

Deterministic kernels with analytic backward passes (:func:`layer_norm`, :func:`gelu`,
:func:`attention_forward` / :func:`attention_backward`, :func:`transformer_forward` /
:func:`transformer_backward`), checked against finite differences in the tests; the sampling
lives in :func:`init_transformer`, :func:`embed_tokens`, :func:`logit_statistics` and
:func:`stack_statistics`, each with a keyword-only ``rng`` (SPEC 7).

Layout: activations are ``(batch, tokens, d_model)`` and every weight is ``(fan_in, fan_out)``
so a projection is ``x @ W`` (the course's convention). Biases are omitted: GPT-2 initializes
them to zero, and at initialization they change nothing.

Chapter: "Transformers" (book/papers/transformers.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt

from . import initializers as _init
from ._validation import RNGLike, as_generator, check_choice

__all__ = [
    "AttentionCache",
    "LayerWeights",
    "StackStatistics",
    "TransformerTrace",
    "attention_backward",
    "attention_entropy",
    "attention_forward",
    "embed_tokens",
    "gelu",
    "gelu_derivative",
    "init_transformer",
    "layer_norm",
    "layer_norm_backward",
    "ln_placement_comparison",
    "logit_statistics",
    "logit_sweep",
    "residual_scaling_comparison",
    "stack_statistics",
    "transformer_backward",
    "transformer_forward",
]

FloatArray = npt.NDArray[np.float64]

#: Initialization conventions :func:`init_transformer` knows.
INITS = ("gpt2", "xavier")
#: Where the LayerNorm sits: before each sub-layer (GPT-2) or after the residual sum (Vaswani).
NORMS = ("pre", "post")

_EPS = 1e-5
_C = math.sqrt(2.0 / math.pi)


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


def gelu(x: npt.ArrayLike) -> FloatArray:
    r"""GELU in the tanh form GPT-2 uses.

    Notes
    -----
    :math:`\operatorname{gelu}(x) = \tfrac12 x\,(1 + \tanh(\sqrt{2/\pi}\,(x + 0.044715 x^3)))`,
    within :math:`10^{-3}` of :math:`x\Phi(x)`. Chapter: "Transformers"
    (book/papers/transformers.md).
    """
    z = np.asarray(x, dtype=np.float64)
    out: FloatArray = 0.5 * z * (1.0 + np.tanh(_C * (z + 0.044715 * z**3)))
    return out


def gelu_derivative(x: npt.ArrayLike) -> FloatArray:
    r"""Derivative of :func:`gelu`.

    Notes
    -----
    With :math:`t = \tanh(\sqrt{2/\pi}(x + 0.044715x^3))`,
    :math:`\operatorname{gelu}'(x) = \tfrac12(1+t) + \tfrac12 x (1-t^2)\sqrt{2/\pi}\,
    (1 + 3\cdot 0.044715\,x^2)`.
    """
    z = np.asarray(x, dtype=np.float64)
    t = np.tanh(_C * (z + 0.044715 * z**3))
    out: FloatArray = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _C * (1.0 + 3 * 0.044715 * z * z)
    return out


def layer_norm(
    x: npt.ArrayLike, eps: float = _EPS
) -> tuple[FloatArray, tuple[FloatArray, FloatArray]]:
    r"""LayerNorm over the last axis with gain 1 and shift 0 (their values at initialization).

    Returns
    -------
    y : ndarray
        :math:`u = (x - \bar x)/\sqrt{\overline{(x-\bar x)^2} + \epsilon}`.
    cache : tuple
        ``(u, s)`` for :func:`layer_norm_backward`.

    Notes
    -----
    Every row of the output has mean 0 and mean square :math:`\approx 1` whatever the scale of
    :math:`x`: a LayerNorm resets the scale of the signal it sees. Chapter: "Transformers"
    (book/papers/transformers.md).
    """
    z = np.asarray(x, dtype=np.float64)
    mu = z.mean(axis=-1, keepdims=True)
    s = np.sqrt(z.var(axis=-1, keepdims=True) + eps)
    u = (z - mu) / s
    return u, (u, s)


def layer_norm_backward(dy: FloatArray, cache: tuple[FloatArray, FloatArray]) -> FloatArray:
    r"""Input gradient of :func:`layer_norm`.

    Notes
    -----
    :math:`\partial\mathcal L/\partial x = \big(d - \bar d - u\,\overline{d\,u}\big)/s` with
    :math:`d = \partial\mathcal L/\partial u` and bars the means over the normalized axis. The
    factor :math:`1/s` is why a LayerNorm after a large residual stream shrinks the gradient that
    passes through it (post-LN).
    """
    u, s = cache
    out: FloatArray = (
        dy - dy.mean(axis=-1, keepdims=True) - u * (dy * u).mean(axis=-1, keepdims=True)
    ) / s
    return out


def _softmax(s: FloatArray) -> FloatArray:
    e = np.exp(s - np.max(s, axis=-1, keepdims=True))
    out: FloatArray = e / e.sum(axis=-1, keepdims=True)
    return out


def attention_entropy(p: npt.ArrayLike) -> FloatArray:
    r"""Entropy :math:`-\sum_j p_j \ln p_j` (nats) of every attention row (last axis).

    A uniform row over :math:`T` keys has entropy :math:`\ln T`; a saturated (one-hot) row has 0.
    """
    pa = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = -np.sum(np.where(pa > 0, pa * np.log(pa), 0.0), axis=-1)
    return out


@dataclass
class AttentionCache:
    """What :func:`attention_backward` needs from :func:`attention_forward`."""

    x: FloatArray
    q: FloatArray
    k: FloatArray
    v: FloatArray
    p: FloatArray
    a: FloatArray
    scale: float
    n_heads: int


def _split(x: FloatArray, h: int) -> FloatArray:
    b, t, d = x.shape
    return x.reshape(b, t, h, d // h).transpose(0, 2, 1, 3)


def _merge(x: FloatArray) -> FloatArray:
    b, h, t, dk = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * dk)


def attention_forward(
    x: npt.ArrayLike,
    wq: FloatArray,
    wk: FloatArray,
    wv: FloatArray,
    wo: FloatArray,
    *,
    n_heads: int = 1,
    causal: bool = False,
    scaled: bool = True,
) -> tuple[FloatArray, AttentionCache]:
    r"""Multi-head self-attention :math:`\operatorname{softmax}(QK^\top/\sqrt{d_k})V W_O`.

    Parameters
    ----------
    x : array_like, shape (batch, tokens, d_model)
    wq, wk, wv, wo : ndarray, shape (d_model, d_model)
        Projections (``x @ wq`` etc.); heads are consecutive blocks of ``d_model // n_heads``
        columns.
    n_heads : int
        Must divide ``d_model``.
    causal : bool
        Token ``i`` attends only to tokens ``j <= i``.
    scaled : bool
        Divide the logits by :math:`\sqrt{d_k}` (``False`` shows what happens without it).

    Returns
    -------
    out : ndarray, shape (batch, tokens, d_model)
    cache : AttentionCache
        Includes the attention probabilities ``p``, shape (batch, heads, tokens, tokens).

    Notes
    -----
    For a query and a key with independent zero-mean entries,
    :math:`\operatorname{Var}(q\cdot k) = d_k \operatorname{Var}(q)\operatorname{Var}(k)`: the
    rule :math:`\operatorname{Var}(p) = n\operatorname{Var}(w)\operatorname{Var}(x)` with
    :math:`n = d_k`. Dividing by :math:`\sqrt{d_k}` makes the logits' variance
    :math:`\operatorname{Var}(q)\operatorname{Var}(k)`, independent of the head size.
    Deterministic. Chapter: "Transformers" (book/papers/transformers.md).
    """
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim != 3:
        raise ValueError(f"x must have shape (batch, tokens, d_model), got shape {xa.shape}")
    d = xa.shape[-1]
    for name, w in (("wq", wq), ("wk", wk), ("wv", wv), ("wo", wo)):
        if w.shape != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}) for d_model = {d}, got {w.shape}")
    h = int(n_heads)
    if h < 1 or d % h:
        raise ValueError(f"n_heads = {n_heads!r} must be a positive divisor of d_model = {d}")
    c = 1.0 / math.sqrt(d // h) if scaled else 1.0
    q, k, v = _split(xa @ wq, h), _split(xa @ wk, h), _split(xa @ wv, h)
    s = (q @ k.transpose(0, 1, 3, 2)) * c
    if causal:
        t = xa.shape[1]
        s = np.where(np.tril(np.ones((t, t), dtype=bool)), s, -np.inf)
    p = _softmax(s)
    a = _merge(p @ v)
    return a @ wo, AttentionCache(xa, q, k, v, p, a, c, h)


def attention_backward(
    dout: FloatArray, cache: AttentionCache, wq: FloatArray, wk: FloatArray, wv: FloatArray,
    wo: FloatArray,
) -> tuple[FloatArray, dict[str, FloatArray]]:
    r"""Gradients of :func:`attention_forward` with respect to its input and its four weights.

    Notes
    -----
    With :math:`S = cQK^\top`, :math:`P = \operatorname{softmax}(S)`, :math:`A = PV`:
    :math:`dV = P^\top dA`, :math:`dP = dA\,V^\top`,
    :math:`dS = P \odot (dP - \operatorname{rowsum}(dP \odot P))`, :math:`dQ = c\, dS\, K`,
    :math:`dK = c\, dS^\top Q`; each weight's gradient is the input's transpose times the
    projection's gradient, summed over batch and tokens.
    """
    d = cache.x.shape[-1]
    flat = cache.x.reshape(-1, d)
    grads = {"wo": cache.a.reshape(-1, d).T @ dout.reshape(-1, d)}
    da = _split(dout @ wo.T, cache.n_heads)
    dv = cache.p.transpose(0, 1, 3, 2) @ da
    dp = da @ cache.v.transpose(0, 1, 3, 2)
    ds = cache.p * (dp - np.sum(dp * cache.p, axis=-1, keepdims=True))
    dq = (ds @ cache.k) * cache.scale
    dk = (ds.transpose(0, 1, 3, 2) @ cache.q) * cache.scale
    dq_m, dk_m, dv_m = _merge(dq), _merge(dk), _merge(dv)
    grads["wq"] = flat.T @ dq_m.reshape(-1, d)
    grads["wk"] = flat.T @ dk_m.reshape(-1, d)
    grads["wv"] = flat.T @ dv_m.reshape(-1, d)
    dx: FloatArray = dq_m @ wq.T + dk_m @ wk.T + dv_m @ wv.T
    return dx, grads


# ---------------------------------------------------------------------------------------------
# Weights and embeddings (sampling)
# ---------------------------------------------------------------------------------------------


@dataclass
class LayerWeights:
    """One transformer layer: attention projections and the MLP (``d -> 4d -> d``)."""

    wq: FloatArray
    wk: FloatArray
    wv: FloatArray
    wo: FloatArray
    w1: FloatArray
    w2: FloatArray

    def as_dict(self) -> dict[str, FloatArray]:
        """The six matrices by name."""
        return {
            "wq": self.wq, "wk": self.wk, "wv": self.wv, "wo": self.wo, "w1": self.w1,
            "w2": self.w2,
        }


def init_transformer(
    n_layers: int,
    d_model: int,
    *,
    init: str = "gpt2",
    scale_residual: bool = True,
    std: float = 0.02,
    rng: RNGLike,
) -> list[LayerWeights]:
    r"""Draw the weights of ``n_layers`` transformer layers.

    Parameters
    ----------
    n_layers, d_model : int
    init : {"gpt2", "xavier"}
        ``"gpt2"``: every matrix :math:`\mathcal N(0, \sigma^2)` with :math:`\sigma` = ``std``
        (0.02); ``"xavier"``: Xavier normal (:func:`course_lib.initializers.xavier_normal`), the
        initialization of Xiong et al. 2020's analysis.
    scale_residual : bool
        With ``"gpt2"``, divide the std of the two projections that write into the residual
        stream (``wo`` and ``w2``) by :math:`\sqrt{2 N}` (GPT-2: two such projections per layer,
        :math:`N` layers).
    std : float
    rng : Generator, seed or None
        Keyword-only (SPEC 7).

    Notes
    -----
    A residual stream that receives :math:`2N` independent branch outputs of variance
    :math:`v` ends with variance :math:`\operatorname{Var}(x_0) + 2Nv`; scaling each branch's
    last projection by :math:`1/\sqrt{2N}` makes the added total :math:`v`, whatever the depth.
    Chapter: "Transformers" (book/papers/transformers.md).
    """
    if isinstance(n_layers, bool) or not isinstance(n_layers, int | np.integer) or n_layers < 1:
        raise ValueError(f"n_layers must be a positive integer, got {n_layers!r}")
    if isinstance(d_model, bool) or not isinstance(d_model, int | np.integer) or d_model < 1:
        raise ValueError(f"d_model must be a positive integer, got {d_model!r}")
    check_choice(init, INITS, name="init")
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"std must be a finite positive number, got {std!r}")
    gen = as_generator(rng)
    d, n = int(d_model), int(n_layers)
    shapes = {"wq": (d, d), "wk": (d, d), "wv": (d, d), "wo": (d, d), "w1": (d, 4 * d),
              "w2": (4 * d, d)}
    resid = 1.0 / math.sqrt(2 * n) if scale_residual else 1.0
    layers = []
    for _ in range(n):
        ws: dict[str, FloatArray] = {}
        for name, shape in shapes.items():
            if init == "xavier":
                ws[name] = _init.xavier_normal(shape, rng=gen)
            else:
                sigma = std * (resid if name in ("wo", "w2") else 1.0)
                ws[name] = _init.normal(shape, sigma, rng=gen)
        layers.append(LayerWeights(**ws))
    return layers


def embed_tokens(
    tokens: npt.ArrayLike, wte: FloatArray, wpe: FloatArray, *, multiplier: float = 1.0
) -> FloatArray:
    r"""Token plus position embeddings: ``multiplier * wte[tokens] + wpe[:T]``.

    Parameters
    ----------
    tokens : array_like of int, shape (batch, tokens)
    wte : ndarray, shape (vocab, d_model)
    wpe : ndarray, shape (max_tokens, d_model)
    multiplier : float
        :math:`\sqrt{d_{\text{model}}}` in Vaswani et al. 2017, 1 in GPT-2.

    Notes
    -----
    With independent zero-mean tables, the stream starts with variance
    :math:`m^2\operatorname{Var}(\text{wte}) + \operatorname{Var}(\text{wpe})`: with GPT-2's
    :math:`\mathcal N(0, 0.02^2)` for both, :math:`2\cdot 0.02^2 = 8\cdot10^{-4}`.
    """
    t = np.asarray(tokens)
    if t.ndim != 2 or t.dtype.kind not in "iu":
        raise ValueError(
            f"tokens must be a 2-D integer array (batch, tokens), got {t.dtype} {t.shape}"
        )
    if t.size and (t.min() < 0 or t.max() >= wte.shape[0]):
        raise ValueError(f"token ids must lie in 0..{wte.shape[0] - 1}")
    if t.shape[1] > wpe.shape[0]:
        raise ValueError(f"{t.shape[1]} tokens but only {wpe.shape[0]} position embeddings")
    out: FloatArray = multiplier * wte[t] + wpe[: t.shape[1]][None]
    return out


# ---------------------------------------------------------------------------------------------
# The stack
# ---------------------------------------------------------------------------------------------


@dataclass
class TransformerTrace:
    """What :func:`transformer_forward` computed.

    Attributes
    ----------
    output : ndarray, shape (batch, tokens, d_model)
        After the final LayerNorm for pre-LN (GPT-2's ``ln_f``); the last layer's output for
        post-LN.
    stream_ms : ndarray, shape (n_layers + 1,)
        Mean square of the residual stream entering each layer (entry 0: the embeddings) and,
        last, leaving the stack (before ``ln_f``).
    attn_ms, mlp_ms : ndarray, shape (n_layers,)
        Mean square of each layer's attention and MLP branch outputs.
    entropy : ndarray, shape (n_layers,)
        Mean entropy (nats) of the attention rows of each layer.
    norm, n_heads, causal, scaled
        The settings of the pass.
    """

    output: FloatArray
    stream_ms: FloatArray
    attn_ms: FloatArray
    mlp_ms: FloatArray
    entropy: FloatArray
    norm: str
    n_heads: int
    causal: bool
    scaled: bool
    cache: list[dict[str, object]] = field(default_factory=list)
    final_cache: tuple[FloatArray, FloatArray] | None = None


def _ms(x: FloatArray) -> float:
    return float(np.mean(x * x))


def _mlp(
    x: FloatArray, w: LayerWeights
) -> tuple[FloatArray, tuple[FloatArray, FloatArray, FloatArray]]:
    hpre = x @ w.w1
    a = gelu(hpre)
    return a @ w.w2, (x, hpre, a)


def _mlp_backward(
    dout: FloatArray, c: tuple[FloatArray, FloatArray, FloatArray], w: LayerWeights
) -> tuple[FloatArray, dict[str, FloatArray]]:
    x, hpre, a = c
    d, f = w.w1.shape
    g = {"w2": a.reshape(-1, f).T @ dout.reshape(-1, d)}
    dh = (dout @ w.w2.T) * gelu_derivative(hpre)
    g["w1"] = x.reshape(-1, d).T @ dh.reshape(-1, f)
    dx: FloatArray = dh @ w.w1.T
    return dx, g


def transformer_forward(
    x: npt.ArrayLike,
    layers: Sequence[LayerWeights],
    *,
    norm: str = "pre",
    n_heads: int = 1,
    causal: bool = True,
    scaled: bool = True,
) -> TransformerTrace:
    r"""Run a stack of transformer layers and record per-layer statistics.

    Parameters
    ----------
    x : array_like, shape (batch, tokens, d_model)
        The embedded input (:func:`embed_tokens`).
    layers : sequence of LayerWeights
    norm : {"pre", "post"}
        Pre-LN (GPT-2): :math:`x \leftarrow x + \operatorname{Attn}(\operatorname{LN}(x))`,
        :math:`x \leftarrow x + \operatorname{MLP}(\operatorname{LN}(x))`, and a final LN.
        Post-LN (Vaswani et al. 2017): :math:`x \leftarrow \operatorname{LN}(x +
        \operatorname{Attn}(x))`, :math:`x \leftarrow \operatorname{LN}(x + \operatorname{MLP}(x))`.
    n_heads, causal, scaled
        Passed to :func:`attention_forward`.

    Returns
    -------
    TransformerTrace

    Notes
    -----
    In pre-LN every branch sees a unit-scale input, so each adds a roughly constant variance
    :math:`v` to the stream: :math:`\operatorname{Var}(x_l) \approx \operatorname{Var}(x_0) +
    2lv`, linear in depth, and the final LayerNorm divides the gradient by
    :math:`\sqrt{\operatorname{Var}(x_N)}`: the last layer's weight gradient falls like
    :math:`1/\sqrt{N}`. In post-LN the stream is re-normalized after each sum; the LayerNorm above
    the last layer sees a sum of variance :math:`1 + \operatorname{Var}(F)` whatever the depth,
    so the last layer's gradient does not shrink with :math:`N` (Xiong et al. 2020).
    Deterministic. Chapter: "Transformers" (book/papers/transformers.md).
    """
    h = np.array(x, dtype=np.float64)
    check_choice(norm, NORMS, name="norm")
    if h.ndim != 3:
        raise ValueError(f"x must have shape (batch, tokens, d_model), got shape {h.shape}")
    if not layers:
        raise ValueError(
            "layers is empty: draw them with init_transformer(n_layers, d_model, rng=...)"
        )
    if layers[0].wq.shape[0] != h.shape[-1]:
        raise ValueError(
            f"x has d_model = {h.shape[-1]} but the layers expect {layers[0].wq.shape[0]}"
        )
    stream, attn_ms, mlp_ms, ent = [_ms(h)], [], [], []
    caches: list[dict[str, object]] = []
    for w in layers:
        c: dict[str, object] = {}
        if norm == "pre":
            u1, c["ln1"] = layer_norm(h)
            a, c["attn"] = attention_forward(
                u1, w.wq, w.wk, w.wv, w.wo, n_heads=n_heads, causal=causal, scaled=scaled
            )
            h = h + a
            u2, c["ln2"] = layer_norm(h)
            m, c["mlp"] = _mlp(u2, w)
            h = h + m
        else:
            a, c["attn"] = attention_forward(
                h, w.wq, w.wk, w.wv, w.wo, n_heads=n_heads, causal=causal, scaled=scaled
            )
            h, c["ln1"] = layer_norm(h + a)
            m, c["mlp"] = _mlp(h, w)
            h, c["ln2"] = layer_norm(h + m)
        attn_cache = c["attn"]
        assert isinstance(attn_cache, AttentionCache)
        ent.append(float(attention_entropy(attn_cache.p).mean()))
        attn_ms.append(_ms(a))
        mlp_ms.append(_ms(m))
        stream.append(_ms(h))
        caches.append(c)
    final = None
    if norm == "pre":
        h, final = layer_norm(h)
    return TransformerTrace(
        output=h,
        stream_ms=np.asarray(stream),
        attn_ms=np.asarray(attn_ms),
        mlp_ms=np.asarray(mlp_ms),
        entropy=np.asarray(ent),
        norm=norm,
        n_heads=int(n_heads),
        causal=bool(causal),
        scaled=bool(scaled),
        cache=caches,
        final_cache=final,
    )


def transformer_backward(
    trace: TransformerTrace, layers: Sequence[LayerWeights], grad_output: npt.ArrayLike
) -> tuple[FloatArray, list[dict[str, FloatArray]]]:
    r"""Back-propagate ``grad_output`` through the stack of :func:`transformer_forward`.

    Returns
    -------
    grad_input : ndarray, shape (batch, tokens, d_model)
        Gradient with respect to the embedded input.
    weight_grads : list of dict
        Per layer, the gradient of each of the six matrices (keys of
        :meth:`LayerWeights.as_dict`).

    Notes
    -----
    Pre-LN: :math:`g \leftarrow g + \operatorname{LN}'^\top \operatorname{MLP}'^\top g`, then the
    same for attention. Post-LN: :math:`g \leftarrow \operatorname{LN}'^\top g`, then
    :math:`g \leftarrow g + \operatorname{MLP}'^\top g`, and the same for attention. Every
    Jacobian is the analytic one (:func:`layer_norm_backward`, :func:`attention_backward`, the
    GELU MLP); the tests check them against central finite differences.
    """
    g = np.array(grad_output, dtype=np.float64)
    if g.shape != trace.output.shape:
        raise ValueError(f"grad_output must have shape {trace.output.shape}, got {g.shape}")
    if len(trace.cache) != len(layers):
        raise ValueError("trace and layers differ in length: pass the layers the trace ran")
    if trace.final_cache is not None:
        g = layer_norm_backward(g, trace.final_cache)
    out: list[dict[str, FloatArray]] = [{} for _ in layers]
    for i in range(len(layers) - 1, -1, -1):
        w, c = layers[i], trace.cache[i]
        ln1 = cast(tuple[FloatArray, FloatArray], c["ln1"])
        ln2 = cast(tuple[FloatArray, FloatArray], c["ln2"])
        mlp_c = cast(tuple[FloatArray, FloatArray, FloatArray], c["mlp"])
        attn_c = cast(AttentionCache, c["attn"])
        if trace.norm == "pre":
            du2, gm = _mlp_backward(g, mlp_c, w)
            g = g + layer_norm_backward(du2, ln2)
            du1, ga = attention_backward(g, attn_c, w.wq, w.wk, w.wv, w.wo)
            g = g + layer_norm_backward(du1, ln1)
        else:
            g = layer_norm_backward(g, ln2)
            dx, gm = _mlp_backward(g, mlp_c, w)
            g = g + dx
            g = layer_norm_backward(g, ln1)
            dx, ga = attention_backward(g, attn_c, w.wq, w.wk, w.wv, w.wo)
            g = g + dx
        out[i] = {**ga, **gm}
    return g, out


# ---------------------------------------------------------------------------------------------
# Experiments (sampling)
# ---------------------------------------------------------------------------------------------


def logit_statistics(
    d_k: int,
    *,
    n_tokens: int = 32,
    n_rows: int = 256,
    scaled: bool = True,
    var_q: float = 1.0,
    var_k: float = 1.0,
    rng: RNGLike,
) -> tuple[float, float]:
    r"""Variance of attention logits and mean row entropy for random queries and keys.

    Draws ``n_rows`` queries and, for each, ``n_tokens`` keys, all with independent
    :math:`\mathcal N(0, \operatorname{Var})` entries in :math:`\mathbb R^{d_k}`, and returns
    ``(variance of the logits, mean entropy of the softmax rows in nats)``.

    Notes
    -----
    :math:`\operatorname{Var}(q\cdot k) = d_k\operatorname{Var}(q)\operatorname{Var}(k)`
    (:math:`d_k` independent products, each of variance :math:`\operatorname{Var}(q)
    \operatorname{Var}(k)`); with ``scaled=True`` the logit is :math:`q\cdot k/\sqrt{d_k}` and
    its variance :math:`\operatorname{Var}(q)\operatorname{Var}(k)`. Logits of variance
    :math:`\sigma^2` over :math:`T` keys give rows of entropy about
    :math:`\ln T - \sigma^2/2` while :math:`\sigma` is small, falling toward 0 (one-hot rows,
    saturated softmax, vanishing gradients) as :math:`\sigma` grows. Chapter: "Transformers"
    (book/papers/transformers.md).
    """
    if isinstance(d_k, bool) or not isinstance(d_k, int | np.integer) or d_k < 1:
        raise ValueError(f"d_k must be a positive integer, got {d_k!r}")
    gen = as_generator(rng)
    q = gen.standard_normal((n_rows, 1, d_k)) * math.sqrt(var_q)
    k = gen.standard_normal((n_rows, n_tokens, d_k)) * math.sqrt(var_k)
    s = np.sum(q * k, axis=-1) / (math.sqrt(d_k) if scaled else 1.0)
    return float(np.var(s)), float(attention_entropy(_softmax(s)).mean())


@dataclass(frozen=True)
class StackStatistics:
    """Per-layer statistics of one random stack at initialization (:func:`stack_statistics`).

    Attributes
    ----------
    stream_ms : ndarray, shape (n_layers + 1,)
        See :class:`TransformerTrace`.
    attn_ms, mlp_ms, entropy : ndarray, shape (n_layers,)
    grad_norms : ndarray, shape (n_layers,)
        Frobenius norm of the gradient of each layer's MLP output matrix ``w2``.
    layer_grad_norms : ndarray, shape (n_layers,)
        Frobenius norm of the gradient of all six matrices of each layer together.
    input_grad_ms : float
        Mean square of the gradient reaching the embeddings.
    """

    stream_ms: FloatArray
    attn_ms: FloatArray
    mlp_ms: FloatArray
    entropy: FloatArray
    grad_norms: FloatArray
    layer_grad_norms: FloatArray
    input_grad_ms: float


def stack_statistics(
    n_layers: int,
    *,
    d_model: int = 64,
    n_heads: int = 4,
    n_tokens: int = 16,
    batch: int = 4,
    vocab: int = 64,
    norm: str = "pre",
    init: str = "gpt2",
    scale_residual: bool = True,
    embed_std: float = 0.02,
    rng: RNGLike,
) -> StackStatistics:
    r"""Draw one causal language-model stack and measure it at initialization.

    Draws token and position embeddings :math:`\mathcal N(0, \text{embed\_std}^2)`, the layers
    (:func:`init_transformer`), random tokens and next-token targets, runs
    :func:`transformer_forward`, takes the mean cross-entropy of the logits
    ``output @ wte.T`` (GPT-2's tied output embedding) and back-propagates it with
    :func:`transformer_backward`.

    Notes
    -----
    The logits' gradient :math:`(\operatorname{softmax}(z) - t)/(BT)` enters through the tied
    embedding. Chapter: "Transformers" (book/papers/transformers.md).
    """
    gen = as_generator(rng)
    wte = _init.normal((vocab, d_model), embed_std, rng=gen)
    wpe = _init.normal((n_tokens, d_model), embed_std, rng=gen)
    layers = init_transformer(
        n_layers, d_model, init=init, scale_residual=scale_residual, rng=gen
    )
    tokens = gen.integers(0, vocab, size=(batch, n_tokens + 1))
    x = embed_tokens(tokens[:, :-1], wte, wpe)
    tr = transformer_forward(x, layers, norm=norm, n_heads=n_heads, causal=True)
    logits = tr.output @ wte.T
    p = _softmax(logits)
    t = np.zeros_like(p)
    np.put_along_axis(t, tokens[:, 1:, None], 1.0, axis=-1)
    dlogits = (p - t) / (batch * n_tokens)
    gx, wg = transformer_backward(tr, layers, dlogits @ wte)
    return StackStatistics(
        stream_ms=tr.stream_ms,
        attn_ms=tr.attn_ms,
        mlp_ms=tr.mlp_ms,
        entropy=tr.entropy,
        grad_norms=np.asarray([np.linalg.norm(g["w2"]) for g in wg]),
        layer_grad_norms=np.asarray(
            [math.sqrt(sum(float(np.sum(v * v)) for v in g.values())) for g in wg]
        ),
        input_grad_ms=_ms(gx),
    )


def logit_sweep(
    d_ks: Sequence[int], *, n_tokens: int = 32, rng: RNGLike
) -> dict[tuple[int, bool], tuple[float, float]]:
    """:func:`logit_statistics` for every head size, scaled and unscaled (one child of ``rng``
    each); keys ``(d_k, scaled)``. Chapter: "Transformers" (book/papers/transformers.md)."""
    out: dict[tuple[int, bool], tuple[float, float]] = {}
    for d_k, c in zip(d_ks, as_generator(rng).spawn(len(d_ks)), strict=True):
        a, b = c.spawn(2)
        out[int(d_k), True] = logit_statistics(int(d_k), n_tokens=n_tokens, scaled=True, rng=a)
        out[int(d_k), False] = logit_statistics(int(d_k), n_tokens=n_tokens, scaled=False, rng=b)
    return out


def residual_scaling_comparison(
    depths: Sequence[int], *, d_model: int = 128, rng: RNGLike
) -> dict[tuple[int, bool], StackStatistics]:
    r"""Pre-LN GPT-2-style stacks with and without the :math:`1/\sqrt{2N}` residual scaling.

    Keys ``(n_layers, scale_residual)``; one child of ``rng`` per depth, split in two.
    Chapter: "Transformers" (book/papers/transformers.md).
    """
    out: dict[tuple[int, bool], StackStatistics] = {}
    for n_layers, c in zip(depths, as_generator(rng).spawn(len(depths)), strict=True):
        for sr, cc in zip((False, True), c.spawn(2), strict=True):
            out[int(n_layers), sr] = stack_statistics(
                int(n_layers), d_model=d_model, norm="pre", init="gpt2", scale_residual=sr,
                rng=cc,
            )
    return out


def ln_placement_comparison(
    depths: Sequence[int], *, d_model: int = 64, rng: RNGLike
) -> dict[tuple[int, str], FloatArray]:
    """Per-layer MLP weight-gradient norms of pre-LN and post-LN stacks with Xavier weights.

    Keys ``(n_layers, norm)``; values :attr:`StackStatistics.grad_norms`. One child of ``rng``
    per depth, split in two. Chapter: "Transformers" (book/papers/transformers.md).
    """
    out: dict[tuple[int, str], FloatArray] = {}
    for n_layers, c in zip(depths, as_generator(rng).spawn(len(depths)), strict=True):
        for norm, cc in zip(NORMS, c.spawn(2), strict=True):
            out[int(n_layers), norm] = stack_statistics(
                int(n_layers), d_model=d_model, norm=norm, init="xavier", rng=cc
            ).grad_norms
    return out
