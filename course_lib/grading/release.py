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
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

__all__ = [
    "CourseConfigError",
    "Registration",
    "RegistrationError",
    "RestoreHiddenTests",
    "assignments",
    "course_root",
    "ensure_registered",
    "generate_release",
    "load_course_config",
    "nbgrader_command",
    "release_differences",
    "source_digest",
    "tool_env",
]

def course_root(start: Path | None = None) -> Path:
    """The course directory: the nearest of ``start`` (default: the working directory) and its
    parents that holds ``nbgrader_config.py``.

    The installed package never assumes where the course is (it may be installed from a wheel,
    far from any checkout): the commands run in the course directory, as ``make`` does, or are
    given it (``--course``).

    Raises
    ------
    CourseConfigError
        No ``nbgrader_config.py`` in ``start`` or above it.
    """
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file():
            return folder
    raise CourseConfigError(
        f"no nbgrader_config.py in {here} or above it: run this from the course directory "
        "(the repository's root), or give it with --course"
    )


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


def assignments(root: Path | None = None, source_directory: str = "solutions") -> list[str]:
    """The assignment ids: the folders of ``solutions/`` that contain a notebook, sorted.

    ``root``: the course directory (default :func:`course_root`).
    """
    source = Path(root if root is not None else course_root()) / source_directory
    if not source.is_dir():
        return []
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def generate_release(
    output: Path | None = None,
    *,
    root: Path | None = None,
    only: Sequence[str] | None = None,
    quiet: bool = True,
) -> float:
    """Run ``nbgrader generate_assignment`` for the assignments of ``root/solutions``.

    Parameters
    ----------
    output
        Release folder; ``root/exercises`` when None. Each assignment's folder in it is replaced.
    root
        The course directory (where ``nbgrader_config.py`` is; default :func:`course_root`).
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
    root = Path(root) if root is not None else course_root()
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


# --------------------------------------------------------------------------- course config


class CourseConfigError(RuntimeError):
    """``nbgrader_config.py`` could not be loaded; the message says why and how to fix it."""


def load_course_config(root: Path) -> tuple[Any, Any]:
    """Load a course's ``nbgrader_config.py``: ``(traitlets Config, nbgrader CourseDirectory)``.

    Fails loudly (:class:`CourseConfigError`) where nbgrader would only log the error and grade
    with its default settings.
    """
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    root = Path(root).resolve()
    cfg = Config()
    path = root / "nbgrader_config.py"
    if not root.is_dir():
        raise CourseConfigError(f"no course directory {root}")
    if path.exists():
        old = os.getcwd()
        os.chdir(root)  # the config may use paths relative to the course
        try:
            cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        except SystemExit as exc:  # the config's own check (see nbgrader_config.py) said why
            raise CourseConfigError(
                f"{path} refused to load (exit status {exc.code}); its message is above"
            ) from None
        except Exception as exc:
            raise CourseConfigError(
                f"{path} failed to load: {type(exc).__name__}: {exc}\n"
                "Fix the file (or the environment it imports from: `make venv`); nothing was "
                "graded with default settings."
            ) from None
        finally:
            os.chdir(old)
    if "root" not in cfg.CourseDirectory:
        cfg.CourseDirectory.root = str(root)  # the course is where its config is (or would be)
    coursedir = CourseDirectory(config=cfg)
    coursedir.root = os.path.normpath(os.path.join(str(root), coursedir.root))
    return cfg, coursedir


# --------------------------------------------------------------------------- registration
#
# nbgrader grades only assignments whose notebooks and cells are in the course's gradebook, and
# `make exercises` deliberately throws its gradebook away (the release is generated in a scratch
# one). So `make grade` / `make release` register the assignment in the course gradebook
# themselves, whenever it is missing or its source notebooks changed (detected by a digest of
# solutions/<assignment>/), by running `nbgrader generate_assignment` with the course's own
# config into a scratch release folder: the committed exercises/ is left alone. The assignment's
# rows are then copied into a gradebook holding only them (.grading/registered/<assignment>.db):
# what a grading worker on another machine needs to sanitise a submission, without the class's
# grades (a copy, not a second `generate_assignment`, which cost ~6 CPU-s).


class RegistrationError(RuntimeError):
    """The assignment cannot be registered (unknown id, or nbgrader refused); says how to fix."""


@dataclass(frozen=True)
class Registration:
    """An assignment as registered in a course: its source digest and worker gradebook."""

    assignment: str
    digest: str
    notebooks: tuple[str, ...]
    snapshot: Path
    registered_now: bool
    reason: str = ""


def _source_folder(course_root: Path, source_directory: str, assignment: str) -> Path:
    return Path(course_root) / source_directory / assignment


def source_digest(folder: Path) -> str:
    """SHA-256 over the files of a source assignment folder (names and contents)."""
    h = hashlib.sha256(b"registration-1")
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or ".ipynb_checkpoints" in path.parts or "__pycache__" in path.parts:
            continue
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _gradebook_notebooks(db_url: str, course_id: str, assignment: str) -> tuple[str, ...] | None:
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with _quiet_sa(), Gradebook(db_url, course_id) as gb:
            return tuple(sorted(nb.name for nb in gb.find_assignment(assignment).notebooks))
    except MissingEntry:
        return None


@contextmanager
def _quiet_sa() -> Iterator[None]:
    """nbgrader's gradebook code emits SQLAlchemy SAWarnings that say nothing to an instructor."""
    import warnings

    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        yield


