"""``oplab``: run the lab, look at it, poke it.

Human-readable output by default; ``--json`` where a program may read it.
Exit status: 0 success, 1 the thing asked for did not happen, 2 bad usage.

One module per group of commands: :mod:`~oplab.cli.lab` (up, down, status, restart, logs, demo,
subjects, nats-auth), :mod:`~oplab.cli.runs` (runs, events, export, import, console),
:mod:`~oplab.cli.tickets`, :mod:`~oplab.cli.state`, :mod:`~oplab.cli.projections` (rebuild, verify),
:mod:`~oplab.cli.chaos`, :mod:`~oplab.cli.decisions` (approve, reject), :mod:`~oplab.cli.report`
(report; eval report), :mod:`~oplab.cli.eval` (the ``eval`` group; ``run`` in :mod:`~oplab.cli.eval_run`,
``show`` in :mod:`~oplab.cli.eval_show`).
"""

from __future__ import annotations

import sys

import typer

from oplab.cli import chaos, decisions, eval_run, eval_show, lab, projections, report, runs, state, tickets
from oplab.cli import eval as eval_group

app = typer.Typer(help="Operator Lab: break a real system, watch an operator agent fix it.",
                  no_args_is_help=True, add_completion=False)
for group in (lab, runs, tickets, state, projections, chaos, decisions, report, eval_group):
    group.register(app)
_ = (eval_run, eval_show)  # imported for their commands, which register themselves on the eval group


def main() -> None:
    import logging

    from events.bus import BusRefused
    from events.structured_logging import configure_logging
    from oplab.cli.common import exit_on_signals
    from oplab.infra import InfraError
    from oplab.stack import StackError
    from oplab.supervisor import SupervisorError

    configure_logging("kv", "WARNING")
    exit_on_signals()
    logging.getLogger("events.bus").setLevel(logging.ERROR)  # reconnect chatter is not for CLI users
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except (StackError, InfraError, SupervisorError) as exc:  # any command: what went wrong with the lab, no traceback
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except BusRefused as exc:  # any command, any NATS: the reason and what to do, no traceback
        typer.secho(f"error: {exc}. Under compose, the viewer's password is in the lab's volume: "
                    "`docker compose run --rm -T console cat /auth/viewer`", fg=typer.colors.RED, err=True)
        sys.exit(1)
