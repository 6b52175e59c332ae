"""Hidden checks of every graded function: correct variants pass, mutants fail, no false fails.

* Several different correct implementations per function (tests/grading_catalogue/correct.py)
  get every check of every function, graded through the real runner and sandbox.
* Every mutant (tests/grading_catalogue/mutants.py: the blog posts' mistakes, swapped fans,
  std/variance, a missing factor 2, the wrong family with the right variance, ignoring rng,
  float32, shape, NaN...) fails its function with a message containing the expected words.
* False-fail rate: every hidden statistical check is run against correct implementations over
  many grader seeds (in-process, through the same ``FunctionSpec.judge`` code path the runner
  uses) with no failure, and the z-scores are checked to have unit spread, which proves the
  standard errors behind the 6-SE tolerances are neither too loose nor too tight.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from grading_catalogue.correct import VARIANTS, sources
from grading_catalogue.mutants import LOSES, MUTANTS, Mutant

from course_lib.grading.runner import grade_function, grade_notebook
from course_lib.grading.sandbox import (
    ArrayValue,
    Call,
    CallOutcome,
    ExceptionValue,
    GraderInitializer,
    Rng,
    ScalarValue,
    SeqValue,
)
from course_lib.grading.specs import (
    ASSIGNMENTS,
    NOTEBOOKS,
    SPECS,
    assignment_of,
    get_spec,
    make_seeds,
)

CONTRACT = {
    "ps1_variance": ["preactivation_variance", "sample_preactivations", "two_layer_gradients"],
    "ps2_initializers": ["compute_fans", "lecun_normal", "lecun_uniform", "xavier_normal",
                         "xavier_uniform", "he_normal", "he_uniform"],
    "ps3_deep_signal": ["init_network", "forward_activations", "layer_stds",
                        "signal_preserving_std"],
    "ps4_frameworks": ["calculate_gain", "torch_fans", "truncated_normal",
                       "he_normal_truncated", "torch_linear_default"],
}


def test_specs_cover_exactly_the_exercise_contract() -> None:
    assert {a: list(fs) for a, fs in SPECS.items()} == CONTRACT
    assert set(NOTEBOOKS) == set(ASSIGNMENTS)
    assert assignment_of("he_normal") == "ps2_initializers"
    with pytest.raises(ValueError, match="unknown graded function"):
        assignment_of("he_normall")
    with pytest.raises(ValueError, match="ps2_initializers"):
        get_spec("ps9", "he_normal")
    with pytest.raises(ValueError, match="'he_normal'"):
        get_spec("ps2_initializers", "nope")


def test_seeds_are_derived_reproducibly_and_differ_per_function() -> None:
    assert make_seeds("he_normal") == make_seeds("he_normal")
    assert make_seeds("he_normal") != make_seeds("he_uniform")
    assert make_seeds("he_normal", 1) != make_seeds("he_normal", 2)


@pytest.mark.parametrize("assignment", list(CONTRACT))
def test_every_correct_variant_gets_every_check(assignment: str) -> None:
    assert len(VARIANTS[assignment]) >= 3
    for i in range(len(VARIANTS[assignment])):
        verdicts = grade_notebook(sources(assignment, i), assignment)
        failed = {fn: v.message for fn, v in verdicts.items() if not v.passed}
        assert not failed, f"variant {i}: {failed}"
        for v in verdicts.values():
            assert v.seeds == make_seeds(v.function)
            assert v.versions["numpy"] == np.__version__
            assert v.checks and v.duration > 0
            # full marks in every concern, and every check is tagged with one of them
            concerns = SPECS[assignment][v.function].concerns
            assert all(v.passed(c) for c in concerns), (i, v.function)
            assert {c.concern for c in v.checks} == set(concerns), (v.function, v.concerns)


def test_every_function_has_a_public_and_a_hidden_concern_with_sensible_points() -> None:
    totals = {}
    for assignment, fs in SPECS.items():
        for fn, spec in fs.items():
            assert spec.concerns[0] == "public" and spec.points["public"] == 1, fn
            assert len(spec.concerns) >= 2 and all(p >= 1 for p in spec.points.values()), fn
            assert 4 <= spec.total_points <= 5, fn
        totals[assignment] = sum(s.total_points for s in fs.values())
    assert totals == {"ps1_variance": 13, "ps2_initializers": 34, "ps3_deep_signal": 16,
                      "ps4_frameworks": 23}


def test_the_contract_document_states_the_specs_concerns_and_points() -> None:
    """course_lib/grading/CONTRACT.md's tables list each function's concerns and points."""
    import re
    from pathlib import Path

    import course_lib.grading

    text = (Path(course_lib.grading.__file__).parent / "CONTRACT.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for name in re.findall(r"`(\w+)`", cells[0]):
                rows[name] = cells[2]
    for fs in SPECS.values():
        for fn, spec in fs.items():
            stated = ", ".join(f"{c} {p}" for c, p in spec.points.items())
            assert rows[fn].removesuffix(" (each)") == stated, (fn, rows.get(fn), stated)


# Answer cells may call these (the initializers call the student's compute_fans; a correct
# he_normal_truncated may call the student's truncated_normal): their mutants are graded alone,
# and their dependents must keep full marks (one mistake costs its own points only).
HELPERS = {"compute_fans": set(CONTRACT["ps2_initializers"]) - {"compute_fans"},
           "truncated_normal": {"he_normal_truncated"}}


def _rounds(muts: list[Mutant]) -> list[list[Mutant]]:
    """Group mutants so that each round has at most one per (assignment, function)."""
    rounds: list[list[Mutant]] = []
    for m in muts:
        if m.function in HELPERS:
            rounds.append([m])
            continue
        for r in rounds:
            if r[0].function in HELPERS:
                continue
            if all((x.assignment, x.function) != (m.assignment, m.function)
                   and x.assignment == m.assignment for x in r):
                r.append(m)
                break
        else:
            rounds.append([m])
    return rounds


def test_the_mutant_catalogue_covers_the_required_mistakes() -> None:
    labels = " | ".join(m.label for m in MUTANTS)
    for needed in ("same sign", "sqrt(1/n)", "std = 1/fan_in", "sqrt(3/(n_in+n_out))",
                   "2/(n_in*n_out)", "fan_out instead of fan_in", "variance passed as the std",
                   "missing factor 2", "normal drawn where uniform", "uniform drawn where normal",
                   "global np.random", "fixed seed", "cached array", "float32", "wrong shape",
                   "NaN"):
        assert needed in labels, needed
    assert {m.function for m in MUTANTS} == {f for fs in CONTRACT.values() for f in fs}


@pytest.mark.parametrize("round_index", range(len(_rounds(MUTANTS))))
def test_each_mutant_fails_its_function_with_a_useful_message(round_index: int) -> None:
    muts = _rounds(MUTANTS)[round_index]
    assignment = muts[0].assignment
    cells = sources(assignment, 0, **{m.function: m.source for m in muts})
    verdicts = grade_notebook(cells, assignment)
    for m in muts:
        v = verdicts[m.function]
        assert not v.passed, f"{m.label}: passed\n{v.message}"
        msg = v.message.lower()
        missing = [e for e in m.expect if e.lower() not in msg]
        assert not missing, f"{m.label}: message lacks {missing}\n{v.message}"
        # it loses exactly the concerns it exists for, each with a message of its own
        lost = tuple(c for c in SPECS[assignment][m.function].concerns if not v.passed(c))
        assert lost == LOSES[m.label], f"{m.label}: lost {lost}, expected {LOSES[m.label]}"
        for c in lost:
            assert "FAILED" in v.message_for(c) and f"[{c}]" in v.message_for(c)
    # the other functions of the notebook, helpers' dependents included, keep every point
    mutated = {m.function for m in muts}
    for fn, v in verdicts.items():
        if fn not in mutated:
            assert v.passed, v.message


def test_every_mutant_states_the_concerns_it_loses() -> None:
    assert set(LOSES) == {m.label for m in MUTANTS}
    for m in MUTANTS:
        concerns = SPECS[m.assignment][m.function].concerns
        assert LOSES[m.label] and set(LOSES[m.label]) <= set(concerns), m.label


def test_a_wrong_compute_fans_costs_only_its_own_points() -> None:
    """The ps2 notebook with correct initializers and a wrong compute_fans scores 34 - 4 (code).

    The points are summed over the test cells that the judge passes, per concern, as the
    graders award them; each wrong compute_fans loses some of its 4 points and nothing else.
    """
    for label in ("swapped fans", "kernel size ignored", "no ValueError for 1-D shapes"):
        m = next(x for x in MUTANTS if x.label == label)
        for variant in range(len(VARIANTS["ps2_initializers"])):
            cells = sources("ps2_initializers", variant, compute_fans=m.source)
            verdicts = grade_notebook(cells, "ps2_initializers")
            score = {fn: sum(p for c, p in SPECS["ps2_initializers"][fn].points.items()
                             if v.passed(c)) for fn, v in verdicts.items()}
            assert score["compute_fans"] < 4, (label, score)
            assert {fn: s for fn, s in score.items() if fn != "compute_fans"} == {
                fn: 5 for fn in CONTRACT["ps2_initializers"][1:]}, (label, variant, score)
    # a kernel-size mistake *inside* an initializer still costs that initializer its points
    m = next(x for x in MUTANTS if x.label == "conv fans without the receptive field")
    v = grade_notebook(sources("ps2_initializers", 0, **{m.function: m.source}),
                       "ps2_initializers")[m.function]
    assert not v.passed("conv") and not v.passed("dense")


# --------------------------------------------------------------------------- hints


_HINT_MUTANTS = {
    # (scheme, family, std or bound expression from fan_in, fan_out): the words of its hint
    "fans swapped": ("he", "normal", "np.sqrt(2.0 / fan_out)", "fans swapped"),
    "std = 1/fan_in": ("lecun", "normal", "1.0 / fan_in", "std = 1/fan_in"),
    "Xavier product": ("xavier", "normal", "np.sqrt(2.0 / (fan_in * fan_out))", "product"),
    "Xavier factor 2": ("xavier", "normal", "np.sqrt(1.0 / (fan_in + fan_out))",
                        "factor 2 is missing"),
    "LeCun with Xavier": ("lecun", "normal", "np.sqrt(2.0 / (fan_in + fan_out))",
                          "xavier's variance"),
    "He without 2": ("he", "normal", "np.sqrt(1.0 / fan_in)", "he needs the factor 2"),
    "LeCun with 2": ("lecun", "normal", "np.sqrt(2.0 / fan_in)", "an extra factor 2"),
    "variance as std": ("he", "normal", "2.0 / fan_in", "passed as the std"),
    "missing sqrt(3)": ("lecun", "uniform", "np.sqrt(1.0 / fan_in)", "missing sqrt(3)"),
    "Glorot sqrt(3)": ("xavier", "normal", "np.sqrt(3.0 / (fan_in + fan_out))",
                       "mistaken glorot normal"),
}


@pytest.mark.parametrize("label", list(_HINT_MUTANTS))
def test_each_variance_mistake_gets_its_own_hint_on_every_shape(label: str) -> None:
    """On the dense, transposed and conv shapes, the hint names this mistake and no other:
    the shapes keep every plausible wrong variance apart (issue 13: on (3, 3, 64, 128) LeCun's
    std = 1/fan_in looked like Xavier's 2/(fan_in fan_out))."""
    scheme, family, scale, words = _HINT_MUTANTS[label]
    fn = f"{scheme}_{family}"
    draw = (f"rng.normal(0.0, {scale}, size=shape)" if family == "normal" else
            f"rng.uniform(-{scale}, {scale}, size=shape)")
    src = (f"def {fn}(shape, *, rng):\n    fan_in, fan_out = compute_fans(shape)\n"
           f"    fan_in, fan_out = max(fan_in, 1), max(fan_out, 1)\n    return {draw}\n")
    ns: dict[str, Any] = {}
    for cell in sources("ps2_initializers", 0, **{fn: src}).values():
        exec(cell, ns)  # trusted test code
    spec = get_spec("ps2_initializers", fn)
    seeds = make_seeds(fn)
    checks = spec.judge(_run_inprocess(ns, spec.calls(seeds)), seeds)
    variance = [c for c in checks if c.name == "variance" and c.concern in ("dense", "conv")
                and "(1, 4000)" not in c.message]  # at n_in = 1 some mistakes are right
    shapes = {c.message.split(",")[0] for c in variance}
    assert len(variance) >= 3 and all(not c.passed for c in variance), label
    for c in variance:
        assert words in c.hint.lower(), (label, c.message, c.hint)
    assert len(shapes) >= 3


# --------------------------------------------------------------------------- false-fail rate


def _decode(arg: Any) -> Any:
    if isinstance(arg, Rng):
        return np.random.default_rng(arg.seed)
    if isinstance(arg, GraderInitializer):
        scale = arg.scale

        def init(shape: Any, *, rng: np.random.Generator) -> np.ndarray:
            return scale * rng.standard_normal(tuple(shape))

        return init
    if isinstance(arg, tuple):
        return tuple(_decode(a) for a in arg)
    if isinstance(arg, list):
        return [_decode(a) for a in arg]
    return arg


def _wrap(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ArrayValue(np.frombuffer(value.tobytes(), dtype=value.dtype).reshape(value.shape),
                          "numpy.ndarray")
    if isinstance(value, (tuple, list)):
        return SeqValue("tuple" if isinstance(value, tuple) else "list",
                        [_wrap(v) for v in value])
    return ScalarValue(value, type(value).__name__)


def _run_inprocess(namespace: dict[str, Any], calls: list[Call]) -> dict[str, CallOutcome]:
    """Make the calls on trusted catalogue code in this process (same judge code path)."""
    out = {}
    legacy = np.random.mtrand._rand  # the global state, as the sandbox child watches it
    for c in calls:
        if c.global_seed is not None:
            legacy.seed(c.global_seed)
        before = legacy.get_state()[1].copy()
        try:
            value = namespace[c.func](*[_decode(a) for a in c.args],
                                      **{k: _decode(v) for k, v in c.kwargs.items()})
        except ValueError as exc:  # the contract's ValueErrors (edge values)
            out[c.key] = CallOutcome(c, "raised", error=ExceptionValue("ValueError", str(exc)))
            continue
        touched = not np.array_equal(before, legacy.get_state()[1])
        out[c.key] = CallOutcome(c, "ok", _wrap(value), global_touched=touched)
    return out


SAMPLED = [(a, fn) for a, fs in SPECS.items() for fn, s in fs.items() if s.sampled]
SEEDS_PER_FUNCTION = 18


@pytest.mark.slow
def test_no_false_fails_over_many_seeds_and_unit_z_spread() -> None:
    """>= 1,000 statistical check evaluations on correct code; z-scores have unit spread.

    10 sampled functions x 18 grader seeds (base seeds 1..18) x 5-11 statistical checks each
    (variance on 2-3 calls, mean, kurtosis, tails or the two bound checks) = about 1,100
    evaluations. A correct implementation fails one 6-SE check with probability 2e-9, so any
    failure here is a bug in a tolerance. The spread check: if the standard errors are right,
    the pooled z-scores of each check kind have mean 0 and standard deviation 1; the allowed
    deviation is 4 standard errors of those estimates (1/sqrt(m) and 1/sqrt(2 m) for m
    z-scores), so a standard error off by 25% or more shows on the variance checks (m ~ 400).
    """
    zs: dict[str, list[float]] = defaultdict(list)
    n_stat = 0
    assert len(SAMPLED) == 10
    for assignment, fn in SAMPLED:
        spec = get_spec(assignment, fn)
        usable = [0, 1] if fn in ("truncated_normal", "he_normal_truncated") else [0, 1, 2]
        namespaces = []
        for vi in usable:
            ns: dict[str, Any] = {}
            for src in sources(assignment, vi).values():
                exec(src, ns)  # trusted catalogue code, not student code
            namespaces.append(ns)
        for k in range(SEEDS_PER_FUNCTION):
            seeds = make_seeds(fn, base_seed=k + 1)
            ns = namespaces[k % len(namespaces)]
            outs = _run_inprocess(ns, spec.calls(seeds))
            checks = spec.judge(outs, seeds)
            failed = [c.describe() for c in checks if not c.passed]
            assert not failed, f"{fn} seed base {k + 1}: {failed}"
            for c in checks:
                if c.false_fail_rate > 0:
                    n_stat += 1
                if c.z is not None:
                    zs[c.name].append(float(c.z))
    assert n_stat >= 1000, n_stat
    print(f"{n_stat} statistical checks; z-scores per kind:",
          {k: len(v) for k, v in zs.items()})
    for name, values in zs.items():
        z = np.asarray(values)
        m = z.size
        assert m >= 40, (name, m)
        assert abs(z.mean()) < 4 / math.sqrt(m), (name, z.mean(), m)
        assert abs(z.std() - 1) < 4 / math.sqrt(2 * m), (name, z.std(), m)
        assert np.max(np.abs(z)) < 6, (name, np.max(np.abs(z)))
    assert len(zs["variance"]) >= 300


def test_grade_function_uses_the_given_seeds() -> None:
    seeds = make_seeds("he_normal", base_seed=99)
    v = grade_function(sources("ps2_initializers", 1), "ps2_initializers", "he_normal",
                       seeds=seeds)
    assert v.passed and v.seeds == seeds


# --------------------------------------------------------------------------- course_lib agrees


def test_inline_references_agree_with_course_lib() -> None:
    """The specs' own references (computed in the pristine parent) equal course_lib's."""
    import course_lib
    from course_lib import network
    from course_lib.grading import specs

    for shape in specs.FAN_CASES:
        assert course_lib.compute_fans(shape) == specs.fans(shape)
    for shape in specs.TORCH_FAN_CASES:
        assert course_lib.torch_fans(shape) == specs.torch_fans_ref(shape)
    for bad in specs.FAN_ERRORS:
        with pytest.raises(ValueError):
            course_lib.compute_fans(bad)
    for nl, param, expected in specs.GAIN_CASES:
        assert course_lib.calculate_gain(nl, param) == pytest.approx(expected, rel=1e-12)
    X, Ws = specs._forward_inputs(3)
    for act in specs.ACTIVATIONS:
        ref, _ = specs.forward_ref(X, Ws, act)
        got = network.forward(X, Ws, act).activations
        for a, b in zip(got, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    X, y, W1, W2 = specs._gradient_inputs(5, *specs.GRAD_DIMS[0])
    fp = network.forward(X, [W1, W2], "tanh", output_activation="linear")
    grads = network.backward(fp, [W1, W2], (fp.activations[-1] - y) / X.shape[0], "tanh")
    for a, b in zip(grads.weight_grads, specs.two_layer_gradients_ref(X, y, W1, W2),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "fn",
    ["lecun_normal", "lecun_uniform", "xavier_normal", "xavier_uniform", "he_normal",
     "he_uniform", "truncated_normal", "he_normal_truncated", "torch_linear_default",
     "sample_preactivations", "compute_fans", "calculate_gain", "torch_fans"],
)
def test_course_lib_reference_passes_the_hidden_checks(fn: str) -> None:
    import course_lib

    spec = get_spec(assignment_of(fn), fn)
    seeds = make_seeds(fn)
    ns = {f: getattr(course_lib, f) for f in (fn, "compute_fans", "truncated_normal")}
    outs = {}
    for c in spec.calls(seeds):  # ValueError calls must raise, so wrap each call
        try:
            outs.update(_run_inprocess(ns, [c]))
        except ValueError as exc:
            outs[c.key] = CallOutcome(c, "raised", error=ExceptionValue("ValueError", str(exc)))
    failed = [c.describe() for c in spec.judge(outs, seeds) if not c.passed]
    assert not failed


def test_a_grade_is_re_derived_from_its_recorded_seed() -> None:
    """Grading again with the verdict's base seed reproduces every measured value exactly."""
    cells = sources("ps4_frameworks", 0)
    first = grade_function(cells, "ps4_frameworks", "torch_linear_default", base_seed=7)
    again = grade_function(cells, "ps4_frameworks", "torch_linear_default",
                           base_seed=first.base_seed)
    other = grade_function(cells, "ps4_frameworks", "torch_linear_default", base_seed=8)
    measured = [c.measured for c in first.checks]
    assert measured == [c.measured for c in again.checks]
    assert measured != [c.measured for c in other.checks]
    assert first.seeds == make_seeds("torch_linear_default", 7)


def test_the_instructor_guide_states_the_same_points() -> None:
    """book/exercises/instructor.md's partial-credit table agrees with the specs."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "book/exercises/instructor.md").read_text()
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in text.splitlines()
            if ln.startswith("| ps")]
    seen = set()
    for ps, name, concerns, total in rows:
        assignment = next(a for a in SPECS if a.startswith(ps + "_"))
        names = ([name.strip("`")] if name.startswith("`") else
                 [f for f in CONTRACT["ps2_initializers"] if f != "compute_fans"])
        for fn in names:
            spec = SPECS[assignment][fn]
            assert concerns == ", ".join(f"{c} {p}" for c, p in spec.points.items()), fn
            assert int(total) == spec.total_points, fn
            seen.add(fn)
    assert seen == {f for fs in SPECS.values() for f in fs}
