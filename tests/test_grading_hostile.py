"""Broken and hostile submissions: each loses exactly what it should, under nbgrader and batch.

All cases are graded in ONE ``nbgrader autograde`` batch and one batch-grader run (see
tests/hostile/graded.py); each test reads the score of one submission, cell by cell.
"""

from __future__ import annotations

import pytest
from hostile import cases
from hostile.graded import Graded, autograded_text, check_case, graded, only_tests

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def g(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    return graded(tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize("case", cases.BROKEN, ids=lambda c: c.name)
def test_broken_submission_loses_exactly_its_points(g: Graded, case: cases.Case) -> None:
    check_case(g, case)


@pytest.mark.parametrize("case", cases.CHEATS, ids=lambda c: c.name)
def test_cheat_earns_nothing(g: Graded, case: cases.Case) -> None:
    check_case(g, case)


def test_expectations_can_fail(g: Graded) -> None:
    """The per-cell expectation is not vacuous: a broken case differs from the correct one."""
    correct = cases.expected_scores(cases.ALL[0], g.points)
    for case in cases.ALL:
        if case.expect != "full":
            assert cases.expected_scores(case, g.points) != correct, case.name
    assert sum(correct.values()) == sum(v for k, v in g.points.items() if k.startswith("test_"))


def test_nbgrader_batch_completed_and_graded_everyone(g: Graded) -> None:
    assert g.nbgrader.returncode == 0
    for case in cases.ALL:
        nb = g.seq / "autograded" / case.name / cases.ASSIGNMENT / f"{cases.NOTEBOOK}.ipynb"
        assert nb.exists(), case.name
        assert all(v is not None for v in only_tests(g.after_nbgrader[case.name]).values())


def test_limits_come_from_the_course_config_on_both_paths(g: Graded) -> None:
    """One Limits value, read from nbgrader_config.py, reaches nbgrader autograde and make grade."""
    import json

    from course_lib.grading.batch import Course

    assert Course(str(g.seq)).limits.memory_mb == 1024  # the scratch course's setting
    assert Course(str(g.seq)).limits.cell_timeout == 10
    for root in (g.seq, g.par):
        rec = json.loads((root / ".grading" / "records" / cases.ASSIGNMENT / "memory_hog"
                          / f"{cases.NOTEBOOK}.json").read_text())
        assert rec["run"]["limits"]["memory_mb"] == 1024, root.name
        assert rec["run"]["limits"]["cell_timeout"] == 10, root.name
    assert "MemoryError" in autograded_text(g.seq, "memory_hog")
