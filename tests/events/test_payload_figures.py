"""Figures read off a payload, defined once on it: a workload interval's totals
(:meth:`WorkloadStats.totals`) and a model response's tokens (:attr:`AgentLlmResponse.tokens`)."""

from __future__ import annotations

from events import AgentLlmResponse, Counts, NodeStats, OperationStats, WorkloadStats
from events.catalogue.agent import usage_tokens


def op(name: str, ok: int, rejected: int, errors: int, p99: float | None = None) -> OperationStats:
    return OperationStats(name=name, sent=ok + rejected + errors, ok=ok, rejected=rejected, errors=errors,
                          p50_ms=None if p99 is None else p99 / 2, p99_ms=p99)


def node(name: str, ok: int, rejected: int, errors: int, p99: float | None = None) -> NodeStats:
    return NodeStats(node=name, sent=ok + rejected + errors, ok=ok, rejected=rejected, errors=errors,
                     p50_ms=None if p99 is None else p99 / 2, p99_ms=p99)


def test_the_totals_of_an_interval_with_operations_are_the_operations_summed() -> None:
    stats = WorkloadStats(interval_s=1.0, operations=[op("put", 7, 0, 3, 12.0), op("get", 5, 2, 1, 30.0)])
    assert stats.totals() == Counts(sent=18, ok=12, rejected=2, errors=4, p50_ms=15.0, p99_ms=30.0)


def test_a_producer_that_reports_nodes_only_has_the_nodes_as_its_totals() -> None:
    stats = WorkloadStats(interval_s=0.5, nodes=[node("tikv-1", 4, 0, 6, 8.0), node("tikv-2", 10, 1, 0, None)])
    assert stats.totals() == Counts(sent=21, ok=14, rejected=1, errors=6, p50_ms=4.0, p99_ms=8.0)


def test_with_both_the_operations_count_and_the_nodes_attempts_are_not_added() -> None:
    # the rate limiter's shape: one logical check failed over from rl-1 (an error there) to rl-2 (allowed)
    stats = WorkloadStats(interval_s=0.25, operations=[op("user:1", 1, 0, 0, 2.0)],
                          nodes=[node("rl-1", 0, 0, 1), node("rl-2", 1, 0, 0, 2.0)])
    totals = stats.totals()
    assert (totals.sent, totals.ok, totals.rejected, totals.errors) == (1, 1, 0, 0)


def test_an_interval_with_neither_has_zero_totals_and_no_latency() -> None:
    assert WorkloadStats(interval_s=1.0).totals() == Counts()
    unanswered = WorkloadStats(interval_s=1.0, operations=[op("put", 0, 0, 4)])
    assert unanswered.totals() == Counts(sent=4, errors=4)  # nothing answered: no percentile to report


def test_a_responses_tokens_are_input_with_cache_writes_and_reads_plus_output() -> None:
    usage = {"input_tokens": 1200, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 4000,
             "output_tokens": 150}
    response = AgentLlmResponse(ticket_id="tk-1", model="claude-haiku-4-5", usage=usage)
    assert response.tokens == usage_tokens(usage) == 5650


def test_only_the_four_token_counts_are_added_not_every_key_ending_in_tokens() -> None:
    # a breakdown reported flat (cache writes by lifetime, output by kind) must not count its tokens twice
    usage = {"input_tokens": 100, "output_tokens": 40, "cache_creation_input_tokens": 60,
             "ephemeral_5m_input_tokens": 60, "reasoning_output_tokens": 25, "web_search_requests": 2}
    assert AgentLlmResponse(ticket_id="tk-1", model="m", usage=usage).tokens == 200


def test_missing_or_null_token_counts_count_nothing() -> None:
    assert AgentLlmResponse(ticket_id="tk-1", model="m", error="overloaded").tokens == 0
    assert usage_tokens({"input_tokens": 9, "cache_read_input_tokens": None}) == 9
