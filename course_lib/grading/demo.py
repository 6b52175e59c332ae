"""``make grade-demo``: the whole nbgrader workflow on sample submissions, in one command.

It builds a scratch course directory (default ``nbgrader_scratch/grade-demo/``, ignored by git)
whose ``nbgrader_config.py`` loads the repository's and only moves the course root there, then

1. ``nbgrader generate_assignment``: copies ``solutions/<assignment>`` in and generates the
   release (this fills the scratch gradebook);
2. writes three submissions of the assignment into ``submitted/<student>/<assignment>/``:
   ``correct`` (the reference solution), ``mistake`` (typical mistakes from the book's *Common
   mistakes* chapter in some functions, correct elsewhere) and ``empty`` (the untouched release);
3. ``nbgrader autograde`` and ``nbgrader generate_feedback``;
4. prints the grade table (points per graded function, public and hidden tests apart), the
   failure messages a student sees, and where the feedback HTML is.

The same helpers (:func:`make_course`, :func:`submission`, :func:`autograde`, ...) drive the
pipeline tests in ``tests/test_nbgrader_pipeline.py``.

Usage: ``python -m course_lib.grading.demo [--assignment ps2_initializers] [--dir PATH]``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .release import CourseConfigError, course_root, nbgrader_command, tool_env
from .specs import NOTEBOOKS as _CONTRACT_NOTEBOOKS

__all__ = [
    "MISTAKES",
    "NOTEBOOKS",
    "CellGrade",
    "autograde",
    "cell_grades",
    "generate_feedback",
    "main",
    "make_course",
    "solution_answers",
    "submission",
    "submit",
]

NOTEBOOKS = {assignment: Path(name).stem for assignment, name in _CONTRACT_NOTEBOOKS.items()}
"""Assignment id -> notebook name without .ipynb (from the judge's copy of the contract)."""

MISTAKES: dict[str, dict[str, str]] = {
    "ps1_variance": {
        # std for variance: rng.normal gets the variance as its scale.
        "sample_preactivations": """
def sample_preactivations(n_in, var_w, var_x, n_samples, *, rng):
    w = rng.normal(0.0, var_w, size=(n_samples, n_in))
    x = rng.normal(0.0, var_x, size=(n_samples, n_in))
    return np.sum(w * x, axis=1)
""",
    },
    "ps2_initializers": {
        # The source posts' mistake: uniform bound sqrt(1/n) instead of sqrt(3/n).
        "lecun_uniform": """
def lecun_uniform(shape, *, rng):
    fan_in, _ = compute_fans(shape)
    bound = np.sqrt(1.0 / fan_in)
    return rng.uniform(-bound, bound, size=shape)
""",
        # Swapped fans: He with fan_out.
        "he_normal": """
def he_normal(shape, *, rng):
    _, fan_out = compute_fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / fan_out), size=shape)
""",
    },
    "ps3_deep_signal": {
        # Per-column standard deviations averaged, instead of the std of all entries.
        "layer_stds": """
def layer_stds(activations):
    return np.array([np.std(h, axis=0).mean() for h in activations])
""",
    },
    "ps4_frameworks": {
        # Forgot Keras' 0.8796 correction: the variance is 0.77 x the target.
        "he_normal_truncated": """
def he_normal_truncated(shape, *, rng):
    fan_in = int(np.prod(shape[:-1]))
    return truncated_normal(shape, np.sqrt(2.0 / fan_in), rng=rng)
""",
    },
}
"""Per assignment: functions replaced by a typical wrong implementation in the demo's
``mistake`` submission (every other function is the reference solution)."""

_SOLUTION_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*(\n|\Z)", re.MULTILINE)


def _read(path: Path) -> dict[str, Any]:
    nb: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return nb


def _grade_id(cell: Any) -> str:
    return str(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))


def solution_answers(assignment: str, root: Path | None = None) -> dict[str, str]:
    """The reference answer of every answer cell, code and written (solution markers removed)."""
    root = Path(root) if root is not None else course_root()
    nb = _read(root / "solutions" / assignment / f"{NOTEBOOKS[assignment]}.ipynb")
    answers = {}
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            answers[meta["grade_id"]] = _SOLUTION_MARKER.sub("", cell["source"]).rstrip()
    return answers


