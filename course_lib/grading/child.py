"""The program that runs a submission inside the sandbox (one process per submission).

The grader (:mod:`course_lib.grading.sandbox`) starts it as ``python -I -c <this file> --child
FD`` inside bubblewrap (:mod:`course_lib.grading.isolation`). It imports only the standard
library and NumPy (plus, when present, ``pyseccomp`` for its filter and IPython's input
transformer for cells with magics), because :mod:`course_lib` is neither importable nor visible
in there. It

* blocks every import route to :mod:`course_lib` (the editable-install finder points at a
  checkout that is not mounted; a meta-path blocker gives a clear message);
* sets its resource limits (``RLIMIT_AS``, ``RLIMIT_CPU``, ``RLIMIT_FSIZE``, ``RLIMIT_NPROC``, no
  core dumps) and, when ``pyseccomp`` and libseccomp are available, a seccomp filter that
  refuses new programs (``execve``) and new processes (``fork``/``clone`` without
  ``CLONE_THREAD``), ``ptrace``, namespace and mount calls;
* executes the notebook's cells the grader sends, one at a time, like a Jupyter kernel: IPython
  magics go through IPython's own transformer (``%matplotlib inline`` works; line magics other
  than ``%time``/``%timeit`` and shell escapes are no-ops that say so), the value of a cell's last
  expression is displayed, stdout and stderr are kept apart and capped, and open matplotlib
  figures are sent back as PNG after the cell, as the inline backend does;
* performs the calls the judge asks for, with generators the grader seeded, and sends every
  result back as plain data: JSON for scalars, tuples and exceptions, arrays as ``(dtype, shape,
  raw bytes)`` read through the base ``ndarray`` type (an ``ndarray`` subclass is reported by
  name, its methods never run in the grader); before each call it seeds the legacy global
  ``np.random`` state and reports whether the call touched it.

Messages to the grader are framed (8-byte length, JSON header, raw buffers) on the file
descriptor given on the command line; requests arrive as JSON lines on stdin.
"""

from __future__ import annotations

import base64
import builtins
import io
import json
import os
import platform
import re
import struct
import sys
import time
import traceback
from builtins import (  # noqa: UP029
    BaseException,
    Exception,
    abs,
    bool,
    callable,
    dict,
    float,
    int,
    isinstance,
    len,
    list,
    object,
    print,
    repr,
    str,
    tuple,
    type,
)
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# The child's own references to the builtins and NumPy functions it uses after student code ran
# (the `from builtins import` above binds them as this module's globals): a student who patches
# `builtins.isinstance` or `np.ascontiguousarray` changes only what their own code sees.
_ascontiguousarray = np.ascontiguousarray
_exit = os._exit


def _pin_builtins() -> None:
    """Give the modules the protocol runs through their own copy of today's builtins.

    They then no longer look names up in :mod:`builtins`, so ``builtins.isinstance = ...`` in a
    student's cell cannot break the framing of the results (it changes only the student's code).
    """
    import json.decoder
    import json.encoder
    import linecache

    snapshot = {k: v for k, v in vars(builtins).items() if not k.startswith("__")}
    for mod in (json, json.encoder, json.decoder, traceback, linecache, base64):
        for k, v in snapshot.items():
            mod.__dict__.setdefault(k, v)

_array_equal = np.array_equal

MAX_ARRAY_BYTES = 256 * 2**20
MAX_ITEMS = 1000
HEADER = struct.Struct(">Q")


class Recorder(io.TextIOBase):
    """A stream that records ``(name, text)`` chunks; one shared character cap per cell."""

    def __init__(self, name: str, sink: Outputs) -> None:
        self.name = name
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        s = str(s)
        self.sink.stream(self.name, s)
        return len(s)

    def flush(self) -> None:
        return None


class Outputs:
    """The outputs of one cell (or call), in nbformat's shape, capped at ``limit`` characters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[dict[str, Any]] = []
        self.used = 0
        self.total = 0

    def stream(self, name: str, text: str) -> None:
        self.total += len(text)
        if self.used >= self.limit:
            return
        piece = text[: self.limit - self.used]
        self.used += len(piece)
        last = self.items[-1] if self.items else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += piece
        else:
            self.items.append({"output_type": "stream", "name": name, "text": piece})

    def add(self, item: dict[str, Any]) -> None:
        self.items.append(item)

    def take(self) -> list[dict[str, Any]]:
        if self.total > self.used:
            self.stream_note(f"\n... output truncated after {self.limit} characters "
                             f"({self.total} printed) ...\n")
        items, self.items, self.used, self.total = self.items, [], 0, 0
        return items

    def stream_note(self, text: str) -> None:
        self.used = -len(text)  # always room for the note
        self.stream("stdout", text)

    def text(self) -> str:
        return "".join(o.get("text", "") for o in self.items if o["output_type"] == "stream")


class Blocker:
    """Meta-path finder refusing ``course_lib`` in the child."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "course_lib" or name.startswith("course_lib."):
            raise ModuleNotFoundError(
                f"No module named {name!r} (the reference library is not available while grading)"
            )
        return None


