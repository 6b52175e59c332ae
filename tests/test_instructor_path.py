"""The instructor's path through `make grade`: registration, bad inputs, an honest table.

One scratch course (outside the repository, the repository's nbgrader_config.py with a short
cell timeout) is graded once by ``python -m course_lib.grading.batch``, as `make grade` runs it,
with submissions as they really arrive: correct, saved under a browser's or platform's renamed
file names, re-created without nbgrader metadata, under a wrong name, and one with an endless
loop. The assignment is NOT registered beforehand: the grader must register it itself.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT
from instructor_course import NB, TIMEOUT, A, points, put, run_batch, write_course

from course_lib.grading import batch, demo, intake

ANSWER = "Because the forward pass needs fan_in and the backward pass fan_out: CAROL-WROTE-THIS."


@dataclass
class Graded:
    root: Path
    first: subprocess.CompletedProcess[str]
    reference: dict[str, object]


@pytest.fixture(scope="module")
def g(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    root = write_course(tmp_path_factory.mktemp("instructor") / "course")
    answers = {**demo.solution_answers(A), "q_xavier_compromise": ANSWER}
    reference = demo.submission(root, A, answers)
    put(root, "alice", f"{NB}.ipynb", reference)
    put(root, "bob", f"{NB} (1).ipynb", reference)
    put(root, "dave", "Initializers.ipynb", reference)
    bare = json.loads(json.dumps(reference))
    for cell in bare["cells"]:  # re-created in another editor: no nbgrader metadata at all
        cell["metadata"] = {}
    put(root, "carol", f"{NB}.ipynb", bare)
    put(root, "erin", "my_homework.ipynb", reference)
    loop = json.loads(json.dumps(reference))
    for cell in loop["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "lecun_normal":
            cell["source"] = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n" \
                "while True:\n    pass\n" + cell["source"]
    put(root, "frank", f"{NB}.ipynb", loop)
    return Graded(root, run_batch(root, A), reference)


def _row(out: str, student: str) -> str:
    """The table row of ``student`` with its wrapped continuation lines, joined."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(student + " "))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("   "):
            break
        block.append(line.strip())
    return " ".join(block)


def _autograded(root: Path, student: str) -> dict[str, object]:
    path = root / "autograded" / student / A / f"{NB}.ipynb"
    data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data


# --- registration and a clean run -----------------------------------------------------------


@pytest.mark.slow
def test_grade_registers_the_assignment_itself(g: Graded) -> None:
    assert g.first.returncode == 0, g.first.stderr[-3000:]
    assert f"registered {A} in the course gradebook" in g.first.stderr
    assert "grading 6 submissions" in g.first.stderr and "local process pool" in g.first.stderr
    assert "Traceback" not in g.first.stderr and "SAWarning" not in g.first.stderr
    assert (g.root / ".grading" / "registered" / f"{A}.json").exists()
    total, manual = points(g.root)
    assert manual > 0 and f"{total - manual:g}/{total:g}" in _row(g.first.stdout, "alice")


@pytest.mark.slow
def test_rerun_does_not_register_again_and_manual_grades_show(g: Graded) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{g.root / 'gradebook.db'}") as gb:
        grade = gb.find_grade("q_xavier_compromise", NB, A, "alice")
        assert grade.needs_manual_grade
        grade.manual_score = float(grade.max_score)
        gb.db.commit()
    again = run_batch(g.root, A)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "registered" not in again.stderr
    assert "0 graded, 6 unchanged" in again.stdout
    alice = _row(again.stdout, "alice")
    total, manual = points(g.root)
    assert f"{total:g}/{total:g}" in alice  # read from the gradebook, not from the cached marker
    assert alice.split()[2] == "(already"  # no points awaiting manual grading any more
    assert _row(again.stdout, "bob").split()[2] == f"{manual:g}"  # bob's answer still waits


