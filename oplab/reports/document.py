"""A report as a list of blocks, rendered alike as HTML and Markdown.

Blocks hold plain text (renderers escape it) and PNG bytes (renderers embed or write them), so
building a report is pure and the two formats can never tell different stories.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Link:
    """A table cell or list item that links somewhere (a relative path or a URL)."""

    text: str
    href: str


Cell = str | Link


@dataclass(frozen=True, slots=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True, slots=True)
class Paragraph:
    text: str


@dataclass(frozen=True, slots=True)
class Note:
    """Something the reader must not miss: what a report could not show, and why."""

    text: str


@dataclass(frozen=True, slots=True)
class Bullets:
    items: list[Cell]


@dataclass(frozen=True, slots=True)
class Table:
    header: list[str]
    rows: list[list[Cell]]


@dataclass(frozen=True, slots=True)
class Block:
    """Preformatted text (a model's words, a tool's result), shown as is; ``tone`` (``model``,
    ``call``, ``ok``, ``error`` or empty) lets a page tell them apart at a glance."""

    text: str
    label: str = ""
    tone: str = ""


@dataclass(frozen=True, slots=True)
class Figure:
    """A chart: ``name`` is its file stem in Markdown (unique within a document)."""

    name: str
    png: bytes
    caption: str


Element = Heading | Paragraph | Note | Bullets | Table | Block | Figure


@dataclass(slots=True)
class Document:
    title: str
    subtitle: str = ""
    blocks: list[Element] = field(default_factory=list)

    def add(self, *blocks: Element) -> None:
        self.blocks.extend(blocks)

    @property
    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]


def abridge(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, saying how much was left out."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return f"{text[:limit].rstrip()} … ({len(text) - limit} more characters)"