def _run_generate(course_root: Path, assignment: str, db_url: str | None, log: Path) -> str:
    """``nbgrader generate_assignment`` into a scratch release folder; its output on failure."""
    with tempfile.TemporaryDirectory(prefix="nbgrader-register-") as tmp:
        cmd = [
            *nbgrader_command(),
            "generate_assignment",
            assignment,
            "--force",
            f"--CourseDirectory.release_directory={Path(tmp) / 'release'}",
            f"--NbGrader.logfile={log}",
        ]
        if db_url is not None:
            cmd.append(f"--db={db_url}")
        proc = subprocess.run(
            cmd, cwd=course_root, env=tool_env(), capture_output=True, text=True, check=False
        )
    if proc.returncode != 0:
        return (proc.stdout + proc.stderr).strip() or f"exit status {proc.returncode}"
    return ""


def ensure_registered(
    course_root: Path,
    assignment: str,
    *,
    source_directory: str = "solutions",
    db_url: str | None = None,
    course_id: str = "",
    record_directory: Path | None = None,
    force: bool = False,
) -> Registration:
    """Register ``assignment`` in the course gradebook if it is missing or its source changed.

    Parameters
    ----------
    course_root
        The nbgrader course directory (its ``nbgrader_config.py`` is used).
    assignment
        The assignment id: a folder of ``<course_root>/<source_directory>``.
    source_directory, db_url, course_id
        The course's ``CourseDirectory`` settings (``db_url`` default: ``gradebook.db`` there).
    record_directory
        Where the registration state lives (default ``<course_root>/.grading``).
    force
        Register again even if nothing changed.

    Raises
    ------
    RegistrationError
        Unknown assignment (the message lists the valid ones), or nbgrader refused (for example
        cells were added to an assignment that already has submissions).
    """
    course_root = Path(course_root).resolve()
    db_url = db_url or f"sqlite:///{course_root / 'gradebook.db'}"
    state_dir = (record_directory or course_root / ".grading") / "registered"
    folder = _source_folder(course_root, source_directory, assignment)
    registered = _gradebook_notebooks(db_url, course_id, assignment)
    if not folder.is_dir() or not any(folder.glob("*.ipynb")):
        valid = assignments(course_root, source_directory)
        if registered is not None and (state_dir / f"{assignment}.db").exists():
            # graded from the gradebook alone (its source is kept elsewhere)
            return Registration(assignment, "", registered, state_dir / f"{assignment}.db", False)
        raise RegistrationError(
            f"unknown assignment {assignment!r}: there is no {source_directory}/{assignment}/ "
            f"with a notebook in {course_root}. Valid assignments: "
            f"{', '.join(valid) if valid else '(none)'}"
        )
    digest = source_digest(folder)
    notebooks = tuple(sorted(p.stem for p in folder.glob("*.ipynb")))
    state_file = state_dir / f"{assignment}.json"
    snapshot = state_dir / f"{assignment}.db"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {}
    reason = ""
    if force:
        reason = "registration forced"
    elif registered is None:
        reason = "not yet in the course gradebook"
    elif registered != notebooks:
        reason = f"its notebooks changed ({', '.join(registered)} -> {', '.join(notebooks)})"
    elif state.get("digest") != digest:
        reason = (
            f"{source_directory}/{assignment}/ changed since it was registered"
            if state else "no record of the registered source"
        )
    elif not snapshot.exists():
        reason = "the workers' copy of the registration is missing"
    if not reason:
        return Registration(assignment, digest, notebooks, snapshot, False)
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / f"{assignment}.log"
    failure = _run_generate(course_root, assignment, db_url, log)
    if failure:
        hint = ""
        if "submissions associated" in failure:
            hint = (
                "\nnbgrader cannot add or remove cells or notebooks of an assignment that already "
                "has submissions. Undo that change in the source, or publish the changed notebook "
                "as a new assignment id."
            )
        raise RegistrationError(
            f"registering {assignment} in the course gradebook failed "
            f"(nbgrader generate_assignment):\n{_tail(failure)}{hint}"
        )
    tmp_db = snapshot.with_suffix(".db.tmp")
    tmp_db.unlink(missing_ok=True)
    write_registration(db_url, course_id, assignment, tmp_db)
    os.replace(tmp_db, snapshot)
    state_file.write_text(
        json.dumps({"digest": digest, "notebooks": list(notebooks)}, indent=1), encoding="utf-8"
    )
    return Registration(assignment, digest, notebooks, snapshot, True, reason)


