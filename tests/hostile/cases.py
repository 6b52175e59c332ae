"""Broken and hostile submissions of ps2_initializers, built from the solution notebook.

Each :class:`Case` changes one graded function (its ``target``) of an otherwise correct
submission, and says what it must score:

* ``full``: every test cell full marks (the breakage must cost nothing);
* ``zero``: the target's test cells (public and hidden) 0, every other test cell full marks;
* ``all_zero``: every test cell 0 (an unreadable notebook).

Answers are found by the cell's ``grade_id`` (= the function's name); the solution text is the
answer cell of ``solutions/`` without its ``### BEGIN/END SOLUTION`` markers.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ASSIGNMENT = "ps2_initializers"
NOTEBOOK = "initializers"
FUNCTIONS = (
    "compute_fans",
    "lecun_normal",
    "lecun_uniform",
    "xavier_normal",
    "xavier_uniform",
    "he_normal",
    "he_uniform",
)
INITIALIZERS = FUNCTIONS[1:]

Answers = dict[str, str]
Build = Callable[[Any, Answers], Any]


def grade_id(cell: Any) -> str:
    return str(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))


def solution_answers(source_nb: Any) -> Answers:
    """The instructor's answer for each graded function, markers removed."""
    out: Answers = {}
    for cell in source_nb.cells:
        if cell.cell_type == "code" and grade_id(cell) in FUNCTIONS:
            lines = [
                ln
                for ln in cell.source.splitlines()
                if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")
            ]
            out[grade_id(cell)] = "\n".join(lines)
    missing = set(FUNCTIONS) - set(out)
    if missing:
        raise ValueError(f"solution notebook lacks answer cells for {sorted(missing)}")
    return out


def fill(release_nb: Any, answers: Answers) -> Any:
    """A copy of the released notebook with each answer cell replaced by ``answers``."""
    nb = copy.deepcopy(release_nb)
    for cell in nb.cells:
        if cell.cell_type == "code" and grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return nb


def _set(answers: Answers, name: str, src: str) -> Answers:
    out = dict(answers)
    out[name] = src
    return out


def wrapped(answers: Answers, name: str, body: str, prefix: str = "") -> Answers:
    """Keep the solution as ``_orig_<name>`` and define ``name`` with ``body`` around it."""
    orig = answers[name].replace(f"def {name}(", f"def _orig_{name}(", 1)
    src = f"{prefix}{orig}\n\ndef {name}(shape, *, rng):\n{body}\n"
    return _set(answers, name, src)


def _drop_cells(nb: Any, ids: set[str]) -> Any:
    nb.cells = [c for c in nb.cells if grade_id(c) not in ids]
    return nb


def _test_ids(nb: Any, name: str) -> set[str]:
    return {
        grade_id(c)
        for c in nb.cells
        if grade_id(c) == f"test_{name}" or grade_id(c).startswith(f"test_{name}_")
    }


def _edit_tests(nb: Any, name: str, new: str) -> Any:
    for c in nb.cells:
        if grade_id(c) in _test_ids(nb, name):
            c.source = new
    return nb


# --- the submissions -------------------------------------------------------------------------

TWICE = "    return 2.0 * _orig_{n}(shape, rng=rng)"  # variance x4: plainly wrong


def _correct(rel: Any, a: Answers) -> Any:
    return fill(rel, a)


def _syntax_error(rel: Any, a: Answers) -> Any:
    return fill(rel, _set(a, "he_normal", a["he_normal"] + "\n    return (shape,"))


def _exception_at_import(rel: Any, a: Answers) -> Any:
    src = "import numpy_has_no_such_module\n" + a["lecun_normal"]
    return fill(rel, _set(a, "lecun_normal", src))


def _endless_loop(rel: Any, a: Answers) -> Any:
    return fill(rel, _set(a, "xavier_normal", "while True:\n    pass\n" + a["xavier_normal"]))


def _os_exit(rel: Any, a: Answers) -> Any:
    return fill(rel, _set(a, "lecun_uniform", "import os\nos._exit(1)\n" + a["lecun_uniform"]))


def _segfault(rel: Any, a: Answers) -> Any:
    body = (
        "    import ctypes\n"
        "    ctypes.string_at(0)\n"
        "    return _orig_xavier_uniform(shape, rng=rng)"
    )
    return fill(rel, wrapped(a, "xavier_uniform", body))


def _print_megabytes(rel: Any, a: Answers) -> Any:
    noisy = "print('x' * 8_000_000)\nfor _i in range(20_000):\n    print(_i)\n"
    return fill(rel, _set(a, "he_uniform", noisy + a["he_uniform"]))


def _nan(rel: Any, a: Answers) -> Any:
    body = "    w = _orig_he_normal(shape, rng=rng)\n    w[0, 0] = np.nan\n    return w"
    return fill(rel, wrapped(a, "he_normal", body))


