"""nbgrader extensions that let ``nbgrader autograde`` survive broken and hostile notebooks.

Plain nbgrader 0.9.6 (measured on a two-function course, see the book page
``exercises/grading_at_scale``):

* ``os._exit(1)`` or a segfault anywhere in a notebook gives the *whole* notebook no score
  (``auto_score`` None, earlier correct answers included) and makes the batch exit with status 1;
* an endless loop that ignores SIGINT does the same (the interrupt never lands);
* a notebook that is not valid JSON is reported as an error, scored 0 with "needs manual grade",
  and fails the batch;
* a deleted test cell leaves its grade at "needs manual grade" instead of running the test;
* a kernel that allocates memory in a loop runs the machine out of memory (no limit at all).

The classes here fix each of these, and are switched on in the course's ``nbgrader_config.py``:

:class:`ResilientExecute`
    nbgrader's ``Execute`` preprocessor, but a cell that kills the kernel (``os._exit``, a
    segfault, the memory limit) or outlives the timeout gets a readable error output, the kernel is
    restarted, every earlier cell that completed is replayed silently, and execution goes on with
    the next cell. One crash costs only the cells that depend on the crashing code. Stream output
    is capped per cell while it arrives (a notebook printing gigabytes cannot exhaust the grader).
    Hidden test cells whose whole body is ``check_hidden("<name>")`` are judged *outside the
    kernel*, from the notebook's text, by the judge's runner (:mod:`course_lib.grading.runner`):
    nothing a student does inside the kernel (patching ``check_hidden``, NumPy or
    ``sys.modules``) can change their verdict, and an integrity violation the runner detects also
    fails that function's public test cells.
:class:`LimitedKernelManager`
    launches the grading kernel under ``RLIMIT_AS`` (memory) and ``RLIMIT_CPU`` limits, with one
    BLAS thread, through a tiny ``exec`` wrapper: a notebook that allocates more memory than the
    machine has gets ``MemoryError`` (or dies and is restarted), never the OOM killer.
:class:`RestoreCells`
    nbgrader's ``OverwriteCells`` (restores the text of edited locked cells from the gradebook)
    that also re-inserts deleted locked cells (test cells and the read-only setup cell) at their
    place, so deleting a test costs nothing but cannot earn anything either.
:class:`TolerantNotebookExporter`
    reads a submission that is not a valid notebook as an empty notebook with a note saying why,
    so the sanitising step restores the tests, they fail, and the submission scores 0 with a
    readable reason instead of failing the batch.
:class:`LimitOutputChars`
    nbgrader's ``LimitOutput`` (lines) plus a cap on characters per cell (one 5 MB line).

The same limits and the same hidden-cell judgement are used by the parallel batch grader
(:mod:`course_lib.grading.batch`), which is how both give identical grades.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nbformat as _nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.exporters import NotebookExporter
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, LimitOutput, OverwriteCells
from nbgrader.preprocessors.execute import UnresponsiveKernelError
from traitlets import Bool, Integer, Unicode

_nbf: Any = _nbformat  # nbformat has no type hints

__all__ = [
    "HiddenJudgement",
    "LimitOutputChars",
    "LimitedKernelManager",
    "ResilientExecute",
    "RestoreCells",
    "TolerantNotebookExporter",
    "apply_limits",
    "hidden_check_call",
    "hidden_check_target",
    "judge_notebook",
    "judged_outputs",
    "test_cell_concern",
    "test_cell_function",
]

#: Default memory cap (address space) of a process that runs student code, in MiB.
DEFAULT_MEMORY_MB = 4096
#: Default CPU-time cap of a process that runs student code, in seconds.
DEFAULT_CPU_SECONDS = 600
#: Default cap on the characters of stream output kept per cell.
DEFAULT_MAX_OUTPUT_CHARS = 20_000

#: Where grading records go, relative to the course root (ignored by git).
RECORD_DIRECTORY = ".grading/records"

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# Runs as ``python -c`` in front of the kernel command: set the limits, then exec the kernel.
_WRAPPER = (
    "import os, resource, sys\n"
    "m, c = int(sys.argv[1]), int(sys.argv[2])\n"
    "if m > 0: resource.setrlimit(resource.RLIMIT_AS, (m, m))\n"
    "if c > 0: resource.setrlimit(resource.RLIMIT_CPU, (c, c + 5))\n"
    "[os.environ.setdefault(v, '1') for v in "
    + repr(_THREAD_VARS)
    + "]\n"
    "os.execvp(sys.argv[4], sys.argv[4:])\n"
)


def apply_limits(memory_mb: int, cpu_seconds: int) -> None:
    """Apply the grading limits to the current process (use as ``preexec_fn``).

    Parameters
    ----------
    memory_mb : int
        ``RLIMIT_AS`` in MiB (soft = hard, so student code cannot raise it); 0 means no limit.
    cpu_seconds : int
        ``RLIMIT_CPU`` in seconds (SIGXCPU at the soft limit, SIGKILL 5 s later); 0 means none.
    """
    import resource

    if memory_mb > 0:
        cap = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    if cpu_seconds > 0:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def limited_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process that runs student code: one BLAS/OpenMP thread."""
    out = dict(os.environ if env is None else env)
    for var in _THREAD_VARS:
        out.setdefault(var, "1")
    return out


