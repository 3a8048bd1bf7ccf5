"""Who may say what on the lab's bus: one NATS user per role, generated per lab.

The NATS server enforces it (not our code): a publish outside a user's
permissions is refused by the server and never stored; a connection without
a user is refused. Roles:

======================  =====================================================  ==========================
role                    publishes (facts, commands)                            answers
======================  =====================================================  ==========================
``monitor``             ``obs.*``, ``inv.*``, ``ticket.*``
``agent``               ``ticket.*``, ``agent.*``
``chaos``               ``chaos.*``                                            ``cmd.chaos.*``
``director``            ``director.*``, ``run.*``; commands ``cmd.chaos.*``    ``cmd.director.*``
``loadgen``             ``workload.*``
``projector``           (its own ``svc.*`` only)
``operator`` (the CLI)  ``ticket.*``, ``campaign.*``; commands ``cmd.*``
``viewer`` (console)    no facts; commands ``cmd.director.*`` (the presenter's key)
``admin`` (launcher)    everything (creates the stream; ``oplab import``)
======================  =====================================================  ==========================

The CLI's ``operator`` writes tickets (approve, reject) and a campaign's ``campaign.*`` events
(``oplab eval``). Every service also records its own ``svc.*`` (started, heartbeat, stopping) and
``bus.rejected``. Everyone may read the stream: consumers, message gets, acks
and flow control on the ``LAB`` stream, replies to its own requests, and
answers to requests it received. Nobody but ``admin`` may update, purge or
delete the stream.

The passwords live in ``<OPLAB_HOME>/nats-auth.json`` and the server's
configuration in ``<OPLAB_HOME>/nats.conf``, both owner-only (0600), new for
every ``oplab up``; each service gets its own user in its ``NATS_URL`` through
the environment supervisord gives it. Nothing logs them (URLs are redacted).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlparse, urlunparse

from events.settings import STREAM_NAME
from events.subjects import ALL_COMMANDS, any_run_domain, service_commands

_JS = f"$JS.API.CONSUMER.%s.{STREAM_NAME}"
READ = (
    "$JS.API.INFO",
    f"$JS.API.STREAM.INFO.{STREAM_NAME}",
    "$JS.API.STREAM.NAMES",
    f"$JS.API.STREAM.MSG.GET.{STREAM_NAME}",
    f"$JS.API.DIRECT.GET.{STREAM_NAME}",
    f"$JS.API.DIRECT.GET.{STREAM_NAME}.>",
    _JS % "CREATE",
    _JS % "CREATE" + ".>",
    _JS % "DURABLE.CREATE" + ".>",
    _JS % "INFO" + ".>",
    _JS % "DELETE" + ".>",
    _JS % "MSG.NEXT" + ".>",
    f"$JS.ACK.{STREAM_NAME}.>",
    f"$JS.FC.{STREAM_NAME}.>",
)
"""What reading the log takes: consumers, gets, acks and flow control on the one stream."""

SERVICE = (*READ, f"$JS.API.STREAM.CREATE.{STREAM_NAME}", *(any_run_domain(d) for d in ("svc", "bus")))
"""What every service takes besides its own facts: the stream created if missing (with the lab's
configuration: creating cannot change or remove it), its life (``svc.*``), its rejections."""


def _facts(*domains: str) -> tuple[str, ...]:
    """The facts of these domains, in any run (``events.subjects`` spells the subjects)."""
    return tuple(any_run_domain(d) for d in domains)


@dataclass(frozen=True)
class Role:
    publish: tuple[str, ...]
    answers: tuple[str, ...] = ()  # command subjects it serves (subscribes to)

    def permissions(self) -> dict[str, object]:
        subscribe = ["_INBOX.>", *self.answers]
        if self.answers:
            subscribe.append("$SRV.>")  # nats.micro discovery (PING, INFO, STATS)
        return {"publish": {"allow": list(self.publish)}, "subscribe": {"allow": subscribe},
                "allow_responses": True}


ROLES: dict[str, Role] = {
    "monitor": Role((*SERVICE, *_facts("obs", "inv", "ticket"))),
    "agent": Role((*SERVICE, *_facts("ticket", "agent"))),
    "chaos": Role((*SERVICE, *_facts("chaos")), answers=(service_commands("chaos"),)),
    "director": Role((*SERVICE, *_facts("director", "run"), service_commands("chaos")),
                     answers=(service_commands("director"),)),
    "loadgen": Role((*SERVICE, *_facts("workload"))),
    "projector": Role(SERVICE),
    "operator": Role((*READ, *_facts("ticket", "campaign"), ALL_COMMANDS)),
    "viewer": Role((*READ, service_commands("director"))),
}
ADMIN = "admin"
ROUTE = "route"
"""Not a client: the password a cluster's servers present to each other on their routes."""
SECRETS = (*ROLES, ADMIN, ROUTE)


