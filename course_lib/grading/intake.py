"""Submissions as they really arrive: renamed files, lost metadata, LMS downloads, LMS grades.

The batch grader (``make grade``) reads every submission through :func:`find_notebook` and
:func:`reattach_metadata` before grading it; the submitted files themselves are never changed.

* **Renamed notebooks.** Browsers and learning platforms rename downloads:
  ``initializers (1).ipynb``, ``Initializers.ipynb``, ``initializers-2.ipynb``,
  ``Copy of initializers.ipynb``. :func:`find_notebook` finds the expected notebook under such a
  name; the grade table and the student's feedback say which file was graded. A file that does
  not match is named ("initializers.ipynb was not submitted; found notes.ipynb").
* **Cells without nbgrader metadata** (a notebook re-created in another editor, or cells copied
  into a fresh notebook). nbgrader identifies answer and test cells only by their metadata, so it
  would re-insert every test cell at the top (each public test then fails with ``NameError``) and
  lose the written answers. :func:`reattach_metadata` gives each such cell back the metadata of
  the source cell it stands for, matched by content: an answer cell by the function it defines
  (``def <name>(``), a test cell by its released text or by the graded function it calls, a
  written answer by its place after the question.
* **LMS downloads.** ``nbgrader zip_collect`` needs a file-name pattern; :data:`LMS_PATTERNS`
  holds tested ones for Canvas' and Moodle's "download all submissions" archives
  (``python -m course_lib.grading.intake collect ASSIGNMENT --lms canvas``).
* **LMS grades.** :func:`export_grades` writes a CSV that Canvas' or Moodle's gradebook imports
  (``python -m course_lib.grading.intake export ASSIGNMENT --lms canvas``); the columns are
  documented there and in the instructor guide.
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "LMS_PATTERNS",
    "export_grades",
    "find_notebook",
    "normalized_stem",
    "reattach_metadata",
    "zip_collect",
]

# --------------------------------------------------------------------------- renamed notebooks

_COPY_SUFFIX = re.compile(r"(?:[\s_-]*(?:\(\d+\)|\d+|copy))+$")


def normalized_stem(filename: str) -> str:
    """The notebook name a renamed download stands for.

    Lower case, without the suffixes browsers and platforms add (``" (1)"``, ``"-2"``,
    ``" copy"``) or a leading ``"Copy of "``; spaces and hyphens become underscores.

    >>> normalized_stem("Initializers (1).ipynb"), normalized_stem("Copy of deep signal-2.ipynb")
    ('initializers', 'deep_signal')
    """
    stem = Path(filename).name
    if stem.lower().endswith(".ipynb"):
        stem = stem[: -len(".ipynb")]
    stem = stem.strip().lower()
    stem = re.sub(r"^copy of\s+", "", stem)
    stem = _COPY_SUFFIX.sub("", stem).strip()
    return re.sub(r"[\s-]+", "_", stem)


def find_notebook(
    folder: Path, name: str, expected: Sequence[str]
) -> tuple[Path | None, str | None]:
    """The submitted file that holds notebook ``name`` in ``folder``, and a note if renamed.

    Parameters
    ----------
    folder
        The submission folder (``submitted/<student>/<assignment>``).
    name
        The notebook's name without ``.ipynb``.
    expected
        All notebook names of the assignment (a file named like another one is not taken).

    Returns
    -------
    (path or None, note or None)
        ``path`` is ``folder/<name>.ipynb`` when it exists, else the one renamed copy that
        stands for it (the newest if several do); the note says what was graded, or, when
        nothing matches, which notebooks were found.
    """
    folder = Path(folder)
    exact = folder / f"{name}.ipynb"
    if exact.is_file():
        return exact, None
    if not folder.is_dir():
        return None, f"{name}.ipynb was not submitted"
    others = sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() == ".ipynb" and p.stem not in expected
    )
    target = normalized_stem(name)
    matches = [p for p in others if normalized_stem(p.name) == target]
    if matches:
        chosen = max(matches, key=lambda p: (p.stat().st_mtime, p.name))
        note = f"graded {chosen.name!r} as {name}.ipynb (renamed file)"
        if len(matches) > 1:
            rest = ", ".join(repr(p.name) for p in matches if p != chosen)
            note += f"; also found {rest} (older, not graded)"
        return chosen, note
    found = ", ".join(repr(p.name) for p in others)
    note = f"{name}.ipynb was not submitted"
    if found:
        note += f" (found {found}: rename it to {name}.ipynb to have it graded)"
    return None, note


# --------------------------------------------------------------------------- lost metadata

_DEF = re.compile(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


def _text(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _nbmeta(cell: Mapping[str, Any]) -> dict[str, Any]:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return dict(meta) if isinstance(meta, Mapping) else {}


def _released(source: str, begin: str, end: str) -> str:
    from .release import released_source

    return released_source(source, begin, end).strip()


def _calls(source: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}\s*\(", source) is not None


def reattach_metadata(
    nb: dict[str, Any],
    source_nb: Mapping[str, Any],
    *,
    begin: str = "BEGIN HIDDEN TESTS",
    end: str = "END HIDDEN TESTS",
) -> list[str]:
    """Give cells that lost their nbgrader metadata the metadata of their source cell (in place).

    Cells keep their place and their text (nbgrader then restores locked cells' text from the
    gradebook as usual). A source cell is matched at most once, in notebook order:

    * a code cell defining ``def <name>(`` gets the answer cell ``<name>``;
    * a code cell whose text equals a locked source cell's released text gets that cell
      (the setup cell, test cells; identical texts go to the first one not yet matched after
      the last match, which keeps hidden-test cells in order);
    * a code cell calling graded function ``<name>`` (and defining none) gets the next unmatched
      test cell whose source calls ``<name>``;
    * a markdown cell whose text is in no source markdown cell gets the next unmatched written
      answer cell if that is the next graded cell after the last match.

    Returns readable notes (empty if every cell had its metadata).
    """
    src_cells = list(source_nb.get("cells", []))
    ids = [_nbmeta(c).get("grade_id") for c in src_cells]
    graded = {g for g in ids if g}
    present = {_nbmeta(c).get("grade_id") for c in nb.get("cells", [])} & graded
    if present == graded:
        return []
    used = set(present)
    answers = {
        g: i for i, (c, g) in enumerate(zip(src_cells, ids, strict=True))
        if g and _nbmeta(c).get("solution") and c.get("cell_type") == "code"
    }
    released = {
        i: _released(_text(c), begin, end) for i, c in enumerate(src_cells)
        if ids[i] and _nbmeta(c).get("locked")
    }
    markdown_texts = {_text(c).strip() for c in src_cells if c.get("cell_type") == "markdown"}
    position = {g: i for i, g in enumerate(ids) if g}
    pos = -1
    notes: list[str] = []

    def take(cell: dict[str, Any], i: int, why: str) -> None:
        nonlocal pos
        src = src_cells[i]
        cell.setdefault("metadata", {})["nbgrader"] = dict(_nbmeta(src))
        for key in ("editable", "deletable"):
            if key in src.get("metadata", {}):
                cell["metadata"][key] = src["metadata"][key]
        used.add(ids[i])
        pos = i
        notes.append(f"{ids[i]} ({why})")

    for cell in nb.get("cells", []):
        gid = _nbmeta(cell).get("grade_id")
        if gid in position:
            pos = max(pos, position[gid])
            continue
        text = _text(cell).strip()
        free = [i for i in range(len(src_cells)) if ids[i] and ids[i] not in used]
        after = [i for i in free if i > pos] + [i for i in free if i <= pos]
        if cell.get("cell_type") == "code":
            defined = [n for n in _DEF.findall(text) if n in answers and n not in used]
            if defined:
                take(cell, answers[defined[0]], f"matched by `def {defined[0]}(`")
                continue
            same = [i for i in after if released.get(i) == text and text]
            if same:
                take(cell, same[0], "matched by its text")
                continue
            if not _DEF.search(text):
                for i in after:
                    if i in released and _nbmeta(src_cells[i]).get("grade"):
                        called = [n for n in answers if _calls(text, n)]
                        if any(_calls(_text(src_cells[i]), n) for n in called):
                            take(cell, i, f"matched by the call to {called[0]}()")
                            break
        elif cell.get("cell_type") == "markdown" and text not in markdown_texts:
            nxt = [i for i in range(pos + 1, len(src_cells)) if ids[i]]
            if nxt and ids[nxt[0]] not in used:
                src = src_cells[nxt[0]]
                if src.get("cell_type") == "markdown" and _nbmeta(src).get("solution"):
                    take(cell, nxt[0], "written answer, matched by its place")
    if not notes:
        return []
    by_def = [n.split(" ")[0] for n in notes if "`def " in n]
    by_call = [n.split(" ")[0] for n in notes if "the call to" in n]
    by_place = [n.split(" ")[0] for n in notes if "by its place" in n]
    by_text = [n for n in notes if "by its text" in n]
    parts = []
    if by_def:
        parts.append(f"answers by `def <name>(` ({', '.join(by_def)})")
    if by_call:
        parts.append(f"test cells by the function they call ({', '.join(by_call)})")
    if by_place:
        parts.append(f"written answers by their place ({', '.join(by_place)})")
    if by_text:
        parts.append(f"{len(by_text)} locked cells by their text")
    return [
        f"{len(notes)} cells had lost their nbgrader metadata and were matched to the source: "
        + "; ".join(parts)
    ]


# --------------------------------------------------------------------------- LMS downloads

LMS_PATTERNS: dict[str, str] = {
    # Canvas "Download Submissions": <name>_<user id>_<submission id>_<original file name>,
    # with "_late" after the name for late work and "-N" before the extension for a resubmission:
    #   doejane_12345_6789012_initializers.ipynb, doejane_late_12345_6789013_initializers-1.ipynb
    "canvas": (
        r"^(?:.*/)?(?P<last_name>[a-z]+?)_(?:late_)?(?P<student_id>\d+)_\d+_"
        r"(?P<file_id>[^/]+?)(?:-\d+)?\.ipynb$"
    ),
    # Moodle "Download all submissions": one folder (or a file-name prefix) per student,
    # "<Full Name>_<participant id>_assignsubmission_file_", holding the original file:
    #   Jane Doe_1234567_assignsubmission_file_/initializers.ipynb
    #   Jane Doe_1234567_assignsubmission_file_initializers.ipynb
    "moodle": (
        r"^(?:.*/)?(?P<last_name>[^/_]+)_(?P<student_id>\d+)_assignsubmission_file_/?"
        r"(?P<file_id>[^/]+?)\.ipynb$"
    ),
}
"""``FileNameCollectorPlugin.named_regexp`` for each learning platform's download names."""


def zip_collect(
    course_root: Path, assignment: str, lms: str, *, force: bool = True
) -> subprocess.CompletedProcess[str]:
    """``nbgrader zip_collect ASSIGNMENT`` with the file-name pattern of ``lms``.

    Put the platform's archive(s) in ``downloaded/<assignment>/archive/`` first; the
    notebooks land in ``submitted/<student id>/<assignment>/``.
    """
    from .release import nbgrader_command, tool_env

    if lms not in LMS_PATTERNS:
        raise ValueError(f"unknown LMS {lms!r}; known: {', '.join(sorted(LMS_PATTERNS))}")
    cmd = [
        *nbgrader_command(),
        "zip_collect",
        assignment,
        f"--FileNameCollectorPlugin.named_regexp={LMS_PATTERNS[lms]}",
    ]
    if force:
        cmd.append("--force")
    return subprocess.run(
        cmd, cwd=course_root, env=tool_env(), capture_output=True, text=True, check=False
    )


# --------------------------------------------------------------------------- LMS grades

EXPORT_COLUMNS = {
    "canvas": ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"],
    "moodle": ["ID number", "Full name"],
    "generic": ["student_id", "first_name", "last_name", "email"],
}
"""Identity columns per LMS; then the assignment's score column, ``max_score`` and
``manual_points_pending`` (points of written answers not graded yet)."""


def export_grades(
    db_url: str,
    course_id: str,
    assignment: str,
    path: Path,
    *,
    lms: str = "generic",
    column: str | None = None,
) -> int:
    """Write ``assignment``'s scores from the gradebook as a CSV an LMS gradebook imports.

    Columns: the identity columns of ``lms`` (:data:`EXPORT_COLUMNS`; Canvas matches rows on
    ``ID``, its user id, which :data:`LMS_PATTERNS` collects as the student id; Moodle maps
    ``ID number`` in its import dialog), then ``column`` (default: the assignment id; for Canvas
    name it as the Canvas assignment is titled, e.g. ``"Problem set 2 (4321)"``) holding the
    total score, then ``max_score`` and ``manual_points_pending``. Students without a submission
    get an empty score. Returns the number of rows written.
    """
    from nbgrader.api import Gradebook

    from .release import _quiet_sa

    if lms not in EXPORT_COLUMNS:
        raise ValueError(f"unknown LMS {lms!r}; known: {', '.join(sorted(EXPORT_COLUMNS))}")
    column = column or assignment
    rows: list[list[str]] = []
    with _quiet_sa(), Gradebook(db_url, course_id) as gb:
        top = float(gb.find_assignment(assignment).max_score)
        submitted = {s.student.id: s for s in gb.assignment_submissions(assignment)}
        for student in sorted(gb.students, key=lambda s: s.id):
            sub = submitted.get(student.id)
            full = " ".join(x for x in (student.first_name, student.last_name) if x) or student.id
            ident = {
                "canvas": [full, student.id, "", "", ""],
                "moodle": [student.id, full],
                "generic": [student.id, student.first_name or "", student.last_name or "",
                            student.email or ""],
            }[lms]
            if sub is None:
                rows.append([*ident, "", f"{top:g}", ""])
                continue
            pending = sum(
                float(g.max_score) for nb in sub.notebooks for g in nb.grades
                if g.needs_manual_grade and g.manual_score is None
            )
            rows.append([*ident, f"{float(sub.score):g}", f"{top:g}", f"{pending:g}"])
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*EXPORT_COLUMNS[lms], column, "max_score", "manual_points_pending"])
        writer.writerows(rows)
    return len(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """``collect`` (zip_collect with an LMS pattern) and ``export`` (CSV for an LMS)."""
    from .release import CourseConfigError, load_course_config

    p = argparse.ArgumentParser(prog="python -m course_lib.grading.intake")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="sort an LMS download into submitted/ (zip_collect)")
    c.add_argument("assignment")
    c.add_argument("--lms", choices=sorted(LMS_PATTERNS), required=True)
    c.add_argument("--course", default=".")
    e = sub.add_parser("export", help="write the assignment's grades as a CSV for an LMS")
    e.add_argument("assignment")
    e.add_argument("--lms", choices=sorted(EXPORT_COLUMNS), default="generic")
    e.add_argument("--column", default=None, help="title of the score column")
    e.add_argument("--out", default=None, help="default: lms_grades_<assignment>.csv")
    e.add_argument("--course", default=".")
    args = p.parse_args(argv)
    try:
        _cfg, coursedir = load_course_config(Path(args.course))
    except CourseConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "collect":
        proc = zip_collect(Path(coursedir.root), args.assignment, args.lms)
        sys.stderr.write(proc.stderr[-4000:])
        return proc.returncode
    out = Path(args.out or f"lms_grades_{args.assignment}.csv")
    n = export_grades(coursedir.db_url, coursedir.course_id, args.assignment, out,
                      lms=args.lms, column=args.column)
    print(f"{out}: {n} students ({args.lms} format; private data, ignored by git)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