class LimitedKernelManager(AsyncKernelManager):
    """Kernel manager whose kernels run under memory and CPU-time limits.

    Configure with ``c.LimitedKernelManager.memory_limit_mb`` and ``cpu_limit_seconds``.
    """

    memory_limit_mb = Integer(
        DEFAULT_MEMORY_MB, help="RLIMIT_AS of the kernel in MiB (0: no limit)"
    ).tag(config=True)
    cpu_limit_seconds = Integer(
        DEFAULT_CPU_SECONDS, help="RLIMIT_CPU of the kernel in seconds (0: no limit)"
    ).tag(config=True)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd: list[str] = super().format_kernel_cmd(extra_arguments)
        limits = [str(self.memory_limit_mb * 2**20), str(self.cpu_limit_seconds)]
        return [sys.executable, "-c", _WRAPPER, *limits, "--", *cmd]


# --------------------------------------------------------------------------- hidden cells


def hidden_check_call(source: str) -> tuple[str, str | None] | None:
    """``(name, concern)`` if a cell's code is exactly a hidden-test call, else None.

    The recognised body (comments such as ``### BEGIN HIDDEN TESTS`` are ignored) is::

        from course_lib.grading import check_hidden
        check_hidden("<name>", "<concern>")

    or the one-argument form ``check_hidden("<name>")`` (concern None: every concern). Any
    other code returns None and is executed in the kernel as usual.
    (credit, issue 14: the two-argument form; see course_lib/grading/CONTRACT.md.)
    """
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
        and len(call.value.args) in (1, 2)
        and not call.value.keywords
        and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                for a in call.value.args)
    ):
        return None
    args = [str(a.value) for a in call.value.args if isinstance(a, ast.Constant)]
    return args[0], (args[1] if len(args) == 2 else None)


def hidden_check_target(source: str) -> str | None:
    """Return ``name`` if a cell's code is exactly a hidden-test call for ``name``.

    See :func:`hidden_check_call` (which also returns the concern).
    """
    found = hidden_check_call(source)
    return None if found is None else found[0]


def test_cell_function(grade_id: str, functions: list[str]) -> str | None:
    """The graded function a test cell belongs to: ``test_<name>`` or ``test_<name>_...``."""
    best: str | None = None
    for name in functions:
        if grade_id == f"test_{name}" or grade_id.startswith(f"test_{name}_"):
            if best is None or len(name) > len(best):
                best = name
    return best


