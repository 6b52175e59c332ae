"""course_lib.report: the per-layer report at initialization and its adapter for captured arrays."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from course_lib import initializers as init
from course_lib import network, report
from course_lib.experiments import init_network


def _tanh_net(seed: int = 0) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray | None]]:
    """A small net with unequal widths, biases (one layer without) and a linear output."""
    gen = np.random.default_rng(seed)
    X = gen.standard_normal((40, 7))
    sizes = [7, 12, 9, 12, 3]
    weights = [init.xavier_normal((a, b), rng=gen) for a, b in itertools.pairwise(sizes)]
    biases: list[np.ndarray | None] = [gen.normal(0, 0.1, b) for b in sizes[1:]]
    biases[1] = None
    return X, weights, biases


def test_numbers_are_network_forward_and_backward_statistics() -> None:
    X, ws, bs = _tanh_net()
    y = np.arange(40) % 3
    r = report.init_report(X, ws, "tanh", biases=bs, output_activation="linear", labels=y)
    fp = network.forward(X, ws, "tanh", biases=bs, output_activation="linear")
    _, g = network.softmax_cross_entropy(fp.output, y)
    bp = network.backward(fp, ws, g)
    assert r.depth == 4
    np.testing.assert_array_equal(r.activation_std, [s.std for s in fp.activation_stats])
    np.testing.assert_array_equal(
        r.column("preactivation_std"), [s.std for s in fp.preactivation_stats]
    )
    np.testing.assert_array_equal(r.grad_std, [s.std for s in bp.activation_grad_stats])
    np.testing.assert_array_equal(
        r.column("preactivation_grad_std"), [s.std for s in bp.preactivation_grad_stats]
    )
    np.testing.assert_array_equal(
        r.column("weight_grad_std"), [s.std for s in bp.weight_grad_stats]
    )
    np.testing.assert_array_equal(r.column("weight_std"), [w.std() for w in ws])
    np.testing.assert_allclose(r.column("scale"), [w.shape[0] * w.var() for w in ws], rtol=1e-12)
    np.testing.assert_array_equal(r.column("saturated"), [s.saturated for s in fp.activation_stats])
    # the output layer's gradient is the softmax cross-entropy gradient itself
    assert r.layers[-1].grad_std == float(np.std(g))
    assert [row.shape for row in r.layers] == [w.shape for w in ws]
    assert [row.activation for row in r.layers] == ["tanh", "tanh", "tanh", "linear"]


def test_dead_units_are_units_saturated_for_every_example() -> None:
    gen = np.random.default_rng(3)
    a = np.maximum(gen.standard_normal((50, 8)), 0.0)
    a[:, 2] = 0.0  # dead
    a[:, 5] = 0.0
    a[7, 5] = 0.3  # alive for one example: not dead
    r = report.report_from_arrays([a, a], activation="relu")
    assert r.layers[0].dead == 1 / 8
    assert r.layers[0].saturated == network.saturation_fraction(a, "relu")
    # tanh: saturated means |a| >= 0.95 for every example
    t = np.tanh(gen.standard_normal((30, 4)))
    t[:, 1] = 0.99
    t[:, 3] = -0.97
    rt = report.report_from_arrays([t, t], activation="tanh")
    assert rt.layers[0].dead == 0.5


def test_default_upstream_gradient_is_drawn_from_rng_and_grad_output_is_used_as_given() -> None:
    X, ws, _ = _tanh_net(1)
    a = report.init_report(X, ws, "tanh", rng=np.random.default_rng(5))
    b = report.init_report(X, ws, "tanh", rng=np.random.default_rng(5))
    c = report.init_report(X, ws, "tanh", rng=np.random.default_rng(6))
    assert a.table() == b.table()
    assert a.table() != c.table()
    G = np.random.default_rng(5).standard_normal((40, 3))
    d = report.init_report(X, ws, "tanh", grad_output=G)
    np.testing.assert_array_equal(d.grad_std, a.grad_std)
    assert a.upstream.startswith("N(0, 1)") and d.upstream == "given"
    before = np.random.get_state()[1].copy()  # noqa: NPY002 - checking the global state is untouched
    report.init_report(X, ws, "tanh", rng=1)
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def _relu_reports(scheme: str, seeds: range) -> list[report.InitReport]:
    out = []
    for s in seeds:
        gen = np.random.default_rng(s)
        ws, _ = init_network([64] + [256] * 10, scheme, rng=gen)
        X = gen.standard_normal((64, 64))
        out.append(report.init_report(X, ws, "relu", rng=gen))
    return out


def test_drift_flag_fires_for_lecun_on_relu_and_not_for_he() -> None:
    # Depth 10, width 256: by the chapter's eq-ym-fluctuation a correctly scaled net's log std
    # ratio between layers 1 and 10 has sd 0.5*sqrt(5*9/256) = 0.21, so the flag at log 2 = 0.69
    # is 3.3 sd away; LeCun's expected ratio is 2^(-9/2) = 0.044, log -3.1: 11 sd past the flag.
    lecun = _relu_reports("lecun_normal", range(3))
    he = _relu_reports("he_normal", range(3))
    for r in lecun:
        assert "forward" in r.layers[-1].flags and "backward" in r.layers[0].flags
        # the same per-layer factor 1/sqrt(2) both ways; sd of log(factor) about
        # sqrt(5/(9*256))/2 = 0.024 (and 0.027 for the 8 backward steps): 0.1 is 4 sd
        assert abs(math.log(r.forward_per_layer * math.sqrt(2))) < 0.1
        assert abs(math.log(r.backward_per_layer * math.sqrt(2))) < 0.1
        assert "Var(w) is 0.50x He's 2/n_in" in r.diagnosis
        assert not r.ok
    for r in he:
        assert r.ok, r.table()
        assert r.flagged == []
        assert "no layer's std drifts" in r.diagnosis


def test_adapter_gives_the_same_table_from_captured_arrays() -> None:
    X, ws, bs = _tanh_net(2)
    y = np.arange(40) % 3
    r = report.init_report(X, ws, "tanh", biases=bs, output_activation="linear", labels=y)
    fp = network.forward(X, ws, "tanh", biases=bs, output_activation="linear")
    _, g = network.softmax_cross_entropy(fp.output, y)
    bp = network.backward(fp, ws, g)
    captured = report.report_from_arrays(
        fp.activations,
        activation="tanh",
        output_activation="linear",
        preactivations=fp.preactivations,
        grads=bp.activation_grads,
        preactivation_grads=bp.preactivation_grads,
        weights=ws,
        weight_grads=bp.weight_grads,
        upstream=r.upstream,
    )
    assert captured.table() == r.table()
    for col in (
        "weight_std",
        "scale",
        "preactivation_std",
        "activation_std",
        "grad_std",
        "preactivation_grad_std",
        "weight_grad_std",
        "dead",
        "saturated",
        "forward_ratio",
        "backward_ratio",
    ):
        np.testing.assert_array_equal(captured.column(col), r.column(col))  # nan == nan here
    assert [row.flags for row in captured.layers] == [row.flags for row in r.layers]
    assert captured.diagnosis == r.diagnosis
    # per-layer names work as one name per layer too
    per_layer = report.report_from_arrays(
        fp.activations,
        activation=["tanh", "tanh", "tanh", "linear"],
        preactivations=fp.preactivations,
        grads=bp.activation_grads,
        preactivation_grads=bp.preactivation_grads,
        weights=ws,
        weight_grads=bp.weight_grads,
        upstream=r.upstream,
    )
    assert per_layer.table() == r.table()
    # float32 arrays (as a framework captures them) give the same numbers to float32 rounding
    f32 = report.report_from_arrays(
        [a.astype(np.float32) for a in fp.activations],
        activation="tanh",
        output_activation="linear",
        grads=[a.astype(np.float32) for a in bp.activation_grads],
    )
    np.testing.assert_allclose(f32.activation_std, r.activation_std, rtol=1e-6)
    np.testing.assert_allclose(f32.grad_std, r.grad_std, rtol=1e-6)


def test_adapter_catches_a_wrong_capture() -> None:
    """The same check that passes above fails when a hook captured the wrong arrays."""
    X, ws, bs = _tanh_net(2)
    fp = network.forward(X, ws, "tanh", biases=bs, output_activation="linear")
    G = np.ones((40, 3))
    r = report.init_report(X, ws, "tanh", biases=bs, output_activation="linear", grad_output=G)
    wrong = report.report_from_arrays(  # pre-activations captured where activations belong
        fp.preactivations, activation="tanh", output_activation="linear"
    )
    assert not np.allclose(wrong.activation_std, r.activation_std, rtol=1e-6)


def test_diagnosis_without_weights_infers_the_scale_from_the_factor() -> None:
    r = _relu_reports("lecun_normal", range(1))[0]
    gen = np.random.default_rng(0)
    ws, _ = init_network([64] + [256] * 10, "lecun_normal", rng=gen)
    X = gen.standard_normal((64, 64))
    fp = network.forward(X, ws, "relu")
    bp = network.backward(fp, ws, gen.standard_normal(fp.output.shape))
    hooks = report.report_from_arrays(fp.activations, activation="relu", grads=bp.activation_grads)
    assert hooks.activation_std.tolist() == r.activation_std.tolist()
    assert "Var(w) is about 0.5" in hooks.diagnosis  # r^2 of the backward factor 1/sqrt(2)
    assert math.isnan(hooks.layers[0].scale)
    assert "-" in hooks.table().splitlines()[4]  # unknown columns are shown as "-"


def test_sigmoid_diagnosis_and_forward_only_report() -> None:
    gen = np.random.default_rng(4)
    ws, _ = init_network([32] + [64] * 8, "xavier_normal", rng=gen)
    X = gen.standard_normal((32, 32)) * 5
    fp = network.forward(X, ws, "sigmoid")
    r = report.report_from_arrays(fp.activations, activation="sigmoid", weights=ws)
    assert r.backward_reference is None
    assert all("backward" not in row.flags for row in r.layers)
    # sigmoid's mean 1/2 passes through the weights as signal the next sigmoid squashes: the
    # std drops to about a third of layer 1's whatever the (zero-mean) weights' scale
    assert r.flagged == list(range(2, 9))
    assert "sigmoid has no variance-preserving scale" in r.diagnosis


def test_table_shows_one_row_per_layer_with_flags() -> None:
    r = _relu_reports("lecun_normal", range(1))[0]
    lines = r.table().splitlines()
    assert lines[0].startswith("Initialization report: 10 layers, batch 64")
    body = lines[4 : 4 + r.depth]
    assert [int(line.split()[0]) for line in body] == list(range(1, 11))
    assert "fwd" in body[-1] and "bwd" in body[0]
    assert lines[-1] == f"Diagnosis: {r.diagnosis}"
    assert str(r) == r.table()


def test_zero_signal_is_flagged_not_hidden() -> None:
    X = np.ones((4, 3))
    ws = [np.full((3, 3), 0.5), np.zeros((3, 3)), np.full((3, 3), 0.5)]
    r = report.init_report(X, ws, "tanh", grad_output=np.ones((4, 3)))
    assert "forward" in r.layers[1].flags  # std 0: ratio 0
    assert "backward" in r.layers[0].flags  # reference std 0: ratio nan, flagged
    assert r.diagnosis.startswith("activation std overflows or vanishes (layers 2-3)")


# --------------------------------------------------------------------------------------------
# Bad input: a short error that names the problem
# --------------------------------------------------------------------------------------------


def test_bad_input_errors() -> None:
    X, ws, _ = _tanh_net()
    with pytest.raises(ValueError, match="shape mismatch: weights\\[1\\]"):
        report.init_report(X, [ws[0], ws[0]], "tanh")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        report.init_report(X, ws, "swish")
    with pytest.raises(ValueError, match="unknown activation of layer 2 'swish'"):
        report.report_from_arrays([np.ones((2, 3))] * 2, activation=["relu", "swish"])
    with pytest.raises(ValueError, match=r"cross-entropy\) or grad_output, not both"):
        report.init_report(X, ws, "tanh", labels=np.zeros(40, int), grad_output=np.ones((40, 3)))
    with pytest.raises(ValueError, match="factor must be greater than 1"):
        report.init_report(X, ws, "tanh", factor=0.5)
    with pytest.raises(ValueError, match="4 activation names for 3"):
        report.init_report(X, ws[:3], ["tanh"] * 4)
    with pytest.raises(ValueError, match="hidden layers use different activations"):
        report.init_report(X, ws, ["tanh", "relu", "tanh", "linear"])
    with pytest.raises(ValueError, match="at least one matrix"):
        report.init_report(X, [], "tanh")
    a = [np.ones((5, 4)), np.ones((5, 6))]
    with pytest.raises(ValueError, match="shape mismatch: grads\\[1\\] has shape \\(5, 4\\)"):
        report.report_from_arrays(a, grads=[np.ones((5, 4)), np.ones((5, 4))])
    with pytest.raises(ValueError, match="got 1 grads for 2 layers"):
        report.report_from_arrays(a, grads=[np.ones((5, 4))])
    with pytest.raises(ValueError, match="transpose PyTorch's"):
        report.report_from_arrays(a, weights=[np.ones((4, 3)), np.ones((6, 4))])
    with pytest.raises(ValueError, match="expects 5 inputs, but layer 1 has 4 units"):
        report.report_from_arrays(a, weights=[np.ones((3, 4)), np.ones((5, 6))])
    with pytest.raises(ValueError, match="same batch size"):
        report.report_from_arrays([np.ones((5, 4)), np.ones((6, 4))])
    with pytest.raises(ValueError, match="batch axis and a unit axis"):
        report.report_from_arrays([np.ones(5)])
    with pytest.raises(ValueError, match="at least one array"):
        report.report_from_arrays([])
    with pytest.raises(ValueError, match="must be numeric"):
        report.report_from_arrays([np.array([["a"]])])
    with pytest.raises(ValueError, match="weight_grads need the weights"):
        report.report_from_arrays(a, weight_grads=[np.ones((3, 4)), np.ones((4, 6))])
    with pytest.raises(ValueError, match="got 3 names for 2 layers"):
        report.report_from_arrays(a, names=["a", "b", "c"])
    with pytest.raises(ValueError, match="unknown column"):
        report.report_from_arrays(a).column("flags")


def test_worked_example_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown initializer 'kaiming'"):
        report.worked_example_reports(rng=0, models=["kaiming"])
    with pytest.raises(ValueError, match="batch must be at most 1797"):
        report.worked_example_reports(rng=0, batch=5000)


def test_worked_example_is_reproducible_and_small_runs_are_cheap() -> None:
    a = report.worked_example_reports(rng=7, n_seeds=2, depth=3, width=16, batch=32)
    b = report.worked_example_reports(rng=7, n_seeds=2, depth=3, width=16, batch=32)
    assert list(a) == list(report.WORKED_MODELS)
    assert [r.table() for r in a["he_normal"]] == [r.table() for r in b["he_normal"]]
    assert a["he_normal"][0].table() != a["he_normal"][1].table()
    torch = a["torch_default"][0]
    # PyTorch's default: n * Var(w) = 1/3 in every layer (U(+-1/sqrt n) has variance 1/(3n))
    assert all(abs(row.scale * 3 - 1) < 0.5 for row in torch.layers)
    assert torch.upstream == "softmax cross-entropy"


def test_the_chapters_pytorch_code_is_valid_python() -> None:
    """The PyTorch recipes are shown, not run (no torch here): at least they must parse, and the
    hook recipe must call the adapter with the transposed weights."""
    import ast
    import re
    from pathlib import Path

    source = (Path(__file__).resolve().parent.parent / "book/papers/your_model.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", source, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 3
    for block in blocks:
        ast.parse(block)
    hooks = next(b for b in blocks if "register_forward_hook" in b)
    assert "report_from_arrays(" in hooks and ".weight.detach().numpy().T" in hooks
    assert any("model.apply(init_fn)" in b and "kaiming_normal_" in b for b in blocks)


def test_leaky_relu_diagnosis_uses_the_slope() -> None:
    """For slope a, E[f(z)^2] = (1 + a^2) Var(z)/2: the scale that keeps the variance is
    2/(1 + a^2) = 1.92 for a = 0.2, and LeCun's 1 is 0.52 of it (per-layer factor 0.72)."""
    gen = np.random.default_rng(0)
    ws, _ = init_network([64] + [256] * 10, "lecun_normal", rng=gen)
    r = report.init_report(
        gen.standard_normal((64, 64)), ws, "leaky_relu", negative_slope=0.2, rng=gen
    )
    assert abs(math.log(r.backward_per_layer / math.sqrt(1.04 / 2))) < 0.1
    assert "Var(w) is 0.52x Kaiming's" in r.diagnosis and "leaky_relu wants 1.92" in r.diagnosis
