"""The real nbgrader pipeline on all four assignments: generate, autograde, feedback.

One scratch course (outside the repository) with the repository's ``nbgrader_config.py`` and
four students per assignment:

* ``reference``: the reference solutions (and the model answers to the written questions);
* ``untouched``: the release as downloaded;
* ``alternative``: different correct implementations (other ways to draw the same distribution:
  ``standard_normal`` times a std, Box-Muller, ``2 * random() - 1``, oversample-and-select
  truncation, loops instead of matrix products...);
* ``mutant``: typical mistakes in some functions (the source posts' bugs, swapped fans,
  std/variance confusion, wrong family with the right variance, ignoring ``rng``), correct code
  in the others.

Asserted: full marks for ``reference`` and ``alternative`` on every autograded cell, zero on every
autograded cell for ``untouched``, no points from the hidden cells of the concerns each mutated
function gets wrong (and the points of the concerns it gets right) and full marks for the
functions left correct, no integrity warnings for a clean submission, and
feedback HTML that carries the hidden tests' failure messages but never their source. The full
mutant catalogue runs against the runner in the judge's tests; this one proves the path through
nbgrader.

Runtime: about 3-4 minutes on 2 idle cores (16 notebooks autograded; each hidden test cell runs
the student's code in a sandboxed process). Measured seconds per autograded notebook are printed
(``pytest -s``) and bounded below the per-cell timeout.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from course_lib.grading.demo import (
    NOTEBOOKS,
    CellGrade,
    autograde,
    cell_grades,
    generate_feedback,
    make_course,
    solution_answers,
    submission,
    submit,
)

pytestmark = pytest.mark.slow

ALTERNATIVES: dict[str, dict[str, str]] = {
    "ps1_variance": {
        "preactivation_variance": """
            def preactivation_variance(n_in, var_w, var_x):
                return float(np.prod([n_in, var_w, var_x]))
        """,
        "sample_preactivations": """
            def sample_preactivations(n_in, var_w, var_x, n_samples, *, rng):
                x = np.sqrt(var_x) * rng.standard_normal((n_samples, n_in))
                w = np.sqrt(var_w) * rng.standard_normal((n_samples, n_in))
                return np.einsum("si,si->s", w, x)
        """,
        "two_layer_gradients": """
            def two_layer_gradients(X, y, W1, W2):
                dW1 = np.zeros_like(W1, dtype=float)
                dW2 = np.zeros_like(W2, dtype=float)
                for x_b, y_b in zip(X, y):
                    h = np.tanh(x_b @ W1)
                    e = (h @ W2 - y_b) / len(X)
                    dW2 += np.outer(h, e)
                    dW1 += np.outer(x_b, (W2 @ e) * (1 - h * h))
                return dW1, dW2
        """,
    },
    "ps2_initializers": {
        "compute_fans": """
            def compute_fans(shape):
                shape = tuple(shape)
                if len(shape) < 2:
                    raise ValueError("a weight has at least two dimensions")
                k = int(np.prod(shape[:-2]))
                return int(shape[-2] * k), int(shape[-1] * k)
        """,
        "lecun_normal": """
            def lecun_normal(shape, *, rng):
                fan_in = compute_fans(shape)[0]
                return rng.standard_normal(shape) / np.sqrt(fan_in)
        """,
        "lecun_uniform": """
            def lecun_uniform(shape, *, rng):
                b = np.sqrt(3 / max(compute_fans(shape)[0], 1))  # a zero fan: nothing to draw
                return b * (2 * rng.random(shape) - 1)
        """,
        "xavier_normal": """
            def xavier_normal(shape, *, rng):
                fan_in, fan_out = compute_fans(shape)
                n = int(np.prod(shape))
                u1 = 1.0 - rng.random(n)  # in (0, 1]
                u2 = rng.random(n)
                z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)  # Box-Muller
                return (z * np.sqrt(2.0 / (fan_in + fan_out))).reshape(shape)
        """,
        "xavier_uniform": """
            def xavier_uniform(shape, *, rng):
                fan_in, fan_out = compute_fans(shape)
                limit = np.sqrt(6 / (fan_in + fan_out))
                return rng.uniform(low=-limit, high=limit, size=tuple(shape))
        """,
        "he_normal": """
            def he_normal(shape, *, rng):
                std = np.sqrt(2.0) / np.sqrt(compute_fans(shape)[0])
                return rng.normal(size=shape) * std
        """,
        "he_uniform": """
            def he_uniform(shape, *, rng):
                b = np.sqrt(6.0 / max(compute_fans(shape)[0], 1))
                return b * rng.uniform(-1.0, 1.0, size=shape)
        """,
    },
    "ps3_deep_signal": {
        "init_network": """
            def init_network(layer_sizes, initializer, *, rng):
                weights = []
                for i in range(len(layer_sizes) - 1):
                    weights.append(initializer((layer_sizes[i], layer_sizes[i + 1]), rng=rng))
                return weights
        """,
        "forward_activations": """
            def forward_activations(X, weights, activation):
                if activation not in ("linear", "tanh", "sigmoid", "relu"):
                    raise ValueError("activation must be linear, tanh, sigmoid or relu")
                out = []
                h = X
                for W in weights:
                    z = h @ W
                    if activation == "linear":
                        h = z
                    elif activation == "tanh":
                        h = np.tanh(z)
                    elif activation == "sigmoid":
                        h = np.exp(-np.logaddexp(0.0, -z))
                    else:
                        h = np.where(z > 0, z, 0.0)
                    out.append(h)
                return out
        """,
        "layer_stds": """
            def layer_stds(activations):
                return np.array([np.sqrt(np.mean((a - a.mean()) ** 2)) for a in activations])
        """,
        "signal_preserving_std": """
            def signal_preserving_std(n_in, activation):
                gains = {"linear": 1.0, "tanh": 1.0, "relu": 2.0}
                if activation == "sigmoid":
                    raise ValueError("sigmoid: mean 1/2, not homogeneous: no std acts as identity")
                if activation not in gains:
                    raise ValueError(f"activation must be one of {list(gains)}")
                return float(np.sqrt(gains[activation] / n_in))
        """,
    },
    "ps4_frameworks": {
        "calculate_gain": """
            import math


            def calculate_gain(nonlinearity, param=None):
                linear = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                          "conv_transpose2d", "conv_transpose3d", "sigmoid"]
                if nonlinearity in linear:
                    return 1.0
                if nonlinearity == "tanh":
                    return 5.0 / 3
                if nonlinearity == "relu":
                    return math.sqrt(2.0)
                if nonlinearity == "leaky_relu":
                    negative_slope = 0.01 if param is None else param
                    return math.sqrt(2.0 / (1 + negative_slope**2))
                if nonlinearity == "selu":
                    return 3.0 / 4
                raise ValueError(f"Unsupported nonlinearity {nonlinearity}")
        """,
        "torch_fans": """
            def torch_fans(shape):
                if len(shape) < 2:
                    raise ValueError("need at least 2 dimensions")
                rf = int(np.prod(shape[2:]))
                return int(shape[1] * rf), int(shape[0] * rf)
        """,
        "truncated_normal": """
            def truncated_normal(shape, std, *, rng):
                n = int(np.prod(shape))
                kept = np.empty(0)
                while kept.size < n:
                    draws = rng.normal(0.0, std, size=2 * (n - kept.size) + 10)
                    kept = np.concatenate([kept, draws[np.abs(draws) <= 2 * std]])
                return kept[:n].reshape(shape)
        """,
        "he_normal_truncated": """
            def he_normal_truncated(shape, *, rng):
                fan_in = max(int(np.prod(shape[:-1])), 1)
                stddev = np.sqrt(2.0 / fan_in) / 0.87962566103423978
                return truncated_normal(shape, stddev, rng=rng)
        """,
        "torch_linear_default": """
            def torch_linear_default(in_features, out_features, *, rng):
                k = 1.0 / in_features
                weight = (rng.random((out_features, in_features)) * 2 - 1) * np.sqrt(k)
                bias = (rng.random(out_features) * 2 - 1) * np.sqrt(k)
                return weight, bias
        """,
    },
}
"""Correct implementations that draw the same distributions differently from the reference."""

MUTANTS: dict[str, dict[str, str]] = {
    "ps1_variance": {
        # std where the variance belongs
        "preactivation_variance": """
            def preactivation_variance(n_in, var_w, var_x):
                return float(n_in * np.sqrt(var_w) * np.sqrt(var_x))
        """,
        # the variance passed to rng.normal as its standard deviation
        "sample_preactivations": """
            def sample_preactivations(n_in, var_w, var_x, n_samples, *, rng):
                w = rng.normal(0.0, var_w, size=(n_samples, n_in))
                x = rng.normal(0.0, var_x, size=(n_samples, n_in))
                return np.sum(w * x, axis=1)
        """,
        # the loss's 1/B forgotten
        "two_layer_gradients": """
            def two_layer_gradients(X, y, W1, W2):
                H = np.tanh(X @ W1)
                G = H @ W2 - y
                return X.T @ ((G @ W2.T) * (1 - H**2)), H.T @ G
        """,
    },
    "ps2_initializers": {
        # the source posts: std = 1/fan_in
        "lecun_normal": """
            def lecun_normal(shape, *, rng):
                return rng.normal(0.0, 1.0 / compute_fans(shape)[0], size=shape)
        """,
        # the source posts: uniform bound sqrt(1/n), a third of the variance
        "lecun_uniform": """
            def lecun_uniform(shape, *, rng):
                b = np.sqrt(1.0 / compute_fans(shape)[0])
                return rng.uniform(-b, b, size=shape)
        """,
        # the source posts: Glorot normal std sqrt(3/(n_in+n_out)), the uniform's constant
        "xavier_normal": """
            def xavier_normal(shape, *, rng):
                fan_in, fan_out = compute_fans(shape)
                return rng.normal(0.0, np.sqrt(3.0 / (fan_in + fan_out)), size=shape)
        """,
        # ignores rng: the global NumPy generator
        "xavier_uniform": """
            def xavier_uniform(shape, *, rng):
                fan_in, fan_out = compute_fans(shape)
                b = np.sqrt(6.0 / (fan_in + fan_out))
                return np.random.uniform(-b, b, size=shape)
        """,
        # swapped fans
        "he_normal": """
            def he_normal(shape, *, rng):
                return rng.normal(0.0, np.sqrt(2.0 / compute_fans(shape)[1]), size=shape)
        """,
        # wrong family, right variance
        "he_uniform": """
            def he_uniform(shape, *, rng):
                return rng.normal(0.0, np.sqrt(2.0 / compute_fans(shape)[0]), size=shape)
        """,
    },
    "ps3_deep_signal": {
        # a generator of its own: same weights whatever the grader's seed
        "init_network": """
            def init_network(layer_sizes, initializer, *, rng):
                own = np.random.default_rng(0)
                pairs = zip(layer_sizes[:-1], layer_sizes[1:])
                return [initializer((a, b), rng=own) for a, b in pairs]
        """,
        # per-unit stds averaged instead of the std of all entries
        "layer_stds": """
            def layer_stds(activations):
                return np.array([np.std(h, axis=0).mean() for h in activations])
        """,
        # ReLU without He's factor 2
        "signal_preserving_std": """
            def signal_preserving_std(n_in, activation):
                if activation in ("linear", "tanh", "relu"):
                    return float(np.sqrt(1.0 / n_in))
                raise ValueError("sigmoid is not zero-centred; unknown activations are refused")
        """,
    },
    "ps4_frameworks": {
        # Keras' layout read instead of PyTorch's
        "torch_fans": """
            def torch_fans(shape):
                rf = int(np.prod(shape[:-2]))
                return int(shape[-2] * rf), int(shape[-1] * rf)
        """,
        # clipped to the bound instead of redrawn
        "truncated_normal": """
            def truncated_normal(shape, std, *, rng):
                return np.clip(rng.normal(0.0, std, size=shape), -2 * std, 2 * std)
        """,
        # the 0.8796 correction forgotten
        "he_normal_truncated": """
            def he_normal_truncated(shape, *, rng):
                std = np.sqrt(2.0 / int(np.prod(shape[:-1])))
                values = rng.normal(0.0, std, size=shape)
                outside = np.abs(values) > 2 * std
                while outside.any():
                    values[outside] = rng.normal(0.0, std, size=int(outside.sum()))
                    outside = np.abs(values) > 2 * std
                return values
        """,
    },
}
"""Typical wrong implementations; every other function of the mutant student is the reference."""

STUDENTS = ("reference", "untouched", "alternative", "mutant")


def _answers(student: str, assignment: str) -> dict[str, str]:
    reference = solution_answers(assignment)
    if student == "reference":
        return reference
    if student == "untouched":
        return {}
    table = ALTERNATIVES if student == "alternative" else MUTANTS
    changed = {name: textwrap.dedent(code).strip() for name, code in table[assignment].items()}
    return {**reference, **changed}


@dataclass
class GradedCourse:
    course: Path
    seconds_per_notebook: dict[str, float]
    logs: dict[str, str]
    feedback: list[Path]

    def grades(self, student: str, assignment: str) -> dict[str, CellGrade]:
        return cell_grades(self.course, student, assignment)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> GradedCourse:
    course = make_course(tmp_path_factory.mktemp("nbgrader") / "course", sorted(NOTEBOOKS))
    for assignment in NOTEBOOKS:
        for student in STUDENTS:
            nb = submission(course, assignment, _answers(student, assignment))
            submit(course, student, assignment, nb)
    seconds: dict[str, float] = {}
    logs: dict[str, str] = {}
    for assignment in NOTEBOOKS:
        took, logs[assignment] = autograde(course, assignment)
        seconds[assignment] = took / len(STUDENTS)
    start = time.perf_counter()
    feedback = generate_feedback(course, "*")
    print(f"\nfeedback for {len(feedback)} notebooks: {time.perf_counter() - start:.1f} s")
    for assignment, s in seconds.items():
        print(f"autograde {assignment}: {s:.1f} s per notebook")
    return GradedCourse(course, seconds, logs, feedback)


def _concern_cells(assignment: str, name: str) -> list[str]:
    """The test cells of ``name``: ``test_<name>_<concern>`` for each concern of the contract."""
    from course_lib.grading.specs import SPECS

    return [f"test_{name}_{c}" for c in SPECS[assignment][name].concerns]


def _function_points(grades: dict[str, CellGrade], assignment: str,
                     name: str) -> tuple[float, float]:
    cells = [grades[gid] for gid in _concern_cells(assignment, name)]
    return sum(c.score or 0.0 for c in cells), sum(c.points for c in cells)


def _autograded(grades: dict[str, CellGrade]) -> dict[str, CellGrade]:
    return {k: v for k, v in grades.items() if k.startswith("test_")}


@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
@pytest.mark.parametrize("student", ["reference", "alternative"])
def test_correct_implementations_get_full_marks(
    graded: GradedCourse, student: str, assignment: str
) -> None:
    grades = graded.grades(student, assignment)
    lost = {k: (v.score, v.points, v.messages) for k, v in _autograded(grades).items()}
    lost = {k: v for k, v in lost.items() if v[0] != v[1]}
    assert not lost, f"{student} lost points on {assignment}: {lost}"
    written = {k: v for k, v in grades.items() if k.startswith("q_")}
    assert written and all(v.score is None for v in written.values()), (
        "written answers wait for the instructor (needs manual grade)"
    )


@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
def test_the_untouched_release_scores_zero_everywhere(
    graded: GradedCourse, assignment: str
) -> None:
    grades = graded.grades("untouched", assignment)
    functions = [k for k in solution_answers(assignment) if not k.startswith("q_")]
    assert len(_autograded(grades)) == sum(len(_concern_cells(assignment, f)) for f in functions)
    scored = {k: v.score for k, v in grades.items() if v.score != 0}
    assert not scored, f"the untouched release earns points: {scored}"


@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
def test_typical_mistakes_lose_the_hidden_points_of_their_function_only(
    graded: GradedCourse, assignment: str
) -> None:
    grades = graded.grades("mutant", assignment)
    functions = [k for k in solution_answers(assignment) if not k.startswith("q_")]
    for name in functions:
        score, points = _function_points(grades, assignment, name)
        if name in MUTANTS[assignment]:
            hidden = [grades[g] for g in _concern_cells(assignment, name)[1:]]
            failed = [h for h in hidden if h.score == 0]
            assert failed, f"the hidden tests of {name} accept the mutant"
            assert all(h.messages for h in failed), f"{name}: a failing hidden test must say why"
        else:
            assert score == points, f"{name} is correct but lost points: {grades}"


def test_mutants_cover_the_common_mistakes() -> None:
    """The catalogue holds the mistakes the issue names (one of each at least)."""
    text = json.dumps(MUTANTS)
    for pattern in [
        r"1\.0 / compute_fans\(shape\)\[0\], size",  # std = 1/fan_in
        r"np\.sqrt\(1\.0 / compute_fans",  # uniform bound sqrt(1/n)
        r"np\.sqrt\(3\.0 / \(fan_in \+ fan_out\)\)",  # Glorot normal std sqrt(3/(in+out))
        r"compute_fans\(shape\)\[1\]",  # swapped fans
        r"np\.random\.uniform",  # ignoring rng
        r"rng\.normal\(0\.0, var_w",  # std/variance confusion
    ]:
        assert re.search(pattern, text), pattern


def _segments(log: str) -> dict[str, str]:
    """nbgrader's autograde log split per submission (by its 'Sanitizing <path>' lines)."""
    parts: dict[str, str] = {}
    current = ""
    for line in log.splitlines():
        match = re.search(r"submitted/([^/]+)/", line)
        if "Sanitizing" in line and match:
            current = match.group(1)
        parts[current] = parts.get(current, "") + line + "\n"
    return parts


