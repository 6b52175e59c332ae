"""Grading helpers used by the hidden tests of the nbgrader assignments.

The student's code never runs in the process that computes a grade:

* :mod:`.sandbox` runs the notebook's code cells in a resource-limited child process without
  :mod:`course_lib` and brings the returned arrays back as plain bytes;
* :mod:`.stats` holds the pristine statistical checks (tolerances from the sampling
  distribution, at >= 6 standard errors);
* :mod:`.specs` says which calls each graded function gets and how they are judged, concern by
  concern (the exercise contract, with each concern's points, is ``CONTRACT.md`` beside it);
* :mod:`.runner` grades a notebook (``grade_notebook`` / ``grade_function`` and the CLI
  ``python -I -m course_lib.grading.runner NOTEBOOK --assignment A --json``);
* :mod:`.hidden` is the entry point of the hidden test cells:
  ``check_hidden("he_normal", "conv")`` (one cell per concern).
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
