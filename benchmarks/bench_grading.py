"""Class-scale grading: sequential ``nbgrader autograde`` vs the parallel batch grader.

Builds a scratch nbgrader course outside the repository from
``solutions/ps2_initializers/initializers.ipynb`` with 50 submissions (half correct, half with
one initializer off by a factor) and grades three copies:

* ``nbgrader autograde`` as shipped upstream (stock ``Execute`` in a Jupyter kernel; the hidden
  cells call ``check_hidden``, which runs the judge in a subprocess): the baseline;
* ``nbgrader autograde`` with the course's ``nbgrader_config.py`` (the engine, one isolated child
  per notebook, sequential);
* ``python -m course_lib.grading.batch`` (``make grade``: the same engine on all cores).

Isolation (bubblewrap) is on in every run. It checks that the last two give identical grades and
prints wall and CPU seconds per submission and the ratios against the baseline, plus the cost of
isolation per submission (the same notebook through the engine with and without bubblewrap).

Every course starts registered, as an instructor's does: the build runs ``nbgrader
generate_assignment`` (which is what registers an assignment for ``nbgrader autograde``), and
for ``make grade`` also :func:`~course_lib.grading.release.ensure_registered`, which is what
``make release`` runs once per version of an assignment; its cost is printed on its own line.
CPU seconds are those of the finished child processes (``getrusage(RUSAGE_CHILDREN)``: the
grader, its workers, their sandboxes); the machine-wide busy time from ``/proc/stat`` over the
same interval is printed beside them as a cross-check (it also counts anything else running).

Usage: ``python benchmarks/bench_grading.py [--n 50] [--jobs N] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import nbformat  # noqa: E402
from hostile import cases, course  # noqa: E402

SOURCE = REPO / "solutions" / cases.ASSIGNMENT / f"{cases.NOTEBOOK}.ipynb"


def build(root: Path, n: int, source: Path) -> None:
    course.make_course(root, cases.ASSIGNMENT, source, timeout=30)
    rel = course.release(root, cases.ASSIGNMENT, cases.NOTEBOOK)
    answers = cases.solution_answers(nbformat.read(source, as_version=4))
    for i in range(n):
        if i % 2 == 0:
            nb = cases.fill(rel, answers)
        else:
            nb, _ = cases.mutant(rel, answers, seed=i)
        course.submit(root, f"s{i:03d}", cases.ASSIGNMENT, cases.NOTEBOOK, nb)


def _child_cpu() -> float:
    """CPU seconds (user + system) used so far by finished child processes."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _busy() -> float:
    """CPU seconds the whole machine has been busy (user, nice, system, irq, softirq)."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = fh.readline().split()
    return sum(int(fields[i]) for i in (1, 2, 3, 6, 7)) / os.sysconf("SC_CLK_TCK")


def register(root: Path) -> tuple[float, float]:
    """``make release``'s registration of the assignment in ``root``: wall and CPU seconds."""
    from course_lib.grading.release import ensure_registered

    t0, c0 = time.perf_counter(), _child_cpu() + time.process_time()
    reg = ensure_registered(root, cases.ASSIGNMENT)
    assert reg.registered_now
    return time.perf_counter() - t0, _child_cpu() + time.process_time() - c0


def clone(src: Path, dest: Path, extra: str = "") -> None:
    shutil.copytree(src, dest)
    cfg = dest / "nbgrader_config.py"
    cfg.write_text(cfg.read_text().replace(repr(str(src)), repr(str(dest))) + extra)


# nbgrader 0.9.6's own autograde steps (its defaults), but with the course's hidden-test restore.
STOCK = """
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, Execute, LimitOutput,
                                    SaveAutoGrades)
c.Autograde.autograde_preprocessors = [Execute, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.Execute.timeout = 180
"""