def test_cell_concern(grade_id: str, functions: list[str]) -> tuple[str, str] | None:
    """``(name, concern)`` of a test cell ``test_<name>_<concern>`` (credit, issue 14)."""
    name = test_cell_function(grade_id, functions)
    if name is None or grade_id == f"test_{name}":
        return None
    return name, grade_id[len(f"test_{name}_"):]


@dataclass
class HiddenJudgement:
    """The out-of-kernel verdict on one graded function of one notebook."""

    function: str
    passed: bool
    message: str
    integrity: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)

    def concern_verdict(self, concern: str | None) -> tuple[bool, str]:
        """``(passed, message)`` of one concern (None: the whole function)."""
        if concern is None:
            return self.passed, self.message
        concerns = self.record.get("concerns")
        if self.integrity or not concerns:
            # a rule was broken, or no concern-level verdict (the function is missing, the
            # grader failed): the whole function's verdict decides every concern
            return self.passed and not self.integrity, self.message
        entry = concerns.get(concern) if isinstance(concerns, Mapping) else None
        if not isinstance(entry, Mapping):
            return False, f"{self.function}: the grader has no concern {concern!r}"
        return bool(entry.get("passed")), str(entry.get("message", ""))

    def outputs(self, concern: str | None = None) -> list[NotebookNode]:
        """The cell outputs that nbgrader scores: nothing on success, an error on failure."""
        passed, message = self.concern_verdict(concern)
        label = self.function if concern is None else f"{self.function} [{concern}]"
        if passed:
            text = f"hidden checks of {label}: passed\n"
            return [_nbf.v4.new_output("stream", name="stdout", text=text)]
        ename = "IntegrityError" if self.integrity else "AssertionError"
        return [
            _nbf.v4.new_output(
                "error",
                ename=ename,
                evalue=message,
                traceback=[f"\x1b[0;31m{ename}\x1b[0m: {message}"],
            )
        ]


def judged_outputs(outputs: list[NotebookNode], judgement: HiddenJudgement,
                   concern: str) -> list[NotebookNode]:
    """A visible test cell's outputs with its points decided by the judge (credit, issue 14).

    The cell ran in the student's kernel (its output stays for the feedback), but whether it
    scores is the judge's verdict on ``concern`` (e.g. ``public``), computed from the bytes the
    student's functions returned: an error the kernel raised is turned into a note if the
    judge passed the concern, and a judge failure adds an error if the kernel raised none.
    """
    passed, message = judgement.concern_verdict(concern)
    if judgement.integrity:
        return integrity_outputs(judgement)
    errors = [o for o in outputs if o.get("output_type") == "error"]
    if passed:
        if not errors:
            return outputs
        kept = [o for o in outputs if o.get("output_type") != "error"]
        note = (f"The grader re-ran this cell's checks on the values your functions returned"
                f" and they passed ({errors[0].get('ename')} in the notebook's own run).\n")
        return [*kept, _nbf.v4.new_output("stream", name="stdout", text=note)]
    if errors:
        return outputs
    return [*outputs, _error_output("AssertionError", message)]


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a verdict (dataclasses, numpy scalars, tuples)."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "item"):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    return repr(value)


def _judgement_from_verdict(name: str, verdict: Any) -> HiddenJudgement:
    record = _plain(verdict.to_dict() if hasattr(verdict, "to_dict") else verdict)
    rec = record if isinstance(record, dict) else {"verdict": record}
    passed = bool(rec.get("passed", False))
    message = str(rec.get("message") or ("passed" if passed else f"{name}: failed"))
    integrity_raw = rec.get("integrity") or rec.get("cheats") or []
    integrity = [str(x) for x in integrity_raw] if isinstance(integrity_raw, list) else []
    return HiddenJudgement(name, passed, message, integrity, rec)


