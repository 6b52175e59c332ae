"""Several different correct implementations of every graded function.

``VARIANTS[assignment]`` is a list of variants; each variant maps every graded function of the
assignment to the source of one answer cell. Variants differ in *how* they draw the numbers
(``rng.normal`` vs ``rng.standard_normal * std`` vs Box-Muller from ``rng.random``; ``rng.uniform``
vs ``(2 * rng.random - 1) * b``; truncation by rejection, by a resampling loop, or by the inverse
CDF), so a grader that accepted only one of them would fail here.
"""

from __future__ import annotations

SETUP = "import numpy as np\nimport math\n"

BOX_MULLER = '''
def _box_muller(shape, rng):
    n = int(np.prod(shape))
    m = (n + 1) // 2
    u1 = 1.0 - rng.random(m)          # in (0, 1]
    u2 = rng.random(m)
    r = np.sqrt(-2.0 * np.log(u1))
    z = np.concatenate([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)])[:n]
    return z.reshape(shape)
'''

PS1 = [
    {
        "preactivation_variance": '''
def preactivation_variance(n_in, var_w, var_x):
    return n_in * var_w * var_x
''',
        "sample_preactivations": '''
def sample_preactivations(n_in, var_w, var_x, n_samples, *, rng):
    w = rng.normal(0.0, np.sqrt(var_w), size=(n_samples, n_in))
    x = rng.normal(0.0, np.sqrt(var_x), size=(n_samples, n_in))
    return (w * x).sum(axis=1)
''',
        "two_layer_gradients": '''
def two_layer_gradients(X, y, W1, W2):
    B = X.shape[0]
    H = np.tanh(X @ W1)
    E = (H @ W2 - y) / B
    dW2 = H.T @ E
    dH = E @ W2.T
    dW1 = X.T @ (dH * (1 - H ** 2))
    return dW1, dW2
''',
    },
    {
        "preactivation_variance": '''
def preactivation_variance(n_in, var_w, var_x):
    return float(np.prod([n_in, var_w, var_x]))
''',
        "sample_preactivations": '''
def sample_preactivations(n_in, var_w, var_x, n_samples, *, rng):
    w = rng.standard_normal((n_samples, n_in)) * math.sqrt(var_w)
    x = rng.standard_normal((n_samples, n_in)) * math.sqrt(var_x)
    return np.einsum("ij,ij->i", w, x)
''',
        "two_layer_gradients": '''
def two_layer_gradients(X, y, W1, W2):
    Z = X @ W1
    H = np.tanh(Z)
    Y_hat = H @ W2
    G = (Y_hat - y) / len(X)
    dW2 = np.einsum("bh,bk->hk", H, G)
    dZ = (G @ W2.T) / np.cosh(Z) ** 2
    dW1 = np.einsum("bd,bh->dh", X, dZ)
    return dW1, dW2
''',
    },
    {
        "preactivation_variance": '''
def preactivation_variance(n_in, var_w, var_x):
    total = 0.0
    for _ in range(n_in):
        total += var_w * var_x
    return total
''',
        "sample_preactivations": BOX_MULLER + '''
def sample_preactivations(n_in, var_w, var_x, n_samples, *, rng):
    w = _box_muller((n_samples, n_in), rng) * np.sqrt(var_w)
    x = _box_muller((n_samples, n_in), rng) * np.sqrt(var_x)
    p = np.zeros(n_samples)
    for i in range(n_in):
        p += w[:, i] * x[:, i]
    return p
''',
        "two_layer_gradients": '''
def two_layer_gradients(X, y, W1, W2):
    B = X.shape[0]
    dW1 = np.zeros_like(W1)
    dW2 = np.zeros_like(W2)
    for b in range(B):
        h = np.tanh(X[b] @ W1)
        e = (h @ W2 - y[b]) / B
        dW2 += np.outer(h, e)
        dW1 += np.outer(X[b], (W2 @ e) * (1 - h * h))
    return dW1, dW2
''',
    },
]