def isolate_imports() -> None:
    sys.meta_path[:] = [
        f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")
        and "editable" not in type(f).__name__.lower() and "editable" not in repr(f).lower()
    ]
    sys.meta_path.insert(0, Blocker())
    sys.path[:] = [
        p for p in sys.path
        if not os.path.isfile(os.path.join(p or ".", "course_lib", "__init__.py"))
    ]
    for name in [m for m in sys.modules if m == "course_lib" or m.startswith("course_lib.")]:
        del sys.modules[name]


def set_limits(spec: dict[str, Any]) -> str:
    """Apply rlimits and (when available) the seccomp filter; return a note on seccomp."""
    import resource

    mem = int(spec["memory_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    cpu = int(spec["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    fs = int(spec["file_bytes"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (fs, fs))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nproc = int(spec.get("processes", 0))
    if nproc > 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    if spec.get("seccomp", True):
        return install_seccomp()
    return "off"


def install_seccomp() -> str:
    """Refuse new programs and processes, ptrace, namespaces and mounts (EPERM)."""
    try:
        import errno

        import pyseccomp as sc  # type: ignore[import-untyped]
    except Exception as exc:  # not installed, or no libseccomp on this machine
        return f"unavailable ({type(exc).__name__})"
    try:
        f = sc.SyscallFilter(defaction=sc.ALLOW)
        deny = sc.ERRNO(errno.EPERM)
        for name in ("execve", "execveat", "fork", "vfork", "ptrace", "process_vm_writev",
                     "process_vm_readv", "unshare", "setns", "mount", "umount2", "pivot_root",
                     "chroot", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
                     "userfaultfd", "kexec_load", "init_module", "finit_module", "reboot",
                     "swapon", "swapoff", "open_by_handle_at", "name_to_handle_at"):
            try:
                f.add_rule(deny, name)
            except Exception:
                continue
        clone_thread = 0x00010000
        f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, clone_thread, 0))
        try:  # glibc falls back to clone when clone3 is "not implemented"
            f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        except Exception:
            pass
        f.load()
    except Exception as exc:
        return f"failed ({type(exc).__name__}: {exc})"
    return "on"


def exc_value(exc: BaseException, skip_frames: int = 1) -> dict[str, Any]:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(tb[:1] + tb[1 + skip_frames:]) if len(tb) > skip_frames + 1 else "".join(tb)
    try:
        msg = str(exc)
    except Exception:
        msg = "<unprintable message>"
    return {"t": "exception", "cls": type(exc).__name__, "msg": msg[:2000], "tb": text[-3000:]}


def encode(value: Any, buffers: list[bytes], depth: int = 0,
           budget: list[int] | None = None) -> Any:
    """Encode ``value`` as JSON-able data; array bytes go to ``buffers``.

    ``budget`` caps the number of encoded items (a nested list of 200,000 floats is reported by
    its first items only).
    """
    if budget is None:
        budget = [MAX_ITEMS]
    budget[0] -= 1
    tp = type(value)
    cls = f"{tp.__module__}.{tp.__qualname__}" if tp.__module__ != "builtins" else tp.__qualname__
    if isinstance(value, np.ndarray):
        base = np.ndarray.view(value, np.ndarray)
        dt = base.dtype
        if dt.hasobject or dt.fields is not None:
            return {"t": "object", "cls": cls, "repr": f"array of dtype {dt}"}
        nbytes = int(base.size) * int(dt.itemsize)
        if nbytes > MAX_ARRAY_BYTES:
            return {"t": "object", "cls": cls, "repr": f"array of {nbytes} bytes (too large)"}
        raw = np.ndarray.tobytes(_ascontiguousarray(base))
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
            py = str.__str__(value)[:2000]
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
            enc.append(encode(v, buffers, depth + 1, budget))
        return {"t": "seq", "kind": "tuple" if isinstance(value, tuple) else "list", "cls": cls,
                "items": enc, "truncated": len(enc) < len(items)}
    try:
        r = object.__repr__(value)
    except Exception:
        r = "<object>"
    return {"t": "object", "cls": cls, "repr": r[:200]}


def decode_arg(v: Any, initializer_factory: Callable[[float], Any]) -> Any:
    if isinstance(v, dict):
        t = v.get("t")
        if t == "rng":
            return np.random.default_rng(int(v["seed"]))
        if t == "array":
            raw = base64.b64decode(v["data"])
            return np.frombuffer(raw, dtype=np.dtype(v["dtype"])).reshape(v["shape"]).copy()
        if t == "seq":
            items = [decode_arg(x, initializer_factory) for x in v["items"]]
            return tuple(items) if v["kind"] == "tuple" else items
        if t == "init":
            return initializer_factory(float(v["scale"]))
        raise ValueError(f"unknown argument tag {t!r}")
    return v


def make_grader_initializer(scale: float) -> Any:
    def grader_initializer(shape: Any, *, rng: np.random.Generator) -> np.ndarray[Any, Any]:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"the initializer expects rng to be a numpy Generator, got {rng!r}")
        return scale * rng.standard_normal(tuple(shape))

    return grader_initializer