@contextmanager
def _venv_on_path() -> Iterator[None]:
    """This interpreter's ``bin/`` first on ``PATH`` (nbgrader runs ``alembic`` for a new
    gradebook, and ``make`` does not activate the virtual environment)."""
    saved = os.environ.get("PATH")
    os.environ["PATH"] = tool_env()["PATH"]
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved


def _empty_like(db_url: str, dest: Path) -> None:
    """Create ``dest`` with the tables (and schema version) of the SQLite gradebook ``db_url``.

    nbgrader sets up a new gradebook by running the ``alembic`` command (2.5 CPU-s); an empty
    copy of an existing gradebook's schema is the same database without it. Another database
    (not SQLite) is left to nbgrader.
    """
    import sqlite3

    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if not url.drivername.startswith("sqlite") or not url.database:
        return
    src = sqlite3.connect(f"file:{url.database}?mode=ro", uri=True)
    dst = sqlite3.connect(dest)
    try:
        schema = src.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY type = 'table' DESC").fetchall()
        for (sql,) in schema:
            dst.execute(sql)
        if any("alembic_version" in sql for (sql,) in schema):
            dst.executemany("INSERT INTO alembic_version VALUES (?)",
                            src.execute("SELECT version_num FROM alembic_version").fetchall())
        dst.commit()
    finally:
        src.close()
        dst.close()


def write_registration(db_url: str, course_id: str, assignment: str, dest: Path) -> None:
    """Write a new gradebook ``dest`` holding only ``assignment``'s registration.

    The assignment, its notebooks (with their kernelspec) and their grade, solution, task and
    source cells are copied from the gradebook at ``db_url``, exactly as ``nbgrader
    generate_assignment`` recorded them; no student, submission or grade is copied.
    """
    # nbgrader's own class by its own name: batch.shared_gradebook lends its connection to this
    # module's `Gradebook` (for RestoreHiddenTests) while a batch runs
    from nbgrader.api import Gradebook as NbgraderGradebook

    _empty_like(db_url, dest)
    with _quiet_sa(), _venv_on_path(), NbgraderGradebook(db_url, course_id) as src, \
            NbgraderGradebook(f"sqlite:///{dest}", course_id) as dst:
        a = src.find_assignment(assignment)
        dst.add_assignment(a.name, duedate=a.duedate)
        for nb in a.notebooks:
            dst.add_notebook(nb.name, a.name, kernelspec=nb.kernelspec)
            for g in nb.grade_cells:
                dst.add_grade_cell(g.name, nb.name, a.name, max_score=g.max_score,
                                   cell_type=g.cell_type)
            for sol in nb.solution_cells:
                dst.add_solution_cell(sol.name, nb.name, a.name)
            for t in nb.task_cells:
                dst.add_task_cell(t.name, nb.name, a.name, max_score=t.max_score,
                                  cell_type=t.cell_type)
            for c in nb.source_cells:
                dst.add_source_cell(c.name, nb.name, a.name, cell_type=c.cell_type,
                                    locked=c.locked, source=c.source, checksum=c.checksum)


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.splitlines()[-lines:])


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