@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
def test_clean_submissions_grade_without_integrity_warnings(
    graded: GradedCourse, assignment: str
) -> None:
    segments = _segments(graded.logs[assignment])
    assert set(STUDENTS) <= set(segments), sorted(segments)
    for student in ("reference", "alternative", "untouched"):
        warnings = [
            line
            for line in segments[student].splitlines()
            if line.startswith("[AutogradeApp") and ("WARNING" in line or "ERROR" in line)
        ]
        assert not warnings, f"{student}/{assignment}: {warnings}"


def test_feedback_shows_failures_but_never_the_hidden_tests(graded: GradedCourse) -> None:
    assert len(graded.feedback) == len(NOTEBOOKS) * len(STUDENTS)
    for path in graded.feedback:
        html = path.read_text()
        for marker in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "check_hidden", "course_lib"):
            assert marker not in html, f"{path}: feedback contains {marker!r}"
    # The autograded notebooks do hold the hidden tests: the filter had something to remove.
    autograded: Any = json.loads(
        (graded.course / "autograded/mutant/ps2_initializers/initializers.ipynb").read_text()
    )
    assert any("check_hidden(" in "".join(c["source"]) for c in autograded["cells"])
    # What the mutant student reads: the hidden tests' message with measured/expected/hint.
    grades = graded.grades("mutant", "ps2_initializers")
    message = grades["test_he_normal_dense"].messages[0]
    html = (graded.course / "feedback/mutant/ps2_initializers/initializers.html").read_text()
    import html as html_lib

    text = html_lib.unescape(html)
    first_line = message.split("\n", 1)[0].split(": ", 1)[1]
    assert first_line in text
    assert "fan_out" in text and "expected" in text


