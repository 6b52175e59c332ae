"""Sphinx tweaks that make the course site work offline and offer every chapter as a notebook.

* Removes sphinx-thebe's scripts, stylesheet and configuration block. Jupyter Book 1 always loads
  sphinx-thebe, which declares ``const THEBE_JS_URL`` twice per page (a JavaScript error) and points
  at a CDN; the course has no live kernels, so nothing of it is needed.
* Gives ``<html data-mode>`` a valid value before pydata-sphinx-theme reads it: with an empty
  ``localStorage`` the theme's inline script sets ``""`` and the theme logs "invalid mode".
* Copies each executed chapter notebook (``_build/jupyter_execute/<page>.ipynb``) next to the page
  sources and registers it, so the theme's download menu offers ``.ipynb``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

_THEBE_BLOCK = re.compile(
    r"\s*<script type=\"text/x-thebe-config\">.*?</script>\s*(<script>kernelName = '[^']*'</script>)?",
    flags=re.DOTALL,
)

_MODE_FIX = (
    "(function () {"
    " var d = document.documentElement;"
    " var m = localStorage.getItem('mode');"
    " if (['light', 'dark', 'auto'].indexOf(m) < 0) { m = 'light'; }"
    " d.dataset.mode = m;"
    " if (!d.dataset.theme) { d.dataset.theme = m === 'dark' ? 'dark' : 'light'; }"
    "})();"
)


def _is_thebe(asset: Any) -> bool:
    name = str(getattr(asset, "filename", asset) or "")
    body = str(getattr(asset, "attributes", {}).get("body", ""))
    return "thebe" in name or "thebe" in body.lower()


def _clean_page(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    for key in ("script_files", "css_files"):
        files = context.get(key)
        if files:
            context[key] = [f for f in files if not _is_thebe(f)]
    body = context.get("body")
    if isinstance(body, str) and "x-thebe-config" in body:
        context["body"] = _THEBE_BLOCK.sub("", body)


def _offer_notebook(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    sourcename = str(context.get("sourcename") or "")
    if not sourcename.endswith((".md", ".md.txt")):
        return
    out_dir = Path(app.outdir)
    executed = out_dir.parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.exists():
        return
    target = out_dir / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_js_file(None, body=_MODE_FIX, priority=100)
    app.connect("html-page-context", _offer_notebook, priority=400)
    app.connect("html-page-context", _clean_page, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
