"""Grading helpers used by the hidden tests of the nbgrader assignments.

The student's code never runs in the process that computes a grade:

* :mod:`.sandbox` runs the notebook's code cells in a resource-limited child process without
  :mod:`course_lib` and brings the returned arrays back as plain bytes;
* :mod:`.stats` holds the pristine statistical checks (tolerances from the sampling
  distribution, at >= 6 standard errors);
* :mod:`.specs` says which calls each graded function gets and how they are judged;
* :mod:`.runner` grades a notebook (``grade_notebook`` / ``grade_function`` and the CLI
  ``python -I -m course_lib.grading.runner NOTEBOOK --assignment A --json``);
* :mod:`.hidden` is the entry point of the hidden test cells: ``check_hidden("he_normal")``.

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