FANS = [
    '''
def compute_fans(shape):
    if len(shape) < 2:
        raise ValueError(f"shape needs at least 2 dimensions, got {shape}")
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive
''',
    '''
def compute_fans(shape):
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError("compute_fans needs a shape with 2 or more dimensions")
    rf = math.prod(shape[:-2])
    return rf * shape[-2], rf * shape[-1]
''',
    '''
def compute_fans(shape):
    dims = list(shape)
    if len(dims) < 2:
        raise ValueError("need (in, out) or (*kernel, in, out)")
    k = 1
    for d in dims[:-2]:
        k *= d
    return int(dims[-2] * k), int(dims[-1] * k)
''',
]


def _ps2(i: int) -> dict[str, str]:
    var = {
        "lecun": "1.0 / fan_in",
        "xavier": "2.0 / (fan_in + fan_out)",
        "he": "2.0 / fan_in",
    }
    normal = [
        "    return rng.normal(0.0, np.sqrt({v}), size=shape)",
        "    return rng.standard_normal(shape) * math.sqrt({v})",
        "    return _box_muller(tuple(shape), rng) * np.sqrt({v})",
    ][i]
    uniform = [
        "    b = np.sqrt(3.0 * ({v}))\n    return rng.uniform(-b, b, size=shape)",
        "    b = math.sqrt(3 * ({v}))\n    return (2.0 * rng.random(shape) - 1.0) * b",
        "    b = np.sqrt(3.0 * ({v}))\n    return b * rng.uniform(-1.0, 1.0, size=tuple(shape))",
    ][i]
    out = {"compute_fans": FANS[i]}
    for scheme, v in var.items():
        for fam, body in (("normal", normal), ("uniform", uniform)):
            src = (f"\ndef {scheme}_{fam}(shape, *, rng):\n"
                   "    fan_in, fan_out = compute_fans(shape)\n"
                   "    fan_in, fan_out = max(fan_in, 1), max(fan_out, 1)  # nothing to draw\n"
                   + body.format(v=v) + "\n")
            if i == 2 and fam == "normal":
                src = BOX_MULLER + src
            out[f"{scheme}_{fam}"] = src
    return out


PS2 = [_ps2(i) for i in range(3)]

PS3 = [
    {
        "init_network": '''
def init_network(layer_sizes, initializer, *, rng):
    return [initializer((a, b), rng=rng) for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
''',
        "forward_activations": '''
_ACTS = {
    "linear": lambda z: z,
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "relu": lambda z: np.maximum(z, 0.0),
}

def forward_activations(X, weights, activation):
    if activation not in _ACTS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(_ACTS)}")
    f = _ACTS[activation]
    out, h = [], X
    for W in weights:
        h = f(h @ W)
        out.append(h)
    return out
''',
        "layer_stds": '''
def layer_stds(activations):
    return np.array([a.std() for a in activations])
''',
        "signal_preserving_std": '''
def signal_preserving_std(n_in, activation):
    gains = {"linear": 1.0, "tanh": 1.0, "relu": 2.0}
    if activation == "sigmoid":
        raise ValueError("sigmoid: not homogeneous, mean 1/2: no std makes it the identity")
    if activation not in gains:
        raise ValueError(f"unknown activation {activation!r}")
    return math.sqrt(gains[activation] / n_in)
''',
    },
    {
        "init_network": '''
def init_network(layer_sizes, initializer, *, rng):
    weights = []
    for i in range(len(layer_sizes) - 1):
        weights.append(initializer((layer_sizes[i], layer_sizes[i + 1]), rng=rng))
    return weights
''',
        "forward_activations": '''
def forward_activations(X, weights, activation):
    if activation not in ("linear", "tanh", "sigmoid", "relu"):
        raise ValueError("activation must be linear, tanh, sigmoid or relu")
    acts = []
    h = np.asarray(X, dtype=float)
    for W in weights:
        z = h @ W
        if activation == "tanh":
            h = np.tanh(z)
        elif activation == "sigmoid":
            h = 0.5 * (1.0 + np.tanh(0.5 * z))
        elif activation == "relu":
            h = z * (z > 0)
        else:
            h = z
        acts.append(h)
    return acts
''',
        "layer_stds": '''
def layer_stds(activations):
    return np.array([np.sqrt(np.mean((a - a.mean()) ** 2)) for a in activations])
''',
        "signal_preserving_std": '''
def signal_preserving_std(n_in, activation):
    if activation in ("linear", "tanh"):
        return 1.0 / np.sqrt(n_in)
    if activation == "relu":
        return np.sqrt(2.0 / n_in)
    raise ValueError(f"no signal-preserving std for {activation!r} (sigmoid: none is identity)")
''',
    },
    {
        "init_network": '''
def init_network(layer_sizes, initializer, *, rng):
    shapes = list(zip(layer_sizes, layer_sizes[1:]))
    return list(map(lambda s: initializer(s, rng=rng), shapes))
''',
        "forward_activations": '''
def forward_activations(X, weights, activation):
    if activation == "linear":
        f = lambda z: z
    elif activation == "tanh":
        f = np.tanh
    elif activation == "sigmoid":
        f = lambda z: np.exp(-np.logaddexp(0.0, -z))
    elif activation == "relu":
        f = lambda z: np.where(z > 0, z, 0.0)
    else:
        raise ValueError("unknown activation")
    result = []
    for W in weights:
        X = f(X @ W)
        result.append(X)
    return result
''',
        "layer_stds": '''
def layer_stds(activations):
    return np.fromiter((np.std(np.ravel(a), ddof=0) for a in activations), dtype=float)
''',
        "signal_preserving_std": '''
def signal_preserving_std(n_in, activation):
    table = {"linear": 1, "tanh": 1, "relu": 2}
    if activation not in table:
        raise ValueError("sigmoid (or unknown): mean 1/2, so no std preserves forward and backward")
    return (table[activation] / n_in) ** 0.5
''',
    },
]

