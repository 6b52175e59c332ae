"""Wrong implementations the grader must fail, each with words its message must contain.

The first group are the "common mistakes" of the blog posts the course grew from (uniform
bounds of the same sign, a bound sqrt(1/n) instead of sqrt(3/n), std = 1/fan_in, Glorot normal
with std sqrt(3/(n_in+n_out)), Xavier with the product n_in*n_out); then swapped fans, std/variance
confusion, a missing factor 2, the wrong family with the right variance, ignoring ``rng``
(global ``np.random``, a fixed seed, a cached array), float32, the wrong shape and NaN, plus
mistakes specific to the other graded functions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    """One wrong answer cell: ``expect`` are lower-case fragments of the failure message."""

    assignment: str
    function: str
    label: str
    source: str
    expect: tuple[str, ...]


def _init(name: str, body: str) -> str:
    # zero fans taken as 1 (the contract's edge case), so each mutant carries only its mistake
    return (f"def {name}(shape, *, rng):\n    fan_in, fan_out = compute_fans(shape)\n"
            "    fan_in, fan_out = max(fan_in, 1), max(fan_out, 1)\n"
            + "\n".join("    " + ln for ln in body.strip().splitlines()) + "\n")


P2 = "ps2_initializers"
P1 = "ps1_variance"
P3 = "ps3_deep_signal"
P4 = "ps4_frameworks"

MUTANTS: list[Mutant] = [
    # ---- the blog posts' mistakes
    Mutant(P2, "lecun_uniform", "blog: uniform bounds with the same sign", _init(
        "lecun_uniform",
        "b = np.sqrt(1.0 / fan_in)\nreturn rng.uniform(low=b, high=b, size=shape)"),
        ("same sign",)),
    Mutant(P2, "lecun_uniform", "blog: bound sqrt(1/n) instead of sqrt(3/n)", _init(
        "lecun_uniform", "b = np.sqrt(1.0 / fan_in)\nreturn rng.uniform(-b, b, size=shape)"),
        ("sqrt(3)",)),
    Mutant(P2, "lecun_normal", "blog: std = 1/fan_in", _init(
        "lecun_normal", "return rng.normal(0.0, 1.0 / fan_in, size=shape)"),
        ("std = 1/fan_in",)),
    Mutant(P2, "xavier_normal", "blog: Glorot normal std sqrt(3/(n_in+n_out))", _init(
        "xavier_normal", "return rng.normal(0.0, np.sqrt(3.0 / (fan_in + fan_out)), size=shape)"),
        ("mistaken glorot normal",)),
    Mutant(P2, "xavier_normal", "blog: Xavier variance 2/(n_in*n_out)", _init(
        "xavier_normal", "return rng.normal(0.0, np.sqrt(2.0 / (fan_in * fan_out)), size=shape)"),
        ("product",)),
    # ---- swapped fans, std/variance, factor 2, receptive field
    Mutant(P2, "he_normal", "fan_out instead of fan_in", _init(
        "he_normal", "return rng.normal(0.0, np.sqrt(2.0 / fan_out), size=shape)"),
        ("fans swapped",)),
    Mutant(P2, "lecun_uniform", "fan_out instead of fan_in (uniform)", _init(
        "lecun_uniform", "b = np.sqrt(3.0 / fan_out)\nreturn rng.uniform(-b, b, size=shape)"),
        ("fans swapped",)),
    Mutant(P2, "he_normal", "variance passed as the std", _init(
        "he_normal", "return rng.normal(0.0, 2.0 / fan_in, size=shape)"),
        ("as the std",)),
    Mutant(P2, "he_normal", "missing factor 2", _init(
        "he_normal", "return rng.normal(0.0, np.sqrt(1.0 / fan_in), size=shape)"),
        ("factor 2",)),
    Mutant(P2, "xavier_uniform", "Xavier without the factor 2", _init(
        "xavier_uniform", "b = np.sqrt(3.0 / (fan_in + fan_out))\n"
        "return rng.uniform(-b, b, size=shape)"),
        ("factor 2",)),
    Mutant(P2, "he_uniform", "conv fans without the receptive field", '''
def he_uniform(shape, *, rng):
    b = np.sqrt(6.0 / shape[-2])
    return rng.uniform(-b, b, size=shape)
''', ("receptive field",)),
    # ---- wrong family, right variance
    Mutant(P2, "he_uniform", "normal drawn where uniform is asked", _init(
        "he_uniform", "return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)"),
        ("normal-distributed", "uniform is asked")),
    Mutant(P2, "xavier_normal", "uniform drawn where normal is asked", _init(
        "xavier_normal", "b = np.sqrt(6.0 / (fan_in + fan_out))\n"
        "return rng.uniform(-b, b, size=shape)"),
        ("uniform-distributed", "normal is asked")),
    Mutant(P2, "lecun_normal", "truncated normal where an untruncated one is asked", _init(
        "lecun_normal", "s = np.sqrt(1.0 / fan_in) / 0.87962566103423978\n"
        "w = rng.normal(0.0, s, size=shape)\nbad = np.abs(w) > 2 * s\n"
        "while bad.any():\n    w[bad] = rng.normal(0.0, s, size=bad.sum())\n"
        "    bad = np.abs(w) > 2 * s\nreturn w"),
        ("truncated normal", "bounded")),
    # ---- ignoring rng
    Mutant(P2, "he_normal", "global np.random", _init(
        "he_normal", "return np.random.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)"),
        ("global np.random",)),
    Mutant(P2, "he_normal", "fixed seed inside", _init(
        "he_normal", "g = np.random.default_rng(0)\n"
        "return g.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)"),
        ("ignores rng",)),
    Mutant(P2, "he_uniform", "cached array ignoring rng", '''
_CACHE = {}

def he_uniform(shape, *, rng):
    key = tuple(shape)
    if key not in _CACHE:
        fan_in, _ = compute_fans(shape)
        b = np.sqrt(6.0 / fan_in)
        _CACHE[key] = rng.uniform(-b, b, size=shape)
    return _CACHE[key]
''', ("ignores rng",)),
    Mutant(P2, "xavier_uniform", "np.random.seed then global draws", _init(
        "xavier_uniform", "np.random.seed(0)\nb = np.sqrt(6.0 / (fan_in + fan_out))\n"
        "return np.random.uniform(-b, b, size=shape)"),
        ("global np.random", "ignores rng")),
    # ---- dtype, shape, NaN, type
    Mutant(P2, "he_normal", "float32", _init(
        "he_normal", "return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)"
        ".astype(np.float32)"),
        ("float32",)),
    Mutant(P2, "lecun_normal", "wrong shape (transposed)", _init(
        "lecun_normal", "return rng.normal(0.0, np.sqrt(1.0 / fan_in), size=shape[::-1])"),
        ("shape",)),
    Mutant(P2, "xavier_normal", "NaN from a negative variance", _init(
        "xavier_normal",
        "return rng.normal(0.0, 1.0, size=shape) * np.sqrt(-2.0 / (fan_in + fan_out))"),
        ("nan",)),
    Mutant(P2, "he_uniform", "returns a list", _init(
        "he_uniform", "b = np.sqrt(6.0 / fan_in)\nreturn rng.uniform(-b, b, size=shape).tolist()"),
        ("expected a numpy.ndarray",)),
    Mutant(P2, "compute_fans", "no ValueError for 1-D shapes", '''
def compute_fans(shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    rf = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * rf, shape[-1] * rf
''', ("expected a valueerror",)),
    Mutant(P2, "compute_fans", "swapped fans", '''
def compute_fans(shape):
    if len(shape) < 2:
        raise ValueError("2 dims")
    rf = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-1] * rf, shape[-2] * rf
''', ("swapped",)),
    Mutant(P2, "compute_fans", "kernel size ignored", '''
def compute_fans(shape):
    if len(shape) < 2:
        raise ValueError("2 dims")
    return shape[-2], shape[-1]
''', ("kernel's size",)),
    # ---- ps1
    Mutant(P1, "preactivation_variance", "n_in forgotten", '''
def preactivation_variance(n_in, var_w, var_x):
    return var_w * var_x
''', ("n_in is missing",)),
    Mutant(P1, "sample_preactivations", "one normal with the total variance", '''
def sample_preactivations(n_in, var_w, var_x, n_samples, *, rng):
    return rng.normal(0.0, np.sqrt(n_in * var_w * var_x), size=n_samples)
''', ("kurtosis", "products")),
    Mutant(P1, "sample_preactivations", "one w shared by all samples", '''
def sample_preactivations(n_in, var_w, var_x, n_samples, *, rng):
    w = rng.normal(0.0, np.sqrt(var_w), size=n_in)
    x = rng.normal(0.0, np.sqrt(var_x), size=(n_samples, n_in))
    return x @ w
''', ("kurtosis",)),
    Mutant(P1, "sample_preactivations", "stds multiplied as variances", '''
def sample_preactivations(n_in, var_w, var_x, n_samples, *, rng):
    w = rng.normal(0.0, var_w, size=(n_samples, n_in))
    x = rng.normal(0.0, var_x, size=(n_samples, n_in))
    return (w * x).sum(axis=1)
''', ("variance",)),
    Mutant(P1, "two_layer_gradients", "not divided by the batch size", '''
def two_layer_gradients(X, y, W1, W2):
    H = np.tanh(X @ W1)
    E = H @ W2 - y
    return X.T @ ((E @ W2.T) * (1 - H ** 2)), H.T @ E
''', ("batch size",)),
    Mutant(P1, "two_layer_gradients", "tanh derivative forgotten", '''
def two_layer_gradients(X, y, W1, W2):
    H = np.tanh(X @ W1)
    E = (H @ W2 - y) / X.shape[0]
    return X.T @ (E @ W2.T), H.T @ E
''', ("dw1 differs",)),
    # ---- ps3
    Mutant(P3, "init_network", "ignores the initializer and rng", '''
def init_network(layer_sizes, initializer, *, rng):
    g = np.random.default_rng(0)
    return [g.normal(0, 0.1, (a, b)) for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
''', ("is not what",)),
    Mutant(P3, "init_network", "transposed weight shapes", '''
def init_network(layer_sizes, initializer, *, rng):
    return [initializer((b, a), rng=rng) for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
''', ("shape",)),
    Mutant(P3, "forward_activations", "X included in the list", '''
def forward_activations(X, weights, activation):
    f = {"linear": lambda z: z, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0),
         "sigmoid": lambda z: 1 / (1 + np.exp(-z))}[activation]
    out = [X]
    for W in weights:
        out.append(f(out[-1] @ W))
    return out
''', ("x itself is not in the list", "valueerror")),
    Mutant(P3, "forward_activations", "returns pre-activations", '''
def forward_activations(X, weights, activation):
    if activation not in ("linear", "tanh", "sigmoid", "relu"):
        raise ValueError(activation)
    out, h = [], X
    for W in weights:
        z = h @ W
        h = np.tanh(z) if activation == "tanh" else np.maximum(z, 0) if activation == "relu" else z
        out.append(z)
    return out
''', ("pre-activation",)),
    Mutant(P3, "layer_stds", "ddof=1", '''
def layer_stds(activations):
    return np.array([np.std(a, ddof=1) for a in activations])
''', ("ddof=1",)),
    Mutant(P3, "layer_stds", "per-unit std averaged", '''
def layer_stds(activations):
    return np.array([a.std(axis=0).mean() for a in activations])
''', ("per-unit",)),
    Mutant(P3, "signal_preserving_std", "ReLU without the factor 2, no ValueError", '''
def signal_preserving_std(n_in, activation):
    return 1.0 / np.sqrt(n_in)
''', ("relu zeroes half", "expected a valueerror")),
    Mutant(P3, "signal_preserving_std", "variance instead of std", '''
def signal_preserving_std(n_in, activation):
    if activation == "sigmoid":
        raise ValueError("sigmoid")
    return (2.0 if activation == "relu" else 1.0) / n_in
''', ("take the square root",)),
    # ---- ps4
    Mutant(P4, "calculate_gain", "tanh gain 1, leaky slope default 0", '''
def calculate_gain(nonlinearity, param=None):
    if nonlinearity == "relu":
        return 2 ** 0.5
    if nonlinearity == "leaky_relu":
        return (2 / (1 + (param or 0) ** 2)) ** 0.5
    if nonlinearity == "selu":
        return 0.75
    return 1.0
''', ("5/3", "slope is 0.01", "expected a valueerror")),
    Mutant(P4, "torch_fans", "Keras layout used for PyTorch shapes", '''
def torch_fans(shape):
    if len(shape) < 2:
        raise ValueError("2 dims")
    rf = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * rf, shape[-1] * rf
''', ("torch_fans((256, 784)) returned (256, 784)",)),
    Mutant(P4, "truncated_normal", "np.clip instead of truncation", '''
def truncated_normal(shape, std, *, rng):
    return np.clip(rng.normal(0.0, std, size=shape), -2 * std, 2 * std)
''', ("np.clip",)),
    Mutant(P4, "truncated_normal", "no truncation at all", '''
def truncated_normal(shape, std, *, rng):
    return rng.normal(0.0, std, size=shape)
''', ("untruncated",)),
    Mutant(P4, "truncated_normal", "cut at +-2 in absolute units", '''
def truncated_normal(shape, std, *, rng):
    w = rng.normal(0.0, std, size=shape)
    bad = np.abs(w) > 2
    while bad.any():
        w[bad] = rng.normal(0.0, std, size=bad.sum())
        bad = np.abs(w) > 2
    return w
''', ("truncated_normal((784, 256), 0.05",)),
    Mutant(P4, "he_normal_truncated", "no 0.8796 correction", '''
def he_normal_truncated(shape, *, rng):
    fan_in = int(np.prod(shape[:-1]))
    return truncated_normal(shape, np.sqrt(2.0 / fan_in), rng=rng)
''', ("0.8796",)),
    Mutant(P4, "torch_linear_default", "bound from out_features", '''
def torch_linear_default(in_features, out_features, *, rng):
    b = 1 / np.sqrt(out_features)
    return (rng.uniform(-b, b, (out_features, in_features)), rng.uniform(-b, b, out_features))
''', ("out_features",)),
    Mutant(P4, "torch_linear_default", "weight stored as (in, out)", '''
def torch_linear_default(in_features, out_features, *, rng):
    b = 1 / np.sqrt(in_features)
    return rng.uniform(-b, b, (in_features, out_features)), rng.uniform(-b, b, out_features)
''', ("(out_features, in_features)",)),
    Mutant(P4, "torch_linear_default", "He uniform bound sqrt(6/in)", '''
def torch_linear_default(in_features, out_features, *, rng):
    b = np.sqrt(6.0 / in_features)
    return rng.uniform(-b, b, (out_features, in_features)), rng.uniform(-b, b, out_features)
''', ("sqrt(6/in_features)",)),
]


LOSES: dict[str, tuple[str, ...]] = {
    'blog: uniform bounds with the same sign': ('public', 'dense', 'conv', 'family', 'rng'),
    'blog: bound sqrt(1/n) instead of sqrt(3/n)': ('public', 'dense', 'conv'),
    'blog: std = 1/fan_in': ('public', 'dense', 'conv'),
    'blog: Glorot normal std sqrt(3/(n_in+n_out))': ('public', 'dense', 'conv'),
    'blog: Xavier variance 2/(n_in*n_out)': ('public', 'dense', 'conv'),
    'fan_out instead of fan_in': ('public', 'dense', 'conv'),
    'fan_out instead of fan_in (uniform)': ('public', 'dense', 'conv'),
    'variance passed as the std': ('public', 'dense', 'conv'),
    'missing factor 2': ('public', 'dense', 'conv'),
    'Xavier without the factor 2': ('public', 'dense', 'conv'),
    'conv fans without the receptive field': ('public', 'dense', 'conv'),
    'normal drawn where uniform is asked': ('public', 'family'),
    'uniform drawn where normal is asked': ('public', 'family'),
    'truncated normal where an untruncated one is asked': ('public', 'family'),
    'global np.random': ('public', 'rng'),
    'fixed seed inside': ('public', 'dense', 'conv', 'family', 'rng'),
    'cached array ignoring rng': ('public', 'dense', 'conv', 'family', 'rng'),
    'np.random.seed then global draws': ('public', 'dense', 'conv', 'family', 'rng'),
    'float32': ('public', 'dense', 'conv'),
    'wrong shape (transposed)': ('public', 'dense', 'conv'),
    'NaN from a negative variance': ('public', 'dense', 'conv', 'family', 'rng'),
    'returns a list': ('public', 'dense', 'conv', 'family'),
    'no ValueError for 1-D shapes': ('public', 'errors'),
    'swapped fans': ('public', 'dense', 'conv'),
    'kernel size ignored': ('public', 'conv'),
    'n_in forgotten': ('public', 'values', 'edges'),
    'one normal with the total variance': ('family',),
    'one w shared by all samples': ('variance', 'family', 'edges'),
    'stds multiplied as variances': ('public', 'variance'),
    'not divided by the batch size': ('public', 'dW2', 'dW1'),
    'tanh derivative forgotten': ('public', 'dW1', 'edges'),
    'ignores the initializer and rng': ('public', 'values', 'edges'),
    'transposed weight shapes': ('public', 'values'),
    'X included in the list': ('public', 'activations', 'edges'),
    'returns pre-activations': ('public', 'activations', 'edges'),
    'ddof=1': ('public', 'values', 'edges'),
    'per-unit std averaged': ('public', 'values'),
    'ReLU without the factor 2, no ValueError': ('public', 'values', 'sigmoid'),
    'variance instead of std': ('public', 'values', 'sigmoid'),
    'tanh gain 1, leaky slope default 0': ('public', 'values', 'edges'),
    'Keras layout used for PyTorch shapes': ('public', 'dense', 'conv'),
    'np.clip instead of truncation': ('public', 'variance', 'family'),
    'no truncation at all': ('public', 'variance', 'family'),
    'cut at +-2 in absolute units': ('public', 'variance', 'family'),
    'no 0.8796 correction': ('public', 'dense', 'conv'),
    'bound from out_features': ('public', 'weight', 'bias', 'edges'),
    'weight stored as (in, out)': ('public', 'weight', 'edges'),
    'He uniform bound sqrt(6/in)': ('public', 'weight', 'bias', 'edges'),
}
"""The concerns (test cells) each mutant must fail, and it must pass every other concern of its
function: one mistake costs the points of the concerns it affects and no others. ``public`` is
in most rows because the visible tests catch most mistakes too. Values that ignore the given
rng (a fixed seed, a cached array) cost every concern: their statistics prove nothing."""

