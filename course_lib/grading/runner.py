"""Grade a submitted notebook: run it once in the isolated engine, judge the returned bytes.

``grade_notebook(path, assignment)`` returns one :class:`FunctionVerdict` per graded function of
the assignment (the exercise contract: ``course_lib/grading/CONTRACT.md``); ``grade_function``
grades one; :func:`grade_submission` also returns the run itself (every cell's outputs), which
is what ``make grade`` and ``nbgrader autograde`` use. The command line entry point is::

    python -I -m course_lib.grading.runner NOTEBOOK --assignment A [--function F] --json

How a grade is made
-------------------
1. The notebook is read as JSON (never executed here). Every code cell runs, in order, except the
   hidden-test calls (``check_hidden(...)``), whose verdict is computed here: the setup, the
   answer cells, the cells the student added and the visible public test cells (their output is
   the feedback the student sees).
2. The cells and then the judge's calls run in ONE child process per submission
   (:mod:`course_lib.grading.sandbox`, :mod:`course_lib.grading.child`), isolated by the
   operating system (:mod:`course_lib.grading.isolation`: no network, no course files, no
   ``course_lib``); each function's calls use generators made from grader seeds.
3. The returned plain arrays are judged here with pristine NumPy (:mod:`.specs`,
   :mod:`.stats`). Nothing the student's code does inside the child (patching NumPy, builtins or
   helpers, redefining names, lying ndarray subclasses) reaches this process: only the bytes it
   returned do. There is no static rule on the source: legal Python never costs points. The
   verdict records the seeds, the tolerances, the versions, the isolation and the timings, so the
   grade can be re-derived with ``--base-seed``.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import platform
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .isolation import IsolationUnavailable, Limits, check_isolation
from .sandbox import Call, CallOutcome, CellSource, SandboxRun, run_in_sandbox
from .specs import DEFAULT_BASE_SEED, NOTEBOOKS, SPECS, FunctionSpec, get_spec, make_seeds
from .stats import CheckResult, _plain

__all__ = [
    "FunctionVerdict",
    "Passed",
    "Submission",
    "grade_function",
    "grade_notebook",
    "grade_submission",
    "hidden_check_target",
    "load_submission",
    "main",
]

SourceLike = str | Path | Mapping[str, str] | Sequence[str]


# =========================================================================== reading


@dataclass
class Submission:
    """The code of a submission, split into cells to run and test cells."""

    cells: list[CellSource]
    test_sources: list[str]
    trusted: set[int] = field(default_factory=set)
    problem: str = ""
    origin: str = ""


_MAGIC = re.compile(r"^(\s*)([%!].*)$")


def _strip_magics(src: str) -> str:
    """The source with IPython magic lines as ``pass`` (for the structure analysis only)."""
    out = []
    for line in src.splitlines():
        m = _MAGIC.match(line)
        out.append(f"{m.group(1)}pass  # IPython magic" if m else line)
    return "\n".join(out) + "\n"


def hidden_check_target(source: str) -> tuple[str, str | None] | None:
    """``(name, concern)`` if a cell's code is exactly a hidden-test call, else None.

    The recognised body (comments such as ``### BEGIN HIDDEN TESTS`` are ignored) is::

        from course_lib.grading import check_hidden
        check_hidden("<name>")               # concern None: every check
        check_hidden("<name>", "<concern>")  # one concern's checks

    Such a cell is never executed: its verdict comes from the judge.
    """
    if "check_hidden" not in source:
        return None  # the common case, without parsing
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if len(tree.body) != 2:
        return None
    imp, call = tree.body
    if not (
        isinstance(imp, ast.ImportFrom)
        and imp.module == "course_lib.grading"
        and imp.level == 0
        and [(a.name, a.asname) for a in imp.names] == [("check_hidden", None)]
    ):
        return None
    if not (
        isinstance(call, ast.Expr)
        and isinstance(call.value, ast.Call)
        and isinstance(call.value.func, ast.Name)
        and call.value.func.id == "check_hidden"
        and 1 <= len(call.value.args) <= 2
        and not call.value.keywords
        and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                for a in call.value.args)
    ):
        return None
    args = [a.value for a in call.value.args]  # type: ignore[attr-defined]
    return str(args[0]), (str(args[1]) if len(args) == 2 else None)


def load_submission(source: SourceLike) -> Submission:
    """Read a notebook (``.ipynb`` path or notebook dict), a ``.py`` file, a mapping or a list.

    A notebook that is not valid JSON gives a :class:`Submission` with ``problem`` set.
    """
    if isinstance(source, Mapping) and "cells" in source:
        return _from_notebook(source, "<notebook>")
    if isinstance(source, Mapping):
        cells = [CellSource(i, str(s), str(k)) for i, (k, s) in enumerate(source.items())]
        return Submission(cells, [], origin="<sources>")
    if isinstance(source, (list, tuple)):
        cells = [CellSource(i, str(s), f"cell {i}") for i, s in enumerate(source)]
        return Submission(cells, [], origin="<sources>")
    path = Path(str(source))
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return Submission([], [], problem=f"cannot read {path}: {exc}", origin=str(path))
    if path.suffix != ".ipynb":
        return Submission([CellSource(0, text, path.name)], [], origin=str(path))
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        return Submission([], [], problem=f"the notebook is not valid notebook JSON ({exc})",
                          origin=str(path))
    return _from_notebook(nb, str(path))


def _from_notebook(nb: Any, origin: str) -> Submission:
    try:
        raw_cells = nb["cells"]
        if not isinstance(raw_cells, list):
            raise TypeError("cells is not a list")
    except (KeyError, TypeError) as exc:
        return Submission([], [], problem=f"the notebook is not valid notebook JSON ({exc})",
                          origin=origin)
    code_cells: list[CellSource] = []
    tests: list[str] = []
    trusted: set[int] = set()
    for i, c in enumerate(raw_cells):
        if not isinstance(c, Mapping) or c.get("cell_type") != "code":
            continue
        src = c.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        meta = c.get("metadata", {})
        meta = meta if isinstance(meta, Mapping) else {}
        if hidden_check_target(src) is not None:
            tests.append(src)  # judged here, never executed
            continue
        nbm = meta.get("nbgrader", {})
        nbm = nbm if isinstance(nbm, Mapping) else {}
        label = str(nbm.get("grade_id", f"cell {i}"))
        if label == "setup" or (nbm.get("locked") and not nbm.get("solution")):
            trusted.add(i)
        code_cells.append(CellSource(i, src, label))
    return Submission(code_cells, tests, trusted, origin=origin)


# =========================================================================== structure


@dataclass
class _Structure:
    defs_in_cell: dict[int, set[str]]
    syntax: dict[int, str]
    calls: dict[str, set[str]]
    cell_of_def: dict[str, list[int]]


@functools.lru_cache(maxsize=4096)
def _cell_structure(source: str) -> tuple[str, tuple[tuple[str, frozenset[str]], ...]]:
    """``(syntax error or "", ((defined function, names it uses), ...))`` of one cell's code.

    Cached by source: most cells (setup, tests, untouched answers) are the same in every
    submission of a class.
    """
    try:
        tree = ast.parse(_strip_magics(source))
    except SyntaxError as exc:
        names = dict.fromkeys(re.findall(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", source, re.M))
        return f"line {exc.lineno}: {exc.msg}", tuple((n, frozenset()) for n in names)
    return "", tuple(
        (stmt.name, frozenset(n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)))
        for stmt in tree.body
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
    )


def _structure(sub: Submission) -> _Structure:
    defs: dict[int, set[str]] = {}
    syntax: dict[int, str] = {}
    calls: dict[str, set[str]] = {}
    cell_of: dict[str, list[int]] = {}
    for cell in sub.cells:
        error, functions = _cell_structure(cell.source)
        if error:
            syntax[cell.index] = error
        names = set()
        for name, used in functions:
            names.add(name)
            if not error:
                calls.setdefault(name, set()).update(used)
        defs[cell.index] = names
        for n in names:
            cell_of.setdefault(n, []).append(cell.index)
    return _Structure(defs, syntax, calls, cell_of)


def _reach(fn: str, calls: Mapping[str, set[str]]) -> set[str]:
    seen = {fn}
    todo = [fn]
    while todo:
        for n in calls.get(todo.pop(), set()):
            if n in calls and n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


# =========================================================================== verdicts


class Passed(int):
    """Whether a verdict passed: truthy iff every check passed; call it for one concern.

    ``verdict.passed`` keeps working as the boolean it always was (``if v.passed``,
    ``v.passed == True``), and ``verdict.passed("conv")`` is the verdict of one concern
    (credit, issue 14: one test cell per concern).
    """

    _checks: Sequence[CheckResult]

    def __new__(cls, value: bool, checks: Sequence[CheckResult] = ()) -> Passed:
        obj = super().__new__(cls, bool(value))
        obj._checks = checks
        return obj

    def __call__(self, concern: str | None = None) -> bool:
        if concern is None:
            return bool(self)
        relevant = [c for c in self._checks if c.concern in ("", concern)]
        return any(c.concern == concern for c in relevant) and all(c.passed for c in relevant)

    def __repr__(self) -> str:
        return repr(bool(self))

    def __deepcopy__(self, memo: Any) -> bool:
        return bool(self)


@dataclass
class FunctionVerdict:
    """The grade of one function, with everything needed to re-derive it.

    ``passed`` is truthy iff every check passed, and ``passed(concern)`` is the verdict of one
    concern (the checks of that concern plus those that count in every concern, such as a
    missing function); :meth:`message_for` is that concern's failure message.
    """

    assignment: str
    function: str
    passed: Passed
    message: str
    checks: list[CheckResult]
    seeds: list[int]
    base_seed: int
    tolerances: dict[str, Any]
    versions: dict[str, str]
    duration: float
    cheats: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.passed = Passed(bool(self.passed), self.checks)

    @property
    def n_failed(self) -> int:
        """Number of failed checks."""
        return sum(not c.passed for c in self.checks)

    @property
    def concerns(self) -> list[str]:
        """The concerns the checks were tagged with, in order of first appearance."""
        return list(dict.fromkeys(c.concern for c in self.checks if c.concern))

    def message_for(self, concern: str | None = None) -> str:
        """The summary of ``concern``'s checks (failed ones with hints), or of all if None."""
        if concern is None:
            return self.message
        checks = [c for c in self.checks if c.concern in ("", concern)]
        return _summarize(f"{self.function} [{concern}]", checks, [])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form (``concerns`` maps each concern to its verdict and message)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}  # _plain copies below
        d["passed"] = bool(self.passed)
        d["checks"] = [c.to_dict() for c in self.checks]
        d["concerns"] = {k: {"passed": self.passed(k), "message": self.message_for(k)}
                         for k in self.concerns}
        plain: dict[str, Any] = _plain(d)
        return plain

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FunctionVerdict:
        """Inverse of :meth:`to_dict`."""
        data = dict(d)
        data.pop("concerns", None)
        data["checks"] = [CheckResult.from_dict(c) for c in data.get("checks", [])]
        return cls(**data)


