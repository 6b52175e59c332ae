"""Feedback that shows a student what failed, never how the hidden tests test it.

``nbgrader generate_feedback`` renders the *autograded* notebook to HTML. During autograding,
nbgrader restores every test cell from the gradebook, hidden tests included, so plain nbgrader
0.9.6 hands the hidden tests' source to the student (jupyter/nbgrader#917 and #1363; the
maintainers consider it a feature, there is no option). :class:`HideHiddenTests` is an extra
preprocessor for ``GenerateFeedback`` (switched on in the course's ``nbgrader_config.py``) that,
before the HTML is rendered,

* removes each ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region from every cell and
  leaves a one-line note in its place;
* in the cells that had such a region, replaces each error output's traceback by its last line,
  ``<ExceptionName>: <message>``: the message the grading helper wrote (what was measured, what
  was expected, a hint) stays, the frames that would quote the hidden code or the grader's own
  source go.

Public tests are untouched: the student already has their source.
"""

from __future__ import annotations

import re
from typing import Any

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

__all__ = ["HideHiddenTests", "hide_hidden_regions"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"
END_HIDDEN = "END HIDDEN TESTS"


def hide_hidden_regions(
    source: str, note: str, begin: str = BEGIN_HIDDEN, end: str = END_HIDDEN
) -> tuple[str, bool]:
    """Replace every hidden-test region of ``source`` (delimiter lines included) by ``note``.

    Returns the new source and whether a region was found. An unterminated region hides
    everything after its opening line (fail closed: nothing hidden leaks because of a typo).
    """
    out: list[str] = []
    inside = False
    found = False
    for line in source.split("\n"):
        if not inside and begin in line:
            inside = True
            found = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + note)
        elif inside:
            if end in line:
                inside = False
        else:
            out.append(line)
    return "\n".join(out), found


class HideHiddenTests(NbGraderPreprocessor):  # type: ignore[misc]
    """Strip hidden-test source and tracebacks from an autograded notebook before feedback.

    Configure in ``nbgrader_config.py``::

        c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
    """

    note = Unicode(
        "# (hidden tests: their verdict is shown below; their code is not part of the feedback)",
        help="The line that replaces each hidden-test region in the feedback.",
    ).tag(config=True)

    begin_test_delimeter = Unicode(BEGIN_HIDDEN, help="Start of a hidden-test region.").tag(
        config=True
    )
    end_test_delimeter = Unicode(END_HIDDEN, help="End of a hidden-test region.").tag(config=True)

    def preprocess_cell(self, cell: Any, resources: Any, index: int) -> tuple[Any, Any]:
        """Hide the hidden region of one cell and shorten its error tracebacks."""
        source, found = hide_hidden_regions(
            cell.source, self.note, self.begin_test_delimeter, self.end_test_delimeter
        )
        if not found:
            return cell, resources
        cell.source = source
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                ename = str(output.get("ename", "Error"))
                evalue = _ANSI.sub("", str(output.get("evalue", "")))
                output["traceback"] = [f"{ename}: {evalue}"]
        return cell, resources