def isolation_cost(reps: int = 7) -> tuple[float, float, float, float]:
    """Median wall and CPU seconds of one submission through the engine, isolated and not."""
    import json
    import statistics

    from course_lib.grading.isolation import Limits
    from course_lib.grading.runner import grade_submission

    nb = json.loads(SOURCE.read_text())
    for c in nb["cells"]:
        c["source"] = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
    out = []
    for isolate in (True, False):
        walls, cpus = [], []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), _child_cpu()
            grade_submission(nb, cases.ASSIGNMENT, limits=Limits(isolate=isolate))
            walls.append(time.perf_counter() - t0)
            cpus.append(_child_cpu() - c0)
        out += [statistics.median(walls), statistics.median(cpus)]
    return out[0], out[1], out[2], out[3]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=50, help="number of submissions")
    p.add_argument("--jobs", type=int, default=None, help="batch grader's parallel jobs")
    p.add_argument("--keep", default=None, help="build the courses here and keep them")
    p.add_argument("--source", type=Path, default=SOURCE, help="the source (solution) notebook")
    args = p.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_grading_"))
    base.mkdir(parents=True, exist_ok=True)
    seq, par, stock = base / "sequential", base / "parallel", base / "stock"
    for d in (seq, par, stock):
        shutil.rmtree(d, ignore_errors=True)
    try:
        build(seq, args.n, args.source)
        clone(seq, par)
        clone(seq, stock, STOCK)
        t_reg, cpu_reg = register(par)
        load0 = os.getloadavg()[0]
        t0, c0, b0 = time.perf_counter(), _child_cpu(), _busy()
        proc0 = course.run(stock, "autograde", cases.ASSIGNMENT, check=False)
        t_stock, cpu_stock, busy_stock = (time.perf_counter() - t0, _child_cpu() - c0,
                                          _busy() - b0)
        t0, c0, b0 = time.perf_counter(), _child_cpu(), _busy()
        proc = course.run(seq, "autograde", cases.ASSIGNMENT, check=False)
        t_seq, cpu_seq, busy_seq = time.perf_counter() - t0, _child_cpu() - c0, _busy() - b0
        jobs = ["--jobs", str(args.jobs)] if args.jobs else []
        t0, c0, b0 = time.perf_counter(), _child_cpu(), _busy()
        batch = subprocess.run(
            [sys.executable, "-m", "course_lib.grading.batch", cases.ASSIGNMENT,
             "--course", str(par), *jobs],
            env=course.env(), capture_output=True, text=True, check=False,
        )
        t_par, cpu_par, busy_par = time.perf_counter() - t0, _child_cpu() - c0, _busy() - b0
        load1 = os.getloadavg()[0]
        a, b = course.scores(seq, cases.ASSIGNMENT), course.scores(par, cases.ASSIGNMENT)
        same = a == b and len(a) == args.n
        full = sum(sum(v or 0 for v in s.values()) for s in a.values())
        print(f"submissions: {args.n} ({(args.n + 1) // 2} correct, {args.n // 2} mutants); "
              f"cores: {os.cpu_count()}; total points awarded: {full:g}")
        print(f"load average (1 min) before/after: {load0:.1f} / {load1:.1f}")
        print(f"registration (make release, once per version of the assignment): "
              f"{t_reg:.1f} s wall, {cpu_reg:.1f} CPU-s; not part of the runs below")
        for label, t, cpu, busy, rc in [
            ("stock nbgrader autograde (kernel)  ", t_stock, cpu_stock, busy_stock,
             proc0.returncode),
            ("nbgrader autograde + engine (seq.) ", t_seq, cpu_seq, busy_seq, proc.returncode),
            ("make grade (batch, engine, all cores)", t_par, cpu_par, busy_par,
             batch.returncode),
        ]:
            print(f"{label}: {t:7.1f} s wall {t / args.n:6.2f} s/submission; "
                  f"{cpu:7.1f} CPU-s {cpu / args.n:5.2f} CPU-s/submission "
                  f"(machine busy {busy:6.1f} s); exit {rc}")
        print(f"make grade vs stock nbgrader autograde: throughput (wall) "
              f"{t_stock / t_par:.2f}x, CPU efficiency {cpu_stock / cpu_par:.2f}x")
        print(f"make grade counting the registration too: throughput (wall) "
              f"{t_stock / (t_par + t_reg):.2f}x, CPU efficiency "
              f"{cpu_stock / (cpu_par + cpu_reg):.2f}x")
        print(f"make grade vs nbgrader autograde with the engine: throughput (wall) "
              f"{t_seq / t_par:.2f}x, CPU efficiency {cpu_seq / cpu_par:.2f}x; "
              f"identical grades: {same}")
        wi, ci, wn, cn = isolation_cost()
        print(f"one submission through the engine, median of 7: isolated {wi:.2f} s wall "
              f"{ci:.2f} CPU-s; unisolated {wn:.2f} s wall {cn:.2f} CPU-s; isolation costs "
              f"{wi - wn:+.2f} s wall, {ci - cn:+.2f} CPU-s per submission")
        ok = proc0.returncode == 0 and proc.returncode == 0 and batch.returncode == 0
        return 0 if same and ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