def judge_notebook(
    nb: NotebookNode, assignment: str, functions: list[str], notebook_name: str = "notebook"
) -> dict[str, HiddenJudgement]:
    """Judge ``functions`` of a notebook with the runner, outside any kernel.

    The notebook's text is written to a private temporary directory and handed to
    :func:`course_lib.grading.runner.grade_notebook`, which executes the student's code in its own
    resource-limited sandbox child and computes every statistic with pristine NumPy. A failure of
    the grader itself fails the function with a message that says so (and is logged).
    """
    if not functions:
        return {}
    try:
        from course_lib.grading import runner
    except ImportError as exc:  # pragma: no cover - the runner is part of the package
        msg = f"grader error: course_lib.grading.runner unavailable ({exc})"
        return {f: HiddenJudgement(f, False, msg) for f in functions}
    from course_lib.grading.specs import SPECS

    known = [f for f in functions if f in SPECS.get(assignment, {})]
    verdicts: Any = {}
    with tempfile.TemporaryDirectory(prefix="hidden-") as tmp:
        path = os.path.join(tmp, f"{notebook_name}.ipynb")
        with open(path, "w", encoding="utf-8") as fh:
            _nbf.write(nb, fh)
        try:
            if known:
                verdicts = runner.grade_notebook(path, assignment, functions=known)
        except Exception as exc:  # the grader must not take the batch down
            msg = f"grader error while judging this notebook: {type(exc).__name__}: {exc}"
            return {f: HiddenJudgement(f, False, msg) for f in functions}
    if isinstance(verdicts, Mapping):
        by_name = dict(verdicts)
    else:
        by_name = {getattr(v, "function", getattr(v, "name", "")): v for v in verdicts}
    out = {}
    for f in functions:
        if f in by_name:
            out[f] = _judgement_from_verdict(f, by_name[f])
        else:
            out[f] = HiddenJudgement(f, False, f"the grader has no hidden checks for {f}")
    return out


def plan_hidden(nb: NotebookNode) -> dict[int, str]:
    """Cell index -> function name for every code cell that is a recognised hidden-test call."""
    return {i: name for i, (name, _) in plan_hidden_concerns(nb).items()}


def plan_hidden_concerns(nb: NotebookNode) -> dict[int, tuple[str, str | None]]:
    """Cell index -> ``(function, concern)`` of every recognised hidden-test call."""
    plan = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            found = hidden_check_call(cell.source)
            if found is not None:
                plan[i] = found
    return plan


def visible_test_outputs(grade_id: str, outputs: list[NotebookNode],
                         judgements: Mapping[str, HiddenJudgement],
                         functions: list[str]) -> list[NotebookNode]:
    """The scored outputs of a visible test cell that ran in the kernel (credit, issue 14).

    A cell ``test_<name>_<concern>`` of a judged function whose judge knows that concern
    (``public``) scores by the judge's verdict (:func:`judged_outputs`); any other test cell of
    a judged function keeps its outputs unless the function broke a rule.
    """
    found = test_cell_concern(grade_id, functions)
    name = test_cell_function(grade_id, functions)
    if found is not None and found[0] in judgements:
        j = judgements[found[0]]
        if found[1] in (j.record.get("concerns") or {}):
            return judged_outputs(outputs, j, found[1])
    if name is not None and name in judgements and judgements[name].integrity:
        return integrity_outputs(judgements[name])
    return outputs


def integrity_outputs(judgement: HiddenJudgement) -> list[NotebookNode]:
    """Outputs that fail a public test cell of a function whose code broke the rules."""
    msg = f"{judgement.function}: {'; '.join(judgement.integrity)}"
    return [
        _nbf.v4.new_output(
            "error",
            ename="IntegrityError",
            evalue=msg,
            traceback=[f"\x1b[0;31mIntegrityError\x1b[0m: {msg}"],
        )
    ]


