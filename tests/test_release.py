"""The nbgrader source notebooks (solutions/) and their release (exercises/).

Fast checks: every notebook follows the exercise contract (course_lib/grading/CONTRACT.md) and
the notebook conventions of the grading architecture (read-only setup cell, one answer cell per
graded function beginning ``def <name>(``, a public test cell and one hidden test cell per
concern of each function, with the contract's points, valid nbgrader metadata); the
release holds no solution and no hidden test; the public tests pass on the reference solutions
and fail on the untouched release and on typical mistakes; the feedback filter hides hidden
tests. Slow (nbgrader, about 20-40 s): ``nbgrader generate_assignment`` reproduces the committed
``exercises/`` byte for byte.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conftest import ROOT

from course_lib.grading.demo import solution_answers
from course_lib.grading.feedback import HideHiddenTests, hide_hidden_regions
from course_lib.grading.release import (
    assignments,
    generate_release,
    release_differences,
    released_source,
)

CONTRACT: dict[str, tuple[str, list[str]]] = {
    "ps1_variance": (
        "variance",
        ["preactivation_variance", "sample_preactivations", "two_layer_gradients"],
    ),
    "ps2_initializers": (
        "initializers",
        [
            "compute_fans",
            "lecun_normal",
            "lecun_uniform",
            "xavier_normal",
            "xavier_uniform",
            "he_normal",
            "he_uniform",
        ],
    ),
    "ps3_deep_signal": (
        "deep_signal",
        ["init_network", "forward_activations", "layer_stds", "signal_preserving_std"],
    ),
    "ps4_frameworks": (
        "frameworks",
        [
            "calculate_gain",
            "torch_fans",
            "truncated_normal",
            "he_normal_truncated",
            "torch_linear_default",
        ],
    ),
}
"""The exercise contract (course_lib/grading/CONTRACT.md): assignment -> (notebook, graded
functions in order)."""

HIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "check_hidden", "course_lib")
SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION")


def _load(path: Path) -> Any:
    return nbformat.read(str(path), as_version=4)


def _source_path(assignment: str) -> Path:
    return ROOT / "solutions" / assignment / f"{CONTRACT[assignment][0]}.ipynb"


def _release_path(assignment: str) -> Path:
    return ROOT / "exercises" / assignment / f"{CONTRACT[assignment][0]}.ipynb"


def _nbg(cell: Any) -> dict[str, Any]:
    return dict(cell.metadata.get("nbgrader", {}))


def _cells_by_id(nb: Any) -> dict[str, Any]:
    return {_nbg(c)["grade_id"]: c for c in nb.cells if "grade_id" in _nbg(c)}


def test_the_assignments_are_the_contracts() -> None:
    assert assignments() == sorted(CONTRACT)
    for assignment, (notebook, _) in CONTRACT.items():
        assert [p.name for p in (ROOT / "solutions" / assignment).glob("*.ipynb")] == [
            f"{notebook}.ipynb"
        ]


def test_the_judges_specs_grade_exactly_these_functions() -> None:
    from course_lib.grading.specs import SPECS

    assert {a: sorted(fs) for a, fs in SPECS.items()} == {
        a: sorted(fs) for a, (_, fs) in CONTRACT.items()
    }


@pytest.mark.parametrize("assignment", sorted(CONTRACT))
def test_source_notebook_follows_the_conventions(assignment: str) -> None:
    from nbgrader.nbgraderformat import MetadataValidator

    nb = _load(_source_path(assignment))
    nbformat.validate(nb)
    MetadataValidator().validate_nb(nb)  # nbgrader's schema (version 3); raises if invalid
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = code[0]
    assert _nbg(setup) == {
        "grade": False,
        "grade_id": "setup",
        "locked": True,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    assert "import numpy as np" in setup.source
    assert setup.metadata.get("editable") is False and setup.metadata.get("deletable") is False

    from course_lib.grading.specs import SPECS

    cells = _cells_by_id(nb)
    order = [_nbg(c)["grade_id"] for c in nb.cells if "grade_id" in _nbg(c)]
    expected_graded: set[str] = set()
    for name in CONTRACT[assignment][1]:
        points = dict(SPECS[assignment][name].points)  # the contract's concerns and points
        assert next(iter(points)) == "public" and len(points) >= 2, points
        answer = cells[name]
        tests = [f"test_{name}_{concern}" for concern in points]
        expected_graded.update(tests)
        # The answer cell, then its public test, then one hidden cell per concern, in order.
        assert [order.index(t) for t in tests] == list(
            range(order.index(name) + 1, order.index(name) + 1 + len(tests))
        ), (name, order)
        assert answer.cell_type == "code" and answer.source.startswith(f"def {name}(")
        assert _nbg(answer)["solution"] and not _nbg(answer)["grade"]
        assert answer.source.count("### BEGIN SOLUTION") == 1
        assert answer.source.rstrip().endswith("### END SOLUTION")
        for concern, test_id in zip(points, tests, strict=True):
            test = cells[test_id]
            meta = _nbg(test)
            assert meta["grade"] and meta["locked"] and not meta["solution"], meta
            assert meta["points"] == points[concern], (test_id, meta["points"])
            assert test.get("id") == test_id
            if concern == "public":
                assert "HIDDEN" not in test.source and "check_hidden" not in test.source
                continue
            # A comment plus exactly the hidden region the graders recognise.
            body = [ln for ln in test.source.splitlines() if not ln.startswith("# Hidden tests")]
            assert body == [
                "### BEGIN HIDDEN TESTS",
                "from course_lib.grading import check_hidden",
                f'check_hidden("{name}", "{concern}")',
                "### END HIDDEN TESTS",
            ]
            assert test.source.startswith(f"# Hidden tests ({points[concern]} point")
    graded_code = {_nbg(c)["grade_id"] for c in code if _nbg(c).get("grade")}
    assert graded_code == expected_graded
    written = [c for c in nb.cells if c.cell_type == "markdown" and _nbg(c).get("grade")]
    assert written, "each assignment has at least one manually graded written question"
    for cell in written:
        assert _nbg(cell)["grade_id"].startswith("q_") and _nbg(cell)["solution"]
        assert cell.source.startswith("### BEGIN SOLUTION")
    # Nothing executed is stored in the source.
    assert all(not c.outputs and c.execution_count is None for c in code)


def _solution_lines(nb: Any) -> set[str]:
    """Lines of the solution regions that appear nowhere else in the source notebook."""
    inside: set[str] = set()
    outside: set[str] = set()
    for cell in nb.cells:
        in_region = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if "BEGIN SOLUTION" in line:
                in_region = True
            elif "END SOLUTION" in line:
                in_region = False
            elif stripped:
                (inside if in_region else outside).add(stripped)
    trivial = {"return activations", "pass", ")", "]", "}", "else:"}
    return {s for s in inside - outside if s not in trivial and len(s) >= 8}


@pytest.mark.parametrize("assignment", sorted(CONTRACT))
def test_release_has_no_solutions_and_no_hidden_tests(assignment: str) -> None:
    from course_lib.grading.specs import SPECS

    source = _load(_source_path(assignment))
    text = _release_path(assignment).read_text()
    release = _load(_release_path(assignment))
    for marker in HIDDEN_MARKERS + SOLUTION_MARKERS:
        assert marker not in text, f"{assignment}: the release contains {marker!r}"
    release_lines = {ln.strip() for c in release.cells for ln in c.source.splitlines()}
    leaked = sorted(_solution_lines(source) & release_lines)
    assert not leaked, f"{assignment}: solution lines in the release: {leaked}"
    cells = _cells_by_id(release)
    for name in CONTRACT[assignment][1]:
        assert cells[name].source.startswith(f"def {name}(")
        assert cells[name].source.rstrip().endswith("raise NotImplementedError()")
        for concern, points in SPECS[assignment][name].points.items():
            if concern == "public":
                continue
            hidden = cells[f"test_{name}_{concern}"].source
            assert hidden.startswith(f"# Hidden tests ({points} point") and hidden.count("\n") == 0
    for cell in release.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        if _nbg(cell).get("solution") and cell.cell_type == "markdown":
            assert cell.source == "YOUR ANSWER HERE"
    # Same cells, same order, same ids as the source.
    assert [c.get("id") for c in release.cells] == [c.get("id") for c in source.cells]


def test_solution_line_detection_would_see_a_leak() -> None:
    """The leak check above is not vacuous: run on the source notebook itself, it flags lines of
    every reference solution."""
    for assignment in CONTRACT:
        source = _load(_source_path(assignment))
        source_lines = {ln.strip() for c in source.cells for ln in c.source.splitlines()}
        flagged = _solution_lines(source) & source_lines
        assert len(flagged) >= 2 * len(CONTRACT[assignment][1]), (assignment, flagged)


@pytest.mark.parametrize("assignment", sorted(CONTRACT))
def test_released_source_is_what_nbgrader_releases(assignment: str) -> None:
    """RestoreHiddenTests recognises an untouched hidden test cell by this rule."""
    source = _cells_by_id(_load(_source_path(assignment)))
    release = _cells_by_id(_load(_release_path(assignment)))
    from course_lib.grading.specs import SPECS

    hidden = [gid for gid, c in source.items() if "BEGIN HIDDEN TESTS" in c.source]
    assert len(hidden) == sum(len(s.points) - 1 for s in SPECS[assignment].values())
    for gid in hidden:
        released = released_source(source[gid].source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        assert released == release[gid].source
        assert released != source[gid].source


# --- The public tests, run in-process on the reference and on wrong answers --------------------


def _run_public(assignment: str, answers: dict[str, str], function: str) -> BaseException | None:
    """Run the notebook's setup, answer and public test cells up to ``function``'s public test.

    ``answers`` replaces answer cells (the release's ``raise NotImplementedError()`` is kept for
    the others). Returns the exception the public test cell of ``function`` raised, or None.
    """
    nb = _load(_release_path(assignment))
    namespace: dict[str, Any] = {"__name__": "__student__"}
    for cell in nb.cells:
        meta = _nbg(cell)
        gid = meta.get("grade_id", "")
        if cell.cell_type != "code" or gid.endswith("_hidden") or not meta:
            continue
        source = answers.get(gid, cell.source)
        if gid.startswith("test_") and gid != f"test_{function}_public":
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                exec(compile(source, gid, "exec"), namespace)
            except Exception as exc:
                if gid == f"test_{function}_public":
                    return exc
                if not isinstance(exc, NotImplementedError):
                    raise
        if gid == f"test_{function}_public":
            return None
    raise AssertionError(f"no public test for {function}")


@pytest.mark.parametrize(
    ("assignment", "function"),
    [(a, f) for a, (_, fs) in sorted(CONTRACT.items()) for f in fs],
)
def test_public_test_passes_on_reference_and_fails_on_release(
    assignment: str, function: str
) -> None:
    reference = solution_answers(assignment)
    assert _run_public(assignment, reference, function) is None
    assert isinstance(_run_public(assignment, {}, function), NotImplementedError)


PUBLIC_MUTANTS: dict[str, list[tuple[str, str, str]]] = {
    "ps1_variance": [
        (
            "preactivation_variance",
            "n + Var(w) + Var(x)",
            """
            def preactivation_variance(n_in, var_w, var_x):
                return float(n_in + var_w + var_x)
            """,
        ),
        (
            "sample_preactivations",
            "variance passed as the std",
            """
            def sample_preactivations(n_in, var_w, var_x, n_samples, *, rng):
                w = rng.normal(0, var_w, size=(n_samples, n_in))
                x = rng.normal(0, var_x, size=(n_samples, n_in))
                return (w * x).sum(axis=1)
            """,
        ),
        (
            "sample_preactivations",
            "global np.random ignores rng",
            """
            def sample_preactivations(n_in, var_w, var_x, n_samples, *, rng):
                w = np.random.normal(0, np.sqrt(var_w), size=(n_samples, n_in))
                x = np.random.normal(0, np.sqrt(var_x), size=(n_samples, n_in))
                return (w * x).sum(axis=1)
            """,
        ),
        (
            "two_layer_gradients",
            "missing 1/B",
            """
            def two_layer_gradients(X, y, W1, W2):
                H = np.tanh(X @ W1)
                G = H @ W2 - y
                return X.T @ ((G @ W2.T) * (1 - H**2)), H.T @ G
            """,
        ),
        (
            "two_layer_gradients",
            "missing tanh derivative",
            """
            def two_layer_gradients(X, y, W1, W2):
                H = np.tanh(X @ W1)
                G = (H @ W2 - y) / X.shape[0]
                return X.T @ (G @ W2.T), H.T @ G
            """,
        ),
    ],
    "ps2_initializers": [
        (
            "compute_fans",
            "ignores the receptive field",
            """
            def compute_fans(shape):
                if len(shape) < 2:
                    raise ValueError('2-D')
                return shape[-2], shape[-1]
            """,
        ),
        (
            "compute_fans",
            "no ValueError",
            """
            def compute_fans(shape):
                r = int(np.prod(shape[:-2]))
                return shape[-2] * r, shape[-1] * r
            """,
        ),
        (
            "lecun_normal",
            "std = 1/fan_in",
            """
            def lecun_normal(shape, *, rng):
                return rng.normal(0, 1 / compute_fans(shape)[0], size=shape)
            """,
        ),
        (
            "lecun_uniform",
            "bound sqrt(1/fan_in)",
            """
            def lecun_uniform(shape, *, rng):
                b = np.sqrt(1 / compute_fans(shape)[0])
                return rng.uniform(-b, b, size=shape)
            """,
        ),
        (
            "xavier_normal",
            "std sqrt(3/(in+out))",
            """
            def xavier_normal(shape, *, rng):
                i, o = compute_fans(shape)
                return rng.normal(0, np.sqrt(3 / (i + o)), size=shape)
            """,
        ),
        (
            "xavier_uniform",
            "normal family, right variance",
            """
            def xavier_uniform(shape, *, rng):
                i, o = compute_fans(shape)
                return rng.normal(0, np.sqrt(2 / (i + o)), size=shape)
            """,
        ),
        (
            "he_normal",
            "fan_out",
            """
            def he_normal(shape, *, rng):
                return rng.normal(0, np.sqrt(2 / compute_fans(shape)[1]), size=shape)
            """,
        ),
        (
            "he_normal",
            "missing factor 2",
            """
            def he_normal(shape, *, rng):
                return rng.normal(0, np.sqrt(1 / compute_fans(shape)[0]), size=shape)
            """,
        ),
        (
            "he_uniform",
            "uniform family, right variance",
            """
            def he_uniform(shape, *, rng):
                return rng.normal(0, np.sqrt(2 / compute_fans(shape)[0]), size=shape)
            """,
        ),
    ],
    "ps3_deep_signal": [
        (
            "init_network",
            "shapes transposed",
            """
            def init_network(layer_sizes, initializer, *, rng):
                pairs = zip(layer_sizes[:-1], layer_sizes[1:])
                return [initializer((b, a), rng=rng) for a, b in pairs]
            """,
        ),
        (
            "forward_activations",
            "X included",
            """
            def forward_activations(X, weights, activation):
                f = {'linear': lambda z: z, 'tanh': np.tanh, 'relu': lambda z: np.maximum(z, 0),
                     'sigmoid': lambda z: 0.5 * (1 + np.tanh(z / 2))}[activation]
                out = [X]
                for W in weights:
                    out.append(f(out[-1] @ W))
                return out
            """,
        ),
        (
            "layer_stds",
            "per-column std",
            """
            def layer_stds(activations):
                return np.array([h.std(axis=0).mean() for h in activations])
            """,
        ),
        (
            "layer_stds",
            "ddof=1",
            """
            def layer_stds(activations):
                return np.array([np.std(h, ddof=1) for h in activations])
            """,
        ),
        (
            "signal_preserving_std",
            "relu without the factor 2",
            """
            def signal_preserving_std(n_in, activation):
                if activation == 'sigmoid':
                    raise ValueError('sigmoid is not zero-centred, so no std preserves the signal')
                return float(np.sqrt(1 / n_in))
            """,
        ),
    ],
    "ps4_frameworks": [
        (
            "calculate_gain",
            "leaky_relu slope 0 by default",
            """
            def calculate_gain(nonlinearity, param=None):
                table = {'linear': 1, 'conv2d': 1, 'sigmoid': 1, 'tanh': 5 / 3,
                         'relu': 2**0.5, 'selu': 0.75}
                if nonlinearity == 'leaky_relu':
                    return (2 / (1 + (param or 0) ** 2)) ** 0.5
                return table[nonlinearity]
            """,
        ),
        (
            "torch_fans",
            "Keras layout",
            """
            def torch_fans(shape):
                r = int(np.prod(shape[:-2]))
                return shape[-2] * r, shape[-1] * r
            """,
        ),
        (
            "truncated_normal",
            "clipped, not redrawn",
            """
            def truncated_normal(shape, std, *, rng):
                return np.clip(rng.normal(0, std, size=shape), -2 * std, 2 * std)
            """,
        ),
        (
            "truncated_normal",
            "not truncated",
            """
            def truncated_normal(shape, std, *, rng):
                return rng.normal(0, std, size=shape)
            """,
        ),
        (
            "he_normal_truncated",
            "no 0.8796 correction",
            """
            def he_normal_truncated(shape, *, rng):
                return truncated_normal(shape, np.sqrt(2 / np.prod(shape[:-1])), rng=rng)
            """,
        ),
        (
            "torch_linear_default",
            "Keras layout (in, out)",
            """
            def torch_linear_default(in_features, out_features, *, rng):
                b = 1 / np.sqrt(in_features)
                weight = rng.uniform(-b, b, size=(in_features, out_features))
                return weight, rng.uniform(-b, b, size=out_features)
            """,
        ),
        (
            "torch_linear_default",
            "bias bound from out_features",
            """
            def torch_linear_default(in_features, out_features, *, rng):
                b = 1 / np.sqrt(in_features)
                c = 1 / np.sqrt(out_features)
                weight = rng.uniform(-b, b, size=(out_features, in_features))
                return weight, rng.uniform(-c, c, size=out_features)
            """,
        ),
    ],
}
"""Typical mistakes that the *public* tests already catch (the hidden tests catch these and
subtler ones: the full catalogue runs against the runner in the judge's tests)."""


@pytest.mark.parametrize(
    ("assignment", "function", "mistake", "code"),
    [(a, f, m, c) for a, rows in sorted(PUBLIC_MUTANTS.items()) for f, m, c in rows],
    ids=[f"{f}-{m}" for _, rows in sorted(PUBLIC_MUTANTS.items()) for f, m, _ in rows],
)
def test_public_test_catches_a_gross_mistake(
    assignment: str, function: str, mistake: str, code: str
) -> None:
    answers = {**solution_answers(assignment), function: textwrap.dedent(code).strip()}
    error = _run_public(assignment, answers, function)
    assert error is not None, f"the public test of {function} accepts: {mistake}"
    assert str(error), "public test failures carry a readable message"


# --- Feedback filter ----------------------------------------------------------------------------


def test_hide_hidden_regions_removes_only_the_region() -> None:
    source = "x = 1\n### BEGIN HIDDEN TESTS\nsecret()\n### END HIDDEN TESTS\ny = 2"
    out, found = hide_hidden_regions(source, "# hidden")
    assert found and out == "x = 1\n# hidden\ny = 2"
    assert hide_hidden_regions("x = 1", "# hidden") == ("x = 1", False)
    # An unterminated region hides everything after it (fail closed).
    out, found = hide_hidden_regions("a\n### BEGIN HIDDEN TESTS\nsecret()", "# hidden")
    assert found and "secret" not in out


def test_feedback_preprocessor_strips_hidden_source_and_tracebacks() -> None:
    cell = nbformat.v4.new_code_cell(
        "### BEGIN HIDDEN TESTS\n"
        "from course_lib.grading import check_hidden\n"
        'check_hidden("he_normal")\n'
        "### END HIDDEN TESTS"
    )
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "test_he_normal_hidden", "points": 3}
    cell.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="AssertionError",
            evalue="he_normal: variance 2.0x the target: did you use fan_out?",
            traceback=["Traceback", 'check_hidden("he_normal")', "AssertionError: ..."],
        )
    ]
    public = nbformat.v4.new_code_cell("assert he_normal((2, 2), rng=rng).shape == (2, 2)")
    public.outputs = [
        nbformat.v4.new_output("error", ename="E", evalue="v", traceback=["frame 1", "E: v"])
    ]
    nb = nbformat.v4.new_notebook(cells=[cell, public])
    out, _ = HideHiddenTests().preprocess(nb, {})
    text = json.dumps(out)
    assert "check_hidden" not in text and "HIDDEN TESTS" not in text
    assert out.cells[0].outputs[0]["traceback"] == [
        "AssertionError: he_normal: variance 2.0x the target: did you use fan_out?"
    ]
    assert out.cells[1].outputs[0]["traceback"] == ["frame 1", "E: v"]  # public: untouched


