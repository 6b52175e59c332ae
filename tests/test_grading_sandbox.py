"""The runner and sandbox against hostile and broken code, and the hidden-test entry point.

Every case is an otherwise correct ps2_initializers submission with one answer cell replaced
(tests/grading_catalogue/hostile.py). A cheat is detected and named in the failing function's
message; broken code (syntax error, exception at import, endless loop, os._exit, segfault,
huge allocation, NaN, wrong shape or type, deleted answer) costs exactly the function it breaks:
a neighbouring function is graded in the same run and still passes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from grading_catalogue.correct import SETUP, sources
from grading_catalogue.hostile import BROKEN, CHEATS, PRINTS_MEGABYTES, Case

from course_lib.grading.runner import grade_notebook, grade_submission
from course_lib.grading.sandbox import Limits

PS2 = "ps2_initializers"
FAST = Limits(call_timeout=2.0, cell_timeout=2.0)
BIN = Path(sys.executable).parent


def _grade(case: Case, neighbour: str) -> dict[str, Any]:
    cells = sources(PS2, 0, **{case.function: case.source})
    return grade_notebook(cells, PS2, functions=[case.function, neighbour], limits=FAST)


# Cheats whose answer is in fact a correct implementation written without course_lib, next to a
# patch that lives only in the student's own process: legal Python, so the points are earned.
HONEST_UNDER_THE_PATCH = {"rebinds AssertionError", "edits sys.modules", "patches builtins",
                          "writes globals()", "exec of a built string"}
# Cheats that break the student's own neighbouring function in their own process.
SELF_HARM = {"rebinds np to a fake"}


@pytest.mark.parametrize("case", CHEATS, ids=[c.label for c in CHEATS])
def test_cheats_earn_nothing_and_cost_nothing_else(case: Case) -> None:
    """Points come from the judge's reading of the returned bytes, never from the student's
    process: a borrowed, patched or lying answer fails; a patch next to a correct answer is legal
    Python and costs nothing; the neighbouring function is judged on its own bytes."""
    verdicts = _grade(case, "lecun_uniform")
    v = verdicts[case.function]
    assert bool(v.passed) is (case.label in HONEST_UNDER_THE_PATCH), v.message
    assert v.cheats == []  # no static rule: nothing is failed for how it is written
    other = verdicts["lecun_uniform"]
    assert bool(other.passed) is (case.label not in SELF_HARM), other.message


def test_course_lib_is_neither_importable_nor_visible_in_the_child() -> None:
    repo = Path(__file__).parents[1]
    # the venv inside the checkout is mounted alone: the checkout's own files are absent
    probe = ("import os, sys\n"
             f"seen = [os.path.exists({str(repo / 'course_lib')!r}), "
             f"os.path.exists({str(repo / 'solutions')!r})]\n"
             "try:\n    import course_lib\n    seen.append('imported')\n"
             "except ImportError as exc:\n    seen.append(str(exc))\nprint(seen)\n")
    _, run, _ = grade_submission({"setup": SETUP, "probe": probe}, PS2, functions=[],
                                 limits=FAST)
    assert run is not None
    text = run.cells[1].outputs[0]["text"]
    assert text.startswith("[False, False, \"No module named 'course_lib'"), text


@pytest.mark.parametrize("case", BROKEN, ids=[c.label for c in BROKEN])
def test_broken_code_costs_exactly_its_function(case: Case) -> None:
    verdicts = _grade(case, "he_normal")
    v = verdicts[case.function]
    assert not v.passed
    msg = v.message.lower()
    assert all(e in msg for e in case.expect), v.message
    assert verdicts["he_normal"].passed, verdicts["he_normal"].message
    if any("stopped the grading process" in e for e in case.expect):
        problems = verdicts["he_normal"].details["cell_problems"]
        assert any("stopped the grading process" in p for p in problems), problems


def test_printing_megabytes_is_truncated_and_judged_on_the_results() -> None:
    case = Case("prints", "he_uniform", PRINTS_MEGABYTES, ())
    verdicts = _grade(case, "he_normal")
    v = verdicts["he_uniform"]
    assert v.passed, v.message  # printing is not wrong; the returned arrays are right
    assert len(v.details["student_output"]) <= 2000
    assert verdicts["he_normal"].passed


# --------------------------------------------------------------------------- notebooks


def _cell(kind: str, src: str, grade_id: str | None = None, **nbg: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if grade_id is not None:
        meta["nbgrader"] = {"grade_id": grade_id, "schema_version": 3, **nbg}
    cell: dict[str, Any] = {"cell_type": kind, "metadata": meta, "source": src}
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def write_notebook(path: Path, answers: dict[str, str], *, hidden: bool = True) -> Path:
    """An nbgrader-style ps2 notebook: setup, answer cells, public and hidden test cells."""
    cells = [_cell("markdown", "# Initializers\nRun every cell."),
             _cell("code", SETUP, "setup", grade=False, solution=False, locked=True)]
    for fn, src in answers.items():
        cells.append(_cell("code", src, fn, grade=False, solution=True, locked=False))
        cells.append(_cell("code", f"import os\nassert callable({fn})\nos._exit(3)\n",
                           f"test_{fn}_public", grade=True, solution=False, locked=True,
                           points=1))
        if hidden:
            cells.append(_cell("code", "### BEGIN HIDDEN TESTS\nfrom course_lib.grading import"
                               f" check_hidden\ncheck_hidden({fn!r})\n### END HIDDEN TESTS\n",
                               f"test_{fn}_hidden", grade=True, solution=False, locked=True,
                               points=3))
    cells.insert(3, _cell("code", "%matplotlib inline\n!echo hello\nx = 1\n"))
    nb = {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}}}
    path.write_text(json.dumps(nb, indent=1))
    return path


def _answers(**replace: str) -> dict[str, str]:
    cells = sources(PS2, 0, **replace)
    del cells["setup"]
    return cells


def test_cli_grades_a_notebook_without_running_its_test_cells(tmp_path: Path) -> None:
    # every public test cell calls os._exit: if the runner executed one, nothing would pass
    nb = write_notebook(tmp_path / "initializers.ipynb", _answers(he_uniform=BROKEN[1].source))
    proc = subprocess.run(
        [sys.executable, "-I", "-m", "course_lib.grading.runner", str(nb), "--assignment", PS2,
         "--json"], capture_output=True, text=True, check=True, cwd=tmp_path)
    data = json.loads(proc.stdout)
    passed = {fn: v["passed"] for fn, v in data["functions"].items()}
    assert passed == {"compute_fans": True, "lecun_normal": True, "lecun_uniform": True,
                      "xavier_normal": True, "xavier_uniform": True, "he_normal": True,
                      "he_uniform": False}
    v = data["functions"]["he_normal"]
    for key in ("seeds", "base_seed", "tolerances", "versions", "duration", "checks"):
        assert v[key], key
    assert v["versions"]["numpy"] and v["versions"]["python"]
    assert data["seconds"] < 30
    # --function restricts; the notebook name gives the assignment
    proc = subprocess.run(
        [sys.executable, "-I", "-m", "course_lib.grading.runner", str(nb), "--function",
         "he_uniform"], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert "FAIL he_uniform" in proc.stdout and "does_not_exist_anywhere" in proc.stdout


def test_invalid_notebook_json_fails_every_function_readably(tmp_path: Path) -> None:
    bad = tmp_path / "initializers.ipynb"
    bad.write_text('{"cells": [ this is not json')
    verdicts = grade_notebook(bad, PS2)
    assert len(verdicts) == 7
    assert all(not v.passed and "not valid notebook JSON" in v.message
               for v in verdicts.values())


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=cwd, check=False)


def test_check_hidden_finds_the_notebook_in_the_cwd(tmp_path: Path) -> None:
    wrong = ("def he_uniform(shape, *, rng):\n    b = np.sqrt(1.0 / compute_fans(shape)[0])\n"
             "    return rng.uniform(-b, b, size=shape)\n")
    write_notebook(tmp_path / "initializers.ipynb", _answers(he_uniform=wrong))
    proc = _run_python("""
        from course_lib.grading import check_hidden
        check_hidden("he_normal")
        import course_lib.grading.hidden as hidden
        (verdicts,) = hidden._CACHE.values()   # one runner process graded the whole notebook
        print("CACHED", sorted(verdicts))
        import sys
        sys.executable = "/nonexistent/python"  # a new runner process would fail now
        try:
            check_hidden("he_uniform")
        except AssertionError as exc:
            print("ASSERTION", exc)
    """, tmp_path)
    assert "CACHED ['compute_fans', 'he_normal', 'he_uniform', 'lecun_normal'" in proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert "he_normal: all" in proc.stdout
    assert "ASSERTION he_uniform: FAILED" in proc.stdout
    assert "sqrt(3)" in proc.stdout


def test_check_hidden_discards_patches_of_the_grading_package(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "initializers.ipynb",
                        _answers(he_normal=CHEATS[2].source.split("\n", 2)[2]))
    proc = _run_python(f"""
        import course_lib.grading.hidden as hidden, course_lib.grading.runner as runner
        hidden._check_hidden = lambda *args, **kwargs: None    # an answer cell's patch
        runner.grade_notebook = lambda *args, **kwargs: {{}}
        from course_lib.grading import check_hidden
        try:
            check_hidden("he_normal", notebook={str(nb)!r})
        except AssertionError as exc:
            print("ASSERTION", exc)
    """, tmp_path)
    assert "ASSERTION he_normal: FAILED" in proc.stdout, proc.stdout + proc.stderr
    assert "factor 2" in proc.stdout


def test_check_hidden_falls_back_to_the_kernel_history(tmp_path: Path) -> None:
    cells = list(sources(PS2, 1).values())
    proc = _run_python(f"""
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.user_ns["In"] = [""] + {cells!r} + ["check_hidden('he_normal')"]
        from course_lib.grading import check_hidden
        check_hidden("he_normal")
    """, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "graded from the kernel history" in proc.stdout


@pytest.mark.slow
def test_nbgrader_autograde_runs_check_hidden_on_the_submitted_notebook(tmp_path: Path) -> None:
    """A tiny nbgrader course: the hidden cell grades the submission from the kernel's cwd."""
    course = tmp_path / "course"
    (course / "source" / PS2).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(textwrap.dedent(f"""
        c = get_config()
        c.CourseDirectory.root = {str(course)!r}
        c.CourseDirectory.course_id = "tiny"
        c.CourseDirectory.db_assignments = [dict(name={PS2!r})]
        c.CourseDirectory.db_students = [dict(id="bad")]
    """))
    answers = _answers()
    solution = {fn: f"{src}\n" for fn, src in answers.items() if fn in ("compute_fans",
                                                                       "he_normal")}
    src_nb = write_notebook(course / "source" / PS2 / "initializers.ipynb", solution)
    nb = json.loads(src_nb.read_text())
    for c in nb["cells"]:  # public tests that pass; answer cells with solution regions
        if c["metadata"].get("nbgrader", {}).get("grade_id", "").endswith("_public"):
            c["source"] = "assert True\n"
        if c["metadata"].get("nbgrader", {}).get("solution"):
            body = c["source"].strip().splitlines()
            c["source"] = "\n".join([body[0], "    ### BEGIN SOLUTION", *body[1:],
                                     "    ### END SOLUTION"]) + "\n"
    src_nb.write_text(json.dumps(nb))
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")

    def nbgrader(*args: str) -> None:
        subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=env, check=True,
                       capture_output=True, text=True)

    nbgrader("generate_assignment", PS2, "--force")
    # one submission (a wrong he_normal, a right compute_fans) keeps the test short: the right
    # function earning its hidden points and the wrong one failing with the hint both show
    for student, he in (("bad", solution["he_normal"].replace("2.0 / fan_in", "1.0 / fan_in")),):
        sub = course / "submitted" / student / PS2
        sub.mkdir(parents=True)
        shutil.copy(src_nb, sub / "initializers.ipynb")
        nb = json.loads((sub / "initializers.ipynb").read_text())
        for c in nb["cells"]:
            if c["metadata"].get("nbgrader", {}).get("grade_id") == "he_normal":
                c["source"] = he
        (sub / "initializers.ipynb").write_text(json.dumps(nb))
    nbgrader("autograde", PS2, "--force")
    out = json.loads((course / "autograded" / "bad" / PS2 / "initializers.ipynb").read_text())
    outputs = {c["metadata"]["nbgrader"]["grade_id"]: json.dumps(c.get("outputs", []))
               for c in out["cells"] if c["metadata"].get("nbgrader", {}).get("grade")}
    good, bad = outputs["test_compute_fans_hidden"], outputs["test_he_normal_hidden"]
    assert "hidden checks passed" in good and "error" not in good, good
    assert "AssertionError" in bad and "factor 2" in bad, bad


