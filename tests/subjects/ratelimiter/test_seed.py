"""A run's seed (``OPLAB_SEED``, a campaign trial's) decides the rate limiter's random choices: the
node a fault picks when given none, and the workload's arrival jitter."""

from __future__ import annotations

import pytest

from subjects.ratelimiter.cluster import RateLimiterCluster
from subjects.ratelimiter.settings import RateLimiterSettings
from tests.subjects.ratelimiter.conftest import Cluster


def test_the_lab_seed_reaches_the_subjects_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPLAB_SEED", "1234")
    assert RateLimiterSettings().seed == 1234
    monkeypatch.delenv("OPLAB_SEED")
    assert RateLimiterSettings().seed is None


async def picked(settings: RateLimiterSettings) -> str:
    lab = RateLimiterCluster(settings)
    try:
        return await lab.pick_healthy_node()
    finally:
        await lab.close()


async def test_the_node_a_fault_picks_follows_the_seed(cluster: Cluster) -> None:
    by_seed = {seed: await picked(cluster.settings.model_copy(update={"seed": seed})) for seed in range(12)}
    assert await picked(cluster.settings.model_copy(update={"seed": 5})) == by_seed[5]  # the same seed, the same node
    assert len(set(by_seed.values())) >= 2, by_seed  # other seeds, other nodes
    assert set(by_seed.values()) <= set(cluster.settings.node_urls)
    unseeded = cluster.settings.model_copy(update={"seed": None})
    assert await picked(unseeded) == next(iter(cluster.settings.node_urls))