def test_feedback_preprocessor_is_configured() -> None:
    config = (ROOT / "nbgrader_config.py").read_text()
    assert re.search(r"c\.GenerateFeedback\.preprocessors = \[GetGrades, HideHiddenTests,", config)


# --- The release is in sync (nbgrader) ----------------------------------------------------------


@pytest.mark.slow
def test_generate_assignment_reproduces_the_committed_release(tmp_path: Path) -> None:
    had_gradebook = (ROOT / "gradebook.db").exists()
    generate_release(tmp_path)
    differences = release_differences(tmp_path, ROOT / "exercises")
    assert not differences, f"exercises/ is out of date, run `make exercises`: {differences}"
    assert had_gradebook or not (ROOT / "gradebook.db").exists(), "a gradebook was left behind"


@pytest.mark.parametrize(
    ("function", "code", "ratio"),
    [
        # std = 1/fan_in: the variance is 1/fan_in^2, the ratio 1/500 (it printed "0.00" before)
        ("lecun_normal", "rng.normal(0.0, 1.0 / fan_in, size=shape)", 1 / 500),
        # fan_out where fan_in belongs: 500/100
        ("he_normal", "rng.normal(0.0, np.sqrt(2.0 / fan_out), size=shape)", 5.0),
        # LeCun's variance with Xavier's fan average: 2 * 500 / 600
        ("lecun_normal", "rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape)",
         2 * 500 / 600),
        # the variance passed as the std: (2/500)^2 / (2/500)
        ("he_normal", "rng.normal(0.0, 2.0 / fan_in, size=shape)", 2 / 500),
        # a uniform bound without sqrt(3): a third of the variance
        ("lecun_uniform", "rng.uniform(-np.sqrt(1.0 / fan_in), np.sqrt(1.0 / fan_in), "
         "size=shape)", 1 / 3),
    ],
)
def test_public_messages_print_the_ratio_a_student_can_act_on(
    function: str, code: str, ratio: float
) -> None:
    """Issue 13: each plausible mistake prints its own measured/expected ratio, with 3
    significant digits (a ratio of 0.002 no longer prints as "0.00"); on the public shape
    (500, 100) these ratios are far apart, so the number tells the mistake."""
    src = (f"def {function}(shape, *, rng):\n    fan_in, fan_out = compute_fans(shape)\n"
           f"    return {code}\n")
    answers = {**solution_answers("ps2_initializers"), function: src}
    error = _run_public("ps2_initializers", answers, function)
    assert isinstance(error, AssertionError), error
    match = re.search(r"measured / expected = ([0-9.e+-]+)", str(error))
    assert match, str(error)
    printed = match.group(1)
    # 50,000 draws: the sample variance is within 5% of its expectation (> 7 standard errors)
    assert abs(float(printed) / ratio - 1) < 0.05, (printed, ratio)
    assert len(printed.lstrip("0.").replace(".", "")) >= 2 or float(printed) >= 1, printed


