"""The nbgrader integration: ``nbgrader autograde`` grades with the course's engine.

Plain nbgrader 0.9.6 runs a submission in a Jupyter kernel with the grader's rights (the
student's code can read and write the course, the gradebook, HOME; open sockets; start
programs), gives a whole notebook no score when one cell kills the kernel, and fails the batch on
an endless loop that ignores SIGINT or on a notebook that is not valid JSON. The classes here are
switched on in the course's ``nbgrader_config.py``:

:class:`ResilientExecute`
    nbgrader's ``Execute`` step, done by :func:`autograde_notebook`: the notebook runs ONCE in
    one child process isolated by the operating system (:mod:`course_lib.grading.isolation`),
    under the course's :class:`~course_lib.grading.isolation.Limits`, and the judge's calls run
    in the same child; a cell that kills the child or overruns costs that cell (the child is
    restarted, earlier cells replayed); test cells get their points from the judge's verdict on
    the bytes the student's functions returned.
:class:`RestoreCells`
    nbgrader's ``OverwriteCells`` that also re-inserts deleted locked cells (test cells and the
    read-only setup cell) at their place, so deleting a test costs nothing but earns nothing.
:class:`TolerantNotebookExporter`
    reads a submission that is not a valid notebook as an empty notebook with a note saying why.
:class:`LimitOutputChars`
    nbgrader's ``LimitOutput`` (lines) plus a cap on characters per cell (one 5 MB line).
:class:`CheckCellMetadata`
    nbgrader's ``CheckCellMetadata`` with the same checks and errors, but its JSON schema
    compiled once per process: nbgrader re-reads its schema files and re-checks the schema for
    every cell (27 ms per notebook, run twice per submission, against 3 ms).

The batch grader (:mod:`course_lib.grading.batch`) calls the same :func:`autograde_notebook`,
which is how both give identical grades.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import nbformat as _nbformat
from nbconvert.exporters import NotebookExporter
from nbformat.notebooknode import NotebookNode
from nbgrader.nbgraderformat import MetadataValidator, ValidationError
from nbgrader.nbgraderformat.common import BaseMetadataValidator
from nbgrader.preprocessors import CheckCellMetadata as _CheckCellMetadata
from nbgrader.preprocessors import Execute, LimitOutput, OverwriteCells
from traitlets import Bool, Integer, Unicode

from .isolation import Limits, check_isolation
from .runner import FunctionVerdict, hidden_check_target
from .stats import _plain

_nbf: Any = _nbformat  # nbformat has no type hints

__all__ = [
    "Autograded",
    "CheckCellMetadata",
    "LimitOutputChars",
    "ResilientExecute",
    "RestoreCells",
    "TolerantNotebookExporter",
    "autograde_notebook",
    "hidden_check_target",
    "test_cell_function",
    "test_cell_target",
    "verdict_passed",
    "write_record",
]

#: Where grading records go, relative to the course root (ignored by git).
RECORD_DIRECTORY = ".grading/records"

DEFAULT_MAX_OUTPUT_CHARS = Limits().output_chars


# --------------------------------------------------------------------------- points


def test_cell_function(grade_id: str, functions: list[str]) -> str | None:
    """The graded function a test cell belongs to: ``test_<name>`` or ``test_<name>_...``."""
    best: str | None = None
    for name in functions:
        if grade_id == f"test_{name}" or grade_id.startswith(f"test_{name}_"):
            if best is None or len(name) > len(best):
                best = name
    return best


def test_cell_target(grade_id: str, functions: list[str]) -> tuple[str, str | None] | None:
    """``(name, concern)`` of a test cell's grade_id ``test_<name>_<concern>`` (None: all)."""
    name = test_cell_function(grade_id, functions)
    if name is None:
        return None
    rest = grade_id[len(f"test_{name}"):].lstrip("_")
    return name, (rest or None)


def verdict_passed(verdict: FunctionVerdict, concern: str | None) -> bool:
    """Whether a function verdict passed for ``concern`` (None: every check).

    The judge's ``verdict.passed(concern)``: the checks tagged with that concern plus the
    untagged ones (a missing function, an unreadable notebook) all passed. A concern the judge
    did not tag any check with (a test cell named ``test_<name>_<something else>``) is decided by
    the whole verdict, so points never rest on anything but the judge.
    """
    if concern is not None and concern not in verdict.concerns:
        concern = None
    return bool(verdict.passed(concern))


def verdict_message(verdict: FunctionVerdict, concern: str | None) -> str:
    """The judge's summary of ``concern``'s checks, failed ones with hints (None: all checks)."""
    if concern is not None and concern not in verdict.concerns:
        concern = None
    return verdict.message_for(concern)


