"""``make exercises``: regenerate the student release ``exercises/`` from ``solutions/``.

For every assignment folder in ``solutions/`` this runs ``nbgrader generate_assignment`` (with
the repository's ``nbgrader_config.py``), which clears the solution regions (``raise
NotImplementedError()`` takes their place), removes the hidden-test regions, clears all outputs,
locks the read-only cells and records checksums. The gradebook nbgrader needs for that lives in a
temporary directory and is thrown away, so no ``gradebook.db`` is left in the repository. The
output depends only on ``solutions/`` (no timestamps, no outputs), so a test can regenerate the
release into a scratch folder and compare it with the committed ``exercises/`` byte for byte.

Run ``python -m course_lib.grading.release`` (or ``make exercises``); ``--check`` regenerates
into a scratch folder and only reports whether ``exercises/`` is in sync (exit status 1 if not).

:class:`RestoreHiddenTests` is the other half of the release: an autograde sanitising
preprocessor (configured in ``nbgrader_config.py``) that puts the hidden region back into a test
cell that arrives exactly as released. Plain nbgrader 0.9.6 records the checksum of the *source*
test cell (hidden tests included) in the gradebook, but the student received the cell without
them, so every hidden test cell of every clean submission is reported as tampered with
("Attribute 'checksum' for cell test_..._hidden has changed!"), which drowns real integrity
warnings. After this preprocessor only a cell the student really edited is reported (and
nbgrader still restores it).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

__all__ = [
    "ROOT",
    "RestoreHiddenTests",
    "assignments",
    "generate_release",
    "nbgrader_command",
    "release_differences",
    "tool_env",
]

ROOT = Path(__file__).resolve().parents[2]
"""The repository root: the course directory of ``nbgrader_config.py``."""


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for nbgrader: this interpreter's ``bin/`` first on ``PATH``.

    nbgrader shells out to ``jupyter`` and starts kernels with ``python``; both must come from
    the same virtual environment as the interpreter running this module, even when it was called
    without activating the environment.
    """
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    if extra:
        env.update(extra)
    return env


def nbgrader_command() -> list[str]:
    """The ``nbgrader`` executable of this interpreter's environment."""
    exe = Path(sys.executable).parent / "nbgrader"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("nbgrader", path=tool_env()["PATH"])
    if found is None:
        raise FileNotFoundError(
            "nbgrader is not in this environment: run `make venv` (pip install -e '.[dev]')"
        )
    return [found]


def assignments(root: Path = ROOT) -> list[str]:
    """The assignment ids: the folders of ``solutions/`` that contain a notebook, sorted."""
    source = root / "solutions"
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def generate_release(
    output: Path | None = None,
    *,
    root: Path = ROOT,
    only: Sequence[str] | None = None,
    quiet: bool = True,
) -> float:
    """Run ``nbgrader generate_assignment`` for the assignments of ``root/solutions``.

    Parameters
    ----------
    output
        Release folder; ``root/exercises`` when None. Each assignment's folder in it is replaced.
    root
        The course directory (where ``nbgrader_config.py`` is).
    only
        Assignment ids to generate (default: all of them, in one nbgrader process).
    quiet
        Hide nbgrader's log unless it fails.

    Returns
    -------
    float
        Seconds taken.
    """
    import time

    start = time.perf_counter()
    output = (root / "exercises") if output is None else Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    ids = list(only) if only is not None else assignments(root)
    for assignment in ids:
        if (output / assignment).exists():
            shutil.rmtree(output / assignment)
    # One nbgrader process for all of them: its start-up is most of the time. nbgrader expands
    # the assignment id as a glob over the source folders.
    patterns = ["*"] if only is None else ids
    with tempfile.TemporaryDirectory(prefix="nbgrader-release-") as tmp:
        for pattern in patterns:
            cmd = [
                *nbgrader_command(),
                "generate_assignment",
                pattern,
                "--force",
                f"--db=sqlite:///{Path(tmp) / 'gradebook.db'}",
                f"--CourseDirectory.root={root}",
                f"--CourseDirectory.release_directory={output}",
                f"--NbGrader.logfile={Path(tmp) / 'nbgrader.log'}",
            ]
            proc = subprocess.run(
                cmd, cwd=root, env=tool_env(), capture_output=True, text=True, check=False
            )
            if proc.returncode != 0 or not quiet:
                sys.stderr.write(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise RuntimeError(f"nbgrader generate_assignment {pattern} failed")
    missing = [a for a in ids if not any((output / a).glob("*.ipynb"))]
    if missing:
        raise RuntimeError(f"nbgrader generated no notebook for {missing}")
    return time.perf_counter() - start


def release_differences(a: Path, b: Path) -> list[str]:
    """Relative paths of files that differ between two release folders (missing files included)."""
    differences: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        differences.extend(prefix + n for n in cmp.left_only + cmp.right_only + cmp.funny_files)
        for name in cmp.common_files:
            if (Path(cmp.left) / name).read_bytes() != (Path(cmp.right) / name).read_bytes():
                differences.append(prefix + name)
        for name, sub in sorted(cmp.subdirs.items()):
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(a, b, ignore=[".ipynb_checkpoints", "__pycache__"]), "")
    return sorted(differences)