TRUNC_VARIANTS = [
    # rejection: redraw the values that fall outside until none is left
    '''
def truncated_normal(shape, std, *, rng):
    out = rng.normal(0.0, std, size=shape)
    bad = np.abs(out) > 2 * std
    while bad.any():
        out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
        bad = np.abs(out) > 2 * std
    return out
''',
    # resampling loop: draw in batches, keep the accepted ones
    '''
def truncated_normal(shape, std, *, rng):
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    n = int(np.prod(shape))
    kept = np.empty(0)
    while kept.size < n:
        z = rng.standard_normal(2 * (n - kept.size) + 16)
        kept = np.concatenate([kept, z[np.abs(z) <= 2.0]])
    return (kept[:n] * std).reshape(shape)
''',
    # inverse CDF with math.erf (the quantile by Newton's method on Phi)
    '''
def _phi_cdf(x):
    return 0.5 * (1.0 + np.vectorize(math.erf, otypes=[float])(x / math.sqrt(2.0)))

def _norm_ppf(u):
    x = np.zeros_like(u)
    for _ in range(40):
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        step = (_phi_cdf(x) - u) / pdf
        x = np.clip(x - step, -2.0, 2.0)
        if step.size == 0 or np.max(np.abs(step)) < 1e-12:
            break
    return x

def truncated_normal(shape, std, *, rng):
    if not std >= 0:
        raise ValueError("the std must be a non-negative number")
    lo = 0.5 * (1 + math.erf(-2 / math.sqrt(2)))
    u = rng.uniform(lo, 1.0 - lo, size=shape)
    return std * _norm_ppf(u)
''',
]

