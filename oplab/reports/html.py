"""A :class:`~oplab.reports.document.Document` as one self-contained HTML page: inline CSS, charts
as PNG data URIs, no script and no external asset, so the file can be mailed or attached to an issue."""

from __future__ import annotations

import base64
from html import escape

from oplab.reports.document import Cell, Document, Link, Renderer

CSS = """
body { font: 15px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328;
       max-width: 1100px; margin: 24px auto; padding: 0 20px; }
h1 { font-size: 26px; margin-bottom: 2px; } h2 { font-size: 20px; border-bottom: 1px solid #d0d7de;
       padding-bottom: 4px; margin-top: 32px; } h3 { font-size: 16px; margin-top: 22px; }
.subtitle { color: #57606a; margin-top: 0; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } tr:nth-child(even) td { background: #fbfcfd; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 10px;
      white-space: pre-wrap; word-break: break-word; font-size: 12.5px; margin: 4px 0 10px; }
pre.model { background: #ddf4ff; border-color: #54aeff; font-family: inherit; font-size: 14px; }
pre.call { background: #fff8c5; border-color: #d4a72c; } pre.error { background: #ffebe9; border-color: #ff8182; }
.label { font-size: 12px; color: #57606a; margin-top: 8px; font-weight: 600; }
.note { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 12px; }
figure { margin: 12px 0; } figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 13px; }
"""


def render_html(doc: Document) -> str:
    """The whole page (UTF-8 text)."""
    body = "\n".join(_HTML.element(b) for b in doc.blocks)
    subtitle = f'<p class="subtitle">{escape(doc.subtitle)}</p>' if doc.subtitle else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(doc.title)}</title><style>{CSS}</style></head>\n"
            f"<body><h1>{escape(doc.title)}</h1>{subtitle}\n{body}\n</body></html>\n")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f'<a href="{escape(cell.href)}">{escape(cell.text)}</a>'
    return escape(cell)


class _Html(Renderer):
    """Each block as HTML, its text escaped."""

    def heading(self, text: str, level: int) -> str:
        return f"<h{level}>{escape(text)}</h{level}>"

    def paragraph(self, text: str) -> str:
        return f"<p>{escape(text)}</p>"

    def note(self, text: str) -> str:
        return f'<p class="note">{escape(text)}</p>'

    def bullets(self, items: list[Cell]) -> str:
        return "<ul>" + "".join(f"<li>{_cell(i)}</li>" for i in items) + "</ul>"

    def table(self, header: list[str], rows: list[list[Cell]]) -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""  # a key/value table has none
        body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table>{thead}<tbody>{body}</tbody></table>"

    def block(self, text: str, label: str, tone: str) -> str:
        caption = f'<div class="label">{escape(label)}</div>' if label else ""
        css = f' class="{escape(tone)}"' if tone else ""
        return f"{caption}<pre{css}>{escape(text)}</pre>"

    def figure(self, name: str, png: bytes, caption: str) -> str:
        return (f'<figure id="{escape(name)}"><img alt="{escape(caption)}" src="{data_uri(png)}">'
                f"<figcaption>{escape(caption)}</figcaption></figure>")


_HTML = _Html()