def released_source(source: str, begin: str, end: str) -> str:
    """``source`` as ``nbgrader generate_assignment`` releases it: hidden regions removed.

    Same rule as nbgrader's ``ClearHiddenTests``: the delimiter lines and everything between
    them go, nothing replaces them.
    """
    kept: list[str] = []
    inside = False
    for line in source.split("\n"):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


class RestoreHiddenTests(NbGraderPreprocessor):  # type: ignore[misc]
    """Put the hidden tests back into test cells submitted exactly as released.

    Runs while autograding, before ``OverwriteCells`` (or the batch helper's ``RestoreCells``):
    for every locked cell of the submission whose source equals the released form of its
    source cell (hidden regions removed, trailing whitespace ignored), the source cell's text
    is put back. ``OverwriteCells`` then finds the checksum it expects and stays silent; any
    other difference is left for it to report and repair.
    """

    begin_test_delimeter = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end_test_delimeter = Unicode("END HIDDEN TESTS").tag(config=True)

    def preprocess(self, nb: Any, resources: Any) -> tuple[Any, Any]:
        """Restore the hidden regions of untouched test cells from the gradebook."""
        from nbgrader.api import Gradebook, MissingEntry

        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            try:
                source_nb = gb.find_notebook(info["notebook"], info["assignment"])
            except MissingEntry:
                return nb, resources
            sources = {c.name: c for c in source_nb.source_cells}
            for cell in nb.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                src = sources.get(grade_id)
                if src is None or not src.locked or src.cell_type != cell.cell_type:
                    continue
                if self.begin_test_delimeter not in src.source:
                    continue
                released = released_source(
                    src.source, self.begin_test_delimeter, self.end_test_delimeter
                )
                if cell.source.rstrip() == released.rstrip():
                    cell.source = src.source
        return nb, resources


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: regenerate ``exercises/`` (or check it with ``--check``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
    parser.add_argument(
        "--check", action="store_true", help="only check that exercises/ is in sync"
    )
    parser.add_argument("--verbose", action="store_true", help="show nbgrader's log")
    args = parser.parse_args(argv)
    only = args.assignments or None
    if args.check:
        with tempfile.TemporaryDirectory(prefix="release-check-") as tmp:
            generate_release(Path(tmp), only=only, quiet=not args.verbose)
            ids = only or assignments()
            diffs = [
                f"{a}/{d}"
                for a in ids
                for d in release_differences(Path(tmp) / a, ROOT / "exercises" / a)
            ]
        if diffs:
            print("exercises/ is out of sync with solutions/:", *diffs, sep="\n  ")
            print("run `make exercises` and commit the result")
            return 1
        print("exercises/ is in sync with solutions/")
        return 0
    seconds = generate_release(only=only, quiet=not args.verbose)
    for assignment in only or assignments():
        print(f"exercises/{assignment}/ regenerated")
    print(f"({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