def publish(assignment: str, root: Path | None = None) -> int:
    """``make release A=...``: regenerate, register, and release to the exchange if configured."""
    _cfg, coursedir = load_course_config(root if root is not None else course_root())
    valid = assignments(Path(coursedir.root), coursedir.source_directory)
    if assignment not in valid:
        print(f"unknown assignment {assignment!r}; valid assignments: {', '.join(valid)}")
        return 2
    generate_release(Path(coursedir.root) / coursedir.release_directory, root=Path(coursedir.root),
                     only=[assignment])
    print(f"{coursedir.release_directory}/{assignment}/ regenerated from "
          f"{coursedir.source_directory}/{assignment}/")
    reg = ensure_registered(
        Path(coursedir.root), assignment, source_directory=coursedir.source_directory,
        db_url=coursedir.db_url, course_id=coursedir.course_id,
    )
    print(f"{assignment} registered in the course gradebook ({reg.reason})" if reg.registered_now
          else f"{assignment} already registered in the course gradebook (source unchanged)")
    if not coursedir.course_id:
        print("not released to an nbgrader exchange (no course id): for JupyterHub run "
              f"`COURSE_ID=<course> NBGRADER_EXCHANGE=<dir> make release A={assignment}`")
        return 0
    proc = subprocess.run(
        [*nbgrader_command(), "release_assignment", assignment, "--force"],
        cwd=coursedir.root, env=tool_env(), capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(_tail(proc.stdout + proc.stderr, 20) + "\n")
        print(f"nbgrader release_assignment {assignment} failed (see above)")
        return 1
    print(f"{assignment} released to the exchange of course {coursedir.course_id}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: regenerate ``exercises/`` (or check it with ``--check``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
    parser.add_argument(
        "--check", action="store_true", help="only check that exercises/ is in sync"
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="regenerate, register in the course gradebook and release to the exchange "
        "(make release A=...)",
    )
    parser.add_argument("--course", type=Path, default=None,
                        help="course directory (default: the one holding nbgrader_config.py, "
                        "here or above)")
    parser.add_argument("--verbose", action="store_true", help="show nbgrader's log")
    args = parser.parse_args(argv)
    only = args.assignments or None
    try:
        root = args.course if args.course is not None else course_root()
    except CourseConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.publish:
        if not args.assignments:
            parser.error("give the assignment: `make release A=ps2_initializers`")
        try:
            return max(publish(a, root) for a in args.assignments)
        except (CourseConfigError, RegistrationError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.check:
        with tempfile.TemporaryDirectory(prefix="release-check-") as tmp:
            generate_release(Path(tmp), root=root, only=only, quiet=not args.verbose)
            ids = only or assignments(root)
            diffs = [
                f"{a}/{d}"
                for a in ids
                for d in release_differences(Path(tmp) / a, root / "exercises" / a)
            ]
        if diffs:
            print("exercises/ is out of sync with solutions/:", *diffs, sep="\n  ")
            print("run `make exercises` and commit the result")
            return 1
        print("exercises/ is in sync with solutions/")
        return 0
    seconds = generate_release(root=root, only=only, quiet=not args.verbose)
    for assignment in only or assignments(root):
        print(f"exercises/{assignment}/ regenerated")
    print(f"({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
