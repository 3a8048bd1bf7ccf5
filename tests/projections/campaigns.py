"""A synthetic campaign for scoreboard and ``oplab eval show`` tests: its own events and its trials'
runs, built with :class:`~tests.console.script.Story` at exact times, so every figure is known.

The plan: node_kill x (rules, claude:claude-haiku-4-5) x 3 repeats (trial 2 never runs) and the
control hot_key_burst x rules once. Trial 0 is mitigated (TTD 1.0 s, TTM 2.0 s), trial 1 self-healed
(a TTL revert before the clear), trial 3 mitigated by Claude (TTD 0.5 s, TTM 1.0 s, 1000 tokens,
$0.25), trial 4 escalated for its step budget (3000 tokens, $0.50), trial 5 a false positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events import (
    AgentLlmResponse,
    AgentToolCall,
    AgentToolResult,
    CampaignFinished,
    CampaignStarted,
    Event,
    TicketActionExecuted,
    TicketClaimed,
    TrialFinished,
    TrialStarted,
    new_event,
)
from tests.console.script import Story

VARIANTS = [{"name": "rules", "policy": "rules"},
            {"name": "claude:claude-haiku-4-5", "policy": "claude", "model": "claude-haiku-4-5"}]
PLAN = [  # trial, fault, variant, repeat
    (0, "node_kill", "rules", 0), (1, "node_kill", "rules", 1), (2, "node_kill", "rules", 2),
    (3, "node_kill", "claude:claude-haiku-4-5", 0), (4, "node_kill", "claude:claude-haiku-4-5", 1),
    (5, "hot_key_burst", "rules", 0),
]
BUDGET = "step budget of 8 tool calls exhausted"


def trial_run(run: str, *, ttd: float = 1.2, ttm: float | None = 2.5, revert_before_clear: bool = False,
              escalate: str | None = None, cost: float = 0.0, tokens: int = 0) -> Story:
    """node_kill on rl-2 injected at 10 s; the ticket ``ttd`` later; a restart_node; the clear ``ttm``
    after the ticket (None: never); resolved, or escalated with the reason."""
    s = Story(run)
    s.run_started(0)
    s.fault(10)
    opened = 10 + ttd
    s.opened(opened)
    s.ticket(opened + 0.1, TicketClaimed(ticket_id="tk-1", agent="agent-1", policy="rules", lease_until=s.t(60)))
    if tokens:
        s.ticket(opened + 0.15, AgentLlmResponse(ticket_id="tk-1", model="claude-haiku-4-5",
                                                 usage={"input_tokens": tokens}, cost_usd=cost))
    s.ticket(opened + 0.2, AgentToolCall(ticket_id="tk-1", call_id="c1", tool="restart_node", mutating=True))
    s.ticket(opened + 0.3, TicketActionExecuted(ticket_id="tk-1", action_id="c1", tool="restart_node", ok=True,
                                                target="rl-2"))
    s.ticket(opened + 0.3, AgentToolResult(ticket_id="tk-1", call_id="c1", tool="restart_node", ok=True))
    if revert_before_clear:
        s.reverted(opened + 0.35, reason="ttl", changed=True)
    if ttm is not None:
        s.cleared(opened + ttm)
        s.verified(opened + ttm + 0.1)
        s.resolved(opened + ttm + 0.2)
    elif escalate:
        s.escalated(opened + 5, reason=escalate)
    return s


def control_run(run: str, *, act: bool) -> Story:
    """The control burst on user:1; with ``act``, a ticket and a reset_counter on the burst's key."""
    s = Story(run)
    s.run_started(0, fault="hot_key_burst")
    s.fault(10, kind="hot_key_burst", target="user:1")
    if act:
        s.opened(11, invariant="over_limit", entity="user:1")
        s.ticket(12, TicketActionExecuted(ticket_id="tk-1", action_id="a1", tool="reset_counter", ok=True,
                                          target="user:1"))
    return s


@dataclass
class SyntheticCampaign:
    """The campaign ``campaign`` whose trial runs are named ``<runs>-t<trial>``."""

    campaign: str
    runs: str

    def trial_runs(self) -> dict[int, Story]:
        r = self.runs
        return {
            0: trial_run(f"{r}-t0", ttd=1.0, ttm=2.0),
            1: trial_run(f"{r}-t1", ttd=2.0, ttm=3.0, revert_before_clear=True),
            3: trial_run(f"{r}-t3", ttd=0.5, ttm=1.0, cost=0.25, tokens=1000),
            4: trial_run(f"{r}-t4", ttd=0.7, ttm=None, escalate=BUDGET, cost=0.5, tokens=3000),
            5: control_run(f"{r}-t5", act=True),
        }

    def event(self, at: float, data: Any) -> Event:
        return new_event(data, run=self.campaign, source="oplab-eval", correlation=self.campaign,
                         time=Story(self.campaign).t(at))

    def campaign_events(self, *, cut_off: Story | None = None, finished: bool = True) -> list[Event]:
        """The campaign's own events: its plan; trials 0, 1, 3, 4, 5 started and finished (trial 2
        never ran); with ``cut_off``, trial 0 first ran as that run and was cut off."""
        events = [self.event(0, CampaignStarted(
            campaign=self.campaign, subject="ratelimiter", faults=["node_kill", "hot_key_burst"], variants=VARIANTS,
            repeats=3, seed=1, plan=[{"trial": t, "fault": f, "variant": v, "repeat": r, "seed": 100 + t,
                                      "control": f == "hot_key_burst"} for t, f, v, r in PLAN]))]
        if cut_off is not None:
            events.append(self.event(0.5, TrialStarted(campaign=self.campaign, trial=0, run=cut_off.run,
                                                       fault="node_kill", variant="rules")))
        runs = self.trial_runs()
        for i, (trial, fault, variant, repeat) in enumerate(PLAN):
            story = runs.get(trial)
            if story is None:
                continue
            events.append(self.event(1 + i, TrialStarted(
                campaign=self.campaign, trial=trial, run=story.run, fault=fault, variant=variant, repeat=repeat,
                seed=100 + trial, control=fault == "hot_key_burst")))
            events.append(self.event(1.5 + i, TrialFinished(campaign=self.campaign, trial=trial, run=story.run,
                                                            outcome="finished", wall_s=8.0)))
        if finished:
            events.append(self.event(30, CampaignFinished(campaign=self.campaign, trials=len(PLAN), completed=5)))
        return events

    def run_events(self) -> list[Event]:
        """Every trial run's events, run after run."""
        return [e for s in self.trial_runs().values() for e in s.events]