def _versions(run: SandboxRun | None) -> dict[str, str]:
    from importlib import metadata

    try:
        cl = metadata.version("course_lib")
    except metadata.PackageNotFoundError:
        cl = "unknown"
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "course_lib": cl,
        "platform": platform.platform(),
        "child_python": run.python if run else "",
        "child_numpy": run.numpy if run else "",
    }


def _summarize(fn: str, checks: Sequence[CheckResult], cheats: Sequence[str]) -> str:
    failed = [c for c in checks if not c.passed]
    if not checks:
        return f"{fn}: FAILED (no checks were made)"
    if not failed and not cheats:
        return f"{fn}: all {len(checks)} checks passed."
    lines = [f"{fn}: FAILED ({len(failed)} of {len(checks)} checks)"]
    shown: list[CheckResult] = []
    repeats: dict[int, int] = {}
    for c in failed:
        key = next((i for i, s in enumerate(shown) if c.name == "call" and s.name == "call"
                    and s.hint == c.hint and _error_kind(s) == _error_kind(c)), None)
        if key is None:
            shown.append(c)
        else:
            repeats[key] = repeats.get(key, 0) + 1
    for i, c in enumerate(shown[:8]):
        more = f" (and {repeats[i]} more calls the same way)" if repeats.get(i) else ""
        lines.append(f"- {c.describe()}{more}")
    if len(shown) > 8:
        lines.append(f"- ... and {len(shown) - 8} more failed checks")
    return "\n".join(lines)


