"""Scripted event sequences for projection and console tests.

:class:`Story` builds events with :func:`events.new_event` at exact times
(``t0 + seconds``), so durations computed from envelope times are known in
advance. :func:`node_kill_story` is the demo's happy path for ``node_kill``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from events import (
    AgentSessionStarted,
    AgentThought,
    AgentToolCall,
    AgentToolResult,
    ChapterStarted,
    ComponentView,
    Event,
    FaultEffective,
    FaultInjected,
    FaultRequested,
    FaultReverted,
    InvariantCleared,
    InvariantViolated,
    NodeStats,
    NodeView,
    ObsSnapshot,
    OperationStats,
    Payload,
    RunStarted,
    ServiceStarted,
    TicketActionExecuted,
    TicketActionRequested,
    TicketClaimed,
    TicketDiagnosed,
    TicketEscalated,
    TicketOpened,
    TicketResolved,
    TicketVerified,
    WorkloadStats,
    new_event,
)
from subjects.ratelimiter.details import CounterView, SnapshotDetails, StoreHealth, WorkloadDetails

T0 = datetime(2026, 11, 24, 23, 58, 0, tzinfo=UTC)
NODES = ("rl-1", "rl-2", "rl-3")


class Fold(Protocol):
    """A read model folded one event at a time (timeline, cluster view, lab view, ...)."""

    def apply(self, event: Event) -> Any: ...


F = TypeVar("F", bound=Fold)


class Story:
    """Builds a run's events at chosen offsets (seconds after ``t0``)."""

    def __init__(self, run: str, t0: datetime = T0) -> None:
        self.run = run
        self.t0 = t0
        self.events: list[Event] = []

    def t(self, seconds: float) -> datetime:
        return self.t0 + timedelta(seconds=seconds)

    def folded(self, view: F) -> F:
        """``view`` with this story's events applied to it, in order."""
        for event in self.events:
            view.apply(event)
        return view

    def at(self, seconds: float, data: Payload, *, source: str = "test", correlation: str | None = None
           ) -> Event:
        event = new_event(data, run=self.run, source=source, correlation=correlation, time=self.t(seconds))
        self.events.append(event)
        return event

    # -- building blocks ---------------------------------------------------------------

    def run_started(self, s: float, fault: str | None = "node_kill") -> Event:
        return self.at(s, RunStarted(scenario="ratelimiter-demo", subject="ratelimiter", fault=fault),
                       source="director")

    def chapter(self, s: float, index: int, title: str, narration: str = "Watch the cluster.",
                advance: str = "press space", timeout_s: float | None = None, total: int = 7) -> Event:
        return self.at(s, ChapterStarted(scenario="ratelimiter-demo", index=index, total=total,
                                         chapter=title.lower().replace(" ", "_"), title=title,
                                         narration=narration, advance=advance, timeout_s=timeout_s),
                       source="director")

    def snapshot(self, s: float, down: tuple[str, ...] = (), counters: dict[str, tuple[int, int]] | None = None,
                 ok: bool = True, redis_ok: bool = True) -> Event:
        """A rate limiter snapshot: the neutral core plus the subject's details (counters, Redis)."""
        seen = self.t(s)
        nodes = [NodeView(node=n, address=f"http://127.0.0.1:80{i}", status="down" if n in down else "up",
                          last_seen=seen - timedelta(seconds=12 if n in down else 0.3))
                 for i, n in enumerate(NODES)]
        counter_views = [CounterView(key=k, count=c, limit=lim, window_s=1.0)
                         for k, (c, lim) in (counters or {"user:1": (40, 100)}).items()]
        store = StoreHealth(ok=redis_ok, latency_ms=0.6, error=None if redis_ok else "OOM command not allowed")
        redis = ComponentView(name="redis", role="shared store", status="up" if redis_ok else "degraded",
                              latency_ms=0.6)
        details = SnapshotDetails(counters=counter_views, backend=store) if ok else SnapshotDetails()
        return self.at(s, ObsSnapshot(
            subject="ratelimiter", ok=ok, error=None if ok else "connection refused", observed_at=seen,
            nodes=nodes if ok else [], components=[redis] if ok else [],
            details=details.model_dump(mode="json"),
        ), source="monitor")

    def workload(self, s: float, keys: dict[str, tuple[int, int, int]]) -> Event:
        """keys: name -> (limit, sent, blocked)."""
        return self.at(s, WorkloadStats(
            interval_s=1.0,
            operations=[OperationStats(name=k, sent=sent, ok=sent - blk, rejected=blk)
                        for k, (_, sent, blk) in keys.items()],
            nodes=[NodeStats(node=n, sent=100, ok=90, rejected=10, p50_ms=1.0, p99_ms=4.0) for n in NODES],
            details=WorkloadDetails(limits={k: lim for k, (lim, _, _) in keys.items()}).model_dump(),
        ), source="loadgen")

    def fault(self, s: float, fault_id: str = "f-1", kind: str = "node_kill", target: str = "rl-2",
              ttl_s: float = 120.0) -> Event:
        self.at(s, FaultRequested(fault_id=fault_id, kind=kind, target=target, ttl_s=ttl_s),
                source="chaos", correlation=fault_id)
        return self.at(s, FaultInjected(fault_id=fault_id, kind=kind, target=target,
                                        undo={"restart": target}, expires_at=self.t(s + ttl_s)),
                       source="chaos", correlation=fault_id)

    def effective(self, s: float, fault_id: str = "f-1") -> Event:
        return self.at(s, FaultEffective(fault_id=fault_id, evidence={"down": True}), source="chaos",
                       correlation=fault_id)

    def reverted(self, s: float, reason: str = "explicit", fault_id: str = "f-1", changed: bool | None = True) -> Event:
        return self.at(s, FaultReverted(fault_id=fault_id, reason=reason, changed=changed),  # type: ignore[arg-type]
                       source="chaos", correlation=fault_id)

    def violated(self, s: float, invariant: str = "node_down", entity: str = "rl-2",
                 first_seen: float | None = None) -> Event:
        return self.at(s, InvariantViolated(invariant=invariant, entity=entity, summary=f"{entity} is down",
                                            first_seen=self.t(first_seen if first_seen is not None else s)),
                       source="monitor")

    def cleared(self, s: float, invariant: str = "node_down", entity: str = "rl-2") -> Event:
        return self.at(s, InvariantCleared(invariant=invariant, entity=entity, first_seen=self.t(0),
                                           violated_for_s=s), source="monitor")

    def opened(self, s: float, ticket_id: str = "tk-1", invariant: str = "node_down",
               entity: str = "rl-2") -> Event:
        return self.at(s, TicketOpened(ticket_id=ticket_id, invariant=invariant, entity=entity,
                                       subject="ratelimiter", summary=f"{entity} is down",
                                       first_seen=self.t(s)), source="monitor", correlation=ticket_id)

    def ticket(self, s: float, data: Payload) -> Event:
        return self.at(s, data, source="agent", correlation=getattr(data, "ticket_id", None))

    def agent_session(self, s: float, ticket_id: str = "tk-1", node: str = "rl-2") -> None:
        """claimed, thought, tool call/result, diagnosed, action, verified (no terminal event)."""
        self.ticket(s, TicketClaimed(ticket_id=ticket_id, agent="agent-1", policy="rules",
                                     lease_until=self.t(s + 30)))
        self.ticket(s + 0.05, AgentSessionStarted(ticket_id=ticket_id, agent="agent-1", policy="rules"))
        self.ticket(s + 0.1, AgentThought(ticket_id=ticket_id, text="node_down: list the nodes first"))
        self.ticket(s + 0.2, AgentToolCall(ticket_id=ticket_id, call_id="c1", tool="list_nodes", args={}))
        self.ticket(s + 0.3, AgentToolResult(ticket_id=ticket_id, call_id="c1", tool="list_nodes", ok=True,
                                             result={"nodes": [{"node": node, "status": "down"}]}))
        self.ticket(s + 0.4, TicketDiagnosed(ticket_id=ticket_id, hypothesis=f"{node} process died"))
        self.ticket(s + 0.5, TicketActionRequested(ticket_id=ticket_id, action_id="a1", tool="restart_node",
                                                   args={"node": node}))
        self.ticket(s + 0.9, TicketActionExecuted(ticket_id=ticket_id, action_id="a1", tool="restart_node",
                                                  args={"node": node}, ok=True, result={"pid": 4242}))

    def verified(self, s: float, ticket_id: str = "tk-1") -> Event:
        return self.ticket(s, TicketVerified(ticket_id=ticket_id, evidence={"cleared": "node_down"}))

    def resolved(self, s: float, ticket_id: str = "tk-1", by: str = "agent") -> Event:
        return self.ticket(s, TicketResolved(ticket_id=ticket_id, by=by, agent="agent-1"))  # type: ignore[arg-type]

    def escalated(self, s: float, ticket_id: str = "tk-1", reason: str = "budget exhausted") -> Event:
        return self.ticket(s, TicketEscalated(ticket_id=ticket_id, reason=reason, agent="agent-1"))

    # -- how an incident begins and ends -----------------------------------------------

    def detected(self, *, ttl_s: float = 120.0) -> None:
        """The incident up to its ticket: the run starts at 0, node_kill on rl-2 (for ``ttl_s``) is
        injected at 10 and effective at 10.4, rl-2 is seen violating node_down at 11 and tk-1 is
        opened for it at 11.2 (a time to detect of 1.2 s)."""
        self.run_started(0)
        self.fault(10, ttl_s=ttl_s)
        self.effective(10.4)
        self.violated(11)
        self.opened(11.2)

    def aftermath(self, *, revert_at: float | None, reason: str, changed: bool | None,
                  cleared_at: float | None) -> None:
        """What may follow the fault, each only if given a time: chaos reverts it (``reason``,
        ``changed``), and the monitor sees the invariant clear."""
        if revert_at is not None:
            self.reverted(revert_at, reason=reason, changed=changed)
        if cleared_at is not None:
            self.cleared(cleared_at)

    def ending(self, terminal: str, *, verified_at: float, escalated_at: float,
               escalation: str = "budget exhausted") -> None:
        """The ticket's end: ``"resolved"`` (verified at ``verified_at``, resolved 0.1 s later),
        ``"escalated"`` (at ``escalated_at``, for ``escalation``), or ``"none"`` (still open)."""
        if terminal == "resolved":
            self.verified(verified_at)
            self.resolved(verified_at + 0.1)
        elif terminal == "escalated":
            self.escalated(escalated_at, reason=escalation)

    def service(self, s: float, name: str) -> Event:
        return self.at(s, ServiceStarted(service=name, instance=f"{name}-0", version="0.1.0", pid=100),
                       source=name)


def node_kill_story(run: str, **kw: Any) -> Story:
    """The happy path: fault at 10 s, ticket at 11.2 s, agent fixes it, cleared at 13.7 s, resolved."""
    s = Story(run, **kw)
    s.run_started(0)
    for i, name in enumerate(("monitor", "chaos", "agent", "loadgen")):
        s.service(0.1 * i, name)
    s.chapter(0.5, 0, "Welcome")
    s.snapshot(1)
    s.workload(1.5, {"user:1": (100, 40, 0), "user:2": (50, 60, 10)})
    s.chapter(5, 2, "Fault injection", narration="Chaos kills one rate limiter node.", timeout_s=30)
    s.fault(10)
    s.effective(10.4)
    s.snapshot(10.8, down=("rl-2",))
    s.violated(11, first_seen=10.8)
    s.opened(11.2)
    s.agent_session(11.5)
    s.snapshot(13.5)
    s.cleared(13.7)
    s.verified(13.8)
    s.resolved(13.9)
    s.reverted(14.0, reason="explicit")
    return s
