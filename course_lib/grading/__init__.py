"""The course's grader: an isolated engine, a pristine judge, the nbgrader integration, a CLI.

Layers, each importing only the ones above it:

* the engine: :mod:`.isolation` (the :class:`~.isolation.Limits` read from the course config,
  the bubblewrap sandbox), :mod:`.child` (the program that runs a submission inside it, once)
  and :mod:`.sandbox` (the grader's side: one child per submission, cells then judged calls,
  outputs and returned bytes back as plain data);
* the judge: :mod:`.stats` (statistical checks, tolerances from the sampling distribution at
  >= 6 standard errors) and :mod:`.specs` (which calls each graded function gets and how they are
  judged, concern by concern; the exercise contract, with each concern's points, is
  ``CONTRACT.md`` beside it); :mod:`.runner` grades a notebook with both (``grade_notebook``,
  ``grade_submission``, CLI
  ``python -I -m course_lib.grading.runner NOTEBOOK --assignment A --json``);
* the nbgrader integration: :mod:`.nbgrader_ext` (``ResilientExecute`` = the engine inside
  ``nbgrader autograde``; points per test cell from the judge), :mod:`.feedback`,
  :mod:`.release`;
* the command line: :mod:`.batch` (``make grade``, below) and :mod:`.demo`;
* :mod:`.hidden`: ``check_hidden("he_normal"[, "concern"])``, the body of a hidden test cell
  (judged by the engine; an in-kernel fallback otherwise).

The instructor's side: :mod:`.batch` grades a class (``make grade``) as the only writer of the
gradebook, :mod:`.cluster` runs its tasks on a local process pool or a Dask cluster,
:mod:`.intake` reads submissions as they arrive (renamed files, lost metadata, LMS downloads and
grade exports), :mod:`.release` regenerates and registers assignments (``make release``).
"""

from __future__ import annotations

from typing import Any

from .stats import CheckResult

__all__ = ["CheckResult", "FunctionVerdict", "check_hidden", "grade_function", "grade_notebook"]


def __getattr__(name: str) -> Any:
    # Lazy: the hidden tests import check_hidden without paying for the runner.
    if name == "check_hidden":
        from .hidden import check_hidden

        return check_hidden
    if name in {"grade_notebook", "grade_function", "FunctionVerdict"}:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