PS4 = [
    {
        "calculate_gain": '''
def calculate_gain(nonlinearity, param=None):
    linear = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
              "conv_transpose2d", "conv_transpose3d"]
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity}")
''',
        "torch_fans": '''
def torch_fans(shape):
    if len(shape) < 2:
        raise ValueError("need at least 2 dimensions")
    rf = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * rf, shape[0] * rf
''',
        "truncated_normal": TRUNC_VARIANTS[0],
        "he_normal_truncated": '''
def he_normal_truncated(shape, *, rng):
    fan_in = int(np.prod(shape[:-1]))
    sigma = math.sqrt(2.0 / max(fan_in, 1)) / 0.87962566103423978
    return truncated_normal(shape, sigma, rng=rng)
''',
        "torch_linear_default": '''
def torch_linear_default(in_features, out_features, *, rng):
    b = 1.0 / math.sqrt(in_features)
    weight = rng.uniform(-b, b, size=(out_features, in_features))
    bias = rng.uniform(-b, b, size=out_features)
    return weight, bias
''',
    },
    {
        "calculate_gain": '''
_GAINS = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0,
          "conv_transpose1d": 1.0, "conv_transpose2d": 1.0, "conv_transpose3d": 1.0,
          "sigmoid": 1.0, "tanh": 5 / 3, "relu": 2 ** 0.5, "selu": 0.75}

def calculate_gain(nonlinearity, param=None):
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else param
        return (2 / (1 + a * a)) ** 0.5
    try:
        return _GAINS[nonlinearity]
    except KeyError:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}") from None
''',
        "torch_fans": '''
def torch_fans(shape):
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError("torch_fans needs (out, in, *kernel)")
    k = math.prod(shape[2:])
    return shape[1] * k, shape[0] * k
''',
        "truncated_normal": TRUNC_VARIANTS[1],
        "he_normal_truncated": '''
def he_normal_truncated(shape, *, rng):
    fan_in = shape[-2] * math.prod(shape[:-2])
    s = np.sqrt(2.0 / max(fan_in, 1)) / 0.87962566103423978
    w = rng.normal(0.0, s, size=shape)
    out = np.abs(w) > 2 * s
    while np.any(out):
        w[out] = rng.normal(0.0, s, size=np.count_nonzero(out))
        out = np.abs(w) > 2 * s
    return w
''',
        "torch_linear_default": '''
def torch_linear_default(in_features, out_features, *, rng):
    bound = in_features ** -0.5
    w = (2.0 * rng.random((out_features, in_features)) - 1.0) * bound
    b = (2.0 * rng.random(out_features) - 1.0) * bound
    return w, b
''',
    },
    {
        "calculate_gain": '''
def calculate_gain(nonlinearity, param=None):
    if nonlinearity in {"linear", "sigmoid"} or nonlinearity.startswith("conv"):
        if nonlinearity.startswith("conv") and nonlinearity not in {
                "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d"}:
            raise ValueError(nonlinearity)
        return 1.0
    table = {"tanh": 5.0 / 3.0, "relu": math.sqrt(2), "selu": 0.75}
    if nonlinearity in table:
        return table[nonlinearity]
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    raise ValueError(f"calculate_gain: {nonlinearity!r} is not supported")
''',
        "torch_fans": '''
def torch_fans(shape):
    if len(shape) < 2:
        raise ValueError("shape must have >= 2 dims")
    out_c, in_c, *kernel = shape
    size = 1
    for k in kernel:
        size *= k
    return in_c * size, out_c * size
''',
        "truncated_normal": TRUNC_VARIANTS[2],
        "he_normal_truncated": '''
def he_normal_truncated(shape, *, rng):
    n = math.prod(shape)
    fan_in = n // shape[-1]
    std = math.sqrt(2.0 / max(fan_in, 1)) / 0.87962566103423978
    z = rng.standard_normal(int(1.2 * n) + 64)
    z = z[np.abs(z) <= 2.0]
    while z.size < n:
        more = rng.standard_normal(n)
        z = np.concatenate([z, more[np.abs(more) <= 2.0]])
    return std * z[:n].reshape(shape)
''',
        "torch_linear_default": '''
def torch_linear_default(in_features, out_features, *, rng):
    gain = math.sqrt(2.0 / (1 + 5))            # kaiming_uniform_(a=sqrt(5))
    bound = gain * math.sqrt(3.0 / in_features)
    weight = rng.uniform(-bound, bound, (out_features, in_features))
    bias = rng.uniform(-1 / math.sqrt(in_features), 1 / math.sqrt(in_features), out_features)
    return weight, bias
''',
    },
]

VARIANTS: dict[str, list[dict[str, str]]] = {
    "ps1_variance": PS1,
    "ps2_initializers": PS2,
    "ps3_deep_signal": PS3,
    "ps4_frameworks": PS4,
}


def sources(assignment: str, variant: int, **replace: str) -> dict[str, str]:
    """Cells of a submission: setup, one answer cell per function (``replace`` swaps some)."""
    cells = {"setup": SETUP}
    for fn, src in VARIANTS[assignment][variant].items():
        cells[fn] = replace.get(fn, src)
    for fn, src in replace.items():
        if fn not in cells:
            cells[fn] = src
    return cells
