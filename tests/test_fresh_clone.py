"""The documented instructor path, literally, on a fresh clone of the repository.

The clone is made with ``git clone`` of this checkout's committed state (so only tracked files),
and runs the exact commands of the README and the instructor guide: ``make grade``,
``make release``, ``make feedback``, ``make collect``, ``make export``, and nbgrader's exchange
commands for the instructor and a student, against an exchange directory in a temporary folder.
It reuses this test run's virtual environment (the clone's ``.venv`` is a link to it, and the
clone's ``pyproject.toml`` is dated back so that make sees the environment as up to date) instead
of building a new one.

Every step runs once, in order, in one module-scoped fixture; the tests read its record.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from instructor_course import points

from course_lib.grading import demo

A = "ps2_initializers"
NB = "initializers"
REPO = Path(__file__).resolve().parents[1]
COURSE_ID = "init-test"


@dataclass
class Walk:
    clone: Path
    home: Path
    exchange: Path
    steps: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def run(self, name: str, cmd: Sequence[str], *, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items()
                if k not in {"COURSE_ID", "NBGRADER_EXCHANGE", "DASK_SCHEDULER_ADDRESS"}}
        base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
        proc = subprocess.run(list(cmd), cwd=cwd or self.clone, env={**base, **(env or {})},
                              capture_output=True, text=True, check=False, timeout=900)
        self.steps[name] = proc
        return proc

    def ok(self, name: str) -> subprocess.CompletedProcess[str]:
        proc = self.steps[name]
        assert proc.returncode == 0, f"{name}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        return proc


def _answers_into(nb_path: Path, answers: dict[str, str]) -> dict[str, object]:
    nb: dict[str, object] = json.loads(nb_path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:  # type: ignore[attr-defined]
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell["source"] = answers[gid]
    return nb


def _zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Walk:
    base = tmp_path_factory.mktemp("fresh")
    clone = base / "course"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    (clone / ".venv").symlink_to(Path(sys.executable).parent.parent)
    os.utime(clone / "pyproject.toml", (0, 0))  # the linked environment counts as up to date
    w = Walk(clone, base / "home" / "student", base / "exchange")
    w.home.mkdir(parents=True)
    w.exchange.mkdir(mode=0o777)
    answers = demo.solution_answers(A)
    released = clone / "exercises" / A / f"{NB}.ipynb"
    good = json.dumps(_answers_into(released, answers)).encode()

    # 1. submissions copied by hand into submitted/, then the documented command
    (clone / "submitted" / "hand" / A).mkdir(parents=True)
    (clone / "submitted" / "hand" / A / f"{NB}.ipynb").write_bytes(good)
    w.run("grade", ["make", "grade", f"A={A}"])

    # 2. the source changes: the next `make grade` registers it again and regrades
    src = clone / "solutions" / A / f"{NB}.ipynb"
    nb = json.loads(src.read_text(encoding="utf-8"))
    nb["cells"][0]["source"] = "".join(nb["cells"][0]["source"]) + "\n\n(Revised.)"
    src.write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")
    w.run("grade_changed", ["make", "grade", f"A={A}"])

    # 3. nbgrader's exchange: release, a student fetches and submits, collect, grade, feedback
    xenv = {"COURSE_ID": COURSE_ID, "NBGRADER_EXCHANGE": str(w.exchange)}
    student = [f"--Exchange.root={w.exchange}", f"--course={COURSE_ID}"]
    w.run("release", ["make", "release", f"A={A}"], env=xenv)
    w.run("fetch", ["nbgrader", "fetch_assignment", A, *student], cwd=w.home)
    fetched = w.home / A / f"{NB}.ipynb"
    if fetched.exists():
        fetched.write_text(json.dumps(_answers_into(fetched, answers)))
    w.run("submit", ["nbgrader", "submit", A, *student], cwd=w.home)
    w.run("collect", ["nbgrader", "collect", A], env=xenv)
    w.run("grade_exchange", ["make", "grade", f"A={A}"], env=xenv)
    w.run("feedback", ["make", "feedback", f"A={A}"], env=xenv)
    # (only submissions that came through the exchange carry the secret release_feedback needs)
    from nbgrader.utils import get_username

    w.run("release_feedback", ["nbgrader", "release_feedback", A, f"--student={get_username()}"],
          env=xenv)
    w.run("fetch_feedback", ["nbgrader", "fetch_feedback", A, *student], cwd=w.home)

    # 4. LMS downloads: Canvas, then Moodle, each sorted by `make collect`, graded, exported
    archive = clone / "downloaded" / A / "archive"
    _zip(archive / "canvas_submissions.zip", {
        f"doejane_12345_6789012_{NB}.ipynb": good,
        f"roeric_late_23456_6789013_{NB}-1.ipynb": good,
    })
    w.run("collect_canvas", ["make", "collect", f"A={A}", "LMS=canvas"])
    (archive / "canvas_submissions.zip").unlink()
    _zip(archive / "moodle_submissions.zip", {
        f"Jane Doe_1234567_assignsubmission_file_/{NB}.ipynb": good,
        f"Max Mustermann_7654321_assignsubmission_file_{NB}.ipynb": good,
    })
    w.run("collect_moodle", ["make", "collect", f"A={A}", "LMS=moodle"])
    w.run("grade_lms", ["make", "grade", f"A={A}"])
    w.run("export", ["make", "export", f"A={A}", "LMS=canvas"])

    w.run("status", ["git", "status", "--porcelain", "--untracked-files=all"])
    return w


@pytest.mark.slow
def test_make_grade_on_a_fresh_clone_registers_and_grades(walk: Walk) -> None:
    proc = walk.ok("grade")
    assert f"registered {A} in the course gradebook" in proc.stderr
    assert "local process pool" in proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("hand "))
    total, manual = points(walk.clone)
    assert line.split()[1:3] == [f"{total - manual:g}/{total:g}", f"{manual:g}"]  # to grade
    assert "1 graded, 0 unchanged, 0 grader errors" in proc.stdout


@pytest.mark.slow
def test_exchange_round_trip(walk: Walk) -> None:
    from nbgrader.utils import get_username

    release = walk.ok("release")
    assert f"released to the exchange of course {COURSE_ID}" in release.stdout
    assert "already registered" in release.stdout  # make grade had registered it
    for step in ("fetch", "submit", "collect"):
        walk.ok(step)
    me = get_username()
    assert (walk.clone / "submitted" / me / A / f"{NB}.ipynb").exists()
    graded = walk.ok("grade_exchange")
    assert "1 graded, 1 unchanged" in graded.stdout, graded.stdout
    total, manual = points(walk.clone)
    line = next(x for x in graded.stdout.splitlines() if x.startswith(me + " "))
    assert f"{total - manual:g}/{total:g}" in line
    walk.ok("feedback")
    assert (walk.clone / "feedback" / me / A / f"{NB}.html").exists()
    walk.ok("release_feedback")
    walk.ok("fetch_feedback")
    got = list((walk.home / A / "feedback").rglob(f"{NB}.html"))
    assert got and "BEGIN HIDDEN TESTS" not in got[0].read_text(encoding="utf-8")


@pytest.mark.slow
def test_lms_downloads_are_collected_graded_and_exported(walk: Walk) -> None:
    walk.ok("collect_canvas")
    walk.ok("collect_moodle")
    for sid in ("12345", "23456", "1234567", "7654321"):
        assert (walk.clone / "submitted" / sid / A / f"{NB}.ipynb").exists(), sid
    graded = walk.ok("grade_lms")
    assert "4 graded, 2 unchanged, 0 grader errors" in graded.stdout, graded.stdout
    export = walk.ok("export")
    path = walk.clone / f"lms_grades_{A}.csv"
    assert path.name in export.stdout
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:6] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A]
    by_id = {r["ID"]: r for r in rows}
    assert set(by_id) >= {"hand", "12345", "23456", "1234567", "7654321"}
    total, manual = points(walk.clone)
    for r in by_id.values():
        assert [r[A], r["max_score"], r["manual_points_pending"]] == [
            f"{total - manual:g}", f"{total:g}", f"{manual:g}"]


@pytest.mark.slow
def test_changed_source_is_registered_again_and_regraded(walk: Walk) -> None:
    proc = walk.ok("grade_changed")
    assert f"registered {A} in the course gradebook (solutions/{A}/ changed" in proc.stderr
    assert "1 graded, 0 unchanged, 0 grader errors" in proc.stdout


@pytest.mark.slow
def test_private_data_never_shows_up_in_git(walk: Walk) -> None:
    """Grades, exports, downloads, feedback, submissions, the gradebook: all ignored."""
    changed = [line[3:] for line in walk.ok("status").stdout.splitlines()]
    # `make release` regenerated the release from the changed source: both are to be committed
    assert sorted(changed) == [f"exercises/{A}/{NB}.ipynb", f"solutions/{A}/{NB}.ipynb"], changed
    for private in ("gradebook.db", "submitted", "autograded", "feedback", "downloaded",
                    f"lms_grades_{A}.csv"):
        assert (walk.clone / private).exists(), private
    shutil.rmtree(walk.clone / "submitted" / "hand")  # (the clone is thrown away anyway)
