"""Shared fixtures: the environment every test expects, and the built book."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

# Keras must pick its NumPy backend before it is first imported; matplotlib must not need a display.
os.environ.setdefault("KERAS_BACKEND", "numpy")
os.environ.setdefault("MPLBACKEND", "Agg")
# Small matrices on 2 cores: BLAS threads only add contention (one QR went from 0.1 s to 4 s when
# the machine was busy). Set before NumPy is first imported; inherited by the book build's kernels.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class BookBuild:
    """The result of one `jupyter-book build -W -n --keep-going .` of the repository."""

    returncode: int
    output: str
    html: Path
    seconds: float


@pytest.fixture(scope="session")
def built_book() -> BookBuild:
    """Build the book once per test session, exactly as `make book` does.

    The build uses the execution cache in ``_build/.jupyter_cache``: on a clean clone (CI)
    every chapter executes; locally an unchanged chapter is not re-executed.
    """
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # The chapters' kernels must use matplotlib's inline backend: under MPLBACKEND=Agg IPython
    # registers no PNG formatter, so glued figures would carry no image.
    env.pop("MPLBACKEND", None)
    start = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "jupyter-book"), "build", "-W", "-n", "--keep-going", "."],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    (ROOT / "_build").mkdir(exist_ok=True)
    (ROOT / "_build" / "build.log").write_text(output)
    return BookBuild(proc.returncode, output, ROOT / "_build" / "html", seconds)