def _judge_outputs(verdict: FunctionVerdict | None, name: str, concern: str | None,
                   hidden: bool) -> tuple[bool, list[NotebookNode]]:
    what = f"{'hidden' if hidden else 'judged'} checks of {name}" + (
        f" ({concern})" if concern else "")
    if verdict is None:
        msg = f"the grader has no checks for {name}"
        return False, [_error_output("AssertionError", msg)]
    if verdict_passed(verdict, concern):
        return True, [_nbf.v4.new_output("stream", name="stdout", text=f"{what}: passed\n")]
    return False, [_error_output("AssertionError", verdict_message(verdict, concern))]


# --------------------------------------------------------------------------- one notebook


@dataclass
class Autograded:
    """One notebook after the engine ran it: outputs in place, reasons, verdict records."""

    nb: NotebookNode
    reasons: list[str] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)


def autograde_notebook(nb: NotebookNode, assignment: str, limits: Limits) -> Autograded:
    """Run a (sanitised) notebook once in the engine and fill in every code cell's outputs.

    Every code cell but the hidden-test calls runs, once, in one isolated child; the judge's
    calls follow in the same child. A test cell ``test_<name>_<concern>`` of a graded function
    (and a hidden ``check_hidden(name[, concern])`` cell) gets its points iff the judge's verdict
    for ``(name, concern)`` passed: a public cell keeps the output the student's code printed,
    loses its own error if the judge passed, and gets the judge's error if it failed. Any other
    cell keeps exactly what it did in the child. Used by :class:`ResilientExecute` (``nbgrader
    autograde``) and by the batch grader, so both give the same grades.
    """
    from .runner import grade_submission, hidden_check_target
    from .specs import SPECS

    functions = list(SPECS.get(assignment, {}))
    verdicts: dict[str, FunctionVerdict] = {}
    reasons: list[str] = []
    run: Any = None
    if functions:
        verdicts, run, sub = grade_submission(dict(nb), assignment, limits=limits)
    else:  # not one of the course's assignments: run the cells, judge nothing
        from .runner import load_submission
        from .sandbox import run_in_sandbox

        sub = load_submission(dict(nb))
        run = run_in_sandbox(sub.cells, {}, limits=limits)
    if sub.problem:
        reasons.append(sub.problem)
    count = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        meta = cell.metadata.get("nbgrader", {})
        where = meta.get("grade_id") or f"cell {i}"
        # the cell by its grade id and its position, as the instructor's table names it
        cell_name = f"cell {meta['grade_id']} (#{i})" if meta.get("grade_id") else f"cell {i}"
        target = hidden_check_target(cell.source)
        if target is not None:
            name, concern = target
            _, cell.outputs = _judge_outputs(verdicts.get(name), name, concern, hidden=True)
            continue
        rep = run.cells.get(i) if run is not None else None
        if rep is None:
            cell.outputs = [_error_output("NotRun", "the cell was not run (too many restarts "
                                          "of the grading process)")] if run is not None else []
        elif rep.status == "killed":
            cell.outputs = [kernel_died_output(rep.detail)]
            reasons.append(f"the code died in {cell_name} ({rep.detail})")
        elif rep.status == "timeout":
            cell.outputs = [timeout_output(limits.cell_timeout)]
            reasons.append(f"{cell_name} timed out after {limits.cell_timeout:g} s")
        else:
            cell.outputs = [_nbf.from_dict(o) for o in rep.outputs]
        tgt = test_cell_target(str(meta.get("grade_id", "")), functions) if meta.get(
            "grade") else None
        if tgt is not None:
            name, concern = tgt
            ok, judged = _judge_outputs(verdicts.get(name), name, concern, hidden=False)
            if ok:  # the student's own process may have failed: the judge decides
                errors = [o for o in cell.outputs if o.get("output_type") == "error"]
                cell.outputs = [o for o in cell.outputs if o.get("output_type") != "error"]
                for o in errors:
                    cell.outputs.append(_nbf.v4.new_output("stream", name="stderr", text=(
                        f"[grader] in your notebook's process this cell raised {o.ename}, but "
                        "the judge's checks of the values your function returned passed\n")))
            else:
                cell.outputs = [*cell.outputs, *judged]
        for o in cell.outputs:  # the cell's first error (the judge's may follow the student's)
            if o.get("output_type") == "error" and o.get("ename") not in (
                    "KernelDied", "CellTimeoutError"):
                reasons.append(f"{where}: {o.ename}: {str(o.evalue).splitlines()[0][:120]}"
                               if str(o.evalue) else f"{where}: {o.ename}")
                break
    if run is not None:
        info = {"isolation": run.isolation, "seccomp": run.seccomp, "restarts": run.restarts,
                "seconds": round(run.seconds, 3), "limits": limits.to_dict()}
    else:
        info = {"isolation": "bwrap" if limits.isolate else "NONE (--unsafe-no-isolation)",
                "limits": limits.to_dict()}
    if not limits.isolate:
        reasons.insert(0, "UNSAFE: graded without isolation (--unsafe-no-isolation)")
    records = {k: v.to_dict() for k, v in verdicts.items()}
    return Autograded(nb, reasons, records, info)


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


