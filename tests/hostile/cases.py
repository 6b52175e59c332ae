"""Broken and hostile submissions of ps2_initializers, built from the solution notebook.

Each :class:`Case` changes one graded function (its ``target``) of an otherwise correct
submission, and says what it must score:

* ``full``: every test cell full marks (the breakage must cost nothing);
* ``zero``: the target's test cells (public and hidden) 0 except the concerns listed in
  ``keeps`` (the per-concern cells ``test_<target>_<concern>`` the breakage does not touch: a
  variance four times too large still has the right family and rng discipline), every other
  test cell full marks;
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
# What a TWICE answer earns honestly, cell by cell: its values still have the right distribution
# family and rng discipline (test_edited shows it without any cheat). A cheat or a contained act
# built on a TWICE answer earns exactly that, nothing more.
TWICE_KEEPS = ("family", "rng")


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
    # 128 MB blocks without end (untouched, so a loaded machine reaches the limit at once; a
    # missing limit would show as a timeout instead of MemoryError and fail the test)
    hog = "_hog = []\nwhile True:\n    _hog.append(np.empty(2**24))\n"
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
    also: tuple[str, ...] = ()  # more functions the case must lose (containment: both variants)
    keeps: tuple[str, ...] = ()  # concerns of the lost functions that still earn their points


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
    Case("nan", "he_normal", "zero", _nan, "a NaN in the returned array", "nan",
         keeps=("rng",)),
    Case("wrong_shape", "lecun_normal", "zero", _wrong_shape, "returns the transpose", "shape",
         keeps=("family", "rng")),
    Case("wrong_type", "xavier_normal", "zero", _wrong_type, "returns a list", "list",
         keeps=("rng",)),
    Case("answer_deleted", "he_uniform", "zero", _answer_deleted, "its answer cell deleted",
         "he_uniform not found"),
    Case("test_deleted", "he_normal", "full", _test_deleted, "its test cells deleted",
         "was missing from the submission"),
    Case("test_edited", "he_normal", "zero", _test_edited,
         "wrong answer, its test cells edited to `assert True`", "he_normal [dense]: FAILED",
         keeps=TWICE_KEEPS),
    Case("invalid_json", None, "all_zero", _invalid_json, "the file is cut in half",
         "could not be read"),
    Case("memory_hog", "lecun_normal", "zero", _memory_hog, "allocates 128 MB blocks forever",
         "MemoryError"),
]

CHEATS = [
    Case("call_reference", "he_normal", "zero", _call_reference,
         "calls course_lib's own variance_scaling", "No module named 'course_lib'"),
    # A NumPy patch lives in the student's own process: it cannot reach the judge, and the
    # functions it does not break keep their points.
    Case("patch_numpy", "he_normal", "zero", _patch_numpy,
         "wrong answer; np.var/np.std/np.mean/np.allclose/np.testing patched", "np.var",
         keeps=TWICE_KEEPS),
    Case("patch_grading", "xavier_uniform", "zero", _patch_grading,
         "wrong answer; course_lib.grading.check_hidden and sys.modules patched",
         "xavier_uniform: FAILED"),
    Case("lying_subclass", "he_uniform", "zero", _lying_subclass,
         "wrong answer returned as an ndarray subclass whose var() lies",
         "he_uniform [dense]: FAILED", keeps=TWICE_KEEPS),
    Case("cached_array", "lecun_uniform", "zero", _cached_array,
         "returns one cached array whatever rng it is given", "different seeds"),
    Case("read_expected", "xavier_normal", "zero", _read_expected,
         "reads the expected variance from the grading helpers", "ModuleNotFoundError"),
    Case("redefine_names", "lecun_normal", "zero", _redefine_names,
         "wrong answer; redefines check_hidden and np for the test cells",
         "lecun_normal [dense]: FAILED", keeps=TWICE_KEEPS),
]

# --- containment: each act is tried plainly (in he_normal's cell) and evasively, with only
# builtins and `os` (in he_uniform's cell). Each function returns the right answer ONLY IF its act
# succeeded (else twice it), so a contained act costs exactly those two functions' variance
# concerns (TWICE_KEEPS stay); the tests also check the
# machine afterwards (course trees hashed, the loopback listener, HOME and /tmp, the grader).
# ENV is filled by hostile/graded.py before the submissions are built.

ENV: dict[str, Any] = {}


def _gated(a: Answers, plain: str, evasive: str, prefix: str = "") -> Answers:
    out = dict(a)
    for fn, act in (("he_normal", plain), ("he_uniform", evasive)):
        body = "\n".join("        " + ln for ln in act.strip().splitlines())
        gate = (f"def _act_{fn}():\n    try:\n{body}\n        return True\n"
                f"    except BaseException as exc:\n        print('contained:', repr(exc)[:200])"
                f"\n        return False\n\n_ESCAPED_{fn} = _act_{fn}()\n")
        orig = a[fn].replace(f"def {fn}(", f"def _orig_{fn}(", 1)
        out[fn] = (f"{prefix}{gate}\n{orig}\n\ndef {fn}(shape, *, rng):\n"
                   f"    w = _orig_{fn}(shape, rng=rng)\n"
                   f"    return w if _ESCAPED_{fn} else 2.0 * w\n")
    return out


def _paths(sub: str) -> list[str]:
    return [f"{r}/{sub}" for r in ENV["roots"]]


def _c_write_course(rel: Any, a: Answers) -> Any:
    plain = "".join(f"open({p!r}, 'a').write('# pwned\\n')\n"
                    for p in _paths("nbgrader_config.py") + _paths(
                        f"solutions/{ASSIGNMENT}/{NOTEBOOK}.ipynb"))
    evasive = "".join(
        f"_o = __import__('o' + 's')\n_fd = getattr(_o, 'op' + 'en')({p!r}, _o.O_WRONLY | "
        f"_o.O_APPEND)\n_o.write(_fd, b' ')\n" for p in _paths("nbgrader_config.py"))
    return fill(rel, _gated(a, plain, evasive))


def _c_write_classmate(rel: Any, a: Answers) -> Any:
    dest = _paths(f"submitted/correct/{ASSIGNMENT}/{NOTEBOOK}.ipynb")
    plain = "".join(f"open({p!r}, 'w').write('{{}}')\n" for p in dest)
    evasive = "".join(f"__import__('os').replace('/dev/null', {p!r})\n" for p in dest)
    return fill(rel, _gated(a, plain, evasive))


def _c_gradebook(rel: Any, a: Answers) -> Any:
    dbs = _paths("gradebook.db")
    plain = "import sqlite3\n" + "".join(
        f"sqlite3.connect({p!r}).execute('create table pwned (x)')\n" for p in dbs)
    evasive = "".join(f"_o = __import__('os')\n_o.truncate({p!r}, 0)\n" for p in dbs)
    return fill(rel, _gated(a, plain, evasive))


def _c_home_tmp(rel: Any, a: Answers) -> Any:
    home, tok = ENV["home"], ENV["token"]
    plain = f"open({home + '/pwned_' + tok!r}, 'w').write('x')\n"
    evasive = (f"_o = __import__('os')\n_fd = _o.open('/tmp/pwned_{tok}', _o.O_CREAT | "
               f"_o.O_WRONLY)\n_o.write(_fd, b'x')\n_o.close(_fd)\n"
               f"assert _o.path.exists({home + '/pwned_' + tok!r}) or _o.stat('/tmp').st_nlink"
               f" > 1000\n")
    return fill(rel, _gated(a, plain, evasive))


def _c_read_solutions(rel: Any, a: Answers) -> Any:
    sol = _paths(f"solutions/{ASSIGNMENT}/{NOTEBOOK}.ipynb")[0]
    spec = f"{ENV['repo']}/course_lib/grading/specs.py"
    plain = f"assert 'BEGIN SOLUTION' in open({sol!r}).read()\nopen({spec!r}).read()\n"
    evasive = (f"_o = __import__('os')\n_fd = _o.open({spec!r}, _o.O_RDONLY)\n"
               f"assert _o.read(_fd, 100)\n")
    return fill(rel, _gated(a, plain, evasive))


def _c_read_classmate(rel: Any, a: Answers) -> Any:
    other = _paths(f"submitted/correct/{ASSIGNMENT}/{NOTEBOOK}.ipynb")[0]
    plain = f"assert 'def he_normal' in open({other!r}).read()\n"
    evasive = (f"_o = __import__('os')\nassert 'correct' in _o.listdir("
               f"{ENV['roots'][0] + '/submitted'!r})\n")
    return fill(rel, _gated(a, plain, evasive))


def _c_network(rel: Any, a: Answers) -> Any:
    port = ENV["port"]
    plain = (f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)"
             f".sendall(b'pwned')\n")
    evasive = (f"_s = __import__('socket').socket()\n_s.settimeout(2)\n"
               f"getattr(_s, 'con' + 'nect')(('127.0.0.1', {port}))\n")
    return fill(rel, _gated(a, plain, evasive))


def _c_program(rel: Any, a: Answers) -> Any:
    plain = "import subprocess\nsubprocess.run(['id'], check=True)\n"
    evasive = ("_o = __import__('os')\nassert getattr(_o, 'sys' + 'tem')('true') == 0\n")
    return fill(rel, _gated(a, plain, evasive))


def _c_signal(rel: Any, a: Answers) -> Any:
    pid = ENV["grader_pid"]
    plain = (f"import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
             f"os.kill({pid}, 0)\n")
    evasive = "_o = __import__('os')\ngetattr(_o, 'ki' + 'll')(-1, 0)\n"
    return fill(rel, _gated(a, plain, evasive))


def _c_fork_bomb(rel: Any, a: Answers) -> Any:
    # Bounded so that a failure of the sandbox cannot take the machine down: at most 300
    # children, each gone within 20 s.
    bomb = ("n = 0\nfor _ in range(300):\n    pid = {fork}()\n    if pid == 0:\n"
            "        __import__('time').sleep(20)\n        {exit}(0)\n    n += 1\n"
            "assert n >= 100\n")
    plain = "import os\n" + bomb.format(fork="os.fork", exit="os._exit")
    evasive = ("_o = __import__('os')\n" + bomb.format(fork="getattr(_o, 'fo' + 'rk')",
                                                        exit="_o._exit"))
    return fill(rel, _gated(a, plain, evasive))


def _c_fill_disk(rel: Any, a: Answers) -> Any:
    plain = ("with open('big.bin', 'wb') as f:\n    for _ in range(1024):\n"
             "        f.write(b'0' * 2**20)\n")
    evasive = ("_o = __import__('os')\nfor _k in range(20):\n"
               "    _fd = _o.open(f'/tmp/big{_k}', _o.O_CREAT | _o.O_WRONLY)\n"
               "    for _ in range(60):\n        _o.write(_fd, b'0' * 2**20)\n"
               "    _o.close(_fd)\n")
    return fill(rel, _gated(a, plain, evasive))


def _contained(name: str, build: Build, why: str) -> Case:
    # a contained act leaves a TWICE answer (see _gated): it earns what that answer earns
    return Case(name, "he_normal", "zero", build, why, "contained:", also=("he_uniform",),
                keeps=TWICE_KEEPS)


CONTAINMENT = [
    _contained("escape_write_course", _c_write_course, "appends to the course's config/source"),
    _contained("escape_write_classmate", _c_write_classmate, "overwrites a classmate's notebook"),
    _contained("escape_gradebook", _c_gradebook, "writes the gradebook"),
    _contained("escape_home_tmp", _c_home_tmp, "writes into the grader's HOME and /tmp"),
    _contained("escape_read_solutions", _c_read_solutions, "reads solutions/ and the judge"),
    _contained("escape_read_classmate", _c_read_classmate, "reads another submission"),
    _contained("escape_network", _c_network, "connects to a listener on 127.0.0.1"),
    _contained("escape_program", _c_program, "starts a program"),
    _contained("escape_signal", _c_signal, "signals the grader and every process"),
    _contained("escape_fork_bomb", _c_fork_bomb, "forks 300 processes"),
    _contained("escape_fill_disk", _c_fill_disk, "writes 1 GB"),
]


# --- honest but odd: legal Python that a list of forbidden names used to fail --------------


def _with_cell(rel: Any, a: Answers, src: str) -> Any:
    import nbformat

    nb = fill(rel, a)
    at = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "setup") + 1
    nb.cells.insert(at, nbformat.v4.new_code_cell(src))
    return nb


def _odd_names(rel: Any, a: Answers) -> Any:
    src = ("list = [1, 2, 3]\ntype = 'he'\nimport inspect\nfrom pprint import pprint as print\n"
           "import importlib, gc, builtins\nprint({'shadowed': list, 'scheme': type})\n"
           "def helper(shape):\n    return len(shape)\n")
    return _with_cell(rel, a, src)


def _odd_magics(rel: Any, a: Answers) -> Any:
    src = ("%matplotlib inline\n%load_ext autoreload\n!echo hello\n"
           "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
           "ax.hist(np.random.default_rng(0).normal(size=1000), bins=30)\n"
           "print('a histogram of', 1000, 'draws')\n%time x = sum(range(10))\nx\n")
    return _with_cell(rel, a, src)


ODD = [
    Case("odd_names", None, "full", _odd_names,
         "shadows list/type/print, imports inspect, importlib, gc, builtins", "shadowed"),
    Case("odd_magics", None, "full", _odd_magics, "magics, a shell escape, a plot, prints",
         "a histogram of"),
]

ALL = BROKEN + CHEATS + CONTAINMENT + ODD


def expected_scores(case: Case, points: dict[str, float]) -> dict[str, float]:
    """The exact score of every autograded test cell for ``case``."""
    out = {}
    for gid, pts in points.items():
        if not gid.startswith("test_"):
            continue  # manually graded answers are not part of the autograded score
        targets = ([case.target] if case.target else []) + list(case.also)
        mine = any(gid == f"test_{t}" or (gid.startswith(f"test_{t}_")
                                          and gid[len(f"test_{t}_"):] not in case.keeps)
                   for t in targets)
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