# --- where the course is ----------------------------------------------------------------------


def test_course_root_is_found_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands find the course by its nbgrader_config.py, not by where the package lies."""
    from course_lib.grading.release import CourseConfigError, course_root

    monkeypatch.chdir(ROOT / "book" / "exercises")
    assert course_root() == ROOT
    assert course_root(ROOT / "solutions" / "ps2_initializers") == ROOT
    elsewhere = tmp_path / "course" / "sub"
    elsewhere.mkdir(parents=True)
    (tmp_path / "course" / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n")
    assert course_root(elsewhere) == tmp_path / "course"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CourseConfigError, match=r"no nbgrader_config\.py in .* or above it"):
        course_root()


def test_release_cli_outside_a_course_says_where_to_run_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "course_lib.grading.release", "--check"],
                          cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no nbgrader_config.py in ")
    assert "Traceback" not in proc.stderr


def test_no_module_locates_the_checkout_from_its_own_file() -> None:
    """The installed package reads only its own files (package data) via __file__."""
    import ast

    package = ROOT / "course_lib"
    offenders = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            up = (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                  and node.value.attr == "parents")
            twice = (isinstance(node, ast.Attribute) and node.attr == "parent"
                     and isinstance(node.value, ast.Attribute) and node.value.attr == "parent")
            if up or twice:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
