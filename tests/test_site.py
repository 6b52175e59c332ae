"""The site as readers get it: every page opened in a real browser (Debian's chromium) with the
outside network blocked.

The built site is served from loopback; any request to another host is aborted and recorded.
Checks: no JavaScript errors, no request leaving the machine, math typeset by the MathJax that
ships inside the build, every image loaded and described by alt text, every internal link and
anchor resolving, search working, no solution code or hidden tests anywhere in the site, every
chapter downloadable as a notebook, exercise pages linking the student notebooks, and a readable
phone-width layout. Screenshots land in ``_build/screenshots`` for a person to look at.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from conftest import ROOT, BookBuild

pytestmark = pytest.mark.slow

CHROMIUM_PACKAGE = "chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
SCREENSHOT_PAGES = ["book/intro", "book/variance", "book/he", "book/comparing"]
PHONE_WIDTH = 390


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's chromium, installed by apt when missing and we are root."""
    path = _find_chromium()
    if path:
        return path
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", CHROMIUM_PACKAGE],
            env=env,
            check=True,
            capture_output=True,
        )
        path = _find_chromium()
        if path:
            return path
    pytest.fail(
        f"The browser tests need Debian's '{CHROMIUM_PACKAGE}' package (/usr/bin/chromium). "
        f"Install it with: sudo apt-get install {CHROMIUM_PACKAGE}"
    )


@pytest.fixture(scope="session")
def site(built_book: BookBuild) -> Path:
    if built_book.returncode != 0 or not (built_book.html / "index.html").exists():
        pytest.fail("the book did not build, so the site cannot be checked (see test_book)")
    return built_book.html


