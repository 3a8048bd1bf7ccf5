"""``obs.snapshot``: what the monitor saw of the subject at one instant.

The core is subject-neutral:

- ``nodes``: the members that serve the subject's clients, each with a status
  from the shared vocabulary (:data:`Status`) and the subject's own name for its
  state (e.g. a TiKV store's ``Disconnected``), so a judge can reason about any
  subject and an operator still reads the subject's own words;
- ``components``: what the nodes depend on (a shared store, placement-driver
  members, a coordinator), plural, with the same vocabulary;
- ``details``: a JSON object owned by the subject that produced the snapshot. The
  subject package defines its typed model and validates it when it reads it;
  nothing outside that package looks inside.

``ok=False`` means the observation itself failed (``error`` says why): it is
blindness, never health.

Version 2. Version 1 (written before subjects were plug-ins) carried one
``backend`` and keyed ``counters`` as first-class fields and extra per-node
fields; :meth:`ObsSnapshot.upcast_v1_v2` moves them, verbatim, into
``details`` (``backend``, ``counters``, ``nodes``), where the subject that wrote
them reads them, so recorded runs stay readable.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from events.envelope import Payload, utcnow

Status = Literal["up", "degraded", "down", "unknown"]
"""The shared status vocabulary: ``up`` serves normally; ``degraded`` serves with a
problem (slow, read-only, lagging); ``down`` does not serve; ``unknown`` cannot be told."""


class NodeView(BaseModel):
    """One node. ``state`` is the subject's own name for it (empty when the subject
    has none beyond ``status``); ``detail`` says in words why it reads so.
    ``maintenance`` is set while an operator's planned restart of the node is
    announced (its downtime is then no incident)."""

    model_config = ConfigDict(frozen=True)
    node: str
    status: Status
    state: str = ""
    address: str = ""
    last_seen: datetime | None = None
    detail: str = ""
    maintenance: str | None = None


class ComponentView(BaseModel):
    """Something the nodes depend on, e.g. a shared store or a placement-driver member."""

    model_config = ConfigDict(frozen=True)
    name: str
    role: str = ""
    status: Status
    state: str = ""
    address: str = ""
    latency_ms: float | None = None
    detail: str = ""


class ObsSnapshot(Payload):
    """One observation of the subject, made by its observer and recorded by the monitor every tick (0.25 s,
    ``OPLAB_MONITOR_INTERVAL_S``): ``observed_at`` when it began, ``duration_ms`` how long it took. ``ok`` False: the
    observation failed (``error``), blindness, not health. ``details`` is the subject's own (see the module
    docstring)."""

    TYPE = "obs.snapshot"
    VERSION = 2
    subject: str
    ok: bool
    error: str | None = None
    observed_at: datetime = Field(default_factory=utcnow)
    duration_ms: float = 0.0
    nodes: list[NodeView] = []
    components: list[ComponentView] = []
    details: dict[str, Any] = {}

    def node(self, node_id: str) -> NodeView | None:
        return next((n for n in self.nodes if n.node == node_id), None)

    def component(self, name: str) -> ComponentView | None:
        return next((c for c in self.components if c.name == name), None)

    @staticmethod
    def upcast_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
        """v1 → v2: ``url`` → ``address``; the per-node ``pid``/``health_ok``/``heartbeat_age_s``,
        the ``backend`` and the ``counters`` → ``details``, verbatim; the backend also becomes a
        component: ``up`` if it was ``ok`` (v1's ``ok`` meant reads *and* writes); ``degraded`` if it
        answered but refused the write probe (``writable`` false); ``down`` if its reads failed;
        else ``unknown`` (the observation gave up before reaching it). A document that already has
        v2 fields is not a v1 one: refused."""
        if {"components", "details"} & set(data):
            raise ValueError("a v1 obs.snapshot has no components or details: it is mislabelled")
        doc = dict(data)
        details: dict[str, Any] = {}
        nodes = []
        extras: dict[str, Any] = {}
        for raw in doc.pop("nodes", None) or []:
            node = dict(raw)
            if "url" in node:
                node["address"] = node.pop("url")
            extras[str(node.get("node"))] = {k: node.pop(k) for k in ("pid", "health_ok", "heartbeat_age_s")
                                             if k in node}
            nodes.append(node)
        doc["nodes"] = nodes
        if extras:
            details["nodes"] = extras
        backend = doc.pop("backend", None)
        if isinstance(backend, dict):
            details["backend"] = backend
            status, state = _v1_backend_status(backend)
            doc["components"] = [{
                "name": backend.get("name", "backend"), "role": "shared backend", "status": status,
                "state": state, "latency_ms": backend.get("latency_ms"),
                "detail": backend.get("write_error") or backend.get("error") or "",
            }]
        counters = doc.pop("counters", None)
        if counters:
            details["counters"] = counters
        doc["details"] = details
        return doc


def _v1_backend_status(backend: dict[str, Any]) -> tuple[Status, str]:
    """(status, state) of a v1 backend reading (see :meth:`ObsSnapshot.upcast_v1_v2`)."""
    if backend.get("ok"):
        return "up", ""
    if backend.get("writable") is False:
        return "degraded", "writes failing"
    if (backend.get("info") or {}).get("reads") == "failed":
        return "down", "unreachable"
    return "unknown", "not observed"