# --------------------------------------------------------------------------- cells

_MAGIC_HINT = re.compile(r"^\s*[%!]|\?\s*$", re.M)


class Shell:
    """The little of ``get_ipython()`` that transformed magics call."""

    def __init__(self, ns: dict[str, Any], outputs: Outputs) -> None:
        self.ns = ns
        self.outputs = outputs
        self.user_ns = ns

    def _note(self, what: str) -> None:
        print(f"[grader] {what} is not run while grading", file=sys.stderr)

    def run_line_magic(self, name: str, line: str, _stack_depth: int = 1) -> Any:
        if name in ("time", "timeit"):
            code = compile(line, "<magic>", "exec")
            exec(code, self.ns)
            return None
        if name in ("matplotlib", "config", "load_ext", "reload_ext", "autoreload", "aimport",
                    "precision", "xmode", "pprint", "who", "whos", "env", "pylab", "colors",
                    "alias", "history", "page", "pinfo", "pinfo2", "pdoc", "psource"):
            return None
        self._note(f"%{name}")
        return None

    def run_cell_magic(self, name: str, line: str, cell: str) -> Any:
        if name in ("time", "timeit", "capture", "python", "python3"):
            exec(compile(cell, "<magic>", "exec"), self.ns)
            return None
        if name == "writefile":
            path = line.split()[-1] if line.split() else "file.txt"
            with open(path, "a" if "-a" in line.split() else "w", encoding="utf-8") as fh:
                fh.write(cell)
            return None
        self._note(f"%%{name}")
        return None

    def system(self, cmd: str) -> None:
        self._note(f"the shell command `!{cmd}`")

    def getoutput(self, cmd: str, split: bool = True, depth: int = 0) -> list[str]:
        self._note(f"the shell command `!{cmd}`")
        return []

    def run_cell(self, src: str, **kw: Any) -> None:
        exec(compile(src, "<cell>", "exec"), self.ns)


def transform(source: str) -> str:
    """IPython's own cell transformation (magics, ``!``, ``?``) when the cell seems to need it."""
    if not _MAGIC_HINT.search(source):
        return source
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except Exception:  # no IPython: drop magic lines
        return "\n".join("pass" if re.match(r"^\s*[%!]", ln) else ln
                         for ln in source.splitlines()) + "\n"
    out: str = TransformerManager().transform_cell(source)  # type: ignore[no-untyped-call]
    return out


