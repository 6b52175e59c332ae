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
2. Its code cells run in a fresh, resource-limited child process (an IPython shell, no Jupyter
   kernel, no ZMQ: about 0.3 s instead of nbgrader's kernel start-up), one cell at a time with
   nbgrader's per-cell timeout. A child that dies or overruns is restarted, the cells before
   are replayed, and grading goes on with the next cell, exactly as
   :class:`~course_lib.grading.nbgrader_ext.ResilientExecute` does inside ``nbgrader autograde``.
3. Hidden-test cells are judged outside any student process by the judge's runner
   (:func:`course_lib.grading.nbgrader_ext.judge_notebook`), the same call ``ResilientExecute``
   makes, so both paths give the same verdicts.
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
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

__all__ = [
    "BatchSettings",
    "Job",
    "SubmissionResult",
    "execute_cells",
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

# The child that runs a notebook's cells. It is started as ``python -c`` (so that, as in a
# Jupyter kernel, the working directory is on sys.path and course_lib is not imported), reads
# {"run": [[index, source], ...], "replay": [...]} on stdin and writes one JSON line per run cell
# on the file descriptor given as argv[1].
_CHILD = r"""
import io, json, os, sys
out = os.fdopen(int(sys.argv[1]), "w", buffering=1)
max_chars = int(sys.argv[2])
spec = json.loads(sys.stdin.read())
sys.stdin = io.StringIO("")
from traitlets.config import Config
from IPython.core.interactiveshell import InteractiveShell
cfg = Config()
cfg.HistoryManager.hist_file = ":memory:"
shell = InteractiveShell.instance(config=cfg)
shell.displayhook.write_output_prompt = lambda: None
shell.displayhook.write_format_data = lambda *a, **k: None
errors = []
def _tb(etype, evalue, stb):
    errors.append((getattr(etype, "__name__", str(etype)), str(evalue), list(stb)))
shell._showtraceback = _tb
class Cap(io.TextIOBase):
    def __init__(self, name, chunks):
        self.name, self.chunks = name, chunks
    def writable(self):
        return True
    def write(self, s):
        s = str(s)
        if s:
            self.chunks.append((self.name, s))
        return len(s)
    def flush(self):
        pass
real = sys.stdout, sys.stderr
def run(src):
    chunks, errors[:] = [], []
    sys.stdout, sys.stderr = Cap("stdout", chunks), Cap("stderr", chunks)
    try:
        res = shell.run_cell(src, store_history=True)
    finally:
        sys.stdout, sys.stderr = real
    outputs, used, cut = [], 0, False
    for name, text in chunks:
        if used >= max_chars:
            cut = True
            continue
        if used + len(text) > max_chars:
            text, cut = text[: max_chars - used], True
        used += len(text)
        if outputs and outputs[-1]["output_type"] == "stream" and outputs[-1]["name"] == name:
            outputs[-1]["text"] += text
        else:
            outputs.append({"output_type": "stream", "name": name, "text": text})
    if cut:
        note = "\n... output truncated after %d characters ...\n" % max_chars
        if outputs and outputs[-1]["name"] == "stdout":
            outputs[-1]["text"] += note
        else:
            outputs.append({"output_type": "stream", "name": "stdout", "text": note})
    if res.result is not None and not errors:
        try:
            data = shell.display_formatter.format(res.result)[0]
            text = str(data.get("text/plain", ""))[:max_chars]
        except BaseException as exc:
            text = "<unprintable %s>" % type(exc).__name__
        outputs.append({"output_type": "execute_result", "data": {"text/plain": text},
                        "execution_count": shell.execution_count - 1, "metadata": {}})
    for ename, evalue, stb in errors:
        outputs.append({"output_type": "error", "ename": ename, "evalue": evalue[:max_chars],
                        "traceback": [t[:max_chars] for t in stb[-100:]]})
    return outputs
for index, src in spec["replay"]:
    run(src)
out.write(json.dumps({"replayed": True}) + "\n")
for index, src in spec["run"]:
    outputs = run(src)
    out.write(json.dumps({"index": index, "outputs": outputs}) + "\n")
out.flush()
os._exit(0)
"""


@dataclass(frozen=True)
class BatchSettings:
    """Limits and locations shared with ``nbgrader autograde`` (read from nbgrader_config.py)."""

    timeout: float = 30.0
    memory_mb: int = 4096
    cpu_seconds: int = 600
    max_output_chars: int = 20_000
    record_directory: str = ".grading/records"
    max_restarts: int = 25


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

        from course_lib.grading.nbgrader_ext import LimitedKernelManager, ResilientExecute

        # The same traits, resolved the same way, as inside `nbgrader autograde`.
        execute = ResilientExecute(config=cfg)
        kernel = LimitedKernelManager(config=cfg)
        self.settings = BatchSettings(
            timeout=float(execute.timeout) if execute.timeout else 30.0,
            memory_mb=int(kernel.memory_limit_mb),
            cpu_seconds=int(kernel.cpu_limit_seconds),
            max_output_chars=int(execute.max_output_chars),
            record_directory=os.path.join(self.root, execute.record_directory),
            max_restarts=int(execute.max_restarts),
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


def _read_lines(
    stream: IO[bytes], buffer: bytearray, deadline: float
) -> tuple[list[bytes], bool, bool]:
    """Read complete lines until one arrives or the deadline passes: (lines, eof, timed_out)."""
    fd = stream.fileno()
    while True:
        if b"\n" in buffer:
            *lines, rest = bytes(buffer).split(b"\n")
            buffer[:] = rest
            return lines, False, False
        left = deadline - time.monotonic()
        if left <= 0:
            return [], False, True
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return [], True, False
            buffer.extend(chunk)
            if len(buffer) > 64 * 2**20:  # a child flooding the channel is treated as dead
                return [], True, False


def _child_env() -> dict[str, str]:
    from course_lib.grading.nbgrader_ext import limited_env

    env = limited_env()
    env.setdefault("MPLBACKEND", "Agg")
    env["NBGRADER_EXECUTION"] = "autograde"
    return env


def execute_cells(
    cells: Sequence[tuple[int, str]], cwd: str, settings: BatchSettings
) -> tuple[dict[int, list[dict[str, Any]]], list[str]]:
    """Run code cells in order in resource-limited children; survive deaths and overruns.

    Returns the outputs of every cell (by notebook index) and readable reasons for the
    instructor (which cell killed the child or timed out).
    """
    from course_lib.grading.nbgrader_ext import apply_limits, kernel_died_output, timeout_output

    results: dict[int, list[dict[str, Any]]] = {}
    reasons: list[str] = []
    replay: list[tuple[int, str]] = []
    pos = 0
    restarts = 0
    while pos < len(cells):
        todo = list(cells[pos:])
        failure: dict[str, Any] | None = None
        rfd, wfd = os.pipe()
        with tempfile.TemporaryFile() as errf:
            proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(wfd), str(settings.max_output_chars)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=errf,
                cwd=cwd,
                env=_child_env(),
                pass_fds=(wfd,),
                preexec_fn=lambda: apply_limits(settings.memory_mb, settings.cpu_seconds),
                start_new_session=True,
            )
            os.close(wfd)
            reader = os.fdopen(rfd, "rb", buffering=0)
            try:
                assert proc.stdin is not None
                try:
                    proc.stdin.write(json.dumps({"run": todo, "replay": replay}).encode())
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
                buffer = bytearray()
                # replay + start-up get the time of every replayed cell plus one timeout
                deadline = time.monotonic() + settings.timeout * (len(replay) + 1) + 30
                replayed = False
                while pos < len(cells):
                    lines, eof, timed_out = _read_lines(reader, buffer, deadline)
                    if timed_out or eof:
                        index = cells[pos][0]
                        if timed_out:
                            failure = dict(timeout_output(settings.timeout))
                            reasons.append(f"cell {index} timed out after {settings.timeout:g} s")
                        else:
                            try:
                                code: int | None = proc.wait(timeout=5)
                            except subprocess.TimeoutExpired:
                                code = None
                            detail = _exit_detail(code)
                            failure = dict(kernel_died_output(detail))
                            reasons.append(f"the code died in cell {index} ({detail})")
                        results[index] = [failure]
                        pos += 1
                        break
                    for line in lines:
                        try:
                            msg = json.loads(line)
                        except ValueError:
                            continue
                        if msg.get("replayed"):
                            replayed = True
                        elif replayed and msg.get("index") == cells[pos][0]:
                            results[cells[pos][0]] = list(msg.get("outputs", []))
                            replay.append(cells[pos])
                            pos += 1
                        deadline = time.monotonic() + settings.timeout
            finally:
                _kill_if(proc, True)
                proc.wait()
                reader.close()
        if failure is None:
            break
        restarts += 1
        if restarts > settings.max_restarts:
            for index, _ in cells[pos:]:
                results[index] = [
                    {
                        "output_type": "error",
                        "ename": "NotRun",
                        "evalue": "too many restarts; the cell was not run",
                        "traceback": [],
                    }
                ]
            reasons.append("too many restarts: the remaining cells were not run")
            break
    return results, reasons


def _kill_if(proc: subprocess.Popen[bytes], kill: bool) -> None:
    """Kill the child's whole session (student code may have forked grandchildren)."""
    if kill:
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            pass


def _exit_detail(code: int | None) -> str:
    import signal

    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


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


def _sanitizers() -> list[type]:
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearOutput,
        DeduplicateIds,
        OverwriteKernelspec,
    )

    from course_lib.grading.nbgrader_ext import RestoreCells

    return [ClearOutput, DeduplicateIds, OverwriteKernelspec, RestoreCells, CheckCellMetadata]


def _postprocessors() -> list[type]:
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        SaveAutoGrades,
    )

    from course_lib.grading.nbgrader_ext import LimitOutputChars

    return [
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutputChars,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]


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
        nb, _ = _run_preprocessors(course, _sanitizers(), nb, resources)
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

    The student's code runs only in the resource-limited children of :func:`execute_cells`
    and of the runner's sandbox; this process merely collects their outputs.
    """
    from course_lib.grading.nbgrader_ext import (
        _nbf,
        judge_notebook,
        plan_hidden_concerns,
        visible_test_outputs,
    )

    _copy_files(job)
    out: list[tuple[str, dict[str, Any] | None, list[str], dict[str, Any]]] = []
    for name, nb_json, why in job.notebooks:
        reasons = list(why)
        if nb_json is None:
            out.append((name, None, reasons, {}))
            continue
        nb = _nbf.from_dict(nb_json)
        hidden = plan_hidden_concerns(nb)  # credit, issue 14: (function, concern) per cell
        judgements = judge_notebook(nb, job.assignment,
                                    sorted({fn for fn, _ in hidden.values()}), name)
        cells = [
            (i, c.source)
            for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and i not in hidden
        ]
        outputs, died = execute_cells(cells, job.autograded, job.settings)
        reasons.extend(died)
        functions = sorted(judgements)
        count = 0
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            count += 1
            cell.execution_count = count
            if i in hidden:
                fn, concern = hidden[i]
                cell.outputs = judgements[fn].outputs(concern)
                continue
            cell.outputs = [_nbf.from_dict(o) for o in outputs.get(i, [])]
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):  # credit, issue 14: visible test points from the judge
                cell.outputs = visible_test_outputs(meta.get("grade_id", ""), cell.outputs,
                                                    judgements, functions)
            for o in cell.outputs:
                if o.get("output_type") == "error" and o.get("ename") not in (
                    "KernelDied",
                    "CellTimeoutError",
                ):
                    where = meta.get("grade_id") or f"cell {i}"
                    reasons.append(f"{where}: {o.ename}: {str(o.evalue)[:120]}")
        for f, j in judgements.items():
            if not j.passed:
                first = j.message.splitlines()[0] if j.message else ""
                reasons.append(f"hidden {f}: {first[:160]}")
        verdicts = {k: v.record for k, v in judgements.items()}
        out.append((name, json.loads(json.dumps(nb)), reasons, verdicts))
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
            nb, _ = _run_preprocessors(course, _postprocessors(), nb, resources)
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
                "verdicts": verdicts,
                "settings": course.settings.__dict__,
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
    args = p.parse_args(argv)
    if not args.assignment:
        p.error("give the assignment, e.g. `make grade A=ps2_initializers`")
    if args.merge:
        for other in args.merge:
            ids = merge_course(args.assignment, args.course, other)
            print(f"merged {len(ids)} submissions of {args.assignment} from {other}")
        return 0
    t0 = time.monotonic()
    results = grade_assignment(
        args.assignment, args.course, jobs=args.jobs, force=args.force, students=args.student
    )
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