@pytest.fixture(scope="session")
def server(site: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _pages(site: Path) -> list[str]:
    """Every HTML page of the site, as paths relative to its root (without .html)."""
    pages = []
    for p in sorted(site.rglob("*.html")):
        rel = p.relative_to(site).as_posix()
        if rel.startswith(("_static/", "_sources/", "_downloads/", "_images/")):
            continue
        pages.append(rel[: -len(".html")])
    return pages


@dataclass
class PageReport:
    console_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    math_total: int = 0
    math_rendered: int = 0
    math_errors: int = 0
    broken_images: list[str] = field(default_factory=list)
    images_without_alt: list[str] = field(default_factory=list)


WAIT_FOR_PAGE = """
async () => {
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    await window.MathJax.startup.promise;
  }
  window.scrollTo(0, document.body.scrollHeight);
  await Promise.all(Array.from(document.images).map(img => img.complete ? null :
      new Promise(resolve => { img.onload = img.onerror = resolve; })));
  const math = Array.from(document.querySelectorAll('.math'));
  return {
    math_total: math.length,
    math_rendered: math.filter(m => m.querySelector('mjx-container')).length,
    math_errors: document.querySelectorAll('mjx-merror').length,
    broken_images: Array.from(document.images)
        .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
    images_without_alt: Array.from(document.images)
        .filter(i => !(i.getAttribute('alt') || '').trim()).map(i => i.src),
  };
}
"""


@pytest.fixture(scope="session")
def crawl(site: Path, server: str, chromium: str) -> dict[str, PageReport]:
    """Open every page in chromium once, with every request off loopback blocked."""
    from playwright.sync_api import sync_playwright

    reports: dict[str, PageReport] = {}
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        current: list[PageReport] = []

        def route(r: object) -> None:
            request = r.request  # type: ignore[attr-defined]
            url = request.url
            if url.startswith(server) or url.startswith(("data:", "blob:", "about:")):
                r.continue_()  # type: ignore[attr-defined]
            else:
                current[-1].external_requests.append(url)
                r.abort()  # type: ignore[attr-defined]

        context.route("**/*", route)
        page = context.new_page()
        page.on(
            "console",
            lambda m: (
                current[-1].console_errors.append(f"console: {m.text}")
                if m.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda e: current[-1].console_errors.append(f"pageerror: {e}"))
        page.on(
            "response",
            lambda resp: (
                current[-1].failed_requests.append(f"{resp.status} {resp.url}")
                if resp.status >= 400 and resp.url.startswith(server)
                else None
            ),
        )
        for name in _pages(site):
            if _redirect_target(site, name) is not None:
                continue
            report = PageReport()
            current.append(report)
            page.goto(server + name + ".html", wait_until="load")
            result = page.evaluate(WAIT_FOR_PAGE)
            page.wait_for_timeout(50)
            for key, value in result.items():
                setattr(report, key, value)
            reports[name] = report
            if name in SCREENSHOT_PAGES:
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(path=str(shots / f"{name.replace('/', '_')}.png"))
        # Canary: prove the probes above can fail (a script error and an outside request).
        canary = PageReport()
        current.append(canary)
        page.goto(server + "genindex.html", wait_until="load")
        page.set_content(
            '<img alt="x" src="http://192.0.2.1/x.png"><script>notDefinedAnywhere()</script>'
        )
        page.wait_for_timeout(200)
        reports["__canary__"] = canary
        # One phone-width view.
        phone = browser.new_context(viewport={"width": PHONE_WIDTH, "height": 844})
        phone.route(
            "**/*", lambda r: r.continue_() if r.request.url.startswith(server) else r.abort()
        )
        ppage = phone.new_page()
        ppage.goto(server + "book/variance.html", wait_until="load")
        ppage.evaluate(WAIT_FOR_PAGE)
        ppage.evaluate("window.scrollTo(0, 0)")
        ppage.screenshot(path=str(shots / f"phone_{PHONE_WIDTH}px_variance.png"))
        overflow = ppage.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        reports["__phone__"] = PageReport(
            console_errors=[f"horizontal overflow of {overflow}px"] if overflow > 1 else []
        )
        # Search.
        search = context.new_page()
        search.goto(server + "search.html?q=Glorot", wait_until="load")
        try:
            search.wait_for_selector("#search-results ul.search li", timeout=15000)
            hits = search.eval_on_selector_all("#search-results ul.search li", "els => els.length")
        except Exception:
            hits = 0
        reports["__search__"] = PageReport(
            console_errors=[] if hits > 0 else ["search for 'Glorot' found nothing"]
        )
        browser.close()
    return reports


def _summarize(crawl: dict[str, PageReport], attr: str) -> dict[str, list[str]]:
    return {name: getattr(r, attr) for name, r in crawl.items() if getattr(r, attr)}


def _redirect_target(site: Path, name: str) -> str | None:
    """The target of a meta-refresh page (the site's root index.html), else None."""
    match = re.search(
        r'http-equiv="Refresh" content="0; url=([^"]+)"', (site / f"{name}.html").read_text(), re.I
    )
    return match.group(1) if match else None


def test_every_page_was_opened(crawl: dict[str, PageReport], site: Path) -> None:
    redirects = {n: _redirect_target(site, n) for n in _pages(site)}
    for name, target in redirects.items():
        if target is not None:
            assert (site / target).exists(), f"{name}.html redirects to missing {target}"
    assert {n for n, t in redirects.items() if t is None} <= set(crawl)
    assert len(_pages(site)) >= 20, "the site has fewer pages than the course's chapters"


def test_the_probes_can_fail(crawl: dict[str, PageReport]) -> None:
    canary = crawl["__canary__"]
    assert any("notDefinedAnywhere" in e for e in canary.console_errors), canary
    assert any("192.0.2.1" in u for u in canary.external_requests), canary


def test_no_javascript_errors(crawl: dict[str, PageReport]) -> None:
    errors = {
        k: v for k, v in _summarize(crawl, "console_errors").items() if not k.startswith("__")
    }
    assert not errors, f"JavaScript errors: {json.dumps(errors, indent=1)}"


def test_no_request_leaves_the_machine(crawl: dict[str, PageReport]) -> None:
    external = {
        k: v for k, v in _summarize(crawl, "external_requests").items() if k != "__canary__"
    }
    assert not external, f"requests to other hosts: {json.dumps(external, indent=1)}"


def test_no_failed_local_requests(crawl: dict[str, PageReport]) -> None:
    failed = _summarize(crawl, "failed_requests")
    assert not failed, f"missing files: {json.dumps(failed, indent=1)}"


def test_math_rendered_offline(crawl: dict[str, PageReport], site: Path) -> None:
    assert (site / "_static" / "mathjax" / "tex-chtml.js").exists(), "MathJax is not in the build"
    pages_with_math = {k: r for k, r in crawl.items() if r.math_total}
    assert len(pages_with_math) >= 5, "expected math on the derivation chapters"
    bad = {
        k: f"{r.math_rendered}/{r.math_total} typeset, {r.math_errors} errors"
        for k, r in pages_with_math.items()
        if r.math_rendered < r.math_total or r.math_errors
    }
    assert not bad, f"math not rendered: {bad}"


def test_images_load_and_have_alt_text(crawl: dict[str, PageReport]) -> None:
    assert not _summarize(crawl, "broken_images"), _summarize(crawl, "broken_images")
    assert not _summarize(crawl, "images_without_alt"), _summarize(crawl, "images_without_alt")


def test_phone_width_has_no_horizontal_scroll(crawl: dict[str, PageReport]) -> None:
    assert not crawl["__phone__"].console_errors, crawl["__phone__"].console_errors


def test_search_finds_glorot(crawl: dict[str, PageReport]) -> None:
    assert not crawl["__search__"].console_errors, crawl["__search__"].console_errors


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(str(a[key]))
        if tag == "a" and a.get("href"):
            self.hrefs.append(str(a["href"]))


@functools.cache
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(errors="replace"))
    return parser


def test_internal_links_and_anchors_resolve(site: Path) -> None:
    broken = []
    for name in _pages(site):
        page = site / f"{name}.html"
        base = "http://site/" + name + ".html"
        for href in _parse(page).hrefs:
            if href.startswith(("mailto:", "javascript:", "tel:")):
                continue
            url = urljoin(base, href)
            parts = urlsplit(url)
            if parts.netloc != "site":
                continue
            target = site / unquote(parts.path.lstrip("/"))
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{name}: {href} (no file)")
                continue
            if parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in _parse(target).ids:
                    broken.append(f"{name}: {href} (no anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def _solution_lines() -> set[str]:
    """Distinctive lines of code inside the solution regions of solutions/."""
    lines: set[str] = set()
    for nb_path in (ROOT / "solutions").rglob("*.ipynb"):
        nb = json.loads(nb_path.read_text())
        for cell in nb.get("cells", []):
            source = "".join(cell.get("source", []))
            for region in re.findall(r"BEGIN SOLUTION(.*?)END SOLUTION", source, flags=re.DOTALL):
                for line in region.splitlines():
                    stripped = line.strip()
                    if len(stripped) >= 40 and not stripped.startswith("#"):
                        lines.add(stripped)
    return lines


def _site_texts(site: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(site.rglob("*")):
        if path.is_file() and path.suffix in {".html", ".ipynb", ".md", ".txt", ".py", ".js"}:
            if "_static" in path.parts and path.suffix == ".js":
                continue
            yield path.relative_to(site).as_posix(), html.unescape(path.read_text(errors="replace"))


def test_no_solution_code_or_hidden_tests_in_the_site(site: Path) -> None:
    solution_lines = _solution_lines()
    offenders = []
    for rel, text in _site_texts(site):
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            if marker in text:
                offenders.append(f"{rel}: contains {marker!r}")
        offenders += [
            f"{rel}: contains solution line {line!r}" for line in solution_lines if line in text
        ]
    assert not offenders, "\n".join(offenders[:40])


def _chapter_pages(site: Path) -> list[str]:
    return [
        n
        for n in _pages(site)
        if n.startswith("book/")
        and (ROOT / f"{n}.md").exists()
        and "```{code-cell}" in (ROOT / f"{n}.md").read_text()
    ]


def test_each_chapter_offers_its_notebook(site: Path) -> None:
    chapters = _chapter_pages(site)
    assert len(chapters) >= 10, f"expected executable chapters, found {chapters}"
    missing = []
    for name in chapters:
        hrefs = _parse(site / f"{name}.html").hrefs
        ipynb = [h for h in hrefs if h.endswith(f"_sources/{name}.ipynb")]
        notebook = site / "_sources" / f"{name}.ipynb"
        if not ipynb or not notebook.exists():
            missing.append(name)
            continue
        json.loads(notebook.read_text())
    assert not missing, f"chapters without a .ipynb download: {missing}"


def test_exercise_pages_link_the_student_notebooks(site: Path) -> None:
    from course_lib.grading.specs import NOTEBOOKS

    missing = []
    for assignment, notebook in NOTEBOOKS.items():
        page = site / "book" / "exercises" / f"{assignment}.html"
        links = [
            h
            for h in _parse(page).hrefs
            if h.rsplit("/", 1)[-1] == notebook and "_sources/" not in h
        ]
        files = [site / "book" / "exercises" / unquote(h) for h in links]
        if not any(f.exists() for f in files):
            missing.append(assignment)
            continue
        student = json.loads(next(f for f in files if f.exists()).read_text())
        released = json.loads((ROOT / "exercises" / assignment / notebook).read_text())
        if student["cells"] != released["cells"]:
            missing.append(f"{assignment} (the linked notebook is not the released one)")
    assert not missing, f"exercise pages without the student notebook: {missing}"


def test_a_downloaded_chapter_runs_with_the_course_environment(site: Path, tmp_path: Path) -> None:
    """A student downloads a chapter notebook and runs it locally, outside the repository."""
    import nbformat
    from nbclient import NotebookClient

    candidates = sorted(
        (site / "_sources" / f"{n}.ipynb" for n in _chapter_pages(site)),
        key=lambda p: p.stat().st_size if p.exists() else 1 << 60,
    )
    notebook_path = tmp_path / candidates[0].name
    shutil.copy2(candidates[0], notebook_path)
    nb = nbformat.read(notebook_path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, (
        f"{candidates[0].name} raised when run on its own: {errors[0] if errors else ''}"
    )
