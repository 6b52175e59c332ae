"""Grade every hostile case once per test session, both ways, and keep what happened.

One scratch course with one submission per case (:mod:`.cases`) is copied twice:

* ``sequential``: graded by ONE ``nbgrader autograde`` batch (the shipped nbgrader_config.py);
* ``parallel``: graded by ``python -m course_lib.grading.batch``, which is SIGKILLed after a few
  submissions (a crash), re-run to completion, then run a third time (nothing left to do).

The tests in test_grading_hostile.py and test_grading_batch.py only read the result.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from . import cases, course

KILL_AFTER = 5


@dataclass
class Graded:
    seq: Path
    par: Path
    fresh: Path
    nbgrader: subprocess.CompletedProcess[str]
    after_nbgrader: dict[str, dict[str, float | None]]
    after_crash: dict[str, dict[str, float | None]]
    graded_before_crash: int
    rerun: subprocess.CompletedProcess[str]
    again: subprocess.CompletedProcess[str]
    scores_after_rerun: dict[str, dict[str, float | None]]
    points: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)
    connections: list[bytes] = field(default_factory=list)
    trees_before: dict[str, str] = field(default_factory=dict)
    trees_after: dict[str, str] = field(default_factory=dict)
    stray_files: list[str] = field(default_factory=list)
    interrupted: dict[str, Any] = field(default_factory=dict)


_CACHE: dict[str, Graded] = {}


def _batch(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "course_lib.grading.batch", cases.ASSIGNMENT, "--course", str(root),
         *extra],
        env=course.env(), capture_output=True, text=True, check=False,
    )


def _descendants(pid: int) -> dict[int, str]:
    """``{pid: start time}`` of every process below ``pid`` (from /proc)."""
    parent: dict[int, int] = {}
    start: dict[int, str] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d)] = int(fields[1])
        start[int(d)] = fields[19]
    out: dict[int, str] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in out:
                out[c] = start[c]
                todo.append(c)
    return out


def _alive(procs: dict[int, str]) -> list[int]:
    """The processes of ``procs`` still running (same pid and start time, not a zombie)."""
    out = []
    for pid, st in procs.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[19] == st and fields[0] != "Z":
            out.append(pid)
    return out


def _interrupted_batch(root: Path, after: int) -> dict[str, Any]:
    """Start the batch grader and press Ctrl-C (SIGINT to its process group) after ``after``
    more submissions; report which of its processes outlived it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_lib.grading.batch", cases.ASSIGNMENT, "--course", str(root)],
        env=course.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    seen: dict[int, str] = {}
    done = 0
    with proc.stderr:
        for line in proc.stderr:
            seen.update(_descendants(proc.pid))
            m = re.search(r"\] (\d+)/\d+ ", line)
            if m:
                done = int(m.group(1))
                if done >= after:
                    seen.update(_descendants(proc.pid))
                    os.killpg(proc.pid, signal.SIGINT)
                    break
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait()
    time.sleep(1.0)
    return {"returncode": code, "graded": done, "processes": len(seen),
            "left": _alive(seen)}


def tree_digest(root: Path) -> str:
    """SHA-256 over the course's own files (config, source, release, submissions)."""
    import hashlib

    h = hashlib.sha256()
    for part in ("nbgrader_config.py", "solutions", "release", "exercises", "submitted"):
        base = root / part
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for f in files:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


class _Listener:
    """A TCP listener on 127.0.0.1 that records every connection it receives."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append(b"connected:" + conn.recv(100))
                except OSError:
                    self.received.append(b"connected")

    def close(self) -> list[bytes]:
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()
        return self.received


def _crashing_batch(root: Path) -> int:
    """Start the batch grader and SIGKILL it (and its workers) after KILL_AFTER submissions."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_lib.grading.batch", cases.ASSIGNMENT, "--course", str(root)],
        env=course.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    done = 0
    with proc.stderr:
        for line in proc.stderr:
            m = re.search(r"\] (\d+)/\d+ ", line)
            if m:
                done = int(m.group(1))
                if done >= KILL_AFTER:
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
    proc.wait()
    return done


def only_tests(scores: dict[str, float | None]) -> dict[str, float | None]:
    return {k: v for k, v in scores.items() if k.startswith("test_")}