def _error_kind(c: CheckResult) -> str:
    m = re.search(r" (raised \w+|timed out|killed the grading process)", c.message)
    return m.group(1) if m else c.message


def _missing_reason(fn: str, sub: Submission, st: _Structure, run: SandboxRun) -> str:
    cells = st.cell_of_def.get(fn, [])
    for ci in cells:
        if ci in st.syntax:
            return (f"function {fn} not found: the cell defining it has a syntax error"
                    f" ({st.syntax[ci]}).")
        rep = run.cells.get(ci)
        if rep and rep.status in ("killed", "timeout"):
            return (f"function {fn} not found: the cell defining it stopped the grading process"
                    f" at top level ({rep.detail}); that cell was skipped.")
        if rep and rep.status == "raised" and rep.error is not None:
            return (f"function {fn} not found: the cell defining it raised {rep.error.cls}:"
                    f" {rep.error.message[:200]}")
    return (f"function {fn} not found (was its answer cell deleted, or the function renamed?"
            " Keep the name and signature given in the notebook).")


def _judge(spec: FunctionSpec, outs: Sequence[CallOutcome], seeds: Sequence[int],
           sub: Submission, st: _Structure, run: SandboxRun,
           base_seed: int, t_sandbox: float, limits: Limits) -> FunctionVerdict:
    t0 = time.perf_counter()
    fn = spec.name
    by_key = {o.call.key: o for o in outs}
    cheat_msgs: list[str] = []
    checks: list[CheckResult] = []
    if outs and all(o.status == "missing" for o in outs):
        checks.append(CheckResult("defined", False, message=_missing_reason(fn, sub, st, run),
                                  hint="keep the function's name and signature as given."))
    else:
        try:
            checks += spec.judge(by_key, seeds)
        except Exception as exc:
            checks.append(CheckResult("judge", False, message=f"the grader could not judge the"
                                      f" results ({type(exc).__name__}: {exc})."))
    passed = all(c.passed for c in checks) and bool(checks)
    tolerances = {f"{i}:{c.name}": {"tolerance": c.tolerance, "false_fail_rate":
                                     c.false_fail_rate} for i, c in enumerate(checks)
                  if c.tolerance is not None}
    out_text = "".join(o.output for o in outs)[:2000]
    judge_s = time.perf_counter() - t0
    return FunctionVerdict(
        assignment=spec.assignment, function=fn, passed=Passed(passed),
        message=_summarize(fn, checks, cheat_msgs), checks=checks, seeds=list(seeds),
        base_seed=base_seed, tolerances=tolerances, versions=_versions(run),
        duration=t_sandbox + judge_s, cheats=cheat_msgs,
        details={
            "calls": [{"key": o.call.key, "status": o.status, "seconds": round(o.seconds, 4),
                       "detail": o.detail} for o in outs],
            "student_output": out_text,
            "judge_seconds": judge_s,
            "sandbox_seconds": t_sandbox,
            "restarts": run.restarts,
            "skipped_cells": run.skipped_cells,
            "cell_problems": _cell_problems(sub, run),
            "origin": sub.origin,
            "isolation": run.isolation,
            "seccomp": run.seccomp,
            "limits": limits.to_dict(),
        },
    )


