"""Grade a whole class on all cores: ``make grade A=<assignment>``.

``python -m course_lib.grading.batch ASSIGNMENT [--course DIR] [--jobs N] [--force]
[--student ID ...] [--scheduler tcp://HOST:PORT]`` autogrades every submission in the nbgrader
course's ``submitted/`` directory and writes the grades into nbgrader's gradebook, so
``nbgrader export``, ``formgrader`` and ``generate_feedback`` keep working. ``--merge
OTHER_COURSE`` brings in the grades another copy of the course holds.

The coordinator (this process) registers the assignment in the gradebook when it is missing or
its source changed (:func:`~course_lib.grading.release.ensure_registered`), reads every
submission (:mod:`~course_lib.grading.intake`: renamed notebooks, cells without nbgrader
metadata), submits one task per submission to a local process pool or a Dask cluster
(:mod:`~course_lib.grading.cluster`; ``--scheduler`` or ``DASK_SCHEDULER_ADDRESS``), and is the
only writer of the gradebook. Bad requests (unknown assignment or student, no submissions, a
configuration that does not load) end with one line and exit status 2.

How a submission is graded (the grades are nbgrader's by construction):

1. nbgrader's own sanitising preprocessors (clear outputs, de-duplicate ids, restore the text of
   locked cells from the gradebook, plus :class:`~course_lib.grading.nbgrader_ext.RestoreCells`
   for deleted ones) run on the submitted notebook; an unreadable notebook becomes an empty one.
2. The notebook runs ONCE in one child process isolated by the operating system (bubblewrap:
   no network, no course files, no ``course_lib``; :mod:`course_lib.grading.isolation`), under
   the course's :class:`~course_lib.grading.isolation.Limits` read from ``nbgrader_config.py``:
   every code cell but the hidden-test calls, then the judge's calls, in the same child. A cell
   that kills the child or overruns costs that cell (the child is restarted, earlier cells
   replayed).
3. Every test cell ``test_<name>_<concern>`` (public and hidden) gets its points iff the judge's
   verdict on the bytes the student's functions returned passed for that concern
   (:func:`course_lib.grading.nbgrader_ext.autograde_notebook`, the very call
   :class:`~course_lib.grading.nbgrader_ext.ResilientExecute` makes inside ``nbgrader
   autograde``, so both paths give the same grades).
4. nbgrader's own post-processing preprocessors (``SaveAutoGrades``, late penalties, ...) score
   the executed notebook and write the gradebook; the autograded notebook goes to
   ``autograded/``; a record with the verdicts (seeds, tolerances, package versions) goes to
   ``.grading/records/<assignment>/<student>/`` in the course root.

The grading process never executes student code. Each submission is committed to the gradebook
as soon as it is graded, then marked done with a digest of its files: re-running skips what is
done and unchanged (``--force`` regrades), and a crash leaves every finished grade in place.
"""

from __future__ import annotations

import argparse
import atexit
import copy
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from course_lib.grading.isolation import UNSAFE_ENV, IsolationUnavailable, Limits, check_isolation

__all__ = [
    "BatchSettings",
    "Job",
    "SubmissionResult",
    "execute_job",
    "format_table",
    "grade_assignment",
    "main",
    "merge_course",
    "prepare",
    "save_submission",
    "shared_gradebook",
]

BATCH_VERSION = "batch-1"


@dataclass(frozen=True)
class BatchSettings:
    """Limits and locations shared with ``nbgrader autograde`` (read from nbgrader_config.py)."""

    limits: Limits = field(default_factory=Limits)
    record_directory: str = ".grading/records"


@dataclass
class SubmissionResult:
    """What the instructor sees for one student: score, maximum and the readable reasons."""

    student: str
    score: float = 0.0
    max_score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: bool = False
    error: str | None = None
    manual_pending: float = 0.0


# --------------------------------------------------------------------------- course set-up


class Course:
    """The nbgrader course directory, its configuration and the grading settings.

    ``Course(root)`` loads ``root/nbgrader_config.py`` and fails loudly
    (:class:`~course_lib.grading.release.CourseConfigError`) if it cannot; ``config`` passes an
    already loaded configuration instead (a worker's scratch copy of the course), and the course
    root is then ``root`` whatever the configuration says.
    """

    def __init__(self, root: str, config: Any = None) -> None:
        from nbgrader.coursedir import CourseDirectory

        from course_lib.grading.release import load_course_config

        root = os.path.abspath(root)
        if config is None:
            cfg, coursedir = load_course_config(Path(root))
        else:
            cfg = copy.deepcopy(config)
            cfg.CourseDirectory.root = root
            cfg.CourseDirectory.db_url = f"sqlite:///{os.path.join(root, 'gradebook.db')}"
            coursedir = CourseDirectory(config=cfg)
        self.config = cfg
        self.coursedir = coursedir
        self.root = coursedir.root
        self.db_url = coursedir.db_url

        from course_lib.grading.nbgrader_ext import ResilientExecute

        # The same traits, resolved the same way, as inside `nbgrader autograde`.
        execute = ResilientExecute(config=cfg)
        self.limits = Limits.from_config(cfg)
        self.settings = BatchSettings(
            limits=self.limits,
            record_directory=os.path.join(self.root, execute.record_directory),
        )

    def path(self, step: str, student: str, assignment: str) -> str:
        return str(self.coursedir.format_path(step, student, assignment))

    def students(self, assignment: str) -> list[str]:
        base = os.path.dirname(self.path(self.coursedir.submitted_directory, "X", assignment))
        sub = os.path.join(os.path.dirname(base), "")
        exclude = set(filter(None, self.coursedir.student_id_exclude.split(",")))
        out = []
        if os.path.isdir(sub):
            for s in sorted(os.listdir(sub)):
                if s not in exclude and os.path.isdir(
                    self.path(self.coursedir.submitted_directory, s, assignment)
                ):
                    out.append(s)
        return out

    def notebooks(self, assignment: str) -> list[str]:
        from nbgrader.api import Gradebook

        with Gradebook(self.db_url, self.coursedir.course_id) as gb:
            return sorted(nb.name for nb in gb.find_assignment(assignment).notebooks)