def graded(tmp_root: Path) -> Graded:
    """Build, grade and crash-grade the hostile course once per process."""
    if "g" in _CACHE:
        return _CACHE["g"]
    t: dict[str, float] = {}
    source = course.REPO / "solutions" / cases.ASSIGNMENT / f"{cases.NOTEBOOK}.ipynb"
    seq, par = tmp_root / "sequential", tmp_root / "parallel"
    fresh = tmp_root / "fresh"
    listener = _Listener()
    token = f"{os.getpid()}_{time.time_ns()}"
    cases.ENV.update(roots=[str(seq), str(par), str(fresh)], port=listener.port,
                     home=str(Path.home()), token=token, repo=str(course.REPO),
                     grader_pid=os.getpid())
    t0 = time.perf_counter()
    course.make_course(seq, cases.ASSIGNMENT, source, timeout=10, memory_mb=1024)
    release = course.release(seq, cases.ASSIGNMENT, cases.NOTEBOOK)
    answers = cases.solution_answers(nbformat.read(source, as_version=4))
    for case in cases.ALL:
        course.submit(seq, case.name, cases.ASSIGNMENT, cases.NOTEBOOK,
                      case.build(release, answers))
    shutil.copytree(seq, par)
    shutil.copytree(seq, tmp_root / "fresh")  # ungraded, for the merge test
    cfg = tmp_root / "fresh" / "nbgrader_config.py"
    cfg.write_text(cfg.read_text().replace(repr(str(seq)), repr(str(tmp_root / "fresh"))))
    cfg = par / "nbgrader_config.py"
    cfg.write_text(cfg.read_text().replace(repr(str(seq)), repr(str(par))))
    trees_before = {r.name: tree_digest(r) for r in (seq, par, fresh)}
    t["setup"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    nbg = course.run(seq, "autograde", cases.ASSIGNMENT, check=False)
    t["nbgrader"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    before = _crashing_batch(par)
    after_crash = course.scores(par, cases.ASSIGNMENT)
    interrupted = _interrupted_batch(par, after=3)
    interrupted["scores"] = course.scores(par, cases.ASSIGNMENT)
    rerun = _batch(par)
    t["batch"] = time.perf_counter() - t0
    scores_after_rerun = course.scores(par, cases.ASSIGNMENT)
    t0 = time.perf_counter()
    again = _batch(par)
    t["batch_again"] = time.perf_counter() - t0
    g = Graded(
        seq=seq, par=par, fresh=tmp_root / "fresh", nbgrader=nbg,
        after_nbgrader=course.scores(seq, cases.ASSIGNMENT),
        after_crash=after_crash, graded_before_crash=before,
        rerun=rerun, again=again, scores_after_rerun=scores_after_rerun,
        points=course.max_points(seq, cases.ASSIGNMENT), seconds=t,
        connections=listener.close(), trees_before=trees_before,
        trees_after={r.name: tree_digest(r) for r in (seq, par, fresh)},
        stray_files=[p for p in (f"{Path.home()}/pwned_{token}", f"/tmp/pwned_{token}")
                     if os.path.exists(p)],
        interrupted=interrupted,
    )
    _CACHE["g"] = g
    return g


def check_case(g: Graded, case: cases.Case) -> None:
    """Both roads (nbgrader autograde, the batch grader) give ``case`` exactly its expected
    per-cell scores, and its autograded notebook shows what it did, in both courses."""
    expected = cases.expected_scores(case, g.points)
    assert g.nbgrader.returncode == 0, g.nbgrader.stderr[-3000:]
    assert g.rerun.returncode == 0, g.rerun.stderr[-3000:]
    nbgrader = only_tests(g.after_nbgrader[case.name])
    batch = only_tests(g.scores_after_rerun[case.name])
    assert nbgrader == expected, f"nbgrader autograde, {case.why}"
    assert batch == expected, f"batch grader, {case.why}"
    for root in (g.seq, g.par):
        assert case.shows in autograded_text(root, case.name), (root.name, case.shows)


def autograded_text(root: Path, student: str) -> str:
    """Everything the instructor sees in a student's autograded notebook (sources, outputs)."""
    path = root / "autograded" / student / cases.ASSIGNMENT / f"{cases.NOTEBOOK}.ipynb"
    nb: Any = nbformat.read(path, as_version=4)
    parts = []
    for cell in nb.cells:
        parts.append(cell.source)
        for out in cell.get("outputs", []):
            parts.append(str(out.get("text", "")))
            parts.append(f"{out.get('ename', '')}: {out.get('evalue', '')}")
    return "\n".join(parts)
