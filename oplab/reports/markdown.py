"""A :class:`~oplab.reports.document.Document` as Markdown (GitHub's dialect), its charts as PNG
files in a folder named after the Markdown file (``report.md`` → ``report/heatmap.png``)."""

from __future__ import annotations

import re
from pathlib import Path

from oplab.reports.document import (
    Block,
    Bullets,
    Cell,
    Document,
    Element,
    Figure,
    Heading,
    Link,
    Note,
    Paragraph,
    Table,
)


def image_dir(path: Path) -> Path:
    """Where the charts of the Markdown file ``path`` go."""
    return path.with_suffix("")


def render_markdown(doc: Document, images: str) -> str:
    """The Markdown text; each figure is referenced as ``images/<name>.png`` (a relative folder)."""
    parts = [f"# {_inline(doc.title)}"]
    if doc.subtitle:
        parts.append(f"*{_inline(doc.subtitle)}*")
    parts.extend(_block(b, images) for b in doc.blocks)
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


def _block(block: Element, images: str) -> str:
    match block:
        case Heading(text, level):
            return f"{'#' * min(max(level, 2), 4)} {_inline(text)}"
        case Paragraph(text):
            return _inline(text)
        case Note(text):
            return f"> **Note:** {_inline(text)}"
        case Bullets(items):
            return "\n".join(f"- {_cell(i)}" for i in items)
        case Table(header, rows):
            lines = ["| " + " | ".join(_inline(h) for h in header) + " |",
                     "|" + "---|" * len(header)]
            lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
            return "\n".join(lines)
        case Block(text, label, _tone):
            # a fence longer than any run of backticks inside, so the text cannot close it
            fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
            caption = f"**{_inline(label)}**\n\n" if label else ""
            return f"{caption}{fence}text\n{text}\n{fence}"
        case Figure(name, _png, caption):
            return f"![{_inline(caption)}]({images}/{name}.png)\n\n*{_inline(caption)}*"
    raise TypeError(f"not a report block: {block!r}")
