"""A report as a list of blocks, rendered alike as HTML and Markdown.

Blocks hold plain text (renderers escape it) and PNG bytes (renderers embed or write them), so
building a report is pure and the two formats can never tell different stories. Each format is a
:class:`Renderer`: one method per kind of block.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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


class Renderer(ABC):
    """One output format: a method per kind of block, each returning that block's text.

    :meth:`element` picks the method, so a format cannot miss a kind of block (each is abstract
    here), and keeps headings at levels 2 to 4 (the document's title is the only level 1).
    """

    def element(self, element: Element) -> str:
        """``element`` in this format; ``TypeError`` for anything that is not a report block."""
        match element:
            case Heading(text, level):
                return self.heading(text, min(max(level, 2), 4))
            case Paragraph(text):
                return self.paragraph(text)
            case Note(text):
                return self.note(text)
            case Bullets(items):
                return self.bullets(items)
            case Table(header, rows):
                return self.table(header, rows)
            case Block(text, label, tone):
                return self.block(text, label, tone)
            case Figure(name, png, caption):
                return self.figure(name, png, caption)
        raise TypeError(f"not a report block: {element!r}")

    @abstractmethod
    def heading(self, text: str, level: int) -> str:
        """A section heading, ``level`` 2 to 4."""

    @abstractmethod
    def paragraph(self, text: str) -> str:
        """Running text."""

    @abstractmethod
    def note(self, text: str) -> str:
        """Text set apart so the reader does not miss it."""

    @abstractmethod
    def bullets(self, items: list[Cell]) -> str:
        """A list, each item text or a link."""

    @abstractmethod
    def table(self, header: list[str], rows: list[list[Cell]]) -> str:
        """A table; a key/value table's header is all empty strings."""

    @abstractmethod
    def block(self, text: str, label: str, tone: str) -> str:
        """Preformatted text shown as is, under ``label`` when there is one (see :class:`Block`)."""

    @abstractmethod
    def figure(self, name: str, png: bytes, caption: str) -> str:
        """A chart: its PNG bytes, or the file ``name``.png beside the document."""


def abridge(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, saying how much was left out."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return f"{text[:limit].rstrip()} … ({len(text) - limit} more characters)"
