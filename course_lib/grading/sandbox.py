"""Run one submission in one isolated child process and bring back plain data.

This is the grading engine's parent side. The grader never executes student code: it starts
:mod:`course_lib.grading.child` (``python -I -c <child source> --child FD``) inside bubblewrap
(:func:`course_lib.grading.isolation.wrap`) with a private scratch directory, sends it the
notebook's cells (one at a time, in order: the answer cells, the cells the student added and the
visible public test cells) and then the judge's calls, and reads back framed JSON + raw array
bytes: each cell's outputs (stdout/stderr apart, errors, displayed values, figures as PNG) for
the autograded notebook, and each call's returned value for the judge
(:mod:`course_lib.grading.specs`), which rebuilds arrays with :func:`numpy.frombuffer` in the
grader's own pristine process.

If the child dies (``os._exit``, a segfault, the memory limit) or a cell overruns its timeout,
only that cell or call is lost: :func:`run_in_sandbox` starts a new child, replays the cells
that completed before (their first outputs are kept), skips the guilty cell and goes on. An
endless loop costs one timeout, once. The limits are one :class:`~.isolation.Limits` value.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import os
import platform
import selectors
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import isolation
from .isolation import Limits

__all__ = [
    "ArrayValue",
    "Call",
    "CallOutcome",
    "CellReport",
    "CellSource",
    "ExceptionValue",
    "GraderInitializer",
    "Limits",
    "ObjectValue",
    "Rng",
    "SandboxRun",
    "ScalarValue",
    "SeqValue",
    "run_in_sandbox",
]

_MAX_ARRAY_BYTES = 256 * 2**20
_MAX_ITEMS = 1000
_HEADER = struct.Struct(">Q")


# =========================================================================== shared types


@dataclass(frozen=True)
class Rng:
    """Argument marker: the child passes ``np.random.default_rng(seed)``."""

    seed: int


@dataclass(frozen=True)
class GraderInitializer:
    """Argument marker: a grader-made ``initializer(shape, *, rng)`` drawing ``scale * N(0, 1)``.

    Used to check ``init_network``: the parent recomputes the exact expected weights.
    """

    scale: float


@dataclass(frozen=True)
class Call:
    """One call of a student function, made in the child.

    ``global_seed`` seeds the legacy global ``np.random`` state right before the call (so a
    function that uses it gives different results for different global seeds).
    """

    key: str
    func: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    global_seed: int | None = None


@dataclass(frozen=True)
class CellSource:
    """A code cell to execute in the child (index = position among the notebook's cells)."""

    index: int
    source: str
    label: str = ""


# --- decoded values (what the parent sees) ---


@dataclass
class ArrayValue:
    """An array the student returned: a plain ndarray rebuilt from bytes, plus its class name."""

    array: np.ndarray[Any, Any]
    cls: str

    @property
    def is_plain_ndarray(self) -> bool:
        """Whether the student returned exactly ``numpy.ndarray`` (not a subclass)."""
        return self.cls == "numpy.ndarray"


@dataclass
class ScalarValue:
    """A Python or NumPy scalar (``cls`` is e.g. ``float``, ``int``, ``numpy.float64``, ``str``)."""

    value: Any
    cls: str


@dataclass
class SeqValue:
    """A tuple or list (``kind``) of decoded values."""

    kind: str
    items: list[Any]
    truncated: bool = False


@dataclass
class ObjectValue:
    """Anything else: only the class name and a short repr come back."""

    cls: str
    repr: str


@dataclass
class ExceptionValue:
    """An exception raised by the call."""

    cls: str
    message: str
    traceback: str = ""


@dataclass
class CallOutcome:
    """What happened to one :class:`Call`.

    ``status`` is ``"ok"`` (returned), ``"raised"`` (an exception), ``"crash"`` (the process
    died), ``"timeout"``, ``"missing"`` (no such function) or ``"not_run"``.
    """

    call: Call
    status: str
    value: Any = None
    error: ExceptionValue | None = None
    global_touched: bool | None = None
    seconds: float = 0.0
    output: str = ""
    detail: str = ""


@dataclass
class CellReport:
    """What happened to one cell: ``ok``, ``raised``, ``syntax``, ``killed`` or ``timeout``."""

    index: int
    status: str
    error: ExceptionValue | None = None
    output: str = ""
    detail: str = ""
    outputs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SandboxRun:
    """Everything a sandboxed run produced."""

    cells: dict[int, CellReport]
    outcomes: dict[str, list[CallOutcome]]
    defined: set[str]
    restarts: int
    python: str
    numpy: str
    seconds: float
    skipped_cells: list[int]
    isolation: str = ""
    seccomp: str = ""


# =========================================================================== parent side


def _encode_arg(v: Any) -> Any:
    if isinstance(v, Rng):
        return {"t": "rng", "seed": int(v.seed)}
    if isinstance(v, GraderInitializer):
        return {"t": "init", "scale": float(v.scale)}
    if isinstance(v, np.ndarray):
        a = np.ascontiguousarray(v)
        return {"t": "array", "dtype": a.dtype.str, "shape": list(a.shape),
                "data": base64.b64encode(a.tobytes()).decode()}
    if isinstance(v, (tuple, list)):
        return {"t": "seq", "kind": "tuple" if isinstance(v, tuple) else "list",
                "items": [_encode_arg(x) for x in v]}
    if isinstance(v, np.generic):
        return v.item()
    return v


def _decode_value(v: Any, buffers: list[bytes]) -> Any:
    if not isinstance(v, dict):
        raise ValueError("malformed value")
    t = v.get("t")
    if t == "array":
        dt = np.dtype(str(v["dtype"]))
        if dt.hasobject:
            raise ValueError("object dtype")
        shape = tuple(int(s) for s in v["shape"])
        raw = buffers[int(v["buf"])]
        if len(raw) != math.prod(shape) * dt.itemsize:
            raise ValueError("array size does not match its shape")
        arr = np.frombuffer(raw, dtype=dt).reshape(shape)
        return ArrayValue(arr, str(v["cls"]))
    if t == "scalar":
        return ScalarValue(v["v"], str(v["cls"]))
    if t == "seq":
        return SeqValue(str(v["kind"]), [_decode_value(x, buffers) for x in v["items"]],
                        bool(v.get("truncated", False)))
    if t == "exception":
        return ExceptionValue(str(v["cls"]), str(v["msg"]), str(v.get("tb", "")))
    if t == "object":
        return ObjectValue(str(v["cls"]), str(v["repr"]))
    raise ValueError(f"unknown value tag {t!r}")


class _ChildDied(Exception):
    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _describe_exit(code: int | None, isolated: bool = False) -> str:
    if code is None:
        return "the process did not exit"
    if isolated and code > 128:  # bwrap reports a child killed by signal N as 128 + N
        code = 128 - code
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        extra = {
            "SIGSEGV": " (segmentation fault)",
            "SIGXCPU": " (CPU time limit exceeded)",
            "SIGXFSZ": " (file size limit exceeded)",
            "SIGKILL": " (killed, e.g. out of memory)",
            "SIGABRT": " (aborted)",
        }.get(name, "")
        return f"the process was killed by {name}{extra}"
    return f"the process exited with status {code} (os._exit or sys.exit?)"


@functools.lru_cache(maxsize=1)
def _child_source() -> str:
    """The child program's text (it runs as ``python -I -c``: no file of the course is mounted)."""
    from . import child

    return Path(child.__file__).read_text(encoding="utf-8")


class _Child:
    """One child process and its framed result channel."""

    def __init__(self, limits: Limits, workdir: str) -> None:
        self.limits = limits
        r, w = os.pipe()
        self.stderr_file = tempfile.TemporaryFile()  # outside the scratch directory
        home = isolation.SANDBOX_WORKDIR if limits.isolate else workdir
        env = {
            "PATH": "/usr/bin:/bin",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": os.path.join(home, ".matplotlib"),
            "HOME": home,
            "TMPDIR": "/tmp" if limits.isolate else workdir,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        argv = [sys.executable, "-I", "-c", _child_source(), "--child", str(w)]
        if limits.isolate:
            argv[0] = isolation.interpreter()  # a venv reached through a link: its real path
            argv = isolation.wrap(argv, env, scratch_bytes=4 * limits.file_bytes)
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr_file,
            pass_fds=(w,),
            cwd=workdir,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
        os.close(w)
        self.rfd = r
        self.buf = bytearray()
        self.sel = selectors.DefaultSelector()
        self.sel.register(r, selectors.EVENT_READ)
        self.dead = False
        self.closed = False
        self.info: dict[str, Any] = {}
        self.send({
            "memory_mb": limits.memory_mb,
            "cpu_seconds": limits.cpu_seconds,
            "file_bytes": limits.file_bytes,
            "output_chars": limits.output_chars,
            "processes": limits.processes,
            "seccomp": True,
        })
        try:
            ready, _ = self.receive(limits.startup_timeout)
            if ready.get("ev") != "ready":
                raise _ChildDied("crash", "the grading process did not start")
        except _ChildDied:
            self.close()
            raise
        self.info = ready

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the death shows up when reading

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if not self.sel.select(timeout=left):
                raise TimeoutError
            chunk = os.read(self.rfd, max(1 << 20, n - len(self.buf)))
            if not chunk:
                raise EOFError
            self.buf += chunk
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def receive(self, timeout: float) -> tuple[dict[str, Any], list[bytes]]:
        deadline = time.monotonic() + timeout
        try:
            (size,) = _HEADER.unpack(self._read_exact(_HEADER.size, deadline))
            if size > 64 * 2**20:
                raise ValueError("header too large")
            header = json.loads(self._read_exact(size, deadline))
            if not isinstance(header, dict):
                raise ValueError("malformed header")
            lengths = [int(x) for x in header.get("buffers", [])]
            if sum(lengths) > 4 * _MAX_ARRAY_BYTES:
                raise ValueError("payload too large")
            buffers = [self._read_exact(n, deadline) for n in lengths]
            return header, buffers
        except TimeoutError:
            self.kill()
            raise _ChildDied("timeout", f"timed out after {timeout:g} s (endless loop?)") from None
        except EOFError:
            code = self.proc.wait(timeout=10)
            self.dead = True
            raise _ChildDied("crash", _describe_exit(code, self.limits.isolate)
                             + self._stderr_tail()) from None
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            self.kill()
            raise _ChildDied("crash", f"the grading process sent malformed data ({exc})") from None

    def _stderr_tail(self) -> str:
        try:
            self.stderr_file.seek(0, os.SEEK_END)
            size = self.stderr_file.tell()
            self.stderr_file.seek(max(0, size - 4000))
            tail = self.stderr_file.read().decode(errors="replace").strip()
        except OSError:
            return ""
        lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
        fatal = [ln for ln in lines if ln.startswith(("Fatal Python error", "MemoryError"))]
        shown = fatal[:1] or lines[-1:]
        return ("; " + shown[0][:300]) if shown else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.proc.wait(timeout=10)
        self.dead = True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.dead and self.proc.poll() is None:
            self.send({"op": "exit"})
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        self.sel.close()
        os.close(self.rfd)
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self.stderr_file.close()


def _start(
    cells: Sequence[CellSource], skip: set[int], limits: Limits, workdir: str,
    reports: dict[int, CellReport],
) -> tuple[_Child | None, int | None]:
    """Start a child and execute ``cells`` (except ``skip``).

    Returns ``(child, None)`` on success or ``(None, index)`` if cell ``index`` killed it.
    """
    child = _Child(limits, workdir)
    for cell in cells:
        if cell.index in skip:
            continue
        child.send({"op": "exec", "index": cell.index, "source": cell.source})
        try:
            start, _ = child.receive(limits.cell_timeout)
            done, _ = child.receive(limits.cell_timeout)
        except _ChildDied as died:
            reports[cell.index] = CellReport(
                cell.index, "killed" if died.status == "crash" else "timeout", detail=died.detail)
            child.close()
            return None, cell.index
        if cell.index in reports:
            continue  # a replay after a restart: the first run's outputs are kept
        err = done.get("error")
        outputs = done.get("outputs", [])
        reports[cell.index] = CellReport(
            cell.index, str(done.get("status", "ok")),
            _decode_value(err, []) if err else None, str(done.get("output", "")),
            outputs=outputs if isinstance(outputs, list) else [])
        del start
    return child, None


def run_in_sandbox(
    cells: Sequence[CellSource],
    groups: Mapping[str, Sequence[Call]],
    *,
    limits: Limits | None = None,
    isolate: bool = False,
) -> SandboxRun:
    """Execute ``cells`` in a child and perform every group of calls.

    Parameters
    ----------
    cells
        Code cells in notebook order (cells that must not run, such as hidden-test calls,
        already removed by the caller).
    groups
        ``{function name: calls}``. A group stops at the first call that kills the child or
        times out; the child is restarted for the next group, so one broken function never costs
        another.
    limits
        Resource limits (:class:`Limits`).
    isolate
        Start a fresh child for every group (slower, stronger isolation).
    """
    limits = limits or Limits()
    t0 = time.perf_counter()
    reports: dict[int, CellReport] = {}
    outcomes: dict[str, list[CallOutcome]] = {}
    skip: set[int] = set()
    restarts = 0
    info: dict[str, Any] = {}
    defined: set[str] = set()
    names = list(groups)
    with tempfile.TemporaryDirectory(prefix="grading-") as workdir:
        child: _Child | None = None

        def ensure() -> _Child:
            nonlocal child, restarts
            while child is None:
                if restarts > limits.max_restarts:
                    raise _ChildDied("crash", "too many restarts of the grading process")
                started, killer = _start(cells, skip, limits, workdir, reports)
                if started is None:
                    assert killer is not None
                    skip.add(killer)
                    restarts += 1
                    continue
                child = started
                info.update(child.info)
            return child

        def defined_names() -> set[str]:
            nonlocal child, restarts
            for _attempt in range(2):
                c = ensure()
                c.send({"op": "names", "names": names})
                try:
                    header, _ = c.receive(limits.call_timeout)
                    return set(header.get("defined", []))
                except _ChildDied:
                    c.close()
                    child = None
                    restarts += 1
            return set()

        fatal: str | None = None
        try:
            try:
                ensure()  # every cell runs, even with no function to judge
            except _ChildDied as died:
                fatal = died.detail
            for gi, (fname, calls) in enumerate(groups.items()):
                if fatal is not None:
                    outcomes[fname] = [CallOutcome(call, "crash", detail=fatal) for call in calls]
                    continue
                if isolate and gi > 0 and child is not None:
                    child.close()
                    child = None
                try:
                    defined = defined_names()
                except _ChildDied as died:
                    fatal = died.detail
                    outcomes[fname] = [CallOutcome(call, "crash", detail=fatal) for call in calls]
                    continue
                res: list[CallOutcome] = []
                if fname not in defined:
                    res = [CallOutcome(call, "missing", detail=f"function {fname} not found")
                           for call in calls]
                    outcomes[fname] = res
                    continue
                broken: str | None = None
                for call in calls:
                    if broken is not None or child is None:
                        res.append(CallOutcome(call, "not_run", detail=broken or "not run"))
                        continue
                    c = child
                    c.send({
                        "op": "call", "key": call.key, "func": call.func,
                        "args": [_encode_arg(a) for a in call.args],
                        "kwargs": {k: _encode_arg(v) for k, v in call.kwargs.items()},
                        "global_seed": call.global_seed,
                    })
                    try:
                        header, buffers = c.receive(limits.call_timeout)
                        value = _decode_value(header["value"], buffers)
                    except _ChildDied as died:
                        res.append(CallOutcome(call, died.status, detail=died.detail))
                        broken = f"not run: an earlier call {died.status}ed" if died.status == \
                            "crash" else "not run: an earlier call timed out"
                        c.close()
                        child = None  # restarted (cells replayed) for the next function
                        restarts += 1
                        continue
                    except (ValueError, KeyError, IndexError, TypeError) as exc:
                        res.append(CallOutcome(call, "crash", detail=f"malformed result: {exc}"))
                        continue
                    status = str(header.get("status"))
                    res.append(CallOutcome(
                        call,
                        "ok" if status == "ok" else "raised",
                        value if status == "ok" else None,
                        value if isinstance(value, ExceptionValue) else None,
                        bool(header.get("global_touched")),
                        float(header.get("seconds", 0.0)),
                        str(header.get("output", "")),
                    ))
                outcomes[fname] = res
        finally:
            if child is not None:
                child.close()
    return SandboxRun(
        reports, outcomes, defined, restarts, str(info.get("python", platform.python_version())),
        str(info.get("numpy", "")), time.perf_counter() - t0, sorted(skip),
        isolation="bwrap" if limits.isolate else "NONE (--unsafe-no-isolation)",
        seccomp=str(info.get("seccomp", fatal or "")),
    )