def _figures(outputs: Outputs) -> None:
    """Send open matplotlib figures as PNG and close them (the inline backend's behaviour)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        for num in list(plt.get_fignums()):
            fig = plt.figure(num)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
            data = base64.b64encode(buf.getvalue()).decode()
            outputs.add({"output_type": "display_data", "metadata": {},
                         "data": {"image/png": data, "text/plain": f"<Figure {num}>"}})
        plt.close("all")
    except Exception as exc:  # a figure that cannot be drawn is reported, not fatal
        outputs.stream("stderr", f"[grader] a figure could not be drawn: {exc}\n")


def _display_value(value: Any, outputs: Outputs, kind: str, count: int) -> None:
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    item: dict[str, Any] = {"output_type": kind, "metadata": {},
                            "data": {"text/plain": text[: outputs.limit]}}
    if kind == "execute_result":
        item["execution_count"] = count
    outputs.add(item)


def run_cell(source: str, index: int, ns: dict[str, Any], outputs: Outputs,
             count: int) -> tuple[str, dict[str, Any] | None]:
    """Execute one cell; outputs go to ``outputs``; return ``(status, error)``."""
    try:
        code = transform(source)
        tree = compile(code, f"<cell {index}>", "exec", flags=0x400, dont_inherit=True)  # AST
    except Exception as exc:  # a SyntaxError, or the transformer itself failed
        bad = exc_value(exc, 0)
        _error_output(outputs, bad)
        return "syntax", bad
    import ast

    last: ast.expr | None = None
    body = list(tree.body)  # type: ignore[attr-defined]
    if body and isinstance(body[-1], ast.Expr):
        last = body.pop().value
    err: dict[str, Any] | None = None
    try:
        exec(compile(ast.Module(body=body, type_ignores=[]), f"<cell {index}>", "exec"), ns)
        if last is not None:
            value = eval(compile(ast.Expression(last), f"<cell {index}>", "eval"), ns)
            if value is not None:
                ns["_"] = value
                _display_value(value, outputs, "execute_result", count)
    except BaseException as exc:
        err = exc_value(exc)
        _error_output(outputs, err)
    _figures(outputs)
    return ("raised" if err else "ok"), err


def _error_output(outputs: Outputs, err: dict[str, Any]) -> None:
    outputs.add({"output_type": "error", "ename": err["cls"], "evalue": err["msg"][:2000],
                 "traceback": err["tb"].splitlines()[-60:]})


# --------------------------------------------------------------------------- main loop


def main(result_fd: int) -> None:  # pragma: no cover - runs in the child process
    proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    out = os.fdopen(result_fd, "wb", buffering=0)
    isolate_imports()
    _pin_builtins()
    spec = json.loads(proto_in.readline())
    # Import what the judged calls need before the filter (NumPy's first import reads files).
    global_rand = np.random.mtrand._rand
    seccomp = set_limits(spec)
    outputs = Outputs(int(spec["output_chars"]))
    sys.stdout = Recorder("stdout", outputs)
    sys.stderr = Recorder("stderr", outputs)
    sys.stdin = io.StringIO("")
    import faulthandler

    faulthandler.enable(file=2)
    seed_global = global_rand.seed
    get_global = global_rand.get_state
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    shell = Shell(ns, outputs)
    ns["get_ipython"] = lambda: shell

    def display(*objs: Any, **kw: Any) -> None:
        for o in objs:
            _display_value(o, outputs, "display_data", 0)

    ns["display"] = display
    count = 0

    def send(header: dict[str, Any], buffers: Sequence[bytes] = ()) -> None:
        header["buffers"] = [len(b) for b in buffers]
        data = json.dumps(header, allow_nan=True).encode()
        out.write(HEADER.pack(len(data)) + data)
        for b in buffers:
            view = memoryview(b)
            while view:
                n = out.write(view)
                view = view[n or 0:]

    send({"ev": "ready", "python": platform.python_version(), "numpy": np.__version__,
          "seccomp": seccomp})
    while True:
        line = proto_in.readline()
        if not line:
            return
        req = json.loads(line)
        op = req["op"]
        if op == "exit":
            _exit(0)  # every result is sent: skip the interpreter's (and NumPy's) teardown
        if op == "exec":
            index = int(req["index"])
            count += 1
            send({"ev": "cell_start", "index": index})
            status, err = run_cell(req["source"], index, ns, outputs, count)
            text = outputs.text()
            send({"ev": "cell_done", "index": index, "status": status, "error": err,
                  "output": text, "outputs": outputs.take()})
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
                args = [decode_arg(a, make_grader_initializer) for a in req["args"]]
                kwargs = {k: decode_arg(v, make_grader_initializer)
                          for k, v in req["kwargs"].items()}
                if not callable(func):
                    raise NameError(f"function {req['func']} not found")
                value = func(*args, **kwargs)
                enc = encode(value, buffers)
                status = "ok"
            except BaseException as exc:
                enc = exc_value(exc)
                status = "raised"
                buffers = []
            secs = time.perf_counter() - t0
            after: Any = get_global()
            touched = not (before[0] == after[0] and bool(_array_equal(before[1], after[1]))
                           and before[2:] == after[2:])
            text = outputs.text()
            outputs.take()
            send({"ev": "result", "key": req["key"], "status": status, "value": enc,
                  "global_touched": touched, "seconds": secs, "output": text[:4000]}, buffers)


if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[-2] == "--child":
    main(int(sys.argv[-1]))
