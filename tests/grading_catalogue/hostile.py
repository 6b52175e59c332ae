"""Cheats and broken code, as answer-cell sources for the ps2_initializers notebook.

Each entry replaces the answer cell of ``function`` (``extra`` adds a cell of its own, as a
student may add cells) in an otherwise correct submission. For ``BROKEN``, ``expect`` are
lower-case fragments the failing function's message must contain. For ``CHEATS`` they only name
what each cheat does (the static scan that reported them is gone: tests/test_grading_sandbox.py
asserts, from the verdicts on the returned bytes, that a cheat earns nothing and costs its
neighbours nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

WRONG_HE = '''
def he_normal(shape, *, rng):
    fan_in, fan_out = compute_fans(shape)
    return rng.normal(0.0, np.sqrt(1.0 / max(fan_in, 1)), size=shape)  # wrong: factor 2 missing
'''
RIGHT_HE = '''
def he_normal(shape, *, rng):
    fan_in, fan_out = compute_fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), size=shape)
'''


@dataclass(frozen=True)
class Case:
    """One hostile or broken answer."""

    label: str
    function: str
    source: str
    expect: tuple[str, ...]
    extra: bool = False


CHEATS: list[Case] = [
    Case("calls course_lib's reference", "he_normal", '''
from course_lib.initializers import he_normal as _reference

def he_normal(shape, *, rng):
    return _reference(shape, rng=rng)
''', ("cheat detected", "imports course_lib")),
    Case("imports the reference inside the function", "he_normal", '''
def he_normal(shape, *, rng):
    import course_lib
    return course_lib.he_normal(shape, rng=rng)
''', ("cheat detected", "imports course_lib", "not available while grading")),
    Case("patches np.var", "he_normal", '''
np.var = lambda a, *args, **kwargs: 2.0 / np.shape(a)[0]
''' + WRONG_HE, ("assigns to the numpy attribute np.var", "variance")),
    Case("patches np.mean", "he_normal", '''
import numpy
numpy.mean = lambda *args, **kwargs: 0.0
''' + WRONG_HE, ("numpy attribute numpy.mean",)),
    Case("patches np.allclose with setattr", "he_normal",
         "setattr(np, 'allclose', lambda *a, **k: True)\n" + WRONG_HE,
         ("setattr() on the numpy object np",)),
    Case("patches np.testing", "he_normal", '''
from numpy import testing as npt
npt.assert_allclose = lambda *args, **kwargs: None
''' + WRONG_HE, ("npt.assert_allclose",)),
    Case("ndarray subclass whose statistics lie", "he_normal", '''
class Honest(np.ndarray):
    def var(self, *args, **kwargs):
        return 2.0 / 784
    def std(self, *args, **kwargs):
        return (2.0 / 784) ** 0.5
    def mean(self, *args, **kwargs):
        return 0.0

def he_normal(shape, *, rng):
    return np.zeros(shape).view(Honest)
''', ("subclass of np.ndarray", "expected a plain numpy.ndarray", "variance 0")),
    Case("cached array that ignores rng", "he_normal", '''
_W = {}
def he_normal(shape, *, rng):
    if tuple(shape) not in _W:
        fan_in, _ = compute_fans(shape)
        _W[tuple(shape)] = np.random.default_rng(1).normal(0, np.sqrt(2 / fan_in), shape)
    return _W[tuple(shape)]
''', ("ignores rng",)),
    Case("reads the expected values from the grading helpers", "he_normal", '''
import course_lib.grading.specs as _specs
_TARGET = _specs.SPECS
''' + RIGHT_HE, ("imports course_lib",)),
    Case("patches the grading helpers", "he_normal", '''
import course_lib.grading
course_lib.grading.check_hidden = lambda *args, **kwargs: None
''' + WRONG_HE, ("imports course_lib",)),
    Case("redefines check_hidden used by the test cells", "he_normal", '''
def check_hidden(*args, **kwargs):
    return None
''' + WRONG_HE, ("redefines 'check_hidden'",), extra=False),
    Case("rebinds np to a fake", "he_normal", '''
class _Fake:
    def __getattr__(self, name):
        return lambda *a, **k: True
''' + RIGHT_HE + "\nnp = _Fake()\n", ("redefines 'np'",)),
    Case("rebinds AssertionError", "he_normal", "AssertionError = Warning\n" + RIGHT_HE,
         ("redefines 'assertionerror'",)),
    Case("edits sys.modules", "he_normal", '''
import sys
sys.modules["course_lib.grading"] = None
''' + RIGHT_HE, ("sys.modules",)),
    Case("patches builtins", "he_normal", '''
import builtins
builtins.isinstance = lambda *args: True
''' + RIGHT_HE, ("imports builtins",)),
    Case("writes globals()", "he_normal", "globals()['check_hidden'] = print\n" + RIGHT_HE,
         ("globals()",)),
    Case("exec of a built string", "he_normal",
         "exec('np' + '.var = lambda *a, **k: 0.0')\n" + RIGHT_HE, ("dynamically built code",)),
    Case("__import__ of the reference", "he_normal", '''
def he_normal(shape, *, rng):
    return __import__("course_lib").he_normal(shape, rng=rng)
''', ("uses __import__",)),
    Case("importlib of the reference", "he_normal", '''
import importlib
def he_normal(shape, *, rng):
    return importlib.import_module("course_lib").he_normal(shape, rng=rng)
''', ("importlib",)),
]

CHEATS += [
    Case("computes the reference in a subprocess", "he_normal", '''
import subprocess, sys, json

def he_normal(shape, *, rng):
    if rng is None:                      # never taken: the scan alone must catch it
        code = "import course_lib, numpy, sys; ..."
        subprocess.run([sys.executable, "-c", code], check=False)
    return rng.normal(0.0, 1.0, size=shape)
''', ("starts other processes (subprocess)",)),
    Case("os.system", "he_normal", '''
import os
def he_normal(shape, *, rng):
    if rng is None:                      # never taken: the scan alone must catch it
        os.system("python -c 'import course_lib'")
    return rng.normal(0.0, 1.0, size=shape)
''', ("starts another process (os.system)",)),
]

BROKEN: list[Case] = [
    Case("syntax error", "he_uniform", '''
def he_uniform(shape, *, rng)
    return rng.uniform(-1, 1, size=shape)
''', ("syntax error",)),
    Case("exception at import", "he_uniform", '''
import does_not_exist_anywhere

def he_uniform(shape, *, rng):
    return rng.uniform(-1, 1, size=shape)
''', ("not found", "modulenotfounderror")),
    Case("exception in the function", "he_uniform", '''
def he_uniform(shape, *, rng):
    return 1 / 0
''', ("raised zerodivisionerror",)),
    Case("endless loop in the function", "he_uniform", '''
def he_uniform(shape, *, rng):
    while True:
        pass
''', ("timed out",)),
    Case("endless loop at top level", "he_uniform", '''
def he_uniform(shape, *, rng):
    return rng.uniform(-1, 1, size=shape)

while True:
    pass
''', ("stopped the grading process at top level", "timed out")),
    Case("os._exit in the function", "he_uniform", '''
import os
def he_uniform(shape, *, rng):
    os._exit(1)
''', ("killed the grading process", "exited with status 1")),
    Case("os._exit at top level", "he_uniform", '''
import os
def he_uniform(shape, *, rng):
    return rng.uniform(-1, 1, size=shape)
os._exit(0)
''', ("stopped the grading process at top level",)),
    Case("segfault", "he_uniform", '''
import ctypes
def he_uniform(shape, *, rng):
    ctypes.string_at(0)
''', ("killed the grading process", "sigsegv")),
    Case("huge allocation", "he_uniform", '''
def he_uniform(shape, *, rng):
    big = np.ones(400_000_000)            # 3.2 GB, written: beyond the 2 GiB limit
    return big[:int(np.prod(shape))].reshape(shape)
''', ("memoryerror",)),
    Case("huge allocation at top level", "he_uniform", '''
_block = np.empty(2**29)                  # 4 GiB of address space: beyond the limit
def he_uniform(shape, *, rng):
    return rng.uniform(-1, 1, size=shape)
''', ("not found", "memoryerror")),
    Case("returns NaN", "he_uniform", '''
def he_uniform(shape, *, rng):
    return np.full(shape, np.nan)
''', ("not finite", "nan")),
    Case("wrong shape", "he_uniform", '''
def he_uniform(shape, *, rng):
    fan_in, fan_out = compute_fans(shape)
    b = np.sqrt(6 / max(fan_in, 1))
    return rng.uniform(-b, b, size=int(np.prod(shape)))
''', ("has shape (125440,); expected (784, 160)",)),
    Case("wrong type", "he_uniform", '''
def he_uniform(shape, *, rng):
    return "weights"
''', ("returned a str", "expected a numpy.ndarray")),
    Case("answer cell deleted", "he_uniform", "# (the student deleted this cell)\n",
         ("function he_uniform not found",)),
    Case("function renamed", "he_uniform", '''
def he_uniform_init(shape, *, rng):
    fan_in, fan_out = compute_fans(shape)
    b = np.sqrt(6 / max(fan_in, 1))
    return rng.uniform(-b, b, size=shape)
''', ("function he_uniform not found",)),
]

PRINTS_MEGABYTES = '''
def he_uniform(shape, *, rng):
    for _ in range(50):
        print("x" * 100_000)              # 5 MB of output
    fan_in, fan_out = compute_fans(shape)
    b = np.sqrt(6 / max(fan_in, 1))
    return rng.uniform(-b, b, size=shape)
'''
