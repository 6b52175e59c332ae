"""Class-scale grading: the batch grader gives nbgrader's grades, survives crashes, re-runs idly.

The slow tests read the session's graded hostile course (tests/hostile/graded.py): the same
submissions graded by one sequential ``nbgrader autograde`` and by the parallel batch grader,
which was SIGKILLed after a few submissions and re-run. The fast tests exercise the
engine's cell execution and the helpers directly.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from hostile import cases
from hostile.graded import KILL_AFTER, Graded, graded, only_tests

from course_lib.grading import batch, nbgrader_ext
from course_lib.grading.isolation import Limits
from course_lib.grading.sandbox import CellSource, run_in_sandbox


@pytest.fixture(scope="module")
def g(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    return graded(tmp_path_factory.mktemp("hostile"))


# --- the engine's cell execution (fast) ------------------------------------------------------

# A generous timeout (a loaded CI machine), except where the timeout itself is tested.
LIMITS = Limits(cell_timeout=30.0, memory_mb=1024, cpu_seconds=60, output_chars=500)
SHORT = Limits(cell_timeout=3.0, memory_mb=1024, cpu_seconds=60, output_chars=500)


def _run(cells: list[tuple[int, str]], limits: Limits) -> dict[int, Any]:
    return run_in_sandbox([CellSource(i, s) for i, s in cells], {}, limits=limits).cells


def _kinds(outputs: list[dict[str, Any]]) -> list[str]:
    return [str(o.get("ename") or o.get("output_type")) for o in outputs]


def test_dead_child_costs_only_its_cell_and_state_is_replayed() -> None:
    cells = [
        (0, "x = 41"),
        (1, "import os\nos._exit(3)"),
        (2, "print(x + 1)"),
        (4, "raise ValueError('boom')"),
        (5, "x * 2"),
    ]
    out = _run(cells, LIMITS)
    assert out[0].outputs == []
    assert out[1].status == "killed" and "status 3" in out[1].detail
    assert out[2].outputs == [{"output_type": "stream", "name": "stdout", "text": "42\n"}]
    assert _kinds(out[4].outputs) == ["ValueError"]
    assert out[5].outputs[0]["data"] == {"text/plain": "82"}


def test_endless_loop_costs_one_timeout_once_and_grading_goes_on() -> None:
    cells = [(0, "y = 1"), (1, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                               "while True:\n    pass"), (2, "print(y)")]
    run = run_in_sandbox([CellSource(i, s) for i, s in cells], {}, limits=SHORT)
    assert run.cells[1].status == "timeout"
    assert run.cells[2].outputs[0]["text"] == "1\n"
    assert run.restarts == 1 and run.skipped_cells == [1]
    assert run.seconds < 3 * SHORT.cell_timeout  # one timeout, not one per replay


def test_memory_limit_output_cap_streams_magics_and_figures() -> None:
    cells = [(0, "import numpy as np\nblocks = [np.empty(2**24) for _ in range(20)]"),
             (1, "print('z' * 10_000)"), (2, "import sys\nprint('warn', file=sys.stderr)"),
             (3, "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\n"
                 "print('plotted')")]
    out = _run(cells, LIMITS)
    assert _kinds(out[0].outputs) == ["MemoryError"]
    text = out[1].outputs[0]["text"]
    assert isinstance(text, str) and len(text) < 600 and "output truncated" in text
    assert out[2].outputs == [{"output_type": "stream", "name": "stderr", "text": "warn\n"}]
    assert _kinds(out[3].outputs) == ["stream", "display_data"]
    assert out[3].outputs[1]["data"]["image/png"].startswith("iVBOR")  # a PNG, base64


def test_hidden_cell_recognised_only_in_its_exact_form() -> None:
    good = '### BEGIN HIDDEN TESTS\nfrom course_lib.grading import check_hidden\n' \
           'check_hidden("he_normal")\n### END HIDDEN TESTS'
    assert nbgrader_ext.hidden_check_target(good) == ("he_normal", None)
    two = 'from course_lib.grading import check_hidden\ncheck_hidden("he_normal", "conv")'
    assert nbgrader_ext.hidden_check_target(two) == ("he_normal", "conv")
    for bad in ['check_hidden("he_normal")',
                'from course_lib.grading import check_hidden\ncheck_hidden(name)',
                'from course_lib.grading import check_hidden\nprint(1)\ncheck_hidden("x")',
                'from course_lib.grading import check_hidden as c\nc("x")', "def ("]:
        assert nbgrader_ext.hidden_check_target(bad) is None, bad
    fns = ["he_normal", "he_normal_truncated"]
    assert nbgrader_ext.test_cell_target("test_he_normal_truncated_hidden", fns) == \
        ("he_normal_truncated", "hidden")
    assert nbgrader_ext.test_cell_target("test_he_normal_public", fns) == ("he_normal", "public")
    assert nbgrader_ext.test_cell_target("test_he_normal", fns) == ("he_normal", None)
    assert nbgrader_ext.test_cell_target("test_other", fns) is None


def test_unreadable_notebook_becomes_an_empty_one() -> None:
    for text in ['{"cells": [', "[]", '{"cells": "no"}', '{"cells": [{"cell_type": 3}]}']:
        nb, reason = nbgrader_ext.read_submission(text)
        assert reason is not None and "not a valid notebook" in reason
        assert [c.cell_type for c in nb.cells] == ["markdown"]


def test_progress_bar_has_eta() -> None:
    buf = io.StringIO()
    bar = batch.Progress(4, buf)
    bar.step("a: 1/2")
    bar.step("b: 2/2")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and "2/4" in lines[1] and "ETA" in lines[1] and "b: 2/2" in lines[1]


# --- whole class (slow) ---------------------------------------------------------------------


@pytest.mark.slow
def test_parallel_grades_identical_to_sequential_nbgrader(g: Graded) -> None:
    seq = {s: only_tests(v) for s, v in g.after_nbgrader.items()}
    par = {s: only_tests(v) for s, v in g.scores_after_rerun.items()}
    assert set(seq) == {c.name for c in cases.ALL}
    assert par == seq
    assert len({sum(v or 0 for v in s.values()) for s in seq.values()}) > 2  # not all alike


@pytest.mark.slow
def test_crash_keeps_finished_grades_and_rerun_completes(g: Graded) -> None:
    assert g.graded_before_crash >= KILL_AFTER
    finished = [s for s, v in g.after_crash.items() if all(x is not None for x in v.values())]
    assert len(finished) >= KILL_AFTER
    assert len(finished) < len(cases.ALL)  # the crash really interrupted the batch
    for s in finished:
        assert g.after_crash[s] == g.scores_after_rerun[s], s
    assert g.rerun.returncode == 0
    m = re.search(r"(\d+) graded, (\d+) unchanged", g.rerun.stdout)
    assert m and int(m.group(1)) + int(m.group(2)) == len(cases.ALL)
    assert int(m.group(1)) <= len(cases.ALL) - KILL_AFTER


@pytest.mark.slow
def test_rerun_is_idempotent(g: Graded) -> None:
    assert g.again.returncode == 0
    assert f"0 graded, {len(cases.ALL)} unchanged" in g.again.stdout
    from hostile import course

    assert course.scores(g.par, cases.ASSIGNMENT) == g.scores_after_rerun


@pytest.mark.slow
def test_records_carry_seeds_tolerances_versions_and_reasons(g: Graded) -> None:
    for root in (g.seq, g.par):
        rec_dir = root / ".grading" / "records" / cases.ASSIGNMENT
        rec = json.loads((rec_dir / "correct" / f"{cases.NOTEBOOK}.json").read_text())
        assert set(rec["verdicts"]) == set(cases.FUNCTIONS)
        for v in rec["verdicts"].values():
            assert v["passed"] is True
            assert len(v["seeds"]) > 0 and v["tolerances"] and v["versions"]["numpy"]
    rec = json.loads((g.par / ".grading" / "records" / cases.ASSIGNMENT / "os_exit"
                      / f"{cases.NOTEBOOK}.json").read_text())
    assert any("died" in r for r in rec["reasons"])
    assert rec["run"]["isolation"] == "bwrap" and rec["settings"]["limits"]["isolate"] is True


@pytest.mark.slow
def test_instructor_sees_table_and_progress(g: Graded) -> None:
    assert "ETA" in g.rerun.stderr
    for case in cases.ALL:
        assert case.name in g.rerun.stdout
    assert "could not be read" in g.rerun.stdout or "not a valid notebook" in g.rerun.stdout


@pytest.mark.slow
def test_merge_brings_another_machines_grades(g: Graded) -> None:
    """A class split across machines: merging a graded copy reproduces its grades here."""
    from hostile import course

    assert course.scores(g.fresh, cases.ASSIGNMENT) == {}
    assert batch.main([cases.ASSIGNMENT, "--course", str(g.fresh), "--merge", str(g.par)]) == 0
    assert course.scores(g.fresh, cases.ASSIGNMENT) == g.scores_after_rerun
    for case in cases.ALL:
        assert (g.fresh / "autograded" / case.name / cases.ASSIGNMENT
                / f"{cases.NOTEBOOK}.ipynb").exists()
        assert (g.fresh / ".grading" / "records" / cases.ASSIGNMENT / case.name).is_dir()


def test_unsafe_mode_is_stated_in_the_notebook_record(tmp_path: object) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('hi')")]
    done = nbgrader_ext.autograde_notebook(nb, "not_an_assignment", LIMITS.unsafe())
    assert done.reasons[0].startswith("UNSAFE")
    assert done.run["isolation"].startswith("NONE")
    assert done.nb.cells[0].outputs[0]["text"] == "hi\n"
    safe = nbgrader_ext.autograde_notebook(nb, "not_an_assignment", LIMITS)
    assert safe.run["isolation"] == "bwrap" and not safe.reasons


def test_make_grade_refuses_without_user_namespaces(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bwrap that cannot create namespaces (a fake one, as on Ubuntu 24.04's default AppArmor
    policy): one message with the fix, exit status 2, nothing graded."""
    from course_lib.grading import isolation

    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(isolation, "find_bwrap", lambda: str(fake))
    isolation._probe.cache_clear()
    assert batch.main(["ps2_initializers", "--course", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "setting up uid map: Permission denied" in err
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in err and "UNSAFE=1" in err
    assert not (tmp_path / "autograded").exists()
    isolation._probe.cache_clear()
