"""Grade a whole class on all cores: ``make grade A=<assignment>``.

``python -m course_lib.grading.batch ASSIGNMENT [--course DIR] [--jobs N] [--force]
[--student ID ...]`` autogrades every submission in the nbgrader course's ``submitted/``
directory and writes the grades into nbgrader's gradebook, so ``nbgrader export``,
``formgrader`` and ``generate_feedback`` keep working. ``--merge OTHER_COURSE`` brings in
the grades another machine's copy of the course holds (a class split across machines).

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
import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
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


# --------------------------------------------------------------------------- course set-up


class Course:
    """The nbgrader course directory, its configuration and the grading settings."""

    def __init__(self, root: str) -> None:
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config import Config
        from traitlets.config.loader import PyFileConfigLoader

        root = os.path.abspath(root)
        cfg = Config()
        path = os.path.join(root, "nbgrader_config.py")
        if os.path.exists(path):
            old = os.getcwd()
            os.chdir(root)  # the config may use paths relative to the course
            try:
                cfg = PyFileConfigLoader("nbgrader_config.py", path=root).load_config()
            finally:
                os.chdir(old)
        self.config = cfg
        coursedir = CourseDirectory(config=cfg)
        coursedir.root = os.path.normpath(os.path.join(root, coursedir.root))
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
    """A handle on the shared gradebook that nbgrader's preprocessors may open and close."""

    def __init__(self, gb: Any) -> None:
        self._gb = gb

    def __enter__(self) -> Any:
        return self._gb

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        if name == "db":
            return _DeferredCommit(self._gb.db)
        return getattr(self._gb, name)


