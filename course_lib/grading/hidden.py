"""``check_hidden``: the in-kernel entry point of every hidden test cell.

A hidden test cell of the assignments contains only::

    from course_lib.grading import check_hidden
    check_hidden("he_normal", "conv")

(one cell per concern of the function; ``check_hidden("he_normal")`` judges all of them).
``check_hidden`` does not judge anything inside the kernel (an answer cell ran there before it and
could have patched NumPy or this package). It

1. drops ``course_lib.grading`` and its submodules from ``sys.modules`` and imports them afresh,
   so attribute patches made by answer cells on those modules are discarded;
2. finds the student's notebook: the ``notebook`` argument, else ``$COURSE_GRADING_NOTEBOOK``,
   else the assignment's notebook in the current directory (``nbgrader autograde`` runs the
   kernel in the submission's directory, where the submitted ``.ipynb`` lies; verified with
   nbgrader 0.9.6), else the only ``.ipynb`` there that defines the function; if none is found
   it falls back to the kernel's executed-cell history ``In`` (minus test cells);
3. runs ``python -I -m course_lib.grading.runner NOTEBOOK --assignment A --json`` in a
   subprocess (which in turn runs the student's code in a sandboxed child and judges the
   returned arrays with pristine NumPy), once per notebook: the verdicts of the other functions
   are kept for the next hidden cells; it raises ``AssertionError(message)`` if the verdict of
   ``function_name`` fails and prints a one-line summary when it passes.

What an in-kernel check cannot stop: code in an answer cell runs in the grading kernel before
this cell, so it can replace ``check_hidden`` itself (``course_lib.grading.check_hidden = ...``),
``subprocess``, ``builtins`` or the ``AssertionError`` that nbgrader looks for. This path is
only a fallback: the course's configuration never runs hidden cells in a kernel (the engine of
:mod:`course_lib.grading.nbgrader_ext` judges them, isolated, for ``nbgrader autograde`` and
``make grade`` alike).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["check_hidden", "find_notebook"]

TIMEOUT = 600.0
"""Wall-clock limit of one hidden check (the runner has its own per-call limits)."""

_CACHE: dict[tuple[str, str], dict[str, Any]] = {}
"""``(sha256 of the notebook, assignment) -> {function: verdict}``.

The first hidden cell of a notebook grades every function of the assignment in one runner
process; the next hidden cells of the same (unchanged) notebook read their verdict from here, so
``nbgrader autograde`` pays for one sandbox per notebook, not one per function. (Filling this
dict from an answer cell is no easier than replacing ``check_hidden`` itself; see the module
docstring for what an in-kernel check cannot stop.)
"""


def check_hidden(function_name: str, concern: str | None = None, *,
                 notebook: str | os.PathLike[str] | None = None,
                 assignment: str | None = None) -> None:
    """Grade ``function_name`` of the current submission; ``AssertionError`` if it fails.

    Parameters
    ----------
    function_name
        A graded function of the exercise contract (``course_lib/grading/CONTRACT.md``), e.g.
        ``"he_normal"``.
    concern
        One concern of that function (e.g. ``"conv"``: the test cell
        ``test_he_normal_conv``); None judges every concern.
    notebook
        The submitted notebook (default: found as described in the module docstring).
    assignment
        The assignment (default: the one whose notebook grades ``function_name``).

    Raises
    ------
    AssertionError
        With the verdict's message (what was measured, what was expected, a hint).
    ValueError
        For an unknown function or assignment.
    """
    cache = _CACHE  # verdicts of this kernel's earlier hidden cells (plain data)
    for name in [m for m in sys.modules if m == "course_lib.grading"
                 or m.startswith("course_lib.grading.")]:
        del sys.modules[name]
    fresh = importlib.import_module("course_lib.grading.hidden")
    setattr(fresh, "_CACHE", cache)  # noqa: B010 - a module attribute mypy cannot see
    fresh._check_hidden(function_name, notebook, assignment, concern)


def find_notebook(function_name: str, assignment: str, directory: str | os.PathLike[str] = ".",
                  ) -> Path | None:
    """The submitted notebook for ``function_name`` in ``directory`` (see module docstring)."""
    from .specs import NOTEBOOKS

    env = os.environ.get("COURSE_GRADING_NOTEBOOK")
    if env and Path(env).is_file():
        return Path(env)
    d = Path(directory)
    named = d / NOTEBOOKS[assignment]
    if named.is_file():
        return named
    candidates = []
    for p in sorted(d.glob("*.ipynb")):
        try:
            text = p.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if f"def {function_name}(" in text:
            candidates.append(p)
    return candidates[0] if len(candidates) == 1 else None


def _history_notebook(function_name: str, workdir: str) -> Path | None:
    """Write the kernel's executed cells (``In``) as a notebook, minus hidden-test cells."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    ip = get_ipython()
    if ip is None:
        return None
    history = ip.user_ns.get("In", [])
    if not isinstance(history, list):
        return None
    cells: list[dict[str, Any]] = []
    for src in history:
        if not isinstance(src, str) or not src.strip():
            continue
        if "check_hidden" in src or "BEGIN HIDDEN TESTS" in src:
            continue
        cells.append({"cell_type": "code", "metadata": {}, "source": src, "outputs": [],
                      "execution_count": None})
    if not cells:
        return None
    path = Path(workdir) / "history.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                "cells": cells}))
    return path


