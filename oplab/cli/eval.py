"""``oplab eval``: evaluation campaigns — run one (``oplab eval --faults … --policies …``, the default
command), resume one (``--resume ID``), and read one back (``show``, ``report``).

The group is here; its commands live in the modules that own them and register on ``eval_app``.
"""

from __future__ import annotations

import typer

from oplab.cli.common import DefaultCommandGroup


class EvalGroup(DefaultCommandGroup):
    """``oplab eval --faults …`` runs a campaign; ``oplab eval show ID`` is the ``show`` command."""

    default_command = "run"


eval_app = typer.Typer(cls=EvalGroup, no_args_is_help=False,
                       help="Evaluation campaigns: faults x operator variants x seeded repeats, scored from the log.")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