# --------------------------------------------------------------------------- digests / markers


def submission_digest(course: Course, assignment: str, student: str) -> str:
    """SHA-256 over the submitted files and the grader's version."""
    h = hashlib.sha256(BATCH_VERSION.encode())
    src = course.path(course.coursedir.submitted_directory, student, assignment)
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            h.update(os.path.relpath(full, src).encode() + b"\0")
            with open(full, "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def _marker(course: Course, assignment: str, student: str) -> str:
    return os.path.join(course.settings.record_directory, assignment, student, "_batch_done.json")


def is_done(course: Course, assignment: str, student: str, digest: str) -> bool:
    """True when this exact submission was graded and committed by an earlier run."""
    try:
        with open(_marker(course, assignment, student), encoding="utf-8") as fh:
            done = json.load(fh)
    except (OSError, ValueError):
        return False
    dest = course.path(course.coursedir.autograded_directory, student, assignment)
    return bool(done.get("digest") == digest and os.path.isdir(dest))


# --------------------------------------------------------------------------- execution


# --------------------------------------------------------------------------- one submission


def _resources(course: Course, assignment: str, student: str, notebook: str) -> dict[str, Any]:
    return {
        "unique_key": notebook,
        "output_files_dir": f"{notebook}_files",
        "nbgrader": {
            "student": student,
            "assignment": assignment,
            "notebook": notebook,
            "db_url": course.db_url,
        },
        "metadata": {
            "path": course.path(course.coursedir.autograded_directory, student, assignment)
        },
    }


def _run_preprocessors(
    course: Course, classes: Iterable[type], nb: Any, resources: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    for cls in classes:
        pp = cls(config=course.config)
        nb, resources = pp(nb, resources)  # honours `enabled`, as nbconvert's exporter does
    return nb, resources


def _configured(course: Course, key: str) -> list[type]:
    """The preprocessor classes ``c.Autograde.<key>`` names (nbgrader's default otherwise)."""
    from nbgrader.converters import Autograde
    from traitlets.utils.importstring import import_item

    auto = course.config.get("Autograde", {})
    items = auto[key] if key in auto else Autograde.class_traits()[key].default()
    return [import_item(c) if isinstance(c, str) else c for c in items]


def _sanitizers(course: Course) -> list[type]:
    """``c.Autograde.sanitize_preprocessors``, exactly as ``nbgrader autograde`` runs them."""
    return _configured(course, "sanitize_preprocessors")


def _split_autograde(course: Course) -> tuple[list[type], list[type]]:
    """``c.Autograde.autograde_preprocessors`` before and after the execute step."""
    from nbgrader.preprocessors import Execute

    items = _configured(course, "autograde_preprocessors")
    at = next((i for i, c in enumerate(items) if issubclass(c, Execute)), None)
    if at is None:
        raise ValueError("c.Autograde.autograde_preprocessors has no Execute step; the batch "
                         "grader needs ResilientExecute there (see nbgrader_config.py)")
    return items[:at], items[at + 1:]


def _postprocessors(course: Course) -> list[type]:
    """The autograde preprocessors after the execute step (scores, late penalties, ...)."""
    return _split_autograde(course)[1]


class _Borrowed:
    """A handle on the shared gradebook that nbgrader's preprocessors may open and close.

    With ``lookups`` (a dict kept for the life of a read-only gradebook: a worker's copy of the
    registration, which nothing writes) the ``find_*`` lookups are answered once per key, a
    missing entry included: nbgrader's ``OverwriteCells`` asks two of them per cell of every
    submission.
    """

    _MEMOIZED = frozenset({"find_assignment", "find_notebook", "find_source_cell",
                           "find_graded_cell", "find_solution_cell", "find_task_cell"})

    def __init__(self, gb: Any, lookups: dict[Any, Any] | None = None) -> None:
        self._gb = gb
        self._lookups = lookups

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        if name == "db":
            return _DeferredCommit(self._gb.db)
        attr = getattr(self._gb, name)
        if self._lookups is None or name not in self._MEMOIZED:
            return attr
        lookups = self._lookups

        def memoized(*args: Any) -> Any:
            key = (name, args)
            if key not in lookups:
                try:
                    lookups[key] = (True, attr(*args))
                except Exception as exc:  # MissingEntry: asked again, raised again
                    lookups[key] = (False, exc)
            ok, value = lookups[key]
            if not ok:
                raise value
            return value

        return memoized


class _DeferredCommit:
    """A session whose ``commit`` waits for the end of the submission (one commit, not 20)."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def commit(self) -> None:
        self._session.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


@contextmanager
def shared_gradebook(db_url: str, course_id: str, *, read_only: bool = False) -> Iterator[Any]:
    """One gradebook connection for the whole run, lent to nbgrader's own preprocessors.

    ``OverwriteKernelspec``, ``OverwriteCells``, ``SaveAutoGrades``, ``AssignLatePenalties``
    and the course's ``RestoreHiddenTests`` each open (and set up) a new ``Gradebook`` per
    notebook and commit after every cell, which costs more than grading it; while this context
    is active, the ones in this process get the shared connection, and their commits are
    deferred to the caller's ``gb.db.commit()`` (one per submission, so a submission's grades
    land all together or not at all). ``read_only`` (a worker's copy of the registration, never
    written) also answers each lookup once (see :class:`_Borrowed`).
    """
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import (
        latesubmissions,
        overwritecells,
        overwritekernelspec,
        saveautogrades,
    )

    from course_lib.grading import release

    modules = (latesubmissions, overwritecells, overwritekernelspec, saveautogrades, release)
    gb = Gradebook(db_url, course_id)
    lookups: dict[Any, Any] | None = {} if read_only else None
    saved = [m.Gradebook for m in modules]
    for m in modules:
        setattr(m, "Gradebook", lambda *args, **kw: _Borrowed(gb, lookups))  # noqa: B010
    try:
        yield gb
    finally:
        for m, original in zip(modules, saved, strict=True):
            setattr(m, "Gradebook", original)  # noqa: B010
        gb.close()


@dataclass(frozen=True)
class Job:
    """What a worker process needs to execute and judge one sanitised submission."""

    assignment: str
    student: str
    submitted: str
    autograded: str
    source: str
    ignore: tuple[str, ...]
    settings: BatchSettings
    notebooks: tuple[tuple[str, dict[str, Any] | None, tuple[str, ...]], ...]


def _copy_files(job: Job) -> None:
    """Lay out autograded/<student>/<assignment> as nbgrader does (other files, then source)."""
    from nbgrader.utils import find_all_files

    shutil.rmtree(job.autograded, ignore_errors=True)
    os.makedirs(job.autograded, exist_ok=True)
    ignore = [*job.ignore, "*.ipynb"]
    for base in (job.submitted, job.source):
        if not os.path.isdir(base):
            continue
        for filename in find_all_files(base, ignore):
            target = os.path.join(job.autograded, os.path.relpath(filename, base))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(filename, target)


def prepare(
    course: Course, assignment: str, student: str, notebooks: Sequence[str]
) -> Job:
    """Read and sanitise a submission with nbgrader's own preprocessors (worker process)."""
    from course_lib.grading.nbgrader_ext import read_submission

    submitted = course.path(course.coursedir.submitted_directory, student, assignment)
    items: list[tuple[str, dict[str, Any] | None, tuple[str, ...]]] = []
    for name in notebooks:
        path = os.path.join(submitted, f"{name}.ipynb")
        if not os.path.exists(path):
            items.append((name, None, (f"{name}.ipynb was not submitted",)))
            continue
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8", errors="replace")
        nb, reason = read_submission(text)
        resources = _resources(course, assignment, student, name)
        nb, _ = _run_preprocessors(course, _sanitizers(course), nb, resources)
        nb, _ = _run_preprocessors(course, _split_autograde(course)[0], nb, resources)
        items.append((name, json.loads(json.dumps(nb)), (reason,) if reason else ()))
    return Job(
        assignment=assignment,
        student=student,
        submitted=submitted,
        autograded=course.path(course.coursedir.autograded_directory, student, assignment),
        source=course.path(course.coursedir.source_directory, ".", assignment),
        ignore=tuple(course.coursedir.ignore),
        settings=course.settings,
        notebooks=tuple(items),
    )


def execute_job(job: Job) -> list[tuple[str, dict[str, Any] | None, list[str], dict[str, Any]]]:
    """Execute and judge one sanitised submission (in a worker process).

    Each notebook runs once in one isolated child of the engine
    (:func:`course_lib.grading.nbgrader_ext.autograde_notebook`, the call ``ResilientExecute``
    makes inside ``nbgrader autograde``); this process merely collects outputs and verdicts.
    """
    from course_lib.grading.nbgrader_ext import _nbf, autograde_notebook

    _copy_files(job)
    out: list[tuple[str, dict[str, Any] | None, list[str], dict[str, Any]]] = []
    for name, nb_json, why in job.notebooks:
        reasons = list(why)
        if nb_json is None:
            out.append((name, None, reasons, {}))
            continue
        done = autograde_notebook(_nbf.from_dict(nb_json), job.assignment, job.settings.limits)
        reasons.extend(done.reasons)
        for f, rec in done.records.items():
            if not rec.get("passed", True):
                first = str(rec.get("message", "")).splitlines()[0] if rec.get("message") else ""
                reasons.append(f"hidden {f}: {first[:160]}")
        verdicts = {"functions": done.records, "run": done.run}
        out.append((name, json.loads(json.dumps(done.nb)), reasons, verdicts))
    return out


# --------------------------------------------------------------------------- tasks
#
# One task per submission, runnable on any worker of a local pool or of a Dask cluster: the task
# carries the submission's bytes and a handle on the course bundle (the configuration and a
# gradebook holding only the assignment's registration), the worker grades it in a scratch copy
# of the course and returns the executed notebooks with their verdicts. Only the coordinator
# reads the class's submissions and writes the course gradebook.

Executed = list[tuple[str, dict[str, Any] | None, list[str], dict[str, Any]]]
"""Per notebook: (name, executed notebook as JSON or None if missing, reasons, verdicts)."""


@dataclass(frozen=True)
class CourseBundle:
    """What a worker needs, besides the submission, to grade any submission of an assignment."""

    key: str
    assignment: str
    config: Any
    gradebook: bytes
    source_files: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class SubmissionTask:
    """One student's submission as the coordinator read it (notebooks under their real names)."""

    student: str
    notebooks: tuple[str, ...]
    files: tuple[tuple[str, bytes], ...]


_WORKER: dict[str, Any] = {}
_WORKER_LOCK = threading.Lock()


def _worker_course(bundle: CourseBundle) -> tuple[Course, Any]:
    """This worker process's scratch course for ``bundle`` (made once, reused by its tasks)."""
    state = _WORKER.get(bundle.key)
    if state is None:
        root = tempfile.mkdtemp(prefix=f"grading-{bundle.assignment}-")
        atexit.register(shutil.rmtree, root, True)
        with open(os.path.join(root, "gradebook.db"), "wb") as fh:
            fh.write(bundle.gradebook)
        course = Course(root, config=bundle.config)
        source = course.path(course.coursedir.source_directory, ".", bundle.assignment)
        for rel, data in bundle.source_files:
            _write(os.path.join(source, rel), data)
        ctx = shared_gradebook(course.db_url, course.coursedir.course_id, read_only=True)
        gb = ctx.__enter__()  # kept open for the life of the worker process
        state = _WORKER[bundle.key] = (course, gb, ctx)
    return state[0], state[1]


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def _grade_in(
    course: Course, gb: Any, assignment: str, student: str, notebooks: Sequence[str]
) -> Executed:
    """The per-submission work: sanitise, execute and judge (student code only in children).

    ``gb`` is this worker's private, read-only copy of the registration: its lookups stay
    loaded from one submission to the next.
    """
    return execute_job(prepare(course, assignment, student, notebooks))


def grade_one(bundle: CourseBundle, task: SubmissionTask) -> Executed:
    """Grade one submission on whichever worker runs this task; return what the coordinator saves.

    The student's code runs only in the resource-limited children started by the per-submission
    work (exactly as on one machine); nothing here writes the course's gradebook.
    """
    with _WORKER_LOCK:  # one submission at a time per process (nbgrader's preprocessors share it)
        course, gb = _worker_course(bundle)
        folder = course.path(course.coursedir.submitted_directory, task.student, bundle.assignment)
        shutil.rmtree(folder, ignore_errors=True)
        for rel, data in task.files:
            _write(os.path.join(folder, rel), data)
        try:
            return _grade_in(course, gb, bundle.assignment, task.student, task.notebooks)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(
                course.path(course.coursedir.autograded_directory, task.student,
                            bundle.assignment),
                ignore_errors=True,
            )


def make_bundle(course: Course, assignment: str, snapshot: Path, digest: str) -> CourseBundle:
    """The course bundle of ``assignment`` (its registration ``snapshot`` is a gradebook file)."""
    from nbgrader.utils import find_all_files

    source = course.path(course.coursedir.source_directory, ".", assignment)
    files: list[tuple[str, bytes]] = []
    if os.path.isdir(source):
        for filename in find_all_files(source, [*course.coursedir.ignore, "*.ipynb"]):
            with open(filename, "rb") as fh:
                files.append((os.path.relpath(filename, source), fh.read()))
    data = snapshot.read_bytes()
    config = course.config
    if not course.limits.isolate:
        # --unsafe-no-isolation travels with the tasks (a Dask worker does not share this
        # process's environment), and is stated in every record the workers write
        config = copy.deepcopy(config)
        config.Grading.isolation = "none"
    key = hashlib.sha256(data + digest.encode() + course.root.encode()
                         + repr(course.limits).encode()).hexdigest()[:20]
    return CourseBundle(key, assignment, config, data, tuple(files))


def read_submission_task(
    course: Course, assignment: str, student: str, notebooks: Sequence[str],
    sources: dict[str, Any],
) -> tuple[SubmissionTask, list[str]]:
    """Read a submission in the coordinator: renamed notebooks, lost metadata (notes returned).

    The submitted files are not changed; the task carries the fixed-up copies.
    """
    from course_lib.grading.intake import find_notebook, reattach_metadata

    folder = Path(course.path(course.coursedir.submitted_directory, student, assignment))
    notes: list[str] = []
    files: list[tuple[str, bytes]] = []
    taken: set[Path] = set()
    for name in notebooks:
        path, note = find_notebook(folder, name, notebooks)
        if path is None:
            if note:
                notes.append(note)
            continue
        taken.add(path)
        data = path.read_bytes()
        extra: list[str] = []
        if note:
            extra.append(note)
        try:
            nb = json.loads(data.decode("utf-8", errors="replace"))
            if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
                raise ValueError("not a notebook")
        except ValueError:
            nb = None
        if nb is not None:
            try:
                fixed = reattach_metadata(nb, sources[name]) if name in sources else []
                if note:
                    nb["cells"].insert(0, {
                        "cell_type": "markdown", "metadata": {}, "id": "grader-note",
                        "source": f"**Note from the grader:** {note}.",
                    })
                if note or fixed:
                    data = json.dumps(nb, ensure_ascii=False).encode("utf-8")
                extra.extend(fixed)
            except (AttributeError, TypeError, KeyError, ValueError):
                pass  # a malformed notebook goes as submitted: the sanitisers deal with it
        notes.extend(extra)
        files.append((f"{name}.ipynb", data))
    for dirpath, _dirs, filenames in os.walk(folder):
        for fn in sorted(filenames):
            full = Path(dirpath) / fn
            if full in taken or (full.suffix.lower() == ".ipynb" and full.parent == folder):
                continue
            files.append((str(full.relative_to(folder)), full.read_bytes()))
    return SubmissionTask(student, tuple(notebooks), tuple(files)), notes


_CELL_INDEX = re.compile(r"\bcell (\d+)\b")


def _name_cells(reasons: Sequence[str], nb_json: dict[str, Any] | None) -> list[str]:
    """Replace "cell 15" in the reasons with the cell's grade id, e.g. "he_normal (cell 15)"."""
    if nb_json is None:
        return list(reasons)
    cells = nb_json.get("cells", [])

    def name(m: re.Match[str]) -> str:
        i = int(m.group(1))
        if 0 <= i < len(cells):
            gid = cells[i].get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid:
                return f"cell {gid} (#{i})"
        return m.group(0)

    return [_CELL_INDEX.sub(name, r) for r in reasons]


def _lay_out(course: Course, assignment: str, student: str) -> str:
    """autograded/<student>/<assignment>/ as nbgrader lays it out (other files, then source)."""
    from nbgrader.utils import find_all_files

    dest = course.path(course.coursedir.autograded_directory, student, assignment)
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest, exist_ok=True)
    ignore = [*course.coursedir.ignore, "*.ipynb"]
    for base in (
        course.path(course.coursedir.submitted_directory, student, assignment),
        course.path(course.coursedir.source_directory, ".", assignment),
    ):
        if os.path.isdir(base):
            for filename in find_all_files(base, ignore):
                target = os.path.join(dest, os.path.relpath(filename, base))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy(filename, target)
    stamp = os.path.join(dest, "timestamp.txt")
    if not os.path.exists(stamp):
        # A submission copied in by hand has none; `nbgrader release_feedback` needs one.
        src = course.path(course.coursedir.submitted_directory, student, assignment)
        newest = max((os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(src)
                      for f in fs), default=time.time())
        with open(stamp, "w", encoding="utf-8") as fh:
            fh.write(time.strftime("%Y-%m-%d %H:%M:%S.000000 UTC", time.gmtime(newest)))
    return dest


