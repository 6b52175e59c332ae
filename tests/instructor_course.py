"""A scratch nbgrader course for the instructor-path tests (outside the repository)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

from course_lib.grading import demo

A = "ps2_initializers"
NB = "initializers"
TIMEOUT = 8  # seconds per cell in the scratch course (an endless loop costs this much)


def write_course(root: Path, *, timeout: int = TIMEOUT) -> Path:
    """A scratch course: the repository's config rooted at ``root`` and ps2's source only."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(ROOT / 'nbgrader_config.py')!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.Grading.cell_timeout = {timeout}\n"
    )
    shutil.copytree(ROOT / "solutions" / A, root / "solutions" / A)
    shutil.copytree(ROOT / "exercises" / A, root / "exercises" / A)
    return root


def put(root: Path, student: str, filename: str, nb: dict[str, object] | bytes) -> None:
    folder = root / "submitted" / student / A
    folder.mkdir(parents=True, exist_ok=True)
    data = nb if isinstance(nb, bytes) else json.dumps(nb, indent=1).encode()
    (folder / filename).write_bytes(data)


def run_batch(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "course_lib.grading.batch", *args, "--course", str(root)],
        capture_output=True, text=True, check=False, env=demo.tool_env(), cwd=ROOT,
    )


def points(root: Path) -> tuple[float, float]:
    """(total points, points of manually graded written answers) of the registered assignment."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        cells = [c for nb in gb.find_assignment(A).notebooks for c in nb.grade_cells]
        total = sum(float(c.max_score) for c in cells)
        manual = sum(float(c.max_score) for c in cells if c.cell_type == "markdown")
    return total, manual