def make_course(course: Path, assignments: Sequence[str], root: Path | None = None) -> Path:
    """A scratch nbgrader course in ``course`` for ``assignments`` (created or reset).

    Its ``nbgrader_config.py`` loads the repository's configuration and only moves the course
    root, so every setting (timeouts, the resilient executor, the feedback filter) is the real
    one. The assignments' source is copied from ``root/solutions`` (``root``: the course
    directory, default :func:`~course_lib.grading.release.course_root`) and released with
    ``nbgrader generate_assignment``, which also fills the scratch gradebook.
    """
    root = Path(root) if root is not None else course_root()  # before the scratch course exists
    course = Path(course).resolve()
    if course.exists():
        shutil.rmtree(course)
    course.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        "# Scratch course: the repository's configuration, rooted here.\n"
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(root / 'nbgrader_config.py')!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
    )
    for assignment in assignments:
        shutil.copytree(root / "solutions" / assignment, course / "solutions" / assignment)
    # One nbgrader process releases them all (the id is a glob over the source folders).
    run_nbgrader(course, ["generate_assignment", "*", "--force"])
    return course


def run_nbgrader(course: Path, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ``nbgrader ARGS`` in ``course``; ``RuntimeError`` with its log if it fails."""
    proc = subprocess.run(
        [*nbgrader_command(), *args],
        cwd=course,
        env=tool_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def submission(course: Path, assignment: str, answers: Mapping[str, str]) -> dict[str, Any]:
    """The released notebook with the answer cells named in ``answers`` filled in."""
    nb = _read(course / "exercises" / assignment / f"{NOTEBOOKS[assignment]}.ipynb")
    missing = set(answers) - {_grade_id(c) for c in nb["cells"]}
    if missing:
        raise ValueError(f"no answer cells {sorted(missing)} in {assignment}")
    for cell in nb["cells"]:
        if _grade_id(cell) in answers:
            cell["source"] = answers[_grade_id(cell)].strip("\n")
    return nb


def submit(course: Path, student: str, assignment: str, nb: Mapping[str, Any]) -> Path:
    """Write ``nb`` as ``student``'s submission of ``assignment``."""
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{NOTEBOOKS[assignment]}.ipynb"
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def autograde(course: Path, assignment: str, student: str | None = None) -> tuple[float, str]:
    """``nbgrader autograde`` (one student or all); returns (seconds, nbgrader's log)."""
    args = ["autograde", assignment, "--force"]
    if student is not None:
        args.append(f"--student={student}")
    start = time.perf_counter()
    proc = run_nbgrader(course, args)
    return time.perf_counter() - start, proc.stdout + proc.stderr


def generate_feedback(course: Path, assignment: str, student: str | None = None) -> list[Path]:
    """``nbgrader generate_feedback``; returns the feedback HTML files written."""
    args = ["generate_feedback", assignment, "--force"]
    if student is not None:
        args.append(f"--student={student}")
    run_nbgrader(course, args)
    pattern = f"{student or '*'}/{assignment}/*.html"
    return sorted((course / "feedback").glob(pattern))


@dataclass
class CellGrade:
    """One graded cell of one submission, read back from the autograded notebook."""

    grade_id: str
    points: float
    score: float | None
    messages: list[str] = field(default_factory=list)


def cell_grades(course: Path, student: str, assignment: str) -> dict[str, CellGrade]:
    """Scores of every graded cell of an autograded submission, from nbgrader's gradebook.

    The failure messages come from the error outputs of the autograded notebook.
    """
    from nbgrader.api import Gradebook

    notebook = NOTEBOOKS[assignment]
    nb = _read(course / "autograded" / student / assignment / f"{notebook}.ipynb")
    messages: dict[str, list[str]] = {}
    for cell in nb["cells"]:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        messages[_grade_id(cell)] = [f"{o.get('ename')}: {o.get('evalue')}" for o in errors]
    grades: dict[str, CellGrade] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(notebook, assignment, student)
        for g in sub.grades:
            score = g.score if g.auto_score is not None or g.manual_score is not None else None
            grades[g.name] = CellGrade(g.name, float(g.max_score), score, messages.get(g.name, []))
    return grades


def _public_names(grades: Mapping[str, CellGrade]) -> list[str]:
    """The graded functions: ``<name>`` of every ``test_<name>_public`` cell."""
    return [k[len("test_") : -len("_public")] for k in grades
            if k.startswith("test_") and k.endswith("_public")]


def _function_rows(grades: Mapping[str, CellGrade]) -> list[tuple[str, str, str, str]]:
    rows = []
    for gid, grade in grades.items():
        if not gid.startswith("test_") or not gid.endswith("_public"):
            continue
        name = gid[len("test_") : -len("_public")]
        # credit, issue 14: the hidden points are split over test_<name>_<concern> cells
        prefix = f"test_{name}_"
        hidden = [g for k, g in grades.items() if k.startswith(prefix) and k != gid
                  and not any(k.startswith(f"test_{o}_") and len(o) > len(name)
                              for o in _public_names(grades))]
        public_text = f"{grade.score or 0:g}/{grade.points:g}"
        hidden_text = (f"{sum(h.score or 0 for h in hidden):g}/"
                       f"{sum(h.points for h in hidden):g}")
        rows.append((name, public_text, hidden_text, ""))
    for gid, grade in grades.items():
        if gid.startswith("q_"):
            state = "to grade by hand" if grade.score is None else f"{grade.score:g}"
            rows.append((gid, "", "", f"{state} (/{grade.points:g})"))
    return rows


def print_table(
    course: Path, assignment: str, students: Sequence[str], seconds: Mapping[str, float]
) -> None:
    """Print per-function points for each student, then the failure messages."""
    all_grades = {s: cell_grades(course, s, assignment) for s in students}
    width = max(len(n) for g in all_grades.values() for n, *_ in _function_rows(g)) + 2
    print(f"\nAssignment {assignment}: points per graded function (public + hidden tests)")
    header = f"{'function':<{width}}" + "".join(f"{s:>24}" for s in students)
    print(header)
    print("-" * len(header))
    rows = {s: _function_rows(g) for s, g in all_grades.items()}
    for i, (name, *_rest) in enumerate(rows[students[0]]):
        line = f"{name:<{width}}"
        for s in students:
            _, pub, hid, manual = rows[s][i]
            line += f"{(pub + ' + ' + hid) if pub else manual:>24}"
        print(line)
    print("-" * len(header))
    line = f"{'autograded total':<{width}}"
    for s in students:
        g = all_grades[s]
        auto = [x for k, x in g.items() if not k.startswith("q_")]
        total = f"{sum(x.score or 0 for x in auto):g} / {sum(x.points for x in auto):g}"
        line += f"{total:>24}"
    print(line)
    line = f"{'seconds to autograde':<{width}}"
    for s in students:
        line += f"{seconds.get(s, float('nan')):>24.1f}"
    print(line)
    for s in students:
        failures = [
            (gid, m)
            for gid, grade in all_grades[s].items()
            if gid.startswith("test_") and not gid.endswith("_public")
            for m in grade.messages
        ]
        if failures and s != "empty":
            print(f"\nWhat '{s}' reads in the feedback for the hidden tests that failed:")
            for gid, message in failures:
                text = message if len(message) < 600 else message[:600] + " ..."
                print(f"  {gid}:")
                print("    " + text.replace("\n", "\n    "))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of ``make grade-demo``."""
    parser = argparse.ArgumentParser(
        description="Autograde sample submissions in a scratch course."
    )
    parser.add_argument("--assignment", default="ps2_initializers", choices=sorted(NOTEBOOKS))
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="scratch course directory, replaced (default: nbgrader_scratch/grade-demo in the "
        "course directory)",
    )
    args = parser.parse_args(argv)
    try:
        root = course_root()
    except CourseConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dir is None:
        args.dir = root / "nbgrader_scratch" / "grade-demo"
    assignment: str = args.assignment
    print(f"Scratch course: {args.dir}")
    print(f"1. nbgrader generate_assignment {assignment}")
    course = make_course(args.dir, [assignment], root)
    reference = solution_answers(assignment, root)
    mistakes = MISTAKES[assignment]
    submissions = {
        "correct": submission(course, assignment, reference),
        "mistake": submission(course, assignment, {**reference, **mistakes}),
        "empty": submission(course, assignment, {}),
    }
    print(f"2. three submissions: correct, mistake (wrong {', '.join(mistakes)}), empty")
    for student, nb in submissions.items():
        submit(course, student, assignment, nb)
    print(f"3. nbgrader autograde {assignment} (one student at a time, to time each)")
    seconds = {}
    for student in submissions:
        seconds[student], _ = autograde(course, assignment, student)
    print(f"4. nbgrader generate_feedback {assignment}")
    feedback = generate_feedback(course, assignment)
    print_table(course, assignment, list(submissions), seconds)
    print("\nFeedback for the students (HTML, hidden tests' code removed):")
    for path in feedback:
        print(f"  {path}")
    summary = {
        s: {k: v.score for k, v in cell_grades(course, s, assignment).items()} for s in submissions
    }
    (course / "grades.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