def save_submission(
    course: Course,
    gb: Any,
    assignment: str,
    student: str,
    executed: Sequence[tuple[str, dict[str, Any] | None, list[str], dict[str, Any]]],
    digest: str,
    notes: Sequence[str] = (),
) -> SubmissionResult:
    """Write one graded submission: gradebook (committed), autograded notebook, record, marker.

    Runs in the coordinator with the shared gradebook (see :func:`shared_gradebook`).
    """
    from course_lib.grading.nbgrader_ext import _nbf, write_record

    result = SubmissionResult(student)
    result.reasons.extend(notes)
    src = course.path(course.coursedir.submitted_directory, student, assignment)
    timestamp = course.coursedir.get_existing_timestamp(src)
    dest = _lay_out(course, assignment, student)
    with _quiet_sqlalchemy():
        gb.update_or_create_student(student)
        if timestamp:
            gb.update_or_create_submission(assignment, student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(assignment, student)
        for name, nb_json, raw_reasons, verdicts in executed:
            reasons = _name_cells(raw_reasons, nb_json)
            result.reasons.extend(r for r in reasons if r not in notes)
            if nb_json is None:
                sub = gb.find_submission_notebook(name, assignment, student)
                for grade in sub.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
                gb.db.commit()
            else:
                resources = _resources(course, assignment, student, name)
                nb = _nbf.from_dict(nb_json)
                nb, _ = _run_preprocessors(course, _postprocessors(course), nb, resources)
                with open(os.path.join(dest, f"{name}.ipynb"), "w", encoding="utf-8") as fh:
                    _nbf.write(nb, fh)
            write_record(
                course.settings.record_directory,
                assignment,
                student,
                name,
                {
                    "grader": f"course_lib.grading.batch ({BATCH_VERSION})",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "digest": digest,
                    "reasons": reasons,
                    "verdicts": verdicts.get("functions", {}),
                    "run": verdicts.get("run", {}),
                    "settings": {"limits": course.limits.to_dict(),
                                 "record_directory": course.settings.record_directory},
                },
            )
        gb.db.flush()
        sub = gb.find_submission(assignment, student)
        result.score, result.max_score = float(sub.score), float(sub.max_score)
        gb.db.commit()  # the submission's grades, all at once; no transaction stays open
    marker = _marker(course, assignment, student)
    with open(marker + ".tmp", "w", encoding="utf-8") as fh:
        json.dump({"digest": digest, "score": result.score, "max_score": result.max_score}, fh)
    os.replace(marker + ".tmp", marker)
    return result


# --------------------------------------------------------------------------- the class


class Progress:
    """A plain-text progress bar with ETA on stderr (one line per step when not a TTY)."""

    def __init__(self, total: int, stream: IO[str] | None = None) -> None:
        self.total, self.done, self.t0 = total, 0, time.monotonic()
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def line(self, last: str = "") -> str:
        elapsed = time.monotonic() - self.t0
        frac = self.done / self.total if self.total else 1.0
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        eta_s = "--:--" if eta != eta else _clock(eta)
        return (
            f"[{bar}] {self.done}/{self.total} {100 * frac:3.0f}% "
            f"elapsed {_clock(elapsed)} ETA {eta_s} {last}"
        )

    def step(self, last: str) -> None:
        self.done += 1
        text = self.line(last)
        if self.tty:
            self.stream.write("\r" + text[:150].ljust(150))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds + 0.5), 60)
    return f"{m}:{s:02d}"