def test_isolated_mode_gives_the_same_verdicts() -> None:
    case = next(c for c in BROKEN if c.label == "os._exit in the function")
    cells = sources(PS2, 0, **{case.function: case.source})
    fns = ["compute_fans", "he_uniform", "he_normal"]
    shared = grade_notebook(cells, PS2, functions=fns, limits=FAST)
    isolated = grade_notebook(cells, PS2, functions=fns, limits=FAST, isolate=True)
    assert {f: v.passed for f, v in shared.items()} == {f: v.passed for f, v in isolated.items()}
    assert {f: v.passed for f, v in shared.items()} == {"compute_fans": True,
                                                        "he_uniform": False, "he_normal": True}


def test_an_interpreter_under_tmp_stays_visible_in_the_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A checkout (and its .venv) cloned under /tmp must survive the sandbox's private /tmp.

    The private /tmp is a tmpfs; a read-only bind of the interpreter's directory made before it
    would be hidden by it (a fresh clone in /tmp then failed every grade with "execvp ...:
    No such file or directory"). A marker directory under /tmp stands in for such a venv: it is
    mounted like an interpreter root and must be readable inside, while /tmp stays private.
    """
    import tempfile

    from course_lib.grading import isolation

    root = Path(tempfile.mkdtemp(prefix="venv-under-tmp-", dir="/tmp"))
    try:
        (root / "marker").write_text("here")
        (root.parent / f"{root.name}-sibling").write_text("not mounted")
        roots = isolation._readonly_roots()
        monkeypatch.setattr(isolation, "_readonly_roots", lambda: [*roots, str(root)])
        probe = (
            "import os, sys; "
            f"print(open({str(root / 'marker')!r}).read(), "
            f"os.path.exists({str(root.parent / (root.name + '-sibling'))!r}))"
        )
        argv = [isolation.interpreter(), "-I", "-S", "-c", probe]
        cmd = isolation.wrap(argv, {"PATH": "/usr/bin"})
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["here", "False"], proc.stdout
    finally:
        shutil.rmtree(root, ignore_errors=True)
        (root.parent / f"{root.name}-sibling").unlink(missing_ok=True)


def test_the_sandbox_lists_only_its_own_user() -> None:
    """/etc/passwd and /etc/group inside show the sandbox's user, not the machine's accounts."""
    import getpass
    import pwd

    from course_lib.grading import isolation

    probe = ("import getpass, os, pwd; print(open('/etc/passwd').read()); "
             "print('USER', getpass.getuser(), pwd.getpwuid(os.getuid()).pw_dir)")
    argv = [isolation.interpreter(), "-I", "-S", "-c", probe]
    proc = subprocess.run(isolation.wrap(argv, {"PATH": "/usr/bin"}), capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    inside = {line.split(":")[0] for line in proc.stdout.splitlines() if ":" in line}
    assert inside <= {"root", "grader", "nobody"}, inside
    assert f"USER grader {isolation.SANDBOX_WORKDIR}" in proc.stdout
    # the machine's own account (the grader's user) is what the sandbox hides
    outside = {p.pw_name for p in pwd.getpwall()}
    assert getpass.getuser() in outside and (outside - {"root", "nobody"}) - inside
