"""A scratch nbgrader course (outside the repository) using the repository's nbgrader_config.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def env() -> dict[str, str]:
    """The environment nbgrader needs: the venv's bin first on PATH (it shells out to jupyter)."""
    out = dict(os.environ)
    out["PATH"] = f"{BIN}{os.pathsep}{out.get('PATH', '')}"
    out.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    out.setdefault("MPLBACKEND", "Agg")
    return out


def make_course(
    root: Path, assignment: str, source: Path, *, timeout: int = 10, memory_mb: int = 4096
) -> Path:
    """Create ``root`` as an nbgrader course with ``assignment`` generated from ``source``.

    The course's config loads the repository's ``nbgrader_config.py`` (so the tests exercise the
    shipped configuration) and only moves the course root and sets the cell timeout and the
    child's memory limit.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "solutions" / assignment).mkdir(parents=True, exist_ok=True)
    shutil.copy(source, root / "solutions" / assignment / source.name)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(REPO / 'nbgrader_config.py')!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.Grading.cell_timeout = {int(timeout)}\n"
        f"c.Grading.memory_mb = {int(memory_mb)}\n"
    )
    run(root, "generate_assignment", assignment, "--force")
    return root


def run(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``nbgrader <args>`` in the course."""
    proc = subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=root,
        env=env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return proc


def release(root: Path, assignment: str, notebook: str) -> Any:
    """The student's version of the notebook, as nbgrader released it."""
    path = root / "release" / assignment / f"{notebook}.ipynb"
    if not path.exists():
        path = root / "exercises" / assignment / f"{notebook}.ipynb"
    return nbformat.read(path, as_version=4)


def submit(root: Path, student: str, assignment: str, notebook: str, content: Any) -> None:
    """Place a submission (a notebook node, or raw bytes for a broken file)."""
    dest = root / "submitted" / student / assignment
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{notebook}.ipynb"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        nbformat.write(content, path)
    (dest / "timestamp.txt").write_text("2026-01-15 10:00:00.000000 UTC")


def scores(root: Path, assignment: str) -> dict[str, dict[str, float | None]]:
    """``{student: {grade_id: auto_score}}`` from the course's gradebook."""
    from nbgrader.api import Gradebook

    out: dict[str, dict[str, float | None]] = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(assignment):
            out[sub.student.id] = {g.name: g.auto_score for nb in sub.notebooks for g in nb.grades}
    return out


def max_points(root: Path, assignment: str) -> dict[str, float]:
    """``{grade_id: points}`` of the assignment's grade cells."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        a = gb.find_assignment(assignment)
        return {c.name: float(c.max_score) for nb in a.notebooks for c in nb.grade_cells}