def _cell_problems(sub: Submission, run: SandboxRun) -> list[str]:
    """Readable notes on cells that did not run cleanly (for the instructor)."""
    out = []
    for i, rep in sorted(run.cells.items()):
        where = _cell_label(sub, i)
        if rep.status in ("killed", "timeout"):
            out.append(f"{where} stopped the grading process at top level ({rep.detail});"
                       " it was skipped")
        elif rep.status in ("raised", "syntax") and rep.error is not None:
            out.append(f"{where} raised {rep.error.cls}: {rep.error.message[:200]}")
    return out


def _cell_label(sub: Submission, index: int) -> str:
    for c in sub.cells:
        if c.index == index:
            return f"cell {c.label!r}" if c.label and not c.label.startswith("cell ") else \
                f"cell {index}"
    return f"cell {index}"


def _problem_verdicts(assignment: str, fns: Sequence[str], problem: str, base_seed: int,
                      ) -> dict[str, FunctionVerdict]:
    out = {}
    for fn in fns:
        chk = CheckResult("notebook", False, message=problem)
        out[fn] = FunctionVerdict(assignment, fn, Passed(False), f"{fn}: FAILED - {problem}", [chk],
                                  make_seeds(fn, base_seed), base_seed, {}, _versions(None), 0.0)
    return out


