"""What a running stack is: :class:`StackInfo`, saved in ``<home>/stack.json``, and the launcher's
one error, :class:`StackError`.

The stack file is how every later command (``oplab status``, ``down``, ``events``, a campaign's
slots) finds the run that ``up`` started; :func:`saved_url` reads what it needs from a file an
older lab wrote, which :meth:`StackInfo.load` refuses.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from oplab.nats_auth import write_private


class StackError(RuntimeError):
    """The stack could not be started or reached; the message says what to do."""


@dataclass
class StackInfo:
    """What ``up`` started, saved in ``<home>/stack.json`` (owner-only: it holds credentials)."""

    run: str
    subject: str
    nats_url: str
    supervisor_url: str
    fault: str
    mode: str
    embedded_nats: bool
    started_at: float
    subject_env: dict[str, str]
    """The environment the subject's provisioner gave every process of the run."""
    endpoints: dict[str, str]
    compose: dict[str, Any] | None = None
    """For a run under Docker Compose: :attr:`oplab.compose.ComposeRun.saved` (no supervisord then)."""
    approval: str | None = None
    """The agents' approval mode the run was started with (``manual``: the console decides, so it
    connects as the ``operator`` user, who may write the decision)."""
    command_scope: str | None = None
    """The scope its chaos and director answer commands in (a campaign's parallel trial slot, see
    :func:`events.subjects.command`); None: unscoped, the lab's one instance."""

    def save(self, path: Path) -> None:
        # holds the supervisor's credentials (and a compose run's NATS passwords): owner-only from the start
        write_private(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> StackInfo | None:
        """The saved stack, or None (no file, or one written by another version of the lab)."""
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    @property
    def stream_replicas(self) -> int:
        """Copies of the stream: one per server of the lab's own cluster; an external NATS keeps its own."""
        return len(self.nats_url.split(",")) if self.embedded_nats else 1


def saved_url(path: Path, key: str) -> str | None:
    """``supervisor_url`` or ``nats_url`` from a stack file of any version of the lab (enough to
    reach or bring down a stack an older ``oplab`` started)."""
    try:
        url = json.loads(path.read_text()).get(key)
    except (FileNotFoundError, ValueError, AttributeError):
        return None
    return url if isinstance(url, str) else None