def _error_output(ename: str, evalue: str) -> NotebookNode:
    out: NotebookNode = _nbf.v4.new_output(
        "error", ename=ename, evalue=evalue, traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"]
    )
    return out


def kernel_died_output(detail: str = "") -> NotebookNode:
    """The error recorded in a cell during which the grading child died."""
    reason = (
        "the grading process died while running this cell (os._exit, a crash, or the memory "
        "limit). The cells after it ran in a restarted process where the cells before it were "
        "replayed."
    )
    return _error_output("KernelDied", f"{reason}{' ' + detail if detail else ''}")


def timeout_output(seconds: float) -> NotebookNode:
    """The error recorded in a cell that did not finish in time."""
    return _error_output(
        "CellTimeoutError",
        f"the cell did not finish within {seconds:g} s (an endless loop?); the grading process "
        "was restarted, the cells before it were replayed and this cell was skipped",
    )


class ResilientExecute(Execute):  # type: ignore[misc]
    """nbgrader's ``Execute`` step, done by the grading engine instead of a Jupyter kernel.

    The whole notebook runs once in one isolated child (:func:`autograde_notebook`), with the
    course's :class:`~course_lib.grading.isolation.Limits` (``c.Grading.*``); hidden and public
    test cells get their points from the judge. A grading record (seeds, tolerances, versions,
    isolation) is written per notebook.
    """

    record_directory = Unicode(
        RECORD_DIRECTORY,
        help="Where grading records (seeds, tolerances, versions) are written, relative to the "
        "course root; '' for none.",
    ).tag(config=True)

    def _course(self) -> Any:
        node: Any = self
        while node is not None:
            coursedir = getattr(node, "coursedir", None)
            if coursedir is not None:
                return coursedir
            node = getattr(node, "parent", None)
        return None

    def _records_root(self) -> str:
        """``record_directory`` resolved against the course root (found via the converter)."""
        if os.path.isabs(self.record_directory):
            return str(self.record_directory)
        coursedir = self._course()
        if coursedir is not None:
            return os.path.join(coursedir.root, self.record_directory)
        return os.path.abspath(self.record_directory)

    def preprocess(
        self, nb: NotebookNode, resources: Any = None, km: Any = None
    ) -> tuple[NotebookNode, Any]:
        info = (resources or {}).get("nbgrader", {})
        limits = Limits.from_config(self.config)
        check_isolation(limits)  # one clear message (and no grade) on a machine without userns
        t0 = time.perf_counter()
        done = autograde_notebook(nb, info.get("assignment", ""), limits)
        self.log.info("notebook graded by the engine in %.2f s (%s)", time.perf_counter() - t0,
                      done.run.get("isolation"))
        if self.record_directory and info.get("student"):
            write_record(
                self._records_root(),
                info.get("assignment", ""),
                info["student"],
                info.get("notebook", "notebook"),
                {
                    "grader": "nbgrader autograde + ResilientExecute",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "reasons": done.reasons,
                    "verdicts": done.records,
                    "run": done.run,
                },
            )
        return done.nb, resources


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


# --------------------------------------------------------------------------- metadata check


class _CompiledSchema(BaseMetadataValidator):  # type: ignore[misc]
    """``BaseMetadataValidator.validate_cell`` with the schema compiled once.

    ``jsonschema.validate(instance, schema)`` checks the schema, builds a validator and raises
    the best-matching error; this does the same with a validator built once per instance.
    """

    _validator: Any = None

    def validate_cell(self, cell: NotebookNode) -> None:
        import jsonschema

        if "nbgrader" not in cell.metadata:
            return
        version = cell.metadata["nbgrader"].get("schema_version", 0)
        if version != self.schema_version:  # nbgrader's own errors for an old or new schema
            BaseMetadataValidator.validate_cell(self, cell)
            return
        if self._validator is None:
            cls = jsonschema.validators.validator_for(self.schema)
            cls.check_schema(self.schema)
            self._validator = cls(self.schema)
        error = jsonschema.exceptions.best_match(
            self._validator.iter_errors(cell.metadata["nbgrader"]))
        if error is not None:
            raise error


class _FastMetadataValidator(MetadataValidator, _CompiledSchema):  # type: ignore[misc]
    """nbgrader's current ``MetadataValidator`` (v3 checks) over the compiled schema."""

    _instance: _FastMetadataValidator | None = None

    @classmethod
    def shared(cls) -> _FastMetadataValidator:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance


class CheckCellMetadata(_CheckCellMetadata):  # type: ignore[misc]
    """nbgrader's ``CheckCellMetadata`` (same checks, same errors) with a compiled schema."""

    def preprocess(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        import traceback

        try:
            _FastMetadataValidator.shared().validate_nb(nb)
        except ValidationError:
            self.log.error(traceback.format_exc())
            msg = "Notebook failed to validate; the nbgrader metadata may be corrupted."
            self.log.error(msg)
            raise ValidationError(msg) from None
        return nb, resources
