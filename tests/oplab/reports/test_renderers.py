"""HTML and Markdown show a document's text as written: nothing in a model's words or a tool's result
can become markup, a link, a script or the end of a code block."""

from __future__ import annotations

from pathlib import Path

from oplab.reports.document import Block, Bullets, Document, Heading, Link, Note, Paragraph, Table
from oplab.reports.html import render_html
from oplab.reports.markdown import render_markdown, write_markdown

HOSTILE = '<script>alert(1)</script> | *not bold* [x](http://evil) ```'


def hostile_doc() -> Document:
    doc = Document(title="Run <r1>", subtitle="a | b")
    doc.add(Heading(HOSTILE), Paragraph(HOSTILE), Note(HOSTILE), Bullets([HOSTILE, Link("run r1", "runs/r1.html")]),
            Table(["a|b", "c"], [[HOSTILE, Link("r1", "runs/r1.html")]]), Block(f"line\n{HOSTILE}\n````", "label"))
    return doc


def test_html_escapes_every_text_and_keeps_links() -> None:
    html = render_html(hostile_doc())
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="runs/r1.html">r1</a>' in html
    assert "<title>Run &lt;r1&gt;</title>" in html


def test_markdown_escapes_inline_text_and_fences_blocks_longer_than_any_backticks_inside() -> None:
    md = render_markdown(hostile_doc(), "charts")
    assert md.count("<script>") == 1  # only inside the fenced block, where it is shown as text
    assert "\\*not bold\\*" in md and "\\[x\\](http://evil)" in md
    assert "| \\<script\\>alert(1)\\</script\\> \\| " in md  # a pipe cannot split a cell
    assert "[r1](runs/r1.html)" in md
    assert "`````text\nline\n" in md  # the block holds ```` : its fence is five long


def test_a_document_without_figures_writes_no_chart_folder(tmp_path: Path) -> None:
    written = write_markdown(hostile_doc(), tmp_path / "r.md")
    assert written == [tmp_path / "r.md"] and not (tmp_path / "r").exists()