def _registration(db: Path) -> dict[str, object]:
    """Everything a gradebook says about A's registration, plus how many students it holds."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:
        a = gb.find_assignment(A)
        return {
            "assignment": (a.name, a.duedate, a.course_id),
            "students": len(gb.students),
            "notebooks": {
                nb.name: {
                    "kernelspec": nb.kernelspec,
                    "grade": sorted((c.name, c.max_score, c.cell_type) for c in nb.grade_cells),
                    "solution": sorted(c.name for c in nb.solution_cells),
                    "task": sorted((c.name, c.max_score, c.cell_type) for c in nb.task_cells),
                    "source": sorted((c.name, c.cell_type, c.locked, c.source, c.checksum)
                                     for c in nb.source_cells),
                }
                for nb in a.notebooks
            },
        }


@pytest.mark.slow
def test_workers_registration_matches_generate_assignment(g: Graded, tmp_path: Path) -> None:
    """The workers' copy (.grading/registered/A.db) holds A exactly as nbgrader registers it."""
    from course_lib.grading.release import _run_generate

    fresh = tmp_path / "fresh.db"
    assert _run_generate(g.root, A, f"sqlite:///{fresh}", tmp_path / "log") == ""
    copied = _registration(g.root / ".grading" / "registered" / f"{A}.db")
    expected = _registration(fresh)
    assert copied == expected
    assert expected["students"] == 0 and len(expected["notebooks"]) == 1  # type: ignore[arg-type]
    # the class's gradebook, which the copy was made from, does hold students
    assert _registration(g.root / "gradebook.db")["students"] == 6


# --- bad inputs -----------------------------------------------------------------------------


def test_unknown_assignment_lists_the_valid_ones(tmp_path: Path) -> None:
    root = write_course(tmp_path / "c")
    proc = run_batch(root, "ps2_initialisers")
    assert proc.returncode == 2
    assert "unknown assignment 'ps2_initialisers'" in proc.stderr
    assert "Valid assignments: ps2_initializers" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) <= 3


def test_no_submissions_says_so(tmp_path: Path) -> None:
    root = write_course(tmp_path / "c")
    proc = run_batch(root, A)
    assert proc.returncode == 2
    assert f"no submissions of {A}" in proc.stderr and "Traceback" not in proc.stderr
    assert not (root / "gradebook.db").exists()  # nothing was registered or written


@pytest.mark.slow
def test_unknown_student_is_refused_without_a_phantom(g: Graded) -> None:
    from nbgrader.api import Gradebook

    proc = run_batch(g.root, A, "--student", "alcie")
    assert proc.returncode == 2
    assert "no submission of ps2_initializers from 'alcie' (did you mean alice" in proc.stderr
    with Gradebook(f"sqlite:///{g.root / 'gradebook.db'}") as gb:
        assert "alcie" not in {s.id for s in gb.students}


@pytest.mark.slow
def test_renamed_notebooks_are_graded_and_the_rename_is_said(g: Graded) -> None:
    alice = _row(g.first.stdout, "alice").split()[1]
    for student, name in [("bob", f"{NB} (1).ipynb"), ("dave", "Initializers.ipynb")]:
        row = _row(g.first.stdout, student)
        assert row.split()[1] == alice, row
        assert f"graded '{name}' as {NB}.ipynb" in row
        first = _autograded(g.root, student)["cells"][0]  # type: ignore[index]
        assert name in "".join(first["source"])  # the student's feedback says it too
    erin = _row(g.first.stdout, "erin")
    assert f"0/{points(g.root)[0]:g}" in erin and "initializers.ipynb was not submitted" in erin
    assert "found 'my_homework.ipynb'" in erin


@pytest.mark.slow
def test_cells_without_metadata_are_matched_by_function_name(g: Graded) -> None:
    row = _row(g.first.stdout, "carol")
    assert row.split()[1] == _row(g.first.stdout, "alice").split()[1], row
    assert "NameError" not in row
    assert "answers by `def <name>(` (compute_fans, lecun_normal" in row
    assert "written answers by their place (q_xavier_compromise)" in row
    cells = _autograded(g.root, "carol")["cells"]
    q = [c for c in cells if c["metadata"].get("nbgrader", {}).get("grade_id")  # type: ignore
         == "q_xavier_compromise"]
    assert len(q) == 1 and ANSWER in "".join(q[0]["source"])  # the written answer stayed