class _DeferredCommit:
    """A session whose ``commit`` waits for the end of the submission (one commit, not 20)."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def commit(self) -> None:
        self._session.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


@contextmanager
def shared_gradebook(db_url: str, course_id: str) -> Iterator[Any]:
    """One gradebook connection for the whole run, lent to nbgrader's own preprocessors.

    ``OverwriteCells``, ``SaveAutoGrades`` and ``AssignLatePenalties`` each open (and set up)
    a new ``Gradebook`` per notebook and commit after every cell, which costs more than grading
    it; while this context is active, the ones in this process get the shared connection, and
    their commits are deferred to the caller's ``gb.db.commit()`` (one per submission, so a
    submission's grades land all together or not at all).
    """
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import latesubmissions, overwritecells, saveautogrades

    modules = (latesubmissions, overwritecells, saveautogrades)
    gb = Gradebook(db_url, course_id)
    saved = [m.Gradebook for m in modules]
    for m in modules:
        setattr(m, "Gradebook", lambda *args, **kw: _Borrowed(gb))  # noqa: B010
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


_WORKER: dict[str, Any] = {}


def _init_worker(course_root: str) -> None:
    """Worker process set-up: the course and a read-only gradebook connection, once."""
    course = Course(course_root)
    ctx = shared_gradebook(course.db_url, course.coursedir.course_id)
    gb = ctx.__enter__()  # kept open for the life of the worker process
    _WORKER.update(course=course, ctx=ctx, gb=gb)


def _work(
    assignment: str, student: str, notebooks: tuple[str, ...]
) -> list[tuple[str, dict[str, Any] | None, list[str], dict[str, Any]]]:
    """Sanitise (read-only gradebook), execute and judge one submission in a worker process."""
    try:
        job = prepare(_WORKER["course"], assignment, student, notebooks)
    finally:
        # End the read transaction: an open one would block the main process's commits.
        _WORKER["gb"].db.rollback()
    return execute_job(job)


def save_submission(
    course: Course,
    gb: Any,
    assignment: str,
    student: str,
    executed: Sequence[tuple[str, dict[str, Any] | None, list[str], dict[str, Any]]],
    digest: str,
) -> SubmissionResult:
    """Write one graded submission: gradebook (committed), autograded notebook, record, marker.

    Runs in the main process with the shared gradebook (see :func:`shared_gradebook`).
    """
    from course_lib.grading.nbgrader_ext import _nbf, write_record

    result = SubmissionResult(student)
    dest = course.path(course.coursedir.autograded_directory, student, assignment)
    src = course.path(course.coursedir.submitted_directory, student, assignment)
    timestamp = course.coursedir.get_existing_timestamp(src)
    gb.update_or_create_student(student)
    if timestamp:
        gb.update_or_create_submission(assignment, student, timestamp=timestamp)
    else:
        gb.update_or_create_submission(assignment, student)
    for name, nb_json, reasons, verdicts in executed:
        result.reasons.extend(reasons)
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
            os.makedirs(dest, exist_ok=True)
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


def grade_assignment(
    assignment: str,
    course_dir: str = ".",
    *,
    jobs: int | None = None,
    force: bool = False,
    students: Sequence[str] | None = None,
    progress: IO[str] | None = None,
    on_graded: Callable[[SubmissionResult], None] | None = None,
) -> list[SubmissionResult]:
    """Autograde every submission of ``assignment`` in parallel; return one result each.

    Parameters
    ----------
    assignment : str
        nbgrader assignment id (its notebooks must be in the gradebook:
        ``nbgrader generate_assignment`` or ``nbgrader db assignment add``).
    course_dir : str
        The nbgrader course root (holding ``nbgrader_config.py`` and ``submitted/``).
    jobs : int, optional
        Submissions graded at once; default: the number of CPU cores.
    force : bool
        Regrade submissions that an earlier run already graded.
    students : sequence of str, optional
        Grade only these students.
    progress : text stream, optional
        Where the progress bar goes (default stderr).
    on_graded : callable, optional
        Called with each result right after it is committed.
    """
    course = Course(course_dir)
    check_isolation(course.limits)  # refuse, with the fix, before any student code runs
    notebooks = course.notebooks(assignment)
    todo = list(students) if students else course.students(assignment)
    jobs = jobs or os.cpu_count() or 1
    results: list[SubmissionResult] = []
    pending: list[tuple[str, str]] = []
    for s in todo:
        digest = submission_digest(course, assignment, s)
        if not force and is_done(course, assignment, s, digest):
            with open(_marker(course, assignment, s), encoding="utf-8") as fh:
                done = json.load(fh)
            score, top = done.get("score", 0.0), done.get("max_score", 0.0)
            results.append(SubmissionResult(s, score, top, skipped=True))
        else:
            pending.append((s, digest))
    bar = Progress(len(pending), progress)
    ctx = multiprocessing.get_context("spawn")  # workers never inherit the gradebook connection
    with (
        shared_gradebook(course.db_url, course.coursedir.course_id) as gb,
        cf.ProcessPoolExecutor(
            max_workers=jobs, mp_context=ctx, initializer=_init_worker, initargs=(course.root,)
        ) as pool,
    ):
        futures: dict[cf.Future[Any], tuple[str, str, float]] = {}
        for s, digest in pending:
            fut = pool.submit(_work, assignment, s, tuple(notebooks))
            futures[fut] = (s, digest, time.monotonic())
        try:
            for fut in cf.as_completed(futures):
                s, digest, t0 = futures[fut]
                try:
                    res = save_submission(course, gb, assignment, s, fut.result(), digest)
                except Exception as exc:  # a grader failure on one submission never stops the rest
                    gb.db.rollback()
                    res = SubmissionResult(s, error=f"{type(exc).__name__}: {exc}")
                res.seconds = time.monotonic() - t0
                results.append(res)
                if on_graded is not None:
                    on_graded(res)
                last = f"{s}: ERROR" if res.error else f"{s}: {res.score:g}/{res.max_score:g}"
                bar.step(last)
        except KeyboardInterrupt:
            # Ctrl-C: cancel what has not started and stop the workers now (their sandboxes die
            # with them: bwrap --die-with-parent); a submission is marked done only after its
            # notebook and grades are saved, so the next run picks up where this one stopped.
            gb.db.rollback()
            for fut in futures:
                fut.cancel()
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            raise
    bar.close()
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


def format_table(results: Sequence[SubmissionResult]) -> str:
    """The grade table with the readable reasons."""
    rows = [f"{'student':20s} {'score':>12s}  notes"]
    for r in results:
        score = "ERROR" if r.error else f"{r.score:g}/{r.max_score:g}"
        notes = r.error or ("(already graded, unchanged)" if r.skipped else "; ".join(r.reasons))
        rows.append(f"{r.student:20s} {score:>12s}  {notes[:300]}")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; exit status 1 only when the grader itself failed somewhere."""
    p = argparse.ArgumentParser(prog="python -m course_lib.grading.batch", description=__doc__)
    p.add_argument("assignment", nargs="?", help="assignment id, e.g. ps2_initializers")
    p.add_argument("--course", default=".", help="nbgrader course root (default: .)")
    p.add_argument("--jobs", "-j", type=int, default=None, help="parallel submissions (cores)")
    p.add_argument("--force", action="store_true", help="regrade already graded submissions")
    p.add_argument("--student", action="append", default=None, help="grade only this student")
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
            args.assignment, args.course, jobs=args.jobs, force=args.force, students=args.student
        )
    except IsolationUnavailable as exc:
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
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