def _wrong_shape(rel: Any, a: Answers) -> Any:
    body = "    return _orig_lecun_normal(shape, rng=rng).T"
    return fill(rel, wrapped(a, "lecun_normal", body))


def _wrong_type(rel: Any, a: Answers) -> Any:
    body = "    return _orig_xavier_normal(shape, rng=rng).tolist()"
    return fill(rel, wrapped(a, "xavier_normal", body))


def _answer_deleted(rel: Any, a: Answers) -> Any:
    return _drop_cells(fill(rel, a), {"he_uniform"})


def _test_deleted(rel: Any, a: Answers) -> Any:
    nb = fill(rel, a)
    return _drop_cells(nb, _test_ids(nb, "he_normal"))


def _test_edited(rel: Any, a: Answers) -> Any:
    nb = fill(rel, wrapped(a, "he_normal", TWICE.format(n="he_normal")))
    return _edit_tests(nb, "he_normal", "assert True")


def _invalid_json(rel: Any, a: Answers) -> bytes:
    import nbformat

    text: str = nbformat.writes(fill(rel, a))
    return text[: len(text) // 2].encode()


def _memory_hog(rel: Any, a: Answers) -> Any:
    hog = "_hog = []\nwhile True:\n    _hog.append(np.ones(2**24))  # 128 MB, touched\n"
    return fill(rel, _set(a, "lecun_normal", hog + a["lecun_normal"]))


# cheats: each makes a wrong (or borrowed) implementation look right from inside the kernel


def _call_reference(rel: Any, a: Answers) -> Any:
    src = (
        "from course_lib import initializers as _reference\n\n"
        "def he_normal(shape, *, rng):\n"
        "    return _reference.variance_scaling(shape, scale=2.0, mode='fan_in',\n"
        "                                       distribution='normal', rng=rng)\n"
    )
    return fill(rel, _set(a, "he_normal", src))


def _patch_numpy(rel: Any, a: Answers) -> Any:
    prefix = (
        "np.var = lambda *args, **kw: 2.0 / 784\n"
        "np.std = lambda *args, **kw: (2.0 / 784) ** 0.5\n"
        "np.mean = lambda *args, **kw: 0.0\n"
        "np.allclose = lambda *args, **kw: True\n"
        "np.testing.assert_allclose = lambda *args, **kw: None\n"
    )
    return fill(rel, wrapped(a, "he_normal", TWICE.format(n="he_normal"), prefix))


def _patch_grading(rel: Any, a: Answers) -> Any:
    prefix = (
        "import sys, types\n"
        "import course_lib.grading as _g\n"
        "_g.check_hidden = lambda *args, **kw: None\n"
        "sys.modules['course_lib.grading.stats'] = types.SimpleNamespace()\n"
    )
    return fill(rel, wrapped(a, "xavier_uniform", TWICE.format(n="xavier_uniform"), prefix))


def _lying_subclass(rel: Any, a: Answers) -> Any:
    prefix = (
        "class _Liar(np.ndarray):\n"
        "    def var(self, *args, **kw):\n"
        "        return 2.0 / self.shape[-2]\n"
        "    def std(self, *args, **kw):\n"
        "        return self.var() ** 0.5\n\n"
    )
    body = "    return (2.0 * _orig_he_uniform(shape, rng=rng)).view(_Liar)"
    return fill(rel, wrapped(a, "he_uniform", body, prefix))


def _cached_array(rel: Any, a: Answers) -> Any:
    prefix = "_CACHE = {}\n\n"
    body = (
        "    key = tuple(shape)\n"
        "    if key not in _CACHE:\n"
        "        _CACHE[key] = _orig_lecun_uniform(shape, rng=np.random.default_rng(0))\n"
        "    return _CACHE[key].copy()"
    )
    return fill(rel, wrapped(a, "lecun_uniform", body, prefix))


def _read_expected(rel: Any, a: Answers) -> Any:
    src = (
        "def xavier_normal(shape, *, rng):\n"
        "    from course_lib.grading import stats\n"
        "    fan_in, fan_out = shape[-2], shape[-1]\n"
        "    guess = lambda s: 2 / (fan_in + fan_out)\n"
        "    target = getattr(stats, 'expected_variance', guess)(shape)\n"
        "    return np.full(shape, target ** 0.5)\n"
    )
    return fill(rel, _set(a, "xavier_normal", src))


def _redefine_names(rel: Any, a: Answers) -> Any:
    prefix = (
        "def check_hidden(*args, **kw):\n"
        "    return None\n\n"
        "class _LenientNp:\n"
        "    def __getattr__(self, name):\n"
        "        return getattr(__import__('numpy'), name)\n"
        "    def allclose(self, *args, **kw):\n"
        "        return True\n"
        "    def isclose(self, *args, **kw):\n"
        "        return True\n\n"
    )
    body = TWICE.format(n="lecun_normal") + "\n\nnp = _LenientNp()"
    return fill(rel, wrapped(a, "lecun_normal", body, prefix))


@dataclass(frozen=True)
class Case:
    """One submission: what it does to which function, and what it must score."""

    name: str
    target: str | None
    expect: str
    build: Build
    why: str
    shows: str = ""  # text the instructor must see in the autograded notebook


BROKEN = [
    Case("correct", None, "full", _correct, "the solution itself"),
    Case("syntax_error", "he_normal", "zero", _syntax_error, "SyntaxError in its answer cell",
         "SyntaxError"),
    Case("exception_at_import", "lecun_normal", "zero", _exception_at_import,
         "ModuleNotFoundError at the top of its cell", "ModuleNotFoundError"),
    Case("endless_loop", "xavier_normal", "zero", _endless_loop,
         "`while True: pass` at top level", "CellTimeoutError"),
    Case("os_exit", "lecun_uniform", "zero", _os_exit, "os._exit(1) at the top of its cell",
         "KernelDied"),
    Case("segfault", "xavier_uniform", "zero", _segfault, "segfault when the function is called",
         "KernelDied"),
    Case("print_megabytes", "he_uniform", "full", _print_megabytes, "prints 8 MB and 20k lines",
         "output truncated"),
    Case("nan", "he_normal", "zero", _nan, "a NaN in the returned array", "nan"),
    Case("wrong_shape", "lecun_normal", "zero", _wrong_shape, "returns the transpose", "shape"),
    Case("wrong_type", "xavier_normal", "zero", _wrong_type, "returns a list", "list"),
    Case("answer_deleted", "he_uniform", "zero", _answer_deleted, "its answer cell deleted",
         "he_uniform not found"),
    Case("test_deleted", "he_normal", "full", _test_deleted, "its test cells deleted",
         "was missing from the submission"),
    Case("test_edited", "he_normal", "zero", _test_edited,
         "wrong answer, its test cells edited to `assert True`", "he_normal: FAILED"),
    Case("invalid_json", None, "all_zero", _invalid_json, "the file is cut in half",
         "could not be read"),
    Case("memory_hog", "lecun_normal", "zero", _memory_hog, "allocates 128 MB blocks forever",
         "MemoryError"),
]

CHEATS = [
    Case("call_reference", "he_normal", "zero", _call_reference,
         "calls course_lib's own variance_scaling", "imports course_lib"),
    # A global NumPy patch can change every function's results: the runner fails them all.
    Case("patch_numpy", "he_normal", "all_zero", _patch_numpy,
         "wrong answer; np.var/np.std/np.mean/np.allclose/np.testing patched", "np.var"),
    Case("patch_grading", "xavier_uniform", "zero", _patch_grading,
         "wrong answer; course_lib.grading.check_hidden and sys.modules patched",
         "xavier_uniform: FAILED"),
    Case("lying_subclass", "he_uniform", "zero", _lying_subclass,
         "wrong answer returned as an ndarray subclass whose var() lies",
         "subclass of np.ndarray"),
    Case("cached_array", "lecun_uniform", "zero", _cached_array,
         "returns one cached array whatever rng it is given", "different seeds"),
    Case("read_expected", "xavier_normal", "zero", _read_expected,
         "reads the expected variance from the grading helpers", "imports course_lib"),
    Case("redefine_names", "lecun_normal", "zero", _redefine_names,
         "wrong answer; redefines check_hidden and np for the test cells", "lecun_normal: FAILED"),
]

ALL = BROKEN + CHEATS


def expected_scores(case: Case, points: dict[str, float]) -> dict[str, float]:
    """The exact score of every autograded test cell for ``case``."""
    out = {}
    for gid, pts in points.items():
        if not gid.startswith("test_"):
            continue  # manually graded answers are not part of the autograded score
        mine = case.target is not None and (
            gid == f"test_{case.target}" or gid.startswith(f"test_{case.target}_")
        )
        if case.expect == "all_zero":
            out[gid] = 0.0
        elif not mine or case.expect == "full":
            out[gid] = pts
        else:
            out[gid] = 0.0
    return out


def mutant(rel: Any, a: Answers, seed: int) -> tuple[Any, str]:
    """A plausible wrong submission: one initializer off by a factor (for the benchmark)."""
    rnd = random.Random(seed)
    name = rnd.choice(INITIALIZERS)
    factor = rnd.choice(["2.0", "0.5", "3.0 ** 0.5"])
    body = f"    return {factor} * _orig_{name}(shape, rng=rng)"
    return fill(rel, wrapped(a, name, body)), name