def test_autograding_time_per_notebook(graded: GradedCourse) -> None:
    """Grading stays practical: well under the per-cell timeout (180 s) per notebook."""
    assert all(0 < s < 180 for s in graded.seconds_per_notebook.values()), (
        graded.seconds_per_notebook
    )


# --- the course's CheckCellMetadata is nbgrader's, faster --------------------------------------


def _metadata_variants() -> list[tuple[str, Any]]:
    """The ps2 source notebook, and copies with one kind of broken nbgrader metadata each."""
    import copy

    import nbformat

    from course_lib.grading.release import course_root

    nb = nbformat.read(course_root() / "solutions" / "ps2_initializers" / "initializers.ipynb",
                       as_version=4)
    graded = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade"))
    later = next(i for i, c in enumerate(nb.cells)
                 if i > graded and c.metadata.get("nbgrader", {}).get("grade"))

    def changed(edit: Any) -> Any:
        out = copy.deepcopy(nb)
        edit(out)
        return out

    def meta(i: int) -> Any:
        return lambda n: n.cells[i].metadata["nbgrader"]

    return [
        ("intact", nb),
        ("points not a number", changed(lambda n: meta(graded)(n).update(points="many"))),
        ("no points", changed(lambda n: meta(graded)(n).pop("points"))),
        ("empty grade_id", changed(lambda n: meta(graded)(n).update(grade_id=""))),
        ("no grade_id", changed(lambda n: meta(graded)(n).pop("grade_id"))),
        ("grade not a bool", changed(lambda n: meta(graded)(n).update(grade="yes"))),
        ("duplicate grade_id", changed(
            lambda n: meta(later)(n).update(grade_id=meta(graded)(n)["grade_id"]))),
        ("old schema", changed(lambda n: meta(graded)(n).update(schema_version=2))),
        ("new schema", changed(lambda n: meta(graded)(n).update(schema_version=9))),
        ("unknown key", changed(lambda n: meta(graded)(n).update(colour="red"))),
    ]


@pytest.mark.parametrize("label", [label for label, _ in _metadata_variants()])
def test_check_cell_metadata_agrees_with_nbgrader(label: str) -> None:
    """Same verdict and same error as nbgrader's CheckCellMetadata, notebook by notebook."""
    from nbgrader.preprocessors import CheckCellMetadata as Upstream

    from course_lib.grading.nbgrader_ext import CheckCellMetadata

    nb = dict(_metadata_variants())[label]
    outcomes = []
    for cls in (Upstream, CheckCellMetadata):
        try:
            cls()(nb, {})
            outcomes.append("valid")
        except Exception as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0] == "valid") == (label == "intact")
