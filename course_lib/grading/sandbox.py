"""Run student code in a resource-limited child process and bring back plain data.

The parent (the grader) never executes student code. It starts this very file as a script,
``python -I sandbox.py --child FD``, in a scratch directory; the child

* removes every import route to :mod:`course_lib` (the editable-install finder, any path that
  holds a ``course_lib`` package) and installs a meta-path blocker, so a student cannot call the
  reference implementation or read the grader's expected values;
* sets resource limits (``RLIMIT_AS`` memory, ``RLIMIT_CPU``, ``RLIMIT_FSIZE`` for files
  written, no core dumps), sends its own Python-level output to a capped buffer and the C-level
  stdout to ``/dev/null``;
* executes the code cells the parent sends (the notebook's non-test cells), one at a time,
  reporting each start and end, so a cell that kills the process at top level is known and can
  be skipped on a restart;
* performs the calls the parent asks for, with generators the parent seeded, and sends every
  result back as plain data: JSON for scalars, tuples and exceptions, and arrays as
  ``(dtype, shape, raw bytes)`` read through the base ``ndarray`` type, which the parent rebuilds
  with :func:`numpy.frombuffer`. The returned class name is recorded, so an ``ndarray`` subclass
  is reported (and its overridden methods never run in the parent).
* before each call it seeds the legacy global ``np.random`` state and reports whether the call
  touched it.

If the child dies (``os._exit``, a segfault, ``MemoryError`` that kills it, a timeout), only
the call or cell it was running is lost: :func:`run_in_sandbox` restarts it (skipping a cell
that killed it) and goes on with the next function.

This module imports only the standard library and NumPy at top level, because the child runs it
as a script without :mod:`course_lib` on the path.
"""

from __future__ import annotations

import base64
import builtins
import io
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
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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


@dataclass(frozen=True)
class Limits:
    """Resource limits of the child process.

    ``memory_mb`` caps the address space (``RLIMIT_AS``); ``cpu_seconds`` the child's total CPU
    time; ``call_timeout`` / ``cell_timeout`` the wall-clock time of one call of a student
    function (correct ones take milliseconds) and of one top-level cell (which may run a small
    experiment); ``output_chars`` what is kept of the student's printed output per cell or call;
    ``file_bytes`` the largest file the child may write.
    """

    memory_mb: int = 2048
    cpu_seconds: int = 300
    call_timeout: float = 20.0
    cell_timeout: float = 60.0
    startup_timeout: float = 30.0
    output_chars: int = 4000
    file_bytes: int = 2**20


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


# =========================================================================== child side


