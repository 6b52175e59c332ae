"""Containment: student code cannot touch the machine, and legal Python never costs points.

Every case of tests/hostile/cases.py (``CONTAINMENT`` and ``ODD`` here) is graded in the same two
runs as the broken and cheating submissions (tests/hostile/graded.py): one sequential
``nbgrader autograde`` and the batch grader (``make grade``: SIGKILLed, interrupted with Ctrl-C,
re-run). Each containment act is written plainly (he_normal's cell) and evasively, with only
builtins and ``os`` (he_uniform's cell); a function returns the right answer only if its act
succeeded (else twice it), so "the act was contained" and "the author loses exactly those two
functions' variance concerns (public, dense, conv; a doubled answer keeps family and rng)" are the
same assertion. The machine is checked afterwards: the course trees (hashed before and after),
the loopback listener, the grader's HOME and /tmp, the classmates' grades.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from hostile import cases
from hostile.graded import Graded, check_case, graded, only_tests

from course_lib.grading import isolation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def g(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    return graded(tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize("case", cases.CONTAINMENT, ids=lambda c: c.name)
def test_act_is_contained_and_costs_only_its_functions(g: Graded, case: cases.Case) -> None:
    check_case(g, case)


@pytest.mark.parametrize("case", cases.ODD, ids=lambda c: c.name)
def test_honest_but_odd_notebook_gets_full_marks(g: Graded, case: cases.Case) -> None:
    check_case(g, case)


def test_the_machine_is_untouched(g: Graded) -> None:
    assert g.trees_after == g.trees_before  # config, solutions, release, every submission
    assert g.connections == []  # nothing reached the listener on 127.0.0.1
    assert g.stray_files == []  # nothing in the grader's HOME or /tmp
    for root in (g.seq, g.par):
        with sqlite3.connect(root / "gradebook.db") as db:
            tables = {r[0] for r in db.execute("select name from sqlite_master")}
        assert "pwned" not in tables
    correct = cases.expected_scores(cases.ALL[0], g.points)
    assert only_tests(g.after_nbgrader["correct"]) == correct  # the classmate keeps the grade
    assert only_tests(g.scores_after_rerun["correct"]) == correct


def test_catalogue_can_fail(g: Graded) -> None:
    """The gate is not vacuous: the same acts succeed without the sandbox (harmless ones only).

    Connecting to a loopback listener, reading the judge's source and starting a program are
    tried in a plain child process: each succeeds there, so a sandbox that let them through
    would give the author full marks and fail the tests above.
    """
    from hostile.graded import _Listener

    listener = _Listener()
    spec = f"{cases.ENV['repo']}/course_lib/grading/specs.py"
    code = (f"import socket\nsocket.create_connection(('127.0.0.1', {listener.port}), timeout=2)"
            f".sendall(b'hi')\nassert open({spec!r}).read()\nimport os\n"
            "assert os.system('true') == 0\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert listener.close() == [b"connected:hi"]  # the listener does record connections


def test_ctrl_c_leaves_no_process_and_no_half_graded_submission(g: Graded) -> None:
    it = g.interrupted
    assert it["processes"] > 0  # workers and sandboxes were running when Ctrl-C came
    assert it["left"] == []
    for student, scores in it["scores"].items():
        done = all(v is not None for v in only_tests(scores).values())
        nb = g.par / "autograded" / student / cases.ASSIGNMENT / f"{cases.NOTEBOOK}.ipynb"
        marker = g.par / ".grading" / "records" / cases.ASSIGNMENT / student / "_batch_done.json"
        if marker.exists():
            assert done and nb.exists(), student


def test_records_state_the_isolation(g: Graded) -> None:
    import json

    for root in (g.seq, g.par):
        rec = json.loads((root / ".grading" / "records" / cases.ASSIGNMENT / "correct"
                          / f"{cases.NOTEBOOK}.json").read_text())
        assert rec["run"]["isolation"] == "bwrap"
        assert rec["run"]["seccomp"] == "on"


def test_no_user_namespaces_refuses_with_one_clear_message() -> None:
    """A machine where bwrap cannot start (simulated with a flag it rejects) refuses to grade."""
    limits = isolation.Limits()
    with pytest.raises(isolation.IsolationUnavailable) as err:
        isolation.check_isolation(limits, extra_args=("--no-such-flag-simulating-no-userns",))
    msg = str(err.value)
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in msg
    assert "--unsafe-no-isolation" in msg and "make grade UNSAFE=1" in msg
    isolation.check_isolation(limits.unsafe(), extra_args=("--no-such-flag",))  # opted out
    isolation.check_isolation(limits)  # this machine has user namespaces
