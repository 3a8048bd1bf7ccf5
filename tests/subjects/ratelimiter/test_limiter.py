"""The sliding-window log (window.lua) and the store operations, against a real valkey."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from subjects.ratelimiter.limiter import LimiterStore
from subjects.ratelimiter.settings import RateLimiterSettings
from tests.subjects.ratelimiter.conftest import eventually


@pytest.fixture
async def store(store_settings: RateLimiterSettings) -> AsyncIterator[LimiterStore]:
    s = LimiterStore(store_settings)
    yield s
    await s.clear()
    await s.close()


async def test_admits_exactly_the_limit_then_blocks(store: LimiterStore) -> None:
    results = [await store.check("k:small", 1, f"m{i}") for i in range(5)]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert [r.count for r in results] == [1, 2, 3, 3, 3]
    assert {r.limit for r in results} == {3}


async def test_cost_counts_as_several_requests(store: LimiterStore) -> None:
    assert (await store.check("k:small", 2, "a")).allowed
    blocked = await store.check("k:small", 2, "b")
    assert not blocked.allowed and blocked.count == 2
    assert (await store.check("k:small", 1, "c")).count == 3


async def test_entries_are_unique_and_timed_by_redis(store: LimiterStore) -> None:
    before = await store.now_us()
    for i in range(3):
        await store.check("k:big", 1, f"node-x:{i}")
    after = await store.now_us()
    entries = await store.entries("k:big")
    assert len({m for m, _ in entries}) == 3
    assert all(before <= score <= after for _, score in entries), (before, entries, after)
    ttl_ms = await store.redis.pttl(store.settings.window_key("k:big"))
    assert 0 < ttl_ms <= store.settings.window_s * 1000 + 1


async def test_limits_are_seeded_from_the_policy_and_read_from_the_hash(store: LimiterStore) -> None:
    assert await store.limits() == {"k:small": 3, "k:big": 100}
    await store.check("k:small", 1, "a")  # seeds the hash when absent
    assert await store.redis.hget(store.settings.limits_key, "k:small") == "3"
    assert await store.set_limit("k:small", 1) == 3
    await store.seed_limits()  # never overwrites a limit set at run time
    assert (await store.limits())["k:small"] == 1
    assert not (await store.check("k:small", 1, "b")).allowed


async def test_a_key_outside_the_policy_is_unknown_and_writes_nothing(store: LimiterStore) -> None:
    result = await store.check("k:other", 1, "a")
    assert not result.known and not result.allowed
    assert await store.redis.exists(store.settings.window_key("k:other")) == 0


async def test_future_entries_count_until_pruned(store: LimiterStore) -> None:
    await store.check("k:big", 1, "legit")
    await store.add_future_entries("k:big", [f"bogus:{i}" for i in range(250)], ahead_s=3600)
    _, [counter] = await store.counters(["k:big"])
    assert (counter.count, counter.limit, counter.future_entries) == (251, 100, 250)
    assert not (await store.check("k:big", 1, "blocked")).allowed
    assert await store.prune("k:big") == {"future_removed": 250, "expired_removed": 0, "remaining": 1}
    _, [counter] = await store.counters(["k:big"])
    assert (counter.count, counter.future_entries) == (1, 0)
    assert [m for m, _ in await store.entries("k:big")] == ["legit:1"]


async def test_remove_members_removes_exactly_those(store: LimiterStore) -> None:
    await store.check("k:big", 1, "legit")
    await store.add_future_entries("k:big", ["bogus:a", "bogus:b"], ahead_s=60)
    assert await store.remove_members("k:big", ["bogus:a", "bogus:b", "bogus:never"]) == 2
    assert await store.remove_members("k:big", ["bogus:a"]) == 0
    assert [m for m, _ in await store.entries("k:big")] == ["legit:1"]


async def test_the_window_slides(store_settings: RateLimiterSettings) -> None:
    settings = store_settings.model_copy(update={"window_s": 0.3})
    store = LimiterStore(settings)
    try:
        for i in range(3):
            assert (await store.check("k:small", 1, f"first:{i}")).allowed
        assert not (await store.check("k:small", 1, "over")).allowed

        async def admitted_again() -> bool:
            return (await store.check("k:small", 1, "later")).allowed

        await eventually(admitted_again, timeout=5.0, what="an admission after the window slid")
        assert [m for m, _ in await store.entries("k:small")] == ["later:1"]
    finally:
        await store.clear()
        await store.close()


async def test_heartbeats_record_redis_time_and_keep_started_at(store: LimiterStore) -> None:
    first = await store.heartbeat("node-1", "http://127.0.0.1:1", 42, "inst-a")
    second = await store.heartbeat("node-1", "http://127.0.0.1:1", 42, "inst-a")
    now, records = await store.nodes()
    record = records["node-1"]
    assert record.started_at_us == first and record.last_seen_us == second <= now
    assert record.pid == 42 and record.status == "up"
    await store.heartbeat("node-1", "http://127.0.0.1:1", 43, "inst-b")  # a restarted process
    _, records = await store.nodes()
    assert records["node-1"].started_at_us is not None and records["node-1"].started_at_us > first