def grade_submission(
    notebook: SourceLike | Submission,
    assignment: str,
    *,
    functions: Sequence[str] | None = None,
    base_seed: int = DEFAULT_BASE_SEED,
    seeds: Mapping[str, Sequence[int]] | None = None,
    limits: Limits | None = None,
    isolate: bool = False,
) -> tuple[dict[str, FunctionVerdict], SandboxRun | None, Submission]:
    """Run a submission once in the engine and judge it: ``(verdicts, run, submission)``.

    ``run`` holds every executed cell's outputs (None when the notebook could not be read).
    See :func:`grade_notebook` for the parameters.
    """
    if assignment not in SPECS:
        raise ValueError(f"unknown assignment {assignment!r}; expected one of "
                         + ", ".join(repr(a) for a in SPECS))
    limits = limits or Limits()
    fns = list(functions) if functions is not None else list(SPECS[assignment])
    specs = {fn: get_spec(assignment, fn) for fn in fns}
    sub = notebook if isinstance(notebook, Submission) else load_submission(notebook)
    if sub.problem:
        return _problem_verdicts(assignment, fns, sub.problem, base_seed), None, sub
    st = _structure(sub)
    fn_seeds = {fn: list(seeds[fn]) if seeds and fn in seeds else make_seeds(fn, base_seed)
                for fn in fns}
    groups: dict[str, list[Call]] = {fn: specs[fn].calls(fn_seeds[fn]) for fn in fns}
    t0 = time.perf_counter()
    run = run_in_sandbox(sub.cells, groups, limits=limits, isolate=isolate)
    t_sandbox = (time.perf_counter() - t0) / max(len(fns), 1)
    verdicts = {
        fn: _judge(specs[fn], run.outcomes.get(fn, []), fn_seeds[fn], sub, st, run, base_seed,
                   t_sandbox, limits)
        for fn in fns
    }
    return verdicts, run, sub


