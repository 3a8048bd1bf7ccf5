"""A :class:`~oplab.reports.document.Document` as Markdown (GitHub's dialect), its charts as PNG
files in a folder named after the Markdown file (``report.md`` → ``report/heatmap.png``)."""

from __future__ import annotations

import re
from pathlib import Path

from oplab.reports.document import Cell, Document, Link, Renderer


def image_dir(path: Path) -> Path:
    """Where the charts of the Markdown file ``path`` go."""
    return path.with_suffix("")


def render_markdown(doc: Document, images: str) -> str:
    """The Markdown text; each figure is referenced as ``images/<name>.png`` (a relative folder)."""
    parts = [f"# {_inline(doc.title)}"]
    if doc.subtitle:
        parts.append(f"*{_inline(doc.subtitle)}*")
    markdown = _Markdown(images)
    parts.extend(markdown.element(b) for b in doc.blocks)
    return "\n\n".join(parts) + "\n"


def write_markdown(doc: Document, path: Path) -> list[Path]:
    """Write ``path`` and its charts beside it; returns every file written (the Markdown first)."""
    folder = image_dir(path)
    written = [path]
    if doc.figures:
        folder.mkdir(parents=True, exist_ok=True)
    for figure in doc.figures:
        target = folder / f"{figure.name}.png"
        target.write_bytes(figure.png)
        written.append(target)
    path.write_text(render_markdown(doc, folder.name), encoding="utf-8")
    return written


def _inline(text: str) -> str:
    """Text that Markdown shows as written (no accidental emphasis, links or HTML)."""
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", " ".join(text.split()))


def _cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f"[{_inline(cell.text)}]({cell.href})"
    return _inline(cell) if cell else " "


class _Markdown(Renderer):
    """Each block as Markdown, its text shown as written; figures link to ``images/<name>.png``."""

    def __init__(self, images: str) -> None:
        self.images = images

    def heading(self, text: str, level: int) -> str:
        return f"{'#' * level} {_inline(text)}"

    def paragraph(self, text: str) -> str:
        return _inline(text)

    def note(self, text: str) -> str:
        return f"> **Note:** {_inline(text)}"

    def bullets(self, items: list[Cell]) -> str:
        return "\n".join(f"- {_cell(i)}" for i in items)

    def table(self, header: list[str], rows: list[list[Cell]]) -> str:
        lines = ["| " + " | ".join(_inline(h) for h in header) + " |",
                 "|" + "---|" * len(header)]
        lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
        return "\n".join(lines)

    def block(self, text: str, label: str, tone: str) -> str:  # no tone: Markdown has no colours
        # a fence longer than any run of backticks inside, so the text cannot close it
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
        caption = f"**{_inline(label)}**\n\n" if label else ""
        return f"{caption}{fence}text\n{text}\n{fence}"

    def figure(self, name: str, png: bytes, caption: str) -> str:  # the PNG: see write_markdown
        return f"![{_inline(caption)}]({self.images}/{name}.png)\n\n*{_inline(caption)}*"