def test_metadata_matching_by_the_called_function() -> None:
    source = json.loads((ROOT / "solutions" / A / f"{NB}.ipynb").read_text())
    sub = json.loads((ROOT / "exercises" / A / f"{NB}.ipynb").read_text())
    for cell in sub["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("grade_id") == "test_he_normal_public":
            cell["metadata"] = {}
            cell["source"] = "w = he_normal((400, 300), rng=np.random.default_rng(0))\n" \
                "assert w.shape == (400, 300)"  # a student's edited copy of the public test
    notes = intake.reattach_metadata(sub, source)
    assert notes and "test cells by the function they call (test_he_normal_public)" in notes[0]
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in sub["cells"]]
    assert ids.index("test_he_normal_public") == ids.index("he_normal") + 1


def test_renamed_file_names() -> None:
    for name in ["initializers (1).ipynb", "Initializers.ipynb", "initializers-2.ipynb",
                 "Copy of initializers.ipynb", "initializers copy.ipynb"]:
        assert intake.normalized_stem(name) == "initializers", name
    assert intake.normalized_stem("deep signal (3).ipynb") == "deep_signal"
    assert intake.normalized_stem("initializers_v2.ipynb") != "initializers"


def test_config_that_cannot_load_fails_loudly(tmp_path: Path) -> None:
    """nbgrader itself must stop (exit != 0) when course_lib cannot be imported."""
    root = write_course(tmp_path / "c")
    fake = tmp_path / "broken_env" / "course_lib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('simulated broken install')\n")
    env = {**demo.tool_env(), "PYTHONPATH": str(fake.parent)}
    proc = subprocess.run(
        [*demo.nbgrader_command(), "autograde", A], cwd=root, env=env,
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode != 0
    assert "cannot import course_lib" in proc.stderr and "simulated broken install" in proc.stderr
    assert "make venv" in proc.stderr
    # and the batch grader refuses a config that raises
    (root / "nbgrader_config.py").write_text("import no_such_module_here\n")
    out = run_batch(root, A)
    assert out.returncode == 2
    assert "nbgrader_config.py failed to load: ModuleNotFoundError" in out.stderr
    assert "Traceback" not in out.stderr


# --- the table ------------------------------------------------------------------------------


@pytest.mark.slow
def test_timed_out_cell_is_named_by_its_grade_id(g: Graded) -> None:
    row = _row(g.first.stdout, "frank")
    assert "cell lecun_normal (#" in row and f"timed out after {TIMEOUT} s" in row, row


def test_table_wraps_full_notes() -> None:
    long = " ".join(f"word{i}" for i in range(120))
    res = batch.SubmissionResult("s1", 10, 30, reasons=[long, "second note"], manual_pending=2)
    table = batch.format_table([res], width=100)
    words = table.split()
    assert all(f"word{i}" in words for i in range(120)) and "note" in words
    assert max(len(line) for line in table.splitlines()[:-1]) <= 100
    assert table.splitlines()[1].split()[:3] == ["s1", "10/30", "2"]


def test_cell_index_becomes_grade_id() -> None:
    nb = {"cells": [{"metadata": {}}, {"metadata": {"nbgrader": {"grade_id": "he_normal"}}}]}
    out = batch._name_cells(["cell 1 timed out after 3 s", "the code died in cell 0 (x)"], nb)
    assert out == ["cell he_normal (#1) timed out after 3 s", "the code died in cell 0 (x)"]


def test_stale_feedback_is_detected(tmp_path: Path) -> None:
    """After a regrade, feedback older than the autograded notebook is listed (make feedback)."""
    import os

    root = write_course(tmp_path / "c")
    course = batch.Course(str(root))
    for student, (t_graded, t_feedback) in {"old": (2000, 1000), "new": (1000, 2000)}.items():
        for step, t in (("autograded", t_graded), ("feedback", t_feedback)):
            folder = root / step / student / A
            folder.mkdir(parents=True)
            f = folder / (f"{NB}.ipynb" if step == "autograded" else f"{NB}.html")
            f.write_text("x")
            os.utime(f, (t, t))
    assert batch.stale_feedback(course, A, ["old", "new", "absent"]) == ["old"]