def grade_notebook(
    notebook: SourceLike,
    assignment: str,
    *,
    functions: Sequence[str] | None = None,
    base_seed: int = DEFAULT_BASE_SEED,
    seeds: Mapping[str, Sequence[int]] | None = None,
    limits: Limits | None = None,
    isolate: bool = False,
) -> dict[str, FunctionVerdict]:
    """Grade every graded function of ``assignment`` in ``notebook``.

    Parameters
    ----------
    notebook
        Path to the submitted ``.ipynb`` (or a notebook dict, a ``.py`` file, a
        ``{label: source}`` mapping or a list of sources).
    assignment
        One of ``ps1_variance``, ``ps2_initializers``, ``ps3_deep_signal``, ``ps4_frameworks``.
    functions
        Restrict to these functions (default: all of the assignment, in notebook order).
    base_seed, seeds
        The grader's seeds: by default derived from ``base_seed`` and the function name
        (:func:`~course_lib.grading.specs.make_seeds`); ``seeds`` overrides per function.
    limits
        The engine's limits and isolation (:class:`~course_lib.grading.isolation.Limits`).
    isolate
        One fresh child process per function (slower).

    Returns
    -------
    dict
        ``{function: FunctionVerdict}``.
    """
    return grade_submission(notebook, assignment, functions=functions, base_seed=base_seed,
                            seeds=seeds, limits=limits, isolate=isolate)[0]


def grade_function(
    notebook: SourceLike,
    assignment: str,
    function: str,
    *,
    base_seed: int = DEFAULT_BASE_SEED,
    seeds: Sequence[int] | None = None,
    limits: Limits | None = None,
) -> FunctionVerdict:
    """Grade one function (see :func:`grade_notebook`)."""
    get_spec(assignment, function)
    return grade_notebook(notebook, assignment, functions=[function], base_seed=base_seed,
                          seeds={function: seeds} if seeds is not None else None,
                          limits=limits)[function]


# =========================================================================== CLI


def _infer_assignment(path: str) -> str | None:
    name = Path(path).name
    for a, nb in NOTEBOOKS.items():
        if nb == name:
            return a
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -I -m course_lib.grading.runner",
                                description="Grade a submitted notebook in a sandbox.")
    p.add_argument("notebook")
    p.add_argument("--assignment", choices=list(SPECS))
    p.add_argument("--function", action="append", dest="functions")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument("--base-seed", type=int, default=DEFAULT_BASE_SEED)
    p.add_argument("--timeout", type=float, default=Limits.call_timeout,
                   help="wall-clock seconds per call of a student function")
    p.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout,
                   help="wall-clock seconds per top-level cell")
    p.add_argument("--memory-mb", type=int, default=Limits.memory_mb)
    p.add_argument("--isolate", action="store_true", help="one process per function")
    p.add_argument("--unsafe-no-isolation", action="store_true",
                   help="run student code without bubblewrap (it can then see this machine)")
    args = p.parse_args(argv)
    assignment = args.assignment or _infer_assignment(args.notebook)
    if assignment is None:
        p.error("--assignment is required (the notebook name does not tell)")
    t0 = time.perf_counter()
    limits = Limits(memory_mb=args.memory_mb, call_timeout=args.timeout,
                    cell_timeout=args.cell_timeout, isolate=not args.unsafe_no_isolation)
    try:
        check_isolation(limits)
    except IsolationUnavailable as exc:
        p.exit(2, f"{exc}\n")
    verdicts = grade_notebook(args.notebook, assignment, functions=args.functions,
                              base_seed=args.base_seed, limits=limits, isolate=args.isolate)
    secs = time.perf_counter() - t0
    if args.json:
        json.dump({"assignment": assignment, "notebook": str(args.notebook), "seconds": secs,
                   "functions": {k: v.to_dict() for k, v in verdicts.items()}},
                  sys.stdout, allow_nan=False, default=str)
        sys.stdout.write("\n")
    else:
        for v in verdicts.values():
            print(("PASS " if v.passed else "FAIL ") + v.message)
        print(f"graded in {secs:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