@dataclass(frozen=True)
class LabCredentials:
    """One password per role (and ``admin``), kept owner-only in the lab's home."""

    passwords: dict[str, str]

    FILE = "nats-auth.json"

    @classmethod
    def generate(cls) -> LabCredentials:
        return cls({role: secrets.token_urlsafe(24) for role in SECRETS})

    @classmethod
    def create(cls, home: Path) -> LabCredentials:
        """New credentials, kept in ``home`` (an ``oplab up``)."""
        creds = cls.generate()
        write_private(home / cls.FILE, json.dumps(creds.passwords, indent=1))
        return creds

    @classmethod
    def load(cls, home: Path) -> LabCredentials | None:
        """The lab's credentials, or None where the lab runs without (an external NATS)."""
        try:
            doc = json.loads((home / cls.FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return cls({str(k): str(v) for k, v in doc.items()}) if isinstance(doc, dict) else None

    @classmethod
    def from_json(cls, text: str) -> LabCredentials:
        """Credentials handed over as JSON (``{"role": "password", ...}``, every role); ValueError if not."""
        doc = json.loads(text)
        if not isinstance(doc, dict) or set(doc) != set(SECRETS) or not all(
                isinstance(v, str) and v for v in doc.values()):
            raise ValueError(f"NATS credentials must give a password for each of {', '.join(SECRETS)}")
        return cls(dict(doc))

    @classmethod
    def from_dir(cls, directory: Path) -> LabCredentials | None:
        """Credentials kept as one file per role (a compose volume), or None if any is missing."""
        try:
            return cls({role: (directory / role).read_text().strip() for role in SECRETS})
        except OSError:
            return None

    def to_json(self) -> str:
        return json.dumps(self.passwords)

    def write_dir(self, directory: Path) -> None:
        """One owner-only file per role, named after it (what ``OPLAB_NATS_AUTH_DIR`` reads)."""
        for role, password in self.passwords.items():
            write_private(directory / role, password + "\n")

    def url(self, base_url: str, role: str) -> str:
        """``base_url`` with ``role``'s user and password in it."""
        if role not in self.passwords:
            raise KeyError(f"no NATS user for role {role!r}")
        return with_user(base_url, role, self.passwords[role])

    def server_config(self, port: int, store_dir: Path, *, host: str = "127.0.0.1",
                      http_port: int | None = None, cluster: ClusterNode | None = None) -> str:
        """nats-server's configuration: JetStream, these users and nobody else (127.0.0.1 unless
        told: a container listens on every interface of its own network); with ``cluster``, one
        member of a cluster whose routes authenticate with the route password."""
        users = [{"user": ADMIN, "password": self.passwords[ADMIN]}]
        users += [{"user": role, "password": self.passwords[role], "permissions": spec.permissions()}
                  for role, spec in ROLES.items()]
        # NATS' configuration format reads JSON; strings are quoted, so no value can break out
        lines = ["listen: " + json.dumps(f"{host}:{port}")]
        if http_port is not None:
            lines.append("http: " + json.dumps(f"{host}:{http_port}"))
        if cluster is not None:
            route_auth = f"{ROUTE}:{quote(self.passwords[ROUTE], safe='')}"
            lines += ["server_name: " + json.dumps(cluster.name), "cluster: " + json.dumps({
                "name": "oplab", "listen": f"{cluster.host}:{cluster.route_port}",
                "authorization": {"user": ROUTE, "password": self.passwords[ROUTE]},
                "routes": [f"nats-route://{route_auth}@{r}" for r in cluster.routes]})]
        return "\n".join([
            *lines,
            "jetstream: " + json.dumps({"store_dir": str(store_dir)}),
            "authorization: " + json.dumps({"users": users}, indent=1),
            "",
        ])

    def write_server_config(self, path: Path, port: int, store_dir: Path, *, host: str = "127.0.0.1",
                            http_port: int | None = None, cluster: ClusterNode | None = None) -> Path:
        write_private(path, self.server_config(port, store_dir, host=host, http_port=http_port, cluster=cluster))
        return path


def with_user(url: str, user: str, password: str) -> str:
    """``url`` (one, or a cluster's comma-separated) with ``user`` and ``password`` in it."""
    out = []
    for one in url.split(","):
        parts = urlparse(one.strip())
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname or '127.0.0.1'}" + (
            f":{parts.port}" if parts.port else "")
        out.append(urlunparse(parts._replace(netloc=netloc)))
    return ",".join(out)


@dataclass(frozen=True)
class ClusterNode:
    """One server of a lab's NATS cluster: its name, its route port, and every route of the cluster."""

    name: str
    route_port: int
    routes: tuple[str, ...]  # host:port of every member's route listener (its own included)
    host: str = "127.0.0.1"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read, never readable by others meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)