class GradingError(RuntimeError):
    """A problem with the request (not with a submission); the message says how to fix it."""


def _check_students(course: Course, assignment: str, wanted: Sequence[str]) -> list[str]:
    import difflib

    have = course.students(assignment)
    unknown = [s for s in wanted if s not in have]
    if unknown:
        hints = []
        for s in unknown:
            close = difflib.get_close_matches(s, have, n=3)
            hints.append(f"{s!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        folder = course.path(course.coursedir.submitted_directory, "<student>", assignment)
        raise GradingError(
            f"no submission of {assignment} from {', '.join(hints)}: there is no {folder}. "
            f"{len(have)} students submitted" + (f", e.g. {', '.join(have[:5])}" if have else "")
        )
    return list(dict.fromkeys(wanted))


def gradebook_scores(
    course: Course, assignment: str, students: Sequence[str]
) -> dict[str, tuple[float, float, float]]:
    """``{student: (score, max_score, points awaiting manual grading)}`` from the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    out: dict[str, tuple[float, float, float]] = {}
    with _quiet_sqlalchemy(), Gradebook(course.db_url, course.coursedir.course_id) as gb:
        for s in students:
            try:
                sub = gb.find_submission(assignment, s)
            except MissingEntry:
                continue
            pending = sum(
                float(g.max_score) for nb in sub.notebooks for g in nb.grades
                if g.needs_manual_grade and g.manual_score is None
            )
            out[s] = (float(sub.score), float(sub.max_score), pending)
    return out


def grade_assignment(
    assignment: str,
    course_dir: str = ".",
    *,
    jobs: int | None = None,
    force: bool = False,
    students: Sequence[str] | None = None,
    progress: IO[str] | None = None,
    on_graded: Callable[[SubmissionResult], None] | None = None,
    scheduler: str | None = None,
    retries: int | None = None,
    log: IO[str] | None = None,
) -> list[SubmissionResult]:
    """Autograde every submission of ``assignment`` in parallel; return one result each.

    Parameters
    ----------
    assignment : str
        Assignment id: a folder of the course's source directory (``solutions/``). It is
        registered in the course gradebook first if it is not, or if its source changed.
    course_dir : str
        The nbgrader course root (holding ``nbgrader_config.py`` and ``submitted/``).
    jobs : int, optional
        Local worker processes; default: the number of CPU cores.
    force : bool
        Regrade submissions that an earlier run already graded.
    students : sequence of str, optional
        Grade only these students (each must have a submission).
    progress : text stream, optional
        Where the progress bar goes (default stderr).
    on_graded : callable, optional
        Called with each result right after it is committed.
    scheduler : str, optional
        A Dask scheduler address (``tcp://host:8786``); default ``$DASK_SCHEDULER_ADDRESS``,
        else the local process pool.
    retries : int, optional
        Attempts after the first for a task lost to the infrastructure (default 3).
    log : text stream, optional
        Where the one-line messages (registration, which cluster) go (default stderr).

    Raises
    ------
    GradingError
        Unknown assignment or student, no submissions, an unloadable course configuration.
    """
    from course_lib.grading.cluster import DEFAULT_RETRIES, open_backend, run_tasks
    from course_lib.grading.release import (
        CourseConfigError,
        RegistrationError,
        assignments,
        ensure_registered,
    )

    log = log if log is not None else sys.stderr
    try:
        course = Course(course_dir)
    except CourseConfigError as exc:
        raise GradingError(str(exc)) from None
    check_isolation(course.limits)  # refuse, with the fix, before anything else is done
    valid = assignments(Path(course.root), course.coursedir.source_directory)
    if assignment not in valid and not os.path.isdir(
        course.path(course.coursedir.source_directory, ".", assignment)
    ):
        raise GradingError(
            f"unknown assignment {assignment!r}: no {course.coursedir.source_directory}/"
            f"{assignment}/ in {course.root}. Valid assignments: {', '.join(valid) or '(none)'}"
        )
    if students:
        todo = _check_students(course, assignment, students)
    else:
        todo = course.students(assignment)
        if not todo:
            folder = course.path(course.coursedir.submitted_directory, "<student>", assignment)
            raise GradingError(
                f"no submissions of {assignment}: nothing in {folder}/. Collect them first "
                "(nbgrader collect, `make collect A=... LMS=canvas` for an LMS download, or "
                "copy them there)"
            )
    try:
        reg = ensure_registered(
            Path(course.root), assignment,
            source_directory=course.coursedir.source_directory,
            db_url=course.db_url, course_id=course.coursedir.course_id,
            record_directory=Path(course.settings.record_directory).parent,
        )
    except RegistrationError as exc:
        raise GradingError(str(exc)) from None
    if reg.registered_now:
        log.write(f"registered {assignment} in the course gradebook ({reg.reason})\n")
    notebooks = list(reg.notebooks)
    sources: dict[str, Any] = {}
    for name in notebooks:
        path = Path(course.path(course.coursedir.source_directory, ".", assignment)) / (
            name + ".ipynb"
        )
        if path.exists():
            sources[name] = json.loads(path.read_text(encoding="utf-8"))
    results: list[SubmissionResult] = []
    pending: list[tuple[str, str]] = []
    for s in todo:
        digest = f"{submission_digest(course, assignment, s)}:{reg.digest[:16]}"
        if not force and is_done(course, assignment, s, digest):
            results.append(SubmissionResult(s, skipped=True))
        else:
            pending.append((s, digest))
    bar = Progress(len(pending), progress)
    if pending:
        bundle = make_bundle(course, assignment, reg.snapshot, reg.digest)
        with (
            shared_gradebook(course.db_url, course.coursedir.course_id) as gb,
            open_backend(scheduler, jobs=jobs) as backend,
        ):
            log.write(f"grading {len(pending)} submissions of {assignment} on "
                      f"{backend.description}\n")
            log.flush()
            handle = backend.put(bundle)
            meta: dict[str, tuple[str, list[str], float]] = {}
            tasks = []
            coordinator = [0.0]  # seconds the coordinator spent reading and saving
            t_read = time.perf_counter()
            for s, digest in pending:
                task, notes = read_submission_task(course, assignment, s, notebooks, sources)
                meta[s] = (digest, notes, time.monotonic())
                tasks.append((s, (handle, task)))
            coordinator[0] += time.perf_counter() - t_read

            def finish(res: SubmissionResult) -> None:
                res.seconds = time.monotonic() - meta[res.student][2]
                results.append(res)
                if on_graded is not None:
                    on_graded(res)
                last = (f"{res.student}: ERROR" if res.error
                        else f"{res.student}: {res.score:g}/{res.max_score:g}")
                bar.step(last)

            def saved(key: Any, executed: Any) -> None:
                digest, notes, _ = meta[key]
                t_save = time.perf_counter()
                try:
                    res = save_submission(course, gb, assignment, key, executed, digest, notes)
                except Exception as exc:  # a grader failure on one submission never stops the rest
                    gb.db.rollback()
                    res = SubmissionResult(key, error=f"{type(exc).__name__}: {exc}")
                coordinator[0] += time.perf_counter() - t_save
                finish(res)

            def failed(key: Any, exc: BaseException) -> None:
                finish(SubmissionResult(
                    key, error=f"grading infrastructure failed repeatedly: "
                    f"{type(exc).__name__}: {exc}"))

            # By its importable name: under `python -m` this module is __main__, which a remote
            # worker cannot import.
            from course_lib.grading.batch import grade_one as task_function

            try:
                run_tasks(backend, task_function, tasks, saved, failed,
                          retries=DEFAULT_RETRIES if retries is None else retries)
            except KeyboardInterrupt:
                # Ctrl-C: cancel what has not started and stop the workers now (their sandboxes
                # die with them: bwrap --die-with-parent); a submission is marked done only after
                # its notebook and grades are saved, so the next run picks up where this one
                # stopped.
                gb.db.rollback()
                backend.abort()
                raise
            log.write(f"coordinator time (reading and saving): "
                      f"{1000 * coordinator[0] / len(pending):.0f} ms per submission\n")
    bar.close()
    scores = gradebook_scores(course, assignment, [r.student for r in results])
    for r in results:
        if r.student in scores and not r.error:
            r.score, r.max_score, r.manual_pending = scores[r.student]
    results.sort(key=lambda r: r.student)
    return results


@contextmanager
def _quiet_sqlalchemy() -> Iterator[None]:
    """Silence the SAWarnings nbgrader's own gradebook code emits when creating submissions."""
    import warnings

    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        yield


def merge_course(assignment: str, course_dir: str, other_dir: str) -> list[str]:
    """Bring the graded submissions of ``assignment`` from another course copy into this one.

    For splitting a large class across machines: each machine grades a share of the students
    in its own copy of the course; this copies each graded submission's gradebook rows (scores,
    comments, late penalty, timestamp), its ``autograded/`` folder and its grading record into
    ``course_dir``. Submissions are disjoint between machines; a student present in both is
    overwritten by ``other_dir``'s. Returns the merged student ids.
    """
    from nbgrader.api import Gradebook

    course, other = Course(course_dir), Course(other_dir)
    merged: list[str] = []
    with (
        _quiet_sqlalchemy(),
        Gradebook(other.db_url, other.coursedir.course_id) as src,
        Gradebook(course.db_url, course.coursedir.course_id) as dst,
    ):
        for sub in src.assignment_submissions(assignment):
            sid = sub.student.id
            dst.update_or_create_student(sid)
            dst.update_or_create_submission(assignment, sid, timestamp=sub.timestamp)
            for nb in sub.notebooks:
                for grade in nb.grades:
                    d = dst.find_grade(grade.name, nb.name, assignment, sid)
                    d.auto_score, d.manual_score = grade.auto_score, grade.manual_score
                    d.extra_credit = grade.extra_credit
                    d.needs_manual_grade = grade.needs_manual_grade
                for comment in nb.comments:
                    c = dst.find_comment(comment.name, nb.name, assignment, sid)
                    c.auto_comment, c.manual_comment = comment.auto_comment, comment.manual_comment
                dnb = dst.find_submission_notebook(nb.name, assignment, sid)
                dnb.late_submission_penalty = nb.late_submission_penalty
            dst.db.commit()
            for step in (course.coursedir.autograded_directory,):
                a, b = other.path(step, sid, assignment), course.path(step, sid, assignment)
                if os.path.isdir(a):
                    shutil.rmtree(b, ignore_errors=True)
                    shutil.copytree(a, b)
            a = os.path.join(other.settings.record_directory, assignment, sid)
            b = os.path.join(course.settings.record_directory, assignment, sid)
            if os.path.isdir(a):
                shutil.rmtree(b, ignore_errors=True)
                shutil.copytree(a, b)
            merged.append(sid)
    return merged


def format_table(results: Sequence[SubmissionResult], width: int = 110) -> str:
    """The grade table: score, points awaiting manual grading, and every note, wrapped."""
    import textwrap

    name_w = max([7, *(len(r.student) for r in results)]) + 1
    head = f"{'student':{name_w}s} {'score':>11s} {'manual':>7s}  notes"
    indent = " " * (name_w + 1 + 11 + 1 + 7 + 2)
    rows = [head]
    for r in results:
        score = "ERROR" if r.error else f"{r.score:g}/{r.max_score:g}"
        manual = f"{r.manual_pending:g}" if r.manual_pending else ""
        if r.error:
            notes = [r.error]
        elif r.skipped:
            notes = ["(already graded, unchanged)"]
        else:
            notes = list(r.reasons)
        lines: list[str] = []
        for note in notes:
            lines.extend(textwrap.wrap(note, max(40, width - len(indent)),
                                       subsequent_indent="  ", break_long_words=False,
                                       break_on_hyphens=False) or [""])
        first = lines[0] if lines else ""
        rows.append(f"{r.student:{name_w}s} {score:>11s} {manual:>7s}  {first}".rstrip())
        rows.extend(indent + line for line in lines[1:])
    if any(r.manual_pending for r in results):
        rows.append("(manual: points of written answers awaiting grading in the formgrader; "
                    "the score counts them as 0 until then)")
    return "\n".join(rows)


def stale_feedback(course: Course, assignment: str, students: Sequence[str]) -> list[str]:
    """Students whose feedback files are older than their grade (``generate_feedback`` skips)."""
    out = []
    for s in students:
        fb = course.path(course.coursedir.feedback_directory, s, assignment)
        graded = course.path(course.coursedir.autograded_directory, s, assignment)
        if os.path.isdir(fb) and os.path.isdir(graded):
            newest = max((os.path.getmtime(os.path.join(graded, f)) for f in os.listdir(graded)),
                         default=0.0)
            oldest_fb = min((os.path.getmtime(os.path.join(fb, f)) for f in os.listdir(fb)),
                            default=0.0)
            if oldest_fb < newest:
                out.append(s)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line. Exit status: 0 graded, 1 a grader error somewhere, 2 a bad request."""
    p = argparse.ArgumentParser(prog="python -m course_lib.grading.batch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignment", nargs="?", help="assignment id, e.g. ps2_initializers")
    p.add_argument("--course", default=".", help="nbgrader course root (default: .)")
    p.add_argument("--jobs", "-j", type=int, default=None, help="local worker processes (cores)")
    p.add_argument("--force", action="store_true", help="regrade already graded submissions")
    p.add_argument("--student", action="append", default=None, help="grade only this student")
    p.add_argument(
        "--scheduler", default=None, metavar="tcp://HOST:PORT",
        help="grade on this Dask cluster (default: $DASK_SCHEDULER_ADDRESS, else local cores)",
    )
    p.add_argument(
        "--merge",
        action="append",
        default=None,
        metavar="OTHER_COURSE",
        help="instead of grading, merge the grades another machine's course copy holds",
    )
    p.add_argument(
        "--unsafe-no-isolation",
        action="store_true",
        help="grade WITHOUT bubblewrap isolation (student code can then read and write "
        "everything you can); stated in the table and in every grade record",
    )
    args = p.parse_args(argv)
    if args.unsafe_no_isolation:
        os.environ[UNSAFE_ENV] = "1"  # read by Limits.from_config, here and in the workers
    if not args.assignment:
        p.error("give the assignment, e.g. `make grade A=ps2_initializers`")
    if args.merge:
        for other in args.merge:
            ids = merge_course(args.assignment, args.course, other)
            print(f"merged {len(ids)} submissions of {args.assignment} from {other}")
        return 0
    t0 = time.monotonic()
    try:
        results = grade_assignment(
            args.assignment, args.course, jobs=args.jobs, force=args.force,
            students=args.student, scheduler=args.scheduler,
        )
    except (GradingError, IsolationUnavailable, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: every finished submission is saved; run the same command again "
              "to grade the rest", file=sys.stderr)
        return 130
    if Course(args.course).limits.isolate is False:
        print("UNSAFE: graded WITHOUT isolation (--unsafe-no-isolation): student code could "
              "read and write this machine as you.")
    print(format_table(results))
    graded = [r for r in results if not r.skipped]
    print(
        f"\n{len(graded)} graded, {len(results) - len(graded)} unchanged, "
        f"{sum(r.error is not None for r in results)} grader errors, "
        f"{time.monotonic() - t0:.1f} s",
    )
    stale = stale_feedback(Course(args.course), args.assignment,
                           [r.student for r in graded if not r.error])
    if stale:
        print(f"feedback of {len(stale)} regraded students is out of date "
              f"({', '.join(stale[:5])}{', ...' if len(stale) > 5 else ''}): "
              f"run `make feedback A={args.assignment}` to regenerate it")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
