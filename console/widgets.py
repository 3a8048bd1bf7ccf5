"""The console's urwid widgets that know no view: a panel slot, a bar, the reject prompt.

:class:`PanelSlot` and :class:`Bar` are built once per terminal size (by
:class:`~console.layout.ScreenLayout`) and re-set only when a line changed, so
cached canvases are reused. The screen itself is :class:`~console.screen.LabScreen`.

:class:`RejectPrompt` is the small box where the human types why a pending
action is rejected; :func:`prompt_overlay` lays it over the screen. It takes
every key while it is open: ``enter`` submits, ``esc`` cancels, the rest edit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import urwid

from console.format import Markup, fit_lines


class PanelSlot:
    """A panel of fixed height: a title and up to ``room`` one-row lines.

    The urwid widgets are built once; the body is one ``Text`` (long lines end
    in an ellipsis) re-set only when a line changed, so an unchanged panel keeps
    its cached canvas and a redraw costs little more than what changed.
    """

    def __init__(self, rows: int, *, boxed: bool, tail: bool = False, title_attr: str = "title") -> None:
        self.rows = max(0, rows)
        self.title_attr = title_attr
        self.boxed = boxed
        self.tail = tail
        self.room = max(0, self.rows - (2 if boxed else 1))
        self._text = urwid.Text("", wrap="ellipsis")
        self._shown: list[Markup] = []
        self._title: str | None = None
        body = urwid.Filler(self._text, valign="top")
        if boxed:
            self._box = urwid.LineBox(body, title="", title_align="left", title_attr=title_attr)
            self.widget: urwid.Widget = self._box
        else:
            self._rule_title = urwid.Text("", wrap="clip")
            rule = urwid.AttrMap(urwid.Columns([("pack", self._rule_title), urwid.Divider("─")]), "rule")
            self.widget = urwid.Pile([(1, urwid.Filler(rule)), body]) if self.room else urwid.Filler(rule)

    def show(self, title: str, lines: Sequence[Markup]) -> None:
        """Show ``title`` and ``lines``, cut to ``room`` (``tail``: the newest stay); re-sets only what changed."""
        if title != self._title:
            self._title = title
            if self.boxed:
                self._box.set_title(title)
            else:
                self._rule_title.set_text([("rule", "─ "), (self.title_attr, title), " "])
        fitted = fit_lines(lines, self.room, self.tail)
        if fitted != self._shown:
            self._shown = fitted
            markup: list[Markup] = []
            for i, line in enumerate(fitted):
                if i:
                    markup.append("\n")
                markup.append(line)
            self._text.set_text(markup or "")


class Bar:
    """A one-row bar: left markup (cut with an ellipsis) and a right-aligned text."""

    def __init__(self, attr: str) -> None:
        self._left = urwid.Text("", wrap="ellipsis")
        self._right = urwid.Text("", wrap="clip")
        self._shown: tuple[Markup, str] | None = None
        self.widget = urwid.AttrMap(urwid.Columns([self._left, ("pack", self._right)]), attr)

    def show(self, parts: tuple[Markup, str]) -> None:
        """Show ``(left markup, right text)``; nothing is re-set when they did not change."""
        if parts != self._shown:
            self._shown = parts
            self._left.set_text(parts[0])
            self._right.set_text(parts[1])


# -- the reject prompt --------------------------------------------------------------------------

REASON_MAX_CHARS = 500


class RejectPrompt(urwid.WidgetWrap[urwid.AttrMap]):
    """A box asking why ``action`` (shown as ``what``) is rejected; it takes every key while open.

    ``enter`` calls ``on_submit`` with the typed reason (stripped; may be empty,
    the caller picks the default), ``esc`` calls ``on_cancel``. Any other key
    edits the reason, and is never passed on: typing ``q`` or ``a`` here neither
    quits nor approves.
    """

    def __init__(self, action_id: str, what: str, *, default_reason: str,
                 on_submit: Callable[[str], None], on_cancel: Callable[[], None]) -> None:
        self.action_id = action_id
        self.on_submit = on_submit
        self.on_cancel = on_cancel
        self.edit = urwid.Edit("reason: ", max_length=REASON_MAX_CHARS)
        body = urwid.Pile([
            urwid.Text(what, wrap="ellipsis"),
            urwid.AttrMap(self.edit, "prompt_edit"),
            urwid.Text(("dim", f"enter rejects · esc cancels · empty: {default_reason!r}"), wrap="ellipsis"),
        ], focus_item=1)
        box = urwid.LineBox(body, title=f"Reject {action_id}", title_align="left")
        super().__init__(urwid.AttrMap(box, "prompt"))

    @property
    def reason(self) -> str:
        return self.edit.edit_text.strip()

    def keypress(self, size: tuple[int], key: str) -> str | None:  # type: ignore[override]
        if key == "enter":
            self.on_submit(self.reason)
        elif key == "esc":
            self.on_cancel()
        else:
            super().keypress(size, key)  # unused keys are swallowed, never handled elsewhere
        return None


PROMPT_COLS = 72


def prompt_overlay(prompt: RejectPrompt, below: urwid.Widget) -> urwid.Overlay:
    """``prompt`` centred over ``below``: ``PROMPT_COLS`` wide (narrower on a narrower screen), as tall as it needs."""
    return urwid.Overlay(prompt, below, align="center", width=PROMPT_COLS, valign="middle", height="pack",
                         min_width=20)