def _check_hidden(function_name: str, notebook: str | os.PathLike[str] | None,
                  assignment: str | None, concern: str | None = None) -> None:
    from .specs import assignment_of, get_spec

    a = assignment or assignment_of(function_name)
    get_spec(a, function_name)
    with tempfile.TemporaryDirectory(prefix="check-hidden-") as tmp:
        path = Path(notebook) if notebook is not None else find_notebook(function_name, a)
        source = "notebook"
        if path is None:
            path = _history_notebook(function_name, tmp)
            source = "kernel history"
        if path is None:
            raise AssertionError(f"{function_name}: the grader could not find the submitted"
                                 " notebook (set COURSE_GRADING_NOTEBOOK or pass notebook=...).")
        key = (hashlib.sha256(path.read_bytes()).hexdigest(), a)
        if function_name not in _CACHE.get(key, {}):
            _CACHE[key] = _run_runner(path, a, None)
        verdict = _CACHE[key].get(function_name) or _run_runner(path, a, function_name)[
            function_name]
    label = function_name
    # one concern's verdict; a concern the judge did not tag any check with: the whole verdict
    entry = (verdict.get("concerns") or {}).get(concern) if concern is not None else None
    if entry is not None:
        verdict = {"passed": entry.get("passed"), "message": entry.get("message"),
                   "checks": [c for c in verdict.get("checks", [])
                              if c.get("concern") in ("", concern)],
                   "seeds": verdict.get("seeds", [])}
        label = f"{function_name} [{concern}]"
    if not verdict.get("passed"):
        raise AssertionError(str(verdict.get("message", f"{label} failed")))
    n = len(verdict.get("checks", []))
    print(f"{label}: all {n} hidden checks passed (graded from the {source}; seeds"
          f" {verdict.get('seeds', [])[:3]}...).")


def _run_runner(path: Path, assignment: str, function_name: str | None) -> dict[str, Any]:
    """Verdicts ``{function: verdict dict}`` of one runner process (all functions if None)."""
    cmd = [sys.executable, "-I", "-m", "course_lib.grading.runner", str(path.resolve()),
           "--assignment", assignment, "--json"]
    if function_name is not None:
        cmd += ["--function", function_name]
    what = function_name or assignment
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False,
                              cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{what}: grading timed out after {TIMEOUT:g} s") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"{what}: the grader failed (exit {proc.returncode}):"
                             f" {proc.stderr.strip()[-1500:]}")
    verdicts: dict[str, Any] = json.loads(lines[-1])["functions"]
    return verdicts
