"""The run report reads its figures off the payloads (:meth:`WorkloadStats.totals`,
:attr:`AgentLlmResponse.tokens`), so it counts what the console, ``oplab state`` and the agent's
budget count."""

from __future__ import annotations

from events import AgentLlmResponse, AgentSessionStarted, NodeStats, OperationStats, WorkloadStats
from oplab.reports.run_facts import WorkloadPoint, workload_point
from oplab.reports.transcript import TranscriptFold
from tests.console.script import Story

STORY_RUN = "r20261124t235800-ab12"


def test_a_workload_point_of_a_producer_reporting_nodes_only_counts_the_nodes() -> None:
    s = Story(STORY_RUN)
    stats = WorkloadStats(interval_s=0.5, nodes=[NodeStats(node="a", sent=9, ok=6, rejected=1, errors=2),
                                                 NodeStats(node="b", sent=4, ok=4)])
    assert workload_point(stats, s.t(1)) == WorkloadPoint(s.t(1), 0.5, ok=10, rejected=1, errors=2)


def test_a_workload_point_with_operations_counts_them_not_the_nodes_attempts() -> None:
    s = Story(STORY_RUN)
    stats = WorkloadStats(interval_s=0.25, operations=[OperationStats(name="user:1", sent=3, ok=2, errors=1)],
                          nodes=[NodeStats(node="a", sent=4, ok=2, errors=2)])  # two failed over, one of them twice
    assert workload_point(stats, s.t(1)) == WorkloadPoint(s.t(1), 0.25, ok=2, rejected=0, errors=1)


def test_a_transcripts_tokens_are_the_responses_tokens_not_every_tokens_key() -> None:
    s = Story(STORY_RUN)
    s.ticket(1, AgentSessionStarted(ticket_id="tk-1", agent="agent-1", policy="claude", model="claude-haiku-4-5"))
    usages = [{"input_tokens": 900, "output_tokens": 40, "cache_read_input_tokens": 2000},
              {"input_tokens": 50, "output_tokens": 10, "cache_creation_input_tokens": 300,
               "ephemeral_5m_input_tokens": 300}]  # a breakdown reported flat: not counted twice
    for turn, usage in enumerate(usages, start=1):
        s.ticket(1 + turn, AgentLlmResponse(ticket_id="tk-1", model="claude-haiku-4-5", usage=usage, turn=turn))
    fold = TranscriptFold(STORY_RUN)
    for event in s.events:
        fold.apply(event)
    (session,) = fold.sessions
    assert session.tokens == 2940 + 360 == sum(AgentLlmResponse.model_validate(
        {"ticket_id": "tk-1", "model": "m", "usage": u}).tokens for u in usages)
