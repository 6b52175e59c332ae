"""Grade a submitted notebook: find the answers, scan them, run them in the sandbox, judge them.

``grade_notebook(path, assignment)`` returns one :class:`FunctionVerdict` per graded function of
the assignment (the exercise contract: ``course_lib/grading/CONTRACT.md``); ``grade_function``
grades one. The command line
entry point, used by the hidden test cells through :func:`course_lib.grading.check_hidden` and by
batch grading, is::

    python -I -m course_lib.grading.runner NOTEBOOK --assignment A [--function F] --json

How a grade is made
-------------------
1. The notebook is read as JSON (never executed here). Its code cells are split into test cells
   (nbgrader ``grade: true, solution: false`` or a ``grade_id`` starting with ``test_``, and any
   cell calling ``check_hidden``), which are never run, and everything else (setup, answer cells,
   cells the student added), which runs in order. IPython magics (``%...``, ``!...``) are
   dropped. A plain ``.py`` file or a mapping ``{label: source}`` is accepted too.
2. A static (``ast``) scan names cheats: importing ``course_lib``, touching ``sys.modules`` /
   ``builtins`` / ``importlib`` / ``__import__``, assigning to NumPy attributes (``np.var = ...``),
   ``setattr`` on NumPy, defining an ``ndarray`` subclass, ``exec``/``eval``, ``globals()``
   writes, rebinding names the test cells use, starting other processes (``subprocess``,
   ``os.system``...: a new interpreter could import ``course_lib``), ``runpy``, ``inspect``,
   ``gc``. A finding fails the functions it can affect:
   the function it sits in (or the graded functions that call the helper it sits in), the
   functions of its cell, or all functions for a global patch or a cell without a graded
   function.
3. The cells run in :mod:`course_lib.grading.sandbox` (child process, no ``course_lib``,
   resource limits); each function's calls use generators made from grader seeds.
4. The returned plain arrays are judged here with pristine NumPy (:mod:`.specs`,
   :mod:`.stats`). The verdict records the seeds, the tolerances, the versions and the timings,
   so the grade can be re-derived with ``--base-seed``.

Limits
------
The sandbox is a process with resource limits, not a security boundary: the child runs as the
grading user, can read files that user can read and could, with obfuscation the static scan
misses, reach the network or start processes. It cannot change a verdict that is computed here
from the bytes it returned, but it could in principle compute its answers with another
program. An instructor who grades untrusted submissions at scale should run the runner (or the
batch command) inside a container or VM without network and without the course's sources
mounted, e.g. ``docker run --network none -v $PWD/submitted:/sub:ro IMAGE python -I -m
course_lib.grading.runner /sub/... --json``; the verdicts are plain JSON and merge anywhere.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import platform
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .sandbox import Call, CallOutcome, CellSource, Limits, SandboxRun, run_in_sandbox
from .specs import DEFAULT_BASE_SEED, NOTEBOOKS, SPECS, FunctionSpec, get_spec, make_seeds
from .stats import CheckResult, _plain

__all__ = [
    "Cheat",
    "FunctionVerdict",
    "Passed",
    "Submission",
    "grade_function",
    "grade_notebook",
    "load_submission",
    "main",
    "scan_cheats",
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
    out = []
    for line in src.splitlines():
        m = _MAGIC.match(line)
        out.append(f"{m.group(1)}pass  # IPython magic dropped by the grader" if m else line)
    return "\n".join(out) + "\n"


def _is_test_cell(meta: Mapping[str, Any], src: str) -> bool:
    nb = meta.get("nbgrader", {}) if isinstance(meta, Mapping) else {}
    if not isinstance(nb, Mapping):
        nb = {}
    gid = str(nb.get("grade_id", ""))
    if nb.get("grade") is True and not nb.get("solution"):
        return True
    if gid.startswith("test_"):
        return True
    return "check_hidden" in src or "BEGIN HIDDEN TESTS" in src


def load_submission(source: SourceLike) -> Submission:
    """Read a notebook (``.ipynb``), a ``.py`` file, a mapping or a list of sources.

    A notebook that is not valid JSON gives a :class:`Submission` with ``problem`` set.
    """
    if isinstance(source, Mapping):
        cells = [CellSource(i, _strip_magics(str(s)), str(k))
                 for i, (k, s) in enumerate(source.items())]
        return Submission(cells, [], origin="<sources>")
    if isinstance(source, (list, tuple)):
        cells = [CellSource(i, _strip_magics(str(s)), f"cell {i}") for i, s in enumerate(source)]
        return Submission(cells, [], origin="<sources>")
    path = Path(str(source))
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return Submission([], [], problem=f"cannot read {path}: {exc}", origin=str(path))
    if path.suffix != ".ipynb":
        return Submission([CellSource(0, _strip_magics(text), path.name)], [], origin=str(path))
    try:
        nb = json.loads(text)
        raw_cells = nb["cells"]
        if not isinstance(raw_cells, list):
            raise TypeError("cells is not a list")
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return Submission([], [], problem=f"the notebook is not valid notebook JSON ({exc})",
                          origin=str(path))
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
        if _is_test_cell(meta, src):
            tests.append(src)
            continue
        nbm = meta.get("nbgrader", {})
        nbm = nbm if isinstance(nbm, Mapping) else {}
        label = str(nbm.get("grade_id", f"cell {i}"))
        if label == "setup" or (nbm.get("locked") and not nbm.get("solution")):
            trusted.add(i)
        code_cells.append(CellSource(i, _strip_magics(src), label))
    return Submission(code_cells, tests, trusted, origin=str(path))


# =========================================================================== static scan


@dataclass(frozen=True)
class Cheat:
    """A statically detected cheat: where it is and what it does."""

    cell: int
    line: int
    scope: str | None
    kind: str
    description: str
    global_effect: bool


_BUILTIN_NAMES = {n for n in dir(builtins) if not n.startswith("_")}
_DEFAULT_TEST_NAMES = {"check_hidden", "np", "numpy", "isinstance", "len", "abs", "float",
                       "int", "AssertionError", "all", "any", "round", "tuple", "list", "type",
                       "callable", "range", "print", "ValueError", "TypeError", "math"}
_SYS_ATTRS = {"modules", "meta_path", "path_hooks", "path", "_getframe", "settrace", "setprofile",
              "addaudithook", "path_importer_cache"}
_FORBIDDEN_MODULES = {
    "course_lib": "imports course_lib (the reference library; implement the function yourself)",
    "importlib": "uses importlib (module machinery)",
    "builtins": "imports builtins (can patch Python itself)",
    "__builtin__": "imports builtins (can patch Python itself)",
    "gc": "uses gc (reaches into other objects of the interpreter)",
    "inspect": "uses inspect (reaches into the grader's frames)",
    "unittest": "uses unittest.mock (patching)",
    "subprocess": "starts other processes (subprocess), where course_lib is importable",
    "multiprocessing": "starts other processes (multiprocessing)",
    "concurrent": "starts other processes or threads (concurrent.futures)",
    "pty": "starts other processes (pty)",
    "runpy": "runs other Python files (runpy)",
    "imp": "uses the import machinery (imp)",
    "pkgutil": "uses the import machinery (pkgutil)",
    "zipimport": "uses the import machinery (zipimport)",
    "marshal": "loads code objects (marshal)",
}
_SPAWN = {"system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp", "execv", "execve",
          "execl", "execle", "execlp", "execlpe", "execvp", "execvpe", "spawnl", "spawnle",
          "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe"}


def _free_names(sources: Iterable[str]) -> set[str]:
    names: set[str] = set()
    for src in sources:
        try:
            tree = ast.parse(_strip_magics(src))
        except SyntaxError:
            continue
        stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Store)}
        loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Load)}
        names |= loaded - stored
    return names


def _defined_names(src: str) -> set[str]:
    """Names a cell binds with ``def``, ``class`` or ``import`` at top level."""
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return set()
    out: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(stmt.name)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            out |= {a.asname or a.name.split(".")[0] for a in stmt.names}
    return out


class _Scanner(ast.NodeVisitor):
    def __init__(self, cell: int, protected: set[str], trusted: bool) -> None:
        self.cell = cell
        self.protected = protected
        self.trusted = trusted
        self.found: list[Cheat] = []
        self.scope: list[str] = []
        self.np_aliases: set[str] = set()
        self.sys_aliases: set[str] = set()
        self.depth = 0

    def add(self, node: ast.AST, kind: str, desc: str, global_effect: bool = False) -> None:
        self.found.append(Cheat(self.cell, getattr(node, "lineno", 0),
                                self.scope[0] if self.scope else None, kind, desc, global_effect))

    # --- imports
    def _check_module(self, node: ast.AST, mod: str) -> None:
        root = mod.split(".")[0]
        if root in _FORBIDDEN_MODULES and not (root == "unittest" and "mock" not in mod):
            self.add(node, "import", _FORBIDDEN_MODULES[root] + f" (import {mod})",
                     root != "course_lib")

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self._check_module(node, a.name)
            bound = a.asname or a.name.split(".")[0]
            if a.name == "numpy" or a.name.startswith("numpy."):
                self.np_aliases.add(bound)
            elif a.name == "sys":
                self.sys_aliases.add(bound)
            elif not self.scope and bound != a.name.split(".")[-1] and bound != a.name:
                self._rebind(node, bound)  # e.g. `import os as np`

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        self._check_module(node, mod)
        for a in node.names:
            bound = a.asname or a.name
            if mod == "numpy" or mod.startswith("numpy."):
                if a.name in {"random", "testing", "linalg", "lib", "_core", "core"} \
                        or bound in {"np"}:
                    self.np_aliases.add(bound)
            elif mod == "sys" and a.name in _SYS_ATTRS:
                self.add(node, "sys", f"imports sys.{a.name} (module machinery)", True)
            if bound != a.name and not self.scope:
                self._rebind(node, bound)  # e.g. `from os import path as check_hidden`

    # --- definitions
    def _rebind(self, node: ast.AST, name: str) -> None:
        if self.trusted or self.scope:
            return
        if name in self.protected:
            self.add(node, "rebind", f"redefines {name!r}, a name the test cells use", True)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._def(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._def(node)

    def _def(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if not self.scope:
            self._rebind(node, node.name)
        for d in node.decorator_list:
            self.visit(d)
        self.scope.append(node.name)
        for stmt in node.body:
            self.visit(stmt)
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if not self.scope:
            self._rebind(node, node.name)
        for b in node.bases:
            dotted = _dotted(b)
            if dotted.split(".")[-1] in {"ndarray", "MaskedArray", "matrix"}:
                self.add(node, "ndarray_subclass",
                         f"defines class {node.name}, a subclass of {dotted} (its methods could"
                         " lie about the statistics)")
        self.scope.append(node.name)
        for stmt in node.body:
            self.visit(stmt)
        self.scope.pop()

    # --- assignments
    def _target(self, node: ast.AST, t: ast.AST) -> None:
        if isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                self._target(node, e)
        elif isinstance(t, ast.Starred):
            self._target(node, t.value)
        elif isinstance(t, ast.Attribute):
            root = _root_name(t)
            dotted = _dotted(t)
            if root in self.np_aliases:
                self.add(node, "numpy_patch", f"assigns to the NumPy attribute {dotted}", True)
            elif root in self.sys_aliases or root in {"builtins", "__builtins__"}:
                self.add(node, "sys", f"assigns to {dotted}", True)
        elif isinstance(t, ast.Subscript):
            base = t.value
            if isinstance(base, ast.Call) and _dotted(base.func) in {"globals", "vars", "locals"}:
                self.add(node, "globals", "writes to globals()/vars() (rebinds names indirectly)",
                         True)
            elif isinstance(base, ast.Attribute) and _root_name(base) in self.sys_aliases:
                self.add(node, "sys", f"writes to {_dotted(base)}", True)
            elif _root_name(base) in self.np_aliases:
                self.add(node, "numpy_patch", f"writes into {_dotted(base)}", True)
            self.visit(t)
        elif isinstance(t, ast.Name):
            if not self.scope:
                self._rebind(node, t.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._target(node, t)
        self.visit(node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._target(node, node.target)
        self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._target(node, node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            self._target(node, t)

    def visit_Global(self, node: ast.Global) -> None:
        for n in node.names:
            if n in self.protected:
                self.add(node, "rebind", f"rebinds {n!r} (a name the test cells use) via"
                         " 'global'", True)

    # --- expressions
    def visit_Name(self, node: ast.Name) -> None:
        if node.id in {"__import__", "__builtins__", "__builtin__", "__loader__", "__spec__"}:
            self.add(node, "builtins", f"uses {node.id}", True)
        elif node.id in {"exec", "eval", "compile"} and isinstance(node.ctx, ast.Load):
            self.add(node, "exec", f"runs dynamically built code ({node.id})")
        elif node.id in {"globals", "vars", "setattr", "delattr"} and isinstance(node.ctx,
                                                                                 ast.Load):
            pass  # judged at the call

    def visit_Attribute(self, node: ast.Attribute) -> None:
        root = _root_name(node)
        if root in self.sys_aliases and node.attr in _SYS_ATTRS:
            self.add(node, "sys", f"uses {_dotted(node)} (module machinery)", True)
        if node.attr in {"__dict__", "__globals__", "__code__", "__builtins__", "__class__",
                         "__subclasses__", "__setattr__", "__mro__", "__bases__"}:
            self.add(node, "dunder", f"reaches into {_dotted(node)}", True)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        fn = _dotted(node.func)
        if fn in {"setattr", "delattr", "object.__setattr__", "type.__setattr__"} and node.args:
            root = _root_name(node.args[0])
            if root in self.np_aliases:
                self.add(node, "numpy_patch", f"{fn}() on the NumPy object"
                         f" {_dotted(node.args[0])}", True)
            elif root in self.sys_aliases or root in {"builtins", "__builtins__"}:
                self.add(node, "sys", f"{fn}() on {_dotted(node.args[0])}", True)
            elif root in self.protected:
                self.add(node, "rebind", f"{fn}() on {root!r}, a name the test cells use", True)
        if isinstance(node.func, ast.Attribute) and node.func.attr in _SPAWN \
                and _root_name(node.func) in {"os", "posix", "_posixsubprocess"}:
            self.add(node, "process", f"starts another process ({fn}), where course_lib is"
                     " importable")
        if fn in {"globals", "vars"}:
            self.add(node, "globals", f"uses {fn}() (can rebind names the tests use)", True)
        self.generic_visit(node)


def _root_name(node: ast.AST) -> str:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else ""


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return f"{_dotted(node.func)}()"
    if isinstance(node, ast.Subscript):
        return f"{_dotted(node.value)}[...]"
    return type(node).__name__


def scan_cheats(sub: Submission, graded: Iterable[str]) -> list[Cheat]:
    """Statically scan every cell that will run; return the cheats found."""
    graded = set(graded)
    # Names the test cells use that a student could redefine to fool them: builtins, the
    # modules and helpers the setup cell imports or defines, check_hidden. Plain data variables
    # (``rng``, ``W``) are left alone: rebinding those cannot change a hidden verdict.
    trusted_defs: set[str] = set()
    for cell in sub.cells:
        if cell.index in sub.trusted:
            trusted_defs |= _defined_names(cell.source)
    free = _free_names(sub.test_sources)
    protected = (_DEFAULT_TEST_NAMES | (free & (_BUILTIN_NAMES | trusted_defs))) - graded
    found: list[Cheat] = []
    np_aliases: set[str] = set()
    sys_aliases: set[str] = set()
    for cell in sub.cells:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        sc = _Scanner(cell.index, protected, cell.index in sub.trusted)
        sc.np_aliases |= np_aliases | {"np", "numpy"}
        sc.sys_aliases |= sys_aliases
        for stmt in tree.body:
            sc.visit(stmt)
        np_aliases |= sc.np_aliases
        sys_aliases |= sc.sys_aliases
        found += sc.found  # a trusted (setup) cell may bind test names, nothing else
    return found


# =========================================================================== structure


@dataclass
class _Structure:
    defs_in_cell: dict[int, set[str]]
    syntax: dict[int, str]
    calls: dict[str, set[str]]
    cell_of_def: dict[str, list[int]]


def _structure(sub: Submission) -> _Structure:
    defs: dict[int, set[str]] = {}
    syntax: dict[int, str] = {}
    calls: dict[str, set[str]] = {}
    cell_of: dict[str, list[int]] = {}
    for cell in sub.cells:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as exc:
            syntax[cell.index] = f"line {exc.lineno}: {exc.msg}"
            names = set(re.findall(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", cell.source, re.M))
            defs[cell.index] = names
            for n in names:
                cell_of.setdefault(n, []).append(cell.index)
            continue
        names = set()
        for stmt in tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(stmt.name)
                calls.setdefault(stmt.name, set()).update(
                    n.id for n in ast.walk(stmt) if isinstance(n, ast.Name))
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


def _cheats_for(fn: str, cheats: Sequence[Cheat], st: _Structure, graded: set[str]) -> list[Cheat]:
    reach = _reach(fn, st.calls)
    out = []
    for c in cheats:
        if c.scope is not None and c.scope in st.calls:
            if c.scope in reach:
                out.append(c)
            elif c.global_effect and c.scope not in graded and not any(
                    c.scope in _reach(g, st.calls) for g in graded):
                out.append(c)  # a helper nobody graded calls: it runs from top-level code
        elif c.global_effect:
            out.append(c)
        else:
            in_cell = st.defs_in_cell.get(c.cell, set()) & graded
            if not in_cell or fn in in_cell:
                out.append(c)
    return out


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
        d = asdict(self)
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
           sub: Submission, st: _Structure, run: SandboxRun, cheats: Sequence[Cheat],
           base_seed: int, t_sandbox: float) -> FunctionVerdict:
    t0 = time.perf_counter()
    fn = spec.name
    by_key = {o.call.key: o for o in outs}
    cheat_msgs = [f"cheat detected in {_cell_label(sub, c.cell)} line {c.line}: {c.description}"
                  for c in cheats]
    checks: list[CheckResult] = []
    for m in cheat_msgs:
        checks.append(CheckResult("integrity", False, message=m,
                                  hint="grading judges your own implementation only; remove it."))
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
        Path to the submitted ``.ipynb`` (or a ``.py`` file, a ``{label: source}`` mapping or a
        list of sources).
    assignment
        One of ``ps1_variance``, ``ps2_initializers``, ``ps3_deep_signal``, ``ps4_frameworks``.
    functions
        Restrict to these functions (default: all of the assignment, in notebook order).
    base_seed, seeds
        The grader's seeds: by default derived from ``base_seed`` and the function name
        (:func:`~course_lib.grading.specs.make_seeds`); ``seeds`` overrides per function.
    limits
        Sandbox limits (memory, CPU, timeouts, output).
    isolate
        One fresh child process per function (slower).

    Returns
    -------
    dict
        ``{function: FunctionVerdict}``.
    """
    if assignment not in SPECS:
        raise ValueError(f"unknown assignment {assignment!r}; expected one of "
                         + ", ".join(repr(a) for a in SPECS))
    fns = list(functions) if functions is not None else list(SPECS[assignment])
    specs = {fn: get_spec(assignment, fn) for fn in fns}
    sub = load_submission(notebook)
    if sub.problem:
        return _problem_verdicts(assignment, fns, sub.problem, base_seed)
    graded = set(SPECS[assignment])
    st = _structure(sub)
    cheats = scan_cheats(sub, graded)
    fn_seeds = {fn: list(seeds[fn]) if seeds and fn in seeds else make_seeds(fn, base_seed)
                for fn in fns}
    groups: dict[str, list[Call]] = {fn: specs[fn].calls(fn_seeds[fn]) for fn in fns}
    t0 = time.perf_counter()
    run = run_in_sandbox(sub.cells, groups, limits=limits, isolate=isolate)
    t_sandbox = (time.perf_counter() - t0) / max(len(fns), 1)
    return {
        fn: _judge(specs[fn], run.outcomes.get(fn, []), fn_seeds[fn], sub, st, run,
                   _cheats_for(fn, cheats, st, graded), base_seed, t_sandbox)
        for fn in fns
    }


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
    args = p.parse_args(argv)
    assignment = args.assignment or _infer_assignment(args.notebook)
    if assignment is None:
        p.error("--assignment is required (the notebook name does not tell)")
    t0 = time.perf_counter()
    limits = Limits(memory_mb=args.memory_mb, call_timeout=args.timeout,
                    cell_timeout=args.cell_timeout)
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