def write_record(
    directory: str,
    assignment: str,
    student: str,
    notebook: str,
    payload: Mapping[str, Any],
) -> str:
    """Write the grading record (verdicts with seeds, tolerances, versions) of one notebook."""
    dest = os.path.join(directory, assignment, student)
    os.makedirs(dest, exist_ok=True)
    path = os.path.join(dest, f"{notebook}.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(_plain(payload), fh, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- execution


def _error_output(ename: str, evalue: str) -> NotebookNode:
    out: NotebookNode = _nbf.v4.new_output(
        "error", ename=ename, evalue=evalue, traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"]
    )
    return out


def kernel_died_output(detail: str = "") -> NotebookNode:
    """The error recorded in a cell during which the kernel (or grading child) died."""
    reason = (
        "the kernel died while running this cell (os._exit, a crash, or the memory limit). "
        "The cells after it ran in a restarted kernel where the cells before it were replayed."
    )
    return _error_output("KernelDied", f"{reason}{' ' + detail if detail else ''}")


def timeout_output(seconds: float) -> NotebookNode:
    """The error recorded in a cell that did not finish in time."""
    return _error_output(
        "CellTimeoutError",
        f"the cell did not finish within {seconds:g} s (an endless loop?); the kernel was "
        "restarted and the cells before it were replayed",
    )


class ResilientExecute(Execute):  # type: ignore[misc]
    """Execute preprocessor that survives dying kernels, endless loops and huge outputs.

    See the module docstring. Configure the per-cell timeout with ``c.Execute.timeout`` and the
    kernel's limits with ``c.LimitedKernelManager``.
    """

    interrupt_on_timeout = Bool(
        False, help="Restart (rather than interrupt) a kernel whose cell timed out."
    ).tag(config=True)
    shutdown_kernel = Unicode("immediate").tag(config=True)
    max_output_chars = Integer(
        DEFAULT_MAX_OUTPUT_CHARS, help="Characters of stream output kept per cell."
    ).tag(config=True)
    max_restarts = Integer(
        25, help="Kernel restarts per notebook before the remaining cells are given up."
    ).tag(config=True)
    judge_hidden_out_of_kernel = Bool(
        True, help="Judge `check_hidden(name)` cells with the runner instead of in the kernel."
    ).tag(config=True)
    record_directory = Unicode(
        RECORD_DIRECTORY,
        help="Where grading records (seeds, tolerances, versions) are written, relative to the "
        "course root; '' for none.",
    ).tag(config=True)

    def _records_root(self) -> str:
        """``record_directory`` resolved against the course root (found via the converter)."""
        if os.path.isabs(self.record_directory):
            return str(self.record_directory)
        node: Any = self
        while node is not None:
            coursedir = getattr(node, "coursedir", None)
            if coursedir is not None:
                return os.path.join(coursedir.root, self.record_directory)
            node = getattr(node, "parent", None)
        return os.path.abspath(self.record_directory)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_manager_class", LimitedKernelManager)
        super().__init__(*args, **kwargs)
        self._chars: dict[int, int] = {}

    # Cap stream output as it arrives, so the grader never holds gigabytes.
    def output(
        self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int
    ) -> NotebookNode | None:
        if msg.get("msg_type") == "stream" and self.max_output_chars >= 0:
            used = self._chars.get(cell_index, 0)
            text = msg["content"].get("text", "")
            if used > self.max_output_chars:
                return None
            if used + len(text) > self.max_output_chars:
                keep = max(self.max_output_chars - used, 0)
                msg = copy.deepcopy(msg)
                msg["content"]["text"] = (
                    text[:keep] + f"\n... output truncated after {self.max_output_chars} "
                    "characters ...\n"
                )
                self._chars[cell_index] = self.max_output_chars + 1
            else:
                self._chars[cell_index] = used + len(text)
        out: NotebookNode | None = super().output(outs, msg, display_id, cell_index)
        return out

    def preprocess(
        self, nb: NotebookNode, resources: Any = None, km: Any = None
    ) -> tuple[NotebookNode, Any]:
        from nbclient import NotebookClient

        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._chars = {}
        info = (resources or {}).get("nbgrader", {})
        hidden = plan_hidden_concerns(nb) if self.judge_hidden_out_of_kernel else {}
        judgements: dict[str, HiddenJudgement] = {}
        if hidden:
            t0 = time.perf_counter()
            judgements = judge_notebook(
                nb,
                info.get("assignment", ""),
                sorted({name for name, _ in hidden.values()}),
                info.get("notebook", "notebook"),
            )
            self.log.info("hidden cells judged out of kernel in %.2f s", time.perf_counter() - t0)
        functions = sorted(judgements)

        def after_cell(index: int, cell: NotebookNode) -> None:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            if not cell.metadata.get("nbgrader", {}).get("grade"):
                return
            cell.outputs = visible_test_outputs(gid, cell.outputs, judgements, functions)

        run_cells_resilient(self, hidden, judgements, after_cell)
        self.set_widgets_metadata()
        if self.record_directory and info.get("student"):
            write_record(
                self._records_root(),
                info.get("assignment", ""),
                info["student"],
                info.get("notebook", "notebook"),
                {
                    "grader": "nbgrader autograde + ResilientExecute",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "verdicts": {k: v.record for k, v in judgements.items()},
                },
            )
        return self.nb, self.resources


def run_cells_resilient(
    client: ResilientExecute,
    hidden: Mapping[int, tuple[str, str | None]],
    judgements: Mapping[str, HiddenJudgement],
    after_cell: Callable[[int, NotebookNode], None],
) -> None:
    """Run every code cell; on a dead kernel or a timeout, restart, replay and go on."""
    nb = client.nb
    n = len(nb.cells)
    start = 0
    replay: list[int] = []
    restarts = 0
    while start < n:
        failed_at: int | None = None
        with client.setup_kernel():
            assert client.kc is not None
            info_msg = client.wait_for_reply(client.kc.kernel_info())
            if info_msg is not None:
                nb.metadata["language_info"] = info_msg["content"]["language_info"]
            for j in list(replay):
                try:
                    client.execute_cell(copy.deepcopy(nb.cells[j]), j, store_history=False)
                except (DeadKernelError, CellTimeoutError, UnresponsiveKernelError):
                    # Not reproducible: forget it and start over without it.
                    replay.remove(j)
                    failed_at = start - 1
                    break
            else:
                for i in range(start, n):
                    cell = nb.cells[i]
                    if cell.cell_type != "code":
                        continue
                    if i in hidden:
                        name, concern = hidden[i]  # credit, issue 14: one cell per concern
                        cell.outputs = judgements[name].outputs(concern)
                        continue
                    try:
                        client.preprocess_cell(cell, client.resources, i)
                    except (DeadKernelError, UnresponsiveKernelError) as exc:
                        cell.outputs.append(kernel_died_output(str(exc)[:200]))
                        failed_at = i
                        break
                    except CellTimeoutError:
                        cell.outputs.append(timeout_output(float(client.timeout or 0)))
                        failed_at = i
                        break
                    after_cell(i, cell)
                    replay.append(i)
        if failed_at is None:
            return
        restarts += 1
        start = failed_at + 1
        if restarts > client.max_restarts:
            for cell in nb.cells[start:]:
                if cell.cell_type == "code":
                    cell.outputs = [
                        _error_output("NotRun", "too many kernel restarts; the cell was not run")
                    ]
            return


# --------------------------------------------------------------------------- sanitising


class RestoreCells(OverwriteCells):  # type: ignore[misc]
    """``OverwriteCells`` that also re-inserts every deleted locked code cell.

    nbgrader's own ``add_missing_cells`` re-adds grade cells only, after the previous grade or
    solution cell (a ``KeyError`` if that one is missing too). Here every locked code cell of the
    source (test cells and read-only cells such as the setup) that the submission lacks is
    inserted after the nearest earlier source cell that the submission still has.
    """

    add_missing_cells = Bool(True).tag(config=True)

    def add_missing_grade_cells(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = list(source_nb.source_cells)
        grade_cells = {c.name: c for c in source_nb.grade_cells}
        solution_ids = {c.name for c in source_nb.solution_cells}

        def present() -> dict[str, int]:
            return {
                c.metadata["nbgrader"]["grade_id"]: i
                for i, c in enumerate(nb.cells)
                if "grade_id" in c.metadata.get("nbgrader", {})
            }

        for k, src in enumerate(source_cells):
            have = present()
            if src.name in have:
                continue
            if src.name in grade_cells:
                cell = self.missing_cell_transform(
                    src, grade_cells[src.name].max_score, is_solution=src.name in solution_ids
                )
            elif src.locked and src.cell_type == "code" and src.name not in solution_ids:
                cell = _nbf.v4.new_code_cell(
                    f"# This read-only cell ({src.name}) was missing from the submission; "
                    f"restored by the grader.\n{src.source}",
                    metadata={
                        "deletable": False,
                        "editable": False,
                        "nbgrader": {
                            "grade": False,
                            "solution": False,
                            "locked": True,
                            "grade_id": src.name,
                            "schema_version": 3,
                        },
                    },
                )
            else:
                continue
            self.log.warning("Missing cell %s: restored from the source", src.name)
            pos = 0
            for prev in reversed(source_cells[:k]):
                if prev.name in have:
                    pos = have[prev.name] + 1
                    break
            nb.cells.insert(pos, cell)
        return nb, resources


def placeholder_notebook(reason: str) -> NotebookNode:
    """An empty notebook that says why the submission could not be read."""
    nb = _nbf.v4.new_notebook()
    nb.cells.append(
        _nbf.v4.new_markdown_cell(
            f"**The submitted notebook could not be read** ({reason}). It was graded as empty: "
            "the tests were restored and ran without the student's code."
        )
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    placeholder: NotebookNode = nb
    return placeholder


def read_submission(text: str) -> tuple[NotebookNode, str | None]:
    """Parse a submission; on failure return a placeholder notebook and the reason."""
    try:
        nb = _nbf.reads(text, as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no list of cells")
        for cell in nb.cells:
            if cell.get("cell_type") not in ("code", "markdown", "raw") or not isinstance(
                cell.get("source"), str
            ):
                raise ValueError("a cell has no valid type or source")
            cell.setdefault("metadata", _nbf.NotebookNode())
            if cell.cell_type == "code":
                cell.setdefault("outputs", [])
                cell.setdefault("execution_count", None)
        return nb, None
    except Exception as exc:  # anything unreadable becomes an empty submission
        reason = f"not a valid notebook: {type(exc).__name__}: {str(exc)[:300]}"
        return placeholder_notebook(reason), reason


class TolerantNotebookExporter(NotebookExporter):
    """Notebook exporter that turns an unreadable submission into a graded-as-empty notebook."""

    def from_file(self, file_stream: Any, resources: Any = None, **kw: Any) -> Any:
        raw = file_stream.read()
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        nb, reason = read_submission(text)
        if reason is not None:
            self.log.error("Unreadable submission graded as empty: %s", reason)
        return super().from_notebook_node(nb, resources=resources, **kw)  # type: ignore[no-untyped-call]


class LimitOutputChars(LimitOutput):  # type: ignore[misc]
    """nbgrader's ``LimitOutput`` plus a cap on the characters of each stream output."""

    max_chars = Integer(DEFAULT_MAX_OUTPUT_CHARS, help="characters kept per stream output").tag(
        config=True
    )

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> Any:
        cell, resources = super().preprocess_cell(cell, resources, index)
        if cell.cell_type == "code" and self.max_chars >= 0:
            for out in cell.outputs:
                if out.output_type == "stream" and len(out.text) > self.max_chars:
                    out.text = out.text[: self.max_chars] + "\n... output truncated ...\n"
        return cell, resources
