"""Grading beyond one machine: the same tasks on a local pool and on a real Dask cluster.

A real ``dask scheduler`` and two ``dask worker`` processes (``--nworkers 1 --nthreads 1``) run
on the loopback interface for this module only, and are always torn down. The same submissions
are graded by the local process pool and by the cluster, with identical grades required for
every cell; then one worker is killed in the middle of a run and every grade must still arrive.
The retry rules of :func:`course_lib.grading.cluster.run_tasks` are tested on their own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from instructor_course import A, put, run_batch, write_course

from course_lib.grading import cluster, demo

N_STUDENTS = 6
START_TIMEOUT = 120.0  # seconds for the scheduler and workers to come up on a loaded machine


def scores(root: Path) -> dict[str, dict[str, float | None]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {
            sub.student.id: {g.name: g.auto_score for nb in sub.notebooks for g in nb.grades}
            for sub in gb.assignment_submissions(A)
        }


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("dask")
    env = demo.tool_env({"OPENBLAS_NUM_THREADS": "1", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"})
    bindir = Path(sys.executable).parent
    sched_file = base / "scheduler.json"
    common = {"env": env, "cwd": base, "start_new_session": True,
              "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        scheduler = subprocess.Popen(
            [str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(sched_file)],
            **common,
        )
        procs.append(scheduler)
        deadline = time.monotonic() + START_TIMEOUT
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for i in range(2):
            procs.append(subprocess.Popen(
                [str(bindir / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}",
                 "--death-timeout", "60"],
                **common,
            ))
        from distributed import Client

        with Client(address, timeout=START_TIMEOUT) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT)
        yield Cluster(address, scheduler, procs[1:])
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registered course with submissions: half correct, half with the book's mistakes."""
    root = write_course(tmp_path_factory.mktemp("cluster") / "course")
    ref = demo.solution_answers(A)
    for i in range(N_STUDENTS):
        answers = ref if i % 2 == 0 else {**ref, **demo.MISTAKES[A]}
        put(root, f"s{i}", "initializers.ipynb", demo.submission(root, A, answers))
    return root


@pytest.fixture(scope="module")
def local(course: Path) -> dict[str, dict[str, float | None]]:
    proc = run_batch(course, A, "--jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on a local process pool of 2 workers" in proc.stderr
    got = scores(course)
    assert len(got) == N_STUDENTS
    assert len({sum(v or 0 for v in s.values()) for s in got.values()}) == 2  # not all alike
    return got


def _copy(course: Path, dest: Path) -> Path:
    """A copy of the course before grading (registration kept, grades and records dropped)."""
    shutil.copytree(course, dest, ignore=shutil.ignore_patterns("autograded", "feedback"))
    cfg = dest / "nbgrader_config.py"
    cfg.write_text(cfg.read_text().replace(repr(str(course)), repr(str(dest))))
    shutil.rmtree(dest / ".grading" / "records", ignore_errors=True)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{dest / 'gradebook.db'}") as gb:
        for s in list(gb.students):
            gb.remove_student(s.id)
    return dest


@pytest.mark.slow
def test_dask_cluster_gives_the_local_grades(
    course: Path, local: dict[str, dict[str, float | None]], dask_cluster: Cluster,
    tmp_path: Path,
) -> None:
    other = _copy(course, tmp_path / "on_dask")
    assert scores(other) == {}
    proc = run_batch(other, A, "--scheduler", dask_cluster.address)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"on the Dask cluster at {dask_cluster.address} (2 workers, 2 threads)" in proc.stderr
    assert "registered" not in proc.stderr  # the copy's registration was reused
    assert scores(other) == local
    for s in local:
        assert (other / "autograded" / s / A / "initializers.ipynb").exists()


@pytest.mark.slow
def test_killed_worker_costs_no_grade(
    course: Path, local: dict[str, dict[str, float | None]], dask_cluster: Cluster,
    tmp_path: Path,
) -> None:
    other = _copy(course, tmp_path / "killed")
    env = {**demo.tool_env(), "DASK_SCHEDULER_ADDRESS": dask_cluster.address}
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_lib.grading.batch", A, "--course", str(other)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stderr is not None
    seen = ""
    victim = dask_cluster.workers[0]
    for line in proc.stderr:  # kill one worker as soon as the first grade is in
        seen += line
        if re.search(r"\] 1/\d+", line):
            os.killpg(victim.pid, signal.SIGKILL)
            break
    assert victim.poll() is not None or victim.wait(timeout=30) is not None
    out, err = proc.communicate(timeout=600)
    err = seen + err
    assert proc.returncode == 0, err[-3000:]
    assert "Dask cluster" in err
    assert f"{N_STUDENTS} graded, 0 unchanged, 0 grader errors" in out
    assert scores(other) == local


# --- the retry rules, on the local pool (fast) -------------------------------------------------


def _flaky(marker: str, value: int) -> int:
    """Fails (as an infrastructure failure would) the first time, then succeeds."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise ConnectionError("lost the connection to the worker")
    return value


def _dies_once(marker: str, value: int) -> int:
    """Kills its worker process the first time (a lost worker), then succeeds."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(9)
    return value


def _student_crash(value: int) -> dict[str, object]:
    """A student's crash is a result: returned, never raised."""
    return {"value": value, "reasons": ["the code died in cell 3 (exit status 1)"]}


@pytest.mark.slow
def test_infrastructure_failures_retry_and_student_crashes_do_not(tmp_path: Path) -> None:
    got: dict[object, object] = {}
    failed: dict[object, BaseException] = {}
    with cluster.open_backend(None, jobs=2) as backend:
        assert backend.description == "a local process pool of 2 workers"
        attempts = cluster.run_tasks(
            backend, _flaky, [("a", (str(tmp_path / "a"), 1)), ("b", (str(tmp_path / "b"), 2))],
            got.__setitem__, failed.__setitem__,
        )
        assert got == {"a": 1, "b": 2} and attempts == {"a": 2, "b": 2} and not failed
        attempts = cluster.run_tasks(
            backend, _dies_once, [("c", (str(tmp_path / "c"), 3))],
            got.__setitem__, failed.__setitem__,
        )
        assert got["c"] == 3 and attempts["c"] == 2  # the broken pool was rebuilt
        attempts = cluster.run_tasks(
            backend, _student_crash, [("d", (4,))], got.__setitem__, failed.__setitem__,
        )
        assert attempts == {"d": 1} and got["d"] == {
            "value": 4, "reasons": ["the code died in cell 3 (exit status 1)"]}
        attempts = cluster.run_tasks(
            backend, _flaky, [("e", (str(tmp_path / "missing" / "e"), 5))],
            got.__setitem__, failed.__setitem__, retries=2,
        )
        assert attempts == {"e": 3} and isinstance(failed["e"], FileNotFoundError)


def test_scheduler_address_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert cluster.scheduler_address(None) is None
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.5:8786")
    assert cluster.scheduler_address(None) == "tcp://10.0.0.5:8786"
    assert cluster.scheduler_address("tcp://h:1") == "tcp://h:1"


def test_unreachable_scheduler_is_a_short_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        cluster.open_backend("tcp://127.0.0.1:9", timeout=2)
