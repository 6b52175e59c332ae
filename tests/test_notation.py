"""The book follows the notation table of its introduction (issue 13).

The table in ``book/intro.md`` fixes the symbols: the loss is :math:`\\mathcal L` (``L`` is the
depth), the layer index is a superscript in parentheses (:math:`W^{(\\ell)}`, :math:`p^{(\\ell)}`,
:math:`a^{(\\ell)}`, :math:`q^{(\\ell)}`), and the pre-activation is :math:`p` (``z`` is a function
argument or a standard normal variable). These tests scan the math of every page (prose and
figure labels) for the forms the table replaced, so that a new page or a revision that slips back
into them fails here instead of in review. Each pattern is also run on a sample of the mistake it
exists for (the power check), and on a sample of the notation the book uses (no false alarm).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "book").rglob("*.md"))
PLOTTING = ROOT / "course_lib" / "plotting.py"
# Pages that quote another notation to say how it maps onto the table (the forms quoted only).
QUOTED = {"book/papers/signal_propagation.md": {"h^l", "q^l"}}

# Forms the notation table replaced, each with the mistake it catches and a correct counterpart.
DEVIATIONS: dict[str, tuple[re.Pattern[str], str, str]] = {
    "loss written L or ell": (
        re.compile(r"\\partial\s*(?:L|\\ell)\b(?!_)"),
        r"$\partial L/\partial W$",
        r"$\partial \mathcal L/\partial W^{(\ell)}$",
    ),
    "layer index as a subscript": (
        re.compile(r"(?<![\\\w])(?:[apqWzh]|\\delta)_\{?(?:l|\\ell)(?:\s*[+-]\s*1)?\}?(?![\w(])"),
        r"$z_l = a_{l-1} W_l$",
        r"$p^{(\ell)} = a^{(\ell-1)} W^{(\ell)}$, $x_i$, $W_{ij}$, $s_{ij}$",
    ),
    "layer index as a bare superscript": (
        re.compile(r"(?<![\\\w])(?:[apqhz]|\\delta)\^\{?(?:l|\\ell)(?:\s*[+-]\s*1)?\}?(?![\w(])"),
        r"$q^{l+1} = \sigma_w^2 q^l$",
        r"$q^{(\ell+1)} = \sigma_w^2 q^{(\ell)}$, $c^{(\ell)}$, $2^{\ell}$, $c^\ell$ (a power)",
    ),
    "pre-activation written z with a layer": (
        re.compile(r"(?<![\\\w])z\^\{\("),
        r"$\operatorname{Var}(z^{(\ell)})$",
        r"$\operatorname{Var}(p^{(\ell)})$, $z \sim N(0, 1)$",
    ),
}


def _math(text: str) -> list[str]:
    """The math of a MyST page: ``$...$``, ``$$...$$`` and matplotlib labels in code cells."""
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code and roles (glue names, references)
    display = re.findall(r"\$\$(.+?)\$\$", text, flags=re.S)
    text = re.sub(r"\$\$(.+?)\$\$", "", text, flags=re.S)
    return display + re.findall(r"\$([^$\n]+?)\$", text)


def _deviations(text: str) -> list[tuple[str, str]]:
    found = []
    for snippet in _math(text):
        for name, (pattern, _, _) in DEVIATIONS.items():
            found += [(name, m.group(0)) for m in pattern.finditer(snippet)]
    return found


@pytest.mark.parametrize("name", sorted(DEVIATIONS))
def test_each_pattern_catches_its_mistake_and_spares_the_table(name: str) -> None:
    """Power check: the wrong form is reported, the table's form is not."""
    _, wrong, right = DEVIATIONS[name]
    assert any(n == name for n, _ in _deviations(wrong)), f"{name!r} misses {wrong}"
    assert _deviations(right) == [], f"{name!r} flags the table's own notation {right}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_follows_the_notation_table(page: Path) -> None:
    quoted = QUOTED.get(str(page.relative_to(ROOT)), set())
    found = [(n, s) for n, s in _deviations(page.read_text(encoding="utf-8")) if s not in quoted]
    assert found == [], (
        f"{page.relative_to(ROOT)} deviates from the notation table of book/intro.md "
        f"(loss \\mathcal L, layer index as a superscript (\\ell), pre-activation p): {found}"
    )


def test_figure_labels_of_the_library_follow_the_table() -> None:
    found = _deviations(PLOTTING.read_text(encoding="utf-8"))
    assert found == [], f"course_lib/plotting.py axis labels deviate: {found}"