# --- The 2-worker loopback Dask cluster beside the local pool (owner: instructor) -------------
#
# `python benchmarks/bench_grading.py --cluster [--n 20]` grades the same submissions with
# `make grade`'s local process pool (2 workers) and with a real `dask scheduler` plus two
# `dask worker --nworkers 1 --nthreads 1` processes on 127.0.0.1, checks the grades are identical,
# and prints the ratio and the scheduler's per-task overhead (no-op tasks through the same
# executor and retry loop). Both runs include the coordinator's work (reading, saving).


def _grade_with(root: Path, *extra: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "course_lib.grading.batch", cases.ASSIGNMENT,
         "--course", str(root), "--force", *extra],
        env=course.env(), capture_output=True, text=True, check=False,
    )
    return time.perf_counter() - t0, proc


def _noop(x: int) -> int:
    return x


def cluster_comparison(n: int, base: Path) -> int:
    """Local pool vs a 2-worker loopback Dask cluster on the same ``n`` submissions."""
    import json as _json
    import signal

    from course_lib.grading import cluster

    root = base / "cluster_course"
    shutil.rmtree(root, ignore_errors=True)
    build(root, n, SOURCE)
    _, warm = _grade_with(root, "--jobs", "2")  # registers the assignment, warms caches
    if warm.returncode != 0:
        print(warm.stderr[-3000:])
        return 1
    t_local, local = _grade_with(root, "--jobs", "2")
    grades_local = course.scores(root, cases.ASSIGNMENT)
    env = {**course.env(), "OPENBLAS_NUM_THREADS": "1"}
    bindir = Path(sys.executable).parent
    sched_file = base / "scheduler.json"
    sched_file.unlink(missing_ok=True)
    procs = []
    try:
        procs.append(subprocess.Popen(
            [str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(sched_file)],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        while not sched_file.exists():
            time.sleep(0.2)
        address = _json.loads(sched_file.read_text())["address"]
        for i in range(2):
            procs.append(subprocess.Popen(
                [str(bindir / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}"],
                env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address) as client:
            client.wait_for_workers(2, timeout=120)
        _grade_with(root, "--scheduler", address)  # warm the workers (imports, scratch course)
        t_dask, dask = _grade_with(root, "--scheduler", address)
        grades_dask = course.scores(root, cases.ASSIGNMENT)
        overhead = {}
        for label, addr in (("local pool", None), ("Dask cluster", address)):
            with cluster.open_backend(addr, jobs=2) as backend:
                m = 200
                cluster.run_tasks(backend, _noop, [(i, (i,)) for i in range(20)],
                                  lambda k, v: None, lambda k, e: None)  # warm
                t0 = time.perf_counter()
                cluster.run_tasks(backend, _noop, [(i, (i,)) for i in range(m)],
                                  lambda k, v: None, lambda k, e: None)
                overhead[label] = (time.perf_counter() - t0) / m
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
    same = grades_local == grades_dask and len(grades_local) == n
    print(f"submissions: {n}; cores: {os.cpu_count()}; load average (1 min): "
          f"{os.getloadavg()[0]:.1f}")
    print(f"local pool, 2 workers      : {t_local:7.1f} s wall {t_local / n:6.2f} s/submission "
          f"(exit {local.returncode})")
    print(f"Dask loopback, 2 workers   : {t_dask:7.1f} s wall {t_dask / n:6.2f} s/submission "
          f"(exit {dask.returncode})")
    print(f"ratio (local / Dask wall)  : {t_local / t_dask:.2f}x   identical grades: {same}")
    for label, sec in overhead.items():
        print(f"per-task overhead, {label:13s}: {1000 * sec:6.2f} ms (no-op task round trip)")
    for label, proc in (("local", local), ("Dask", dask)):
        for line in proc.stderr.splitlines():
            if line.startswith("coordinator time"):
                print(f"{label:5s} run, {line}")
    return 0 if same and local.returncode == 0 and dask.returncode == 0 else 1


if __name__ == "__main__":
    if "--cluster" in sys.argv:
        _p = argparse.ArgumentParser()
        _p.add_argument("--cluster", action="store_true")
        _p.add_argument("--n", type=int, default=20)
        _a = _p.parse_args()
        _base = Path(tempfile.mkdtemp(prefix="bench_cluster_"))
        try:
            sys.exit(cluster_comparison(_a.n, _base))
        finally:
            shutil.rmtree(_base, ignore_errors=True)
    sys.exit(main())