class _CappedWriter(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.total = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        s = str(s)
        self.total += len(s)
        if self.kept < self.limit:
            piece = s[: self.limit - self.kept]
            self.parts.append(piece)
            self.kept += len(piece)
        return len(s)

    def take(self) -> str:
        text = "".join(self.parts)
        if self.total > self.kept:
            text += f"\n[... output truncated: {self.total} characters printed in total]"
        self.parts, self.kept, self.total = [], 0, 0
        return text


class _Blocker:
    """Meta-path finder refusing ``course_lib`` in the child."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "course_lib" or name.startswith("course_lib."):
            raise ModuleNotFoundError(
                f"No module named {name!r} (the reference library is not available while grading)"
            )
        return None


def _child_isolate() -> None:
    sys.meta_path[:] = [
        f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")
        and "editable" not in type(f).__name__.lower() and "editable" not in repr(f).lower()
    ]
    sys.meta_path.insert(0, _Blocker())
    sys.path[:] = [
        p for p in sys.path
        if not os.path.isfile(os.path.join(p or ".", "course_lib", "__init__.py"))
    ]
    for name in [m for m in sys.modules if m == "course_lib" or m.startswith("course_lib.")]:
        del sys.modules[name]


def _child_limits(spec: dict[str, Any]) -> None:
    import resource

    mem = int(spec["memory_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    cpu = int(spec["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    fs = int(spec["file_bytes"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (fs, fs))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _exc_value(exc: BaseException, skip_frames: int = 1) -> dict[str, Any]:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(tb[:1] + tb[1 + skip_frames:]) if len(tb) > skip_frames + 1 else "".join(tb)
    try:
        msg = str(exc)
    except Exception:
        msg = "<unprintable message>"
    return {"t": "exception", "cls": type(exc).__name__, "msg": msg[:2000], "tb": text[-3000:]}


def _encode(value: Any, buffers: list[bytes], depth: int = 0,
            budget: list[int] | None = None) -> Any:
    """Encode ``value`` as JSON-able data; array bytes go to ``buffers``.

    ``budget`` caps the number of encoded items (a nested list of 200,000 floats is reported by
    its first items only).
    """
    if budget is None:
        budget = [_MAX_ITEMS]
    budget[0] -= 1
    tp = type(value)
    cls = f"{tp.__module__}.{tp.__qualname__}" if tp.__module__ != "builtins" else tp.__qualname__
    if isinstance(value, np.ndarray):
        base = np.ndarray.view(value, np.ndarray)
        dt = base.dtype
        if dt.hasobject or dt.fields is not None:
            return {"t": "object", "cls": cls, "repr": f"array of dtype {dt}"}
        nbytes = int(base.size) * int(dt.itemsize)
        if nbytes > _MAX_ARRAY_BYTES:
            return {"t": "object", "cls": cls, "repr": f"array of {nbytes} bytes (too large)"}
        raw = np.ndarray.tobytes(np.ascontiguousarray(base))
        buffers.append(raw)
        return {"t": "array", "dtype": dt.str, "shape": [int(s) for s in base.shape], "cls": cls,
                "buf": len(buffers) - 1}
    if isinstance(value, (bool, int, float, str, type(None), np.generic)) and not isinstance(
        value, np.void
    ):
        if isinstance(value, np.generic):
            if isinstance(value, (np.floating, np.integer, np.bool_)):
                py = value.item()
            else:
                py = str(value)
        elif isinstance(value, str):
            py = value[:2000]
        elif isinstance(value, int) and not isinstance(value, bool):
            py = int(value) if abs(int(value)) < 2**62 else float(int(value))
        elif isinstance(value, float):
            py = float(value)
        else:
            py = value
        return {"t": "scalar", "cls": cls, "v": py}
    if isinstance(value, (tuple, list)) and depth < 4:
        items = list(value)
        enc = []
        for v in items:
            if budget[0] <= 0:
                break
            enc.append(_encode(v, buffers, depth + 1, budget))
        return {"t": "seq", "kind": "tuple" if isinstance(value, tuple) else "list", "cls": cls,
                "items": enc, "truncated": len(enc) < len(items)}
    try:
        r = object.__repr__(value)
    except Exception:
        r = "<object>"
    return {"t": "object", "cls": cls, "repr": r[:200]}


def _decode_arg(v: Any, initializer_factory: Callable[[float], Any]) -> Any:
    if isinstance(v, dict):
        t = v.get("t")
        if t == "rng":
            return np.random.default_rng(int(v["seed"]))
        if t == "array":
            raw = base64.b64decode(v["data"])
            return np.frombuffer(raw, dtype=np.dtype(v["dtype"])).reshape(v["shape"]).copy()
        if t == "seq":
            items = [_decode_arg(x, initializer_factory) for x in v["items"]]
            return tuple(items) if v["kind"] == "tuple" else items
        if t == "init":
            return initializer_factory(float(v["scale"]))
        raise ValueError(f"unknown argument tag {t!r}")
    return v


def _make_grader_initializer(scale: float) -> Any:
    def grader_initializer(shape: Any, *, rng: np.random.Generator) -> np.ndarray[Any, Any]:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"the initializer expects rng to be a numpy Generator, got {rng!r}")
        return scale * rng.standard_normal(tuple(shape))

    return grader_initializer


def _child_main(result_fd: int) -> None:  # pragma: no cover - runs in the child process
    proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    out = os.fdopen(result_fd, "wb", buffering=0)
    _child_isolate()
    spec = json.loads(proto_in.readline())
    _child_limits(spec)
    limit = int(spec["output_chars"])
    cap = _CappedWriter(limit)
    sys.stdout = cap
    sys.stderr = cap
    sys.stdin = io.StringIO("")
    import faulthandler

    faulthandler.enable(file=2)
    global_rand = np.random.mtrand._rand
    seed_global = global_rand.seed
    get_global = global_rand.get_state
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}

    def send(header: dict[str, Any], buffers: Sequence[bytes] = ()) -> None:
        header["buffers"] = [len(b) for b in buffers]
        data = json.dumps(header, allow_nan=True).encode()
        out.write(_HEADER.pack(len(data)) + data)
        for b in buffers:
            view = memoryview(b)
            while view:
                n = out.write(view)
                view = view[n or 0:]

    send({"ev": "ready", "python": platform.python_version(), "numpy": np.__version__})
    while True:
        line = proto_in.readline()
        if not line:
            return
        req = json.loads(line)
        op = req["op"]
        if op == "exit":
            return
        if op == "exec":
            index = int(req["index"])
            send({"ev": "cell_start", "index": index})
            err = None
            try:
                code = compile(req["source"], f"<cell {index}>", "exec")
            except SyntaxError as exc:
                send({"ev": "cell_done", "index": index, "status": "syntax",
                      "error": _exc_value(exc, 0), "output": cap.take()})
                continue
            try:
                exec(code, ns)
            except BaseException as exc:
                err = _exc_value(exc)
            send({"ev": "cell_done", "index": index, "status": "raised" if err else "ok",
                  "error": err, "output": cap.take()})
        elif op == "names":
            names = [n for n in req["names"] if callable(ns.get(n))]
            send({"ev": "names", "defined": names})
        elif op == "call":
            func = ns.get(req["func"])
            gseed = req.get("global_seed")
            if gseed is not None:
                seed_global(int(gseed))
            before: Any = get_global()
            buffers: list[bytes] = []
            t0 = time.perf_counter()
            try:
                args = [_decode_arg(a, _make_grader_initializer) for a in req["args"]]
                kwargs = {k: _decode_arg(v, _make_grader_initializer)
                          for k, v in req["kwargs"].items()}
                if not callable(func):
                    raise NameError(f"function {req['func']} not found")
                value = func(*args, **kwargs)
                enc = _encode(value, buffers)
                status = "ok"
            except BaseException as exc:
                enc = _exc_value(exc)
                status = "raised"
                buffers = []
            secs = time.perf_counter() - t0
            after: Any = get_global()
            touched = not (before[0] == after[0] and bool(np.array_equal(before[1], after[1]))
                           and before[2:] == after[2:])
            send({"ev": "result", "key": req["key"], "status": status, "value": enc,
                  "global_touched": touched, "seconds": secs, "output": cap.take()}, buffers)


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


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the process did not exit"
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


class _Child:
    """One child process and its framed result channel."""

    def __init__(self, limits: Limits, workdir: str) -> None:
        self.limits = limits
        r, w = os.pipe()
        self.stderr_file = tempfile.TemporaryFile(dir=workdir)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "HOME": workdir,
            "LANG": "C.UTF-8",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), "--child", str(w)],
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
            raise _ChildDied("crash", _describe_exit(code) + self._stderr_tail()) from None
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            self.kill()
            raise _ChildDied("crash", f"the grading process sent malformed data ({exc})") from None

    def _stderr_tail(self) -> str:
        try:
            self.stderr_file.seek(0, os.SEEK_END)
            size = self.stderr_file.tell()
            self.stderr_file.seek(max(0, size - 600))
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
        err = done.get("error")
        reports[cell.index] = CellReport(
            cell.index, str(done.get("status", "ok")),
            _decode_value(err, []) if err else None, str(done.get("output", "")))
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
        Code cells in notebook order (test cells already removed by the caller).
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
                started, killer = _start(cells, skip, limits, workdir, reports)
                if started is None:
                    assert killer is not None
                    skip.add(killer)
                    restarts += 1
                    continue
                child = started
                info.update(child.info)
            return child

        try:
            for gi, (fname, calls) in enumerate(groups.items()):
                if isolate and gi > 0 and child is not None:
                    child.close()
                    child = None
                c = ensure()
                c.send({"op": "names", "names": names})
                try:
                    header, _ = c.receive(limits.call_timeout)
                    defined = set(header.get("defined", []))
                except _ChildDied:
                    c.close()
                    child = None
                    restarts += 1
                    c = ensure()
                    c.send({"op": "names", "names": names})
                    header, _ = c.receive(limits.call_timeout)
                    defined = set(header.get("defined", []))
                res: list[CallOutcome] = []
                if fname not in defined:
                    res = [CallOutcome(call, "missing", detail=f"function {fname} not found")
                           for call in calls]
                    outcomes[fname] = res
                    continue
                broken: str | None = None
                for call in calls:
                    if broken is not None:
                        res.append(CallOutcome(call, "not_run", detail=broken))
                        continue
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
                        child = None
                        restarts += 1
                        c = ensure()
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
    )


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--child":
    _child_main(int(sys.argv[2]))
