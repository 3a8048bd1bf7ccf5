"""What every ``oplab`` command shares: failing clearly, printing for people or programs, options.

Exit status: 0 success, 1 the thing asked for did not happen, 2 bad usage. ``fail`` is the one way
out with an error; :class:`~oplab.stack.StackError` needs no handling in a command (the entry point
turns it into ``error: ...`` and exit 1).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from oplab.settings import LabSettings
from oplab.stack import Stack

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
RunOpt = Annotated[str | None, typer.Option(help="Run id (default: the running stack's, else every run)")]


def stack() -> Stack:
    return Stack(LabSettings())


def fail(message: str, code: int = 1) -> NoReturn:
    """``error: message`` on stderr, and exit ``code``."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def emit(doc: Any, as_json: bool, human: str) -> None:
    """``doc`` as one JSON line with ``--json``, else the ``human`` text."""
    typer.echo(json.dumps(doc, default=str) if as_json else human)


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, title: str | None = None,
          right: Collection[str] = ()) -> Table:
    """A listing for people, in the house style of ``oplab eval show``: a bold header, the title on
    the left, the ``right`` columns (numbers) right-justified. Cells are shown as given (never read
    as rich markup). Only the last column (a description, a note) wraps on a narrow terminal: the
    others hold what a reader copies (ids, names, times) and are never cut."""
    # piped, a listing has no rules to draw: `oplab runs | awk '{print $1}'` gets the ids
    plain = not Console().is_terminal
    listing = Table(title=Text(title) if title else None, title_justify="left", header_style="bold",
                    box=None if plain else box.HEAVY_HEAD)
    cells = [[Text(cell) for cell in row] for row in rows]
    for index, name in enumerate(columns):
        last = index == len(columns) - 1
        widest = max([len(name), *(row[index].cell_len for row in cells)])
        listing.add_column(name, justify="right" if name in right else "left", no_wrap=not last,
                           min_width=None if last else widest)
    for row in cells:
        listing.add_row(*row)
    return listing


def print_listing(console: Console, listing: RenderableType) -> None:
    """Print a :func:`table` (or what holds one). On a terminal too narrow for the columns that never
    wrap, it is printed at the width they need and the terminal wraps its lines: nothing a reader
    copies is cut off."""
    needed = Measurement.get(console, console.options.update_width(10_000), listing).minimum
    width = console.width
    console.width = max(width, needed)  # print() only ever narrows, so widen the console for this listing
    try:
        console.print(listing)
    finally:
        console.width = width


def stdout_console() -> Console:
    """stdout for tables: a terminal's width, or wide enough not to wrap rows in a file or pipe."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=200)


def progress(message: str) -> None:
    """A progress line on stderr (never mixed into what a program reads on stdout)."""
    typer.secho(f"  {message}", fg=typer.colors.BRIGHT_BLACK, err=True)


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP (the terminal closed) end a command as Ctrl-C does, unwinding it: the
    console restores the terminal, servers and locks are let go. Exit status 128 + the signal."""
    import signal

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, leave)


def log_to_file(path: Path) -> None:
    """While the console owns the terminal, logs go to a file (never onto the screen), in the format
    and from the level ``OPLAB_LOG_FORMAT`` / ``OPLAB_LOG_LEVEL`` say, like every other process."""
    from events.structured_logging import LogSettings, formatter

    settings = LogSettings()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(formatter(settings.log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


def scalar(text: str) -> Any:
    """``k=v`` values: JSON where they parse (numbers, booleans), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class DefaultCommandGroup(TyperGroup):
    """A group whose first argument may be its default command's argument instead of a command:
    ``oplab events RUN --type T`` is ``oplab events list RUN --type T``, while
    ``oplab events show 42`` is the ``show`` command."""

    default_command = "list"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)
