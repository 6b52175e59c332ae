"""The book is part of the tests: it builds warning-free, executes every chapter, lists them all."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, BookBuild

# The chapters the course promises, by source file and a word their title must contain.
CHAPTERS: dict[str, str] = {
    "book/intro": "Introduction",
    "book/why_init": "matters",
    "book/inputs": "inputs",
    "book/variance": "variance",
    "book/symmetry": "constant",
    "book/lecun": "LeCun",
    "book/xavier": "Xavier",
    "book/he": "He",
    "book/comparing": "Comparing",
    "book/frameworks": "frameworks",
    "book/mistakes": "mistakes",
    "book/practice": "Practical",
    "book/exercises/index": "Exercises",
    "book/reference/api": "API",
    "book/reference/bibliography": "Bibliography",
    "book/papers/glorot2010": "Glorot",
    "book/papers/he2015": "He",
    "book/papers/beyond": "After",
    "book/papers/signal_propagation": "Signal",
    "book/papers/residual": "Residual",
    "book/papers/transformers": "Transformers",
    "book/papers/your_model": "Applying",
}


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries: list[dict[str, object]]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(str(entry["file"]))
            for key in ("chapters", "sections"):
                sub = entry.get(key)
                if isinstance(sub, list):
                    walk(sub)

    walk(toc.get("parts", []))
    return files


def _title(source: Path) -> str:
    for line in source.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    raise AssertionError(f"{source} has no level-1 title")


@pytest.mark.parametrize(("stem", "word"), sorted(CHAPTERS.items()))
def test_every_chapter_is_in_the_toc(stem: str, word: str) -> None:
    files = _toc_files()
    assert stem in files, f"{stem} is missing from _toc.yml"
    title = _title(ROOT / f"{stem}.md")
    assert word.lower() in title.lower(), (
        f"{stem}.md has title {title!r}, expected it to mention {word!r}"
    )


def test_toc_lists_only_existing_files() -> None:
    missing = [f for f in _toc_files() if not (ROOT / f"{f}.md").exists()]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_chapters_are_not_stubs() -> None:
    stubs = [f for f in _toc_files() if "being written" in (ROOT / f"{f}.md").read_text()]
    assert not stubs, f"these pages are still stubs: {stubs}"


# Log lines of the kernel processes that say nothing about the book: the TCP notice of every
# kernel start, and the interrupt jupyter_client sends a kernel it shuts down after its notebook
# has finished (ipykernel logs it as an ERROR when it races the shutdown). Errors inside a chapter
# are caught by nb_execution_raise_on_error and by test_every_chapter_with_code_was_executed.
_KERNEL_NOISE = ("Kernel is running over TCP", "[IPKernelApp] ERROR | KeyboardInterrupt caught")


@pytest.mark.slow
def test_book_builds_without_warnings(built_book: BookBuild) -> None:
    warnings = [
        line
        for line in built_book.output.splitlines()
        if re.search(r"\b(WARNING|ERROR)\b", line)
        and not any(noise in line for noise in _KERNEL_NOISE)
    ]
    assert built_book.returncode == 0, "jupyter-book build failed:\n" + "\n".join(
        warnings or built_book.output.splitlines()[-40:]
    )
    assert not warnings, "the build printed warnings:\n" + "\n".join(warnings)
    print(f"book build took {built_book.seconds:.1f} s")


def _code_cell_count(source: Path) -> int:
    return len(re.findall(r"^```\{code-cell\}", source.read_text(), flags=re.MULTILINE))


@pytest.mark.slow
def test_every_chapter_with_code_was_executed(built_book: BookBuild) -> None:
    """Every code cell of every chapter ran: myst-nb's executed copy has an execution count."""
    assert built_book.returncode == 0, "the book did not build"
    executed_dir = built_book.html.parent / "jupyter_execute"
    problems = []
    for stem in _toc_files():
        if _code_cell_count(ROOT / f"{stem}.md") == 0:
            continue
        executed = executed_dir / f"{stem}.ipynb"
        if not executed.exists():
            problems.append(f"{stem}: no executed notebook")
            continue
        nb = json.loads(executed.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        unrun = [i for i, c in enumerate(code) if c.get("execution_count") is None]
        errors = [
            o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"
        ]
        if len(code) != _code_cell_count(ROOT / f"{stem}.md") or unrun or errors:
            problems.append(f"{stem}: {len(unrun)} cells not run, {len(errors)} errors")
    assert not problems, "chapters not fully executed: " + "; ".join(problems)


def test_no_solution_or_hidden_tests_in_book_sources() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "book").rglob("*.md")
        if "BEGIN HIDDEN TESTS" in p.read_text() or "BEGIN SOLUTION" in p.read_text()
    ]
    assert not offenders, f"book pages contain nbgrader solution/hidden-test markers: {offenders}"
