"""Rate limiter settings (env prefix ``OPLAB_RL_``; ``REDIS_URL`` is honoured too).

The declared *policy* (key -> requests per window) is lab configuration: the
nodes seed the shared limits hash from it, the monitor reports a counter for
every policy key, and the agent's tools refuse keys outside it. Override it
with ``OPLAB_RL_POLICY='{"user:alice": 40, ...}'``.

The declared Redis memory configuration (``redis_maxmemory``,
``redis_maxmemory_policy``) is lab configuration too: it is what the
``set_memory_limit`` tool restores. ``noeviction`` is the right policy for a
limiter: evicting a window would silently forget admitted requests.

``fault_hooks`` exposes the nodes' ``/admin/faults`` endpoints, through which
the chaos service makes a node fail open; turn it off outside a lab.

``nodes`` names the lab's nodes and where they serve HTTP, as
``node-1=http://127.0.0.1:8101,node-2=...``. The node processes run under a
supervisord reachable at ``supervisor_url`` (XML-RPC), one program per node,
program name == node id.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from subjects.contract.settings import checked_by, parse_named

SUBJECT_NAME = "ratelimiter"

DEFAULT_POLICY: dict[str, int] = {
    "user:alice": 40,
    "user:bob": 25,
    "api:search": 60,
    "api:checkout": 15,
    "tenant:acme": 50,
}

STATS_INTERVAL_S = 0.25
"""How often the workload reports by default: see :mod:`subjects.ratelimiter.workload`."""

DEFAULT_NODES = "node-1=http://127.0.0.1:8101,node-2=http://127.0.0.1:8102,node-3=http://127.0.0.1:8103"

_NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_KEY = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


def parse_nodes(spec: str) -> dict[str, str]:
    """Parse ``"id=url,id=url"`` into an ordered mapping, each URL without a trailing ``/``; raise
    ValueError on a malformed entry or an id listed twice."""
    nodes = parse_named(spec, entry="node", expected="id=http://host:port", valid=_node_entry, unique=True)
    return {node: url.rstrip("/") for node, url in nodes.items()}


def _node_entry(node: str, url: str) -> bool:
    return bool(_NODE_ID.match(node)) and url.rstrip("/").startswith(("http://", "https://"))


def _redis_key(name: str, holds: str) -> property:
    """A settings property: the Redis key ``<key_prefix>:<name>``, documented by what it ``holds``."""

    def key(settings: RateLimiterSettings) -> str:
        return f"{settings.key_prefix}:{name}"

    return property(key, doc=holds)


class RateLimiterSettings(BaseSettings):
    """Everything the nodes and the lab's roles (observer, toolbox, fault kit, workload) need to agree on."""

    model_config = SettingsConfigDict(env_prefix="OPLAB_RL_", extra="ignore", populate_by_name=True)

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("OPLAB_RL_REDIS_URL", "REDIS_URL"),
    )
    nodes: Annotated[str, checked_by(parse_nodes)] = Field(default=DEFAULT_NODES,
                                                          description="id=url pairs, comma separated")
    supervisor_url: str = Field(
        default="http://127.0.0.1:9001/RPC2",
        description="XML-RPC URL (http:// or unix://) of the supervisord running the nodes",
    )
    key_prefix: str = Field(default="rl", description="Prefix of every Redis key the limiter uses")
    seed: int | None = Field(default=None, validation_alias=AliasChoices("OPLAB_RL_SEED", "OPLAB_SEED"), description=(
        "The run's seed (a campaign trial's, ``OPLAB_SEED``): the workload's arrival jitter and the node a "
        "fault picks when given none follow it; unset: random"))
    window_s: float = Field(default=1.0, gt=0)
    heartbeat_s: float = Field(default=0.25, gt=0)
    down_after_s: float = Field(default=1.0, gt=0, description="Heartbeat age after which a node is down")
    policy: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_POLICY))
    redis_timeout_s: float = Field(default=0.5, gt=0, description="Socket timeout of Redis calls")
    # 1 s, like a Kubernetes liveness probe: a process that is gone is refused at once (node_kill is seen
    # as fast as ever); a shorter timeout made a starved machine's slow answer read as a dead node
    probe_timeout_s: float = Field(default=1.0, gt=0, description="Timeout of one node /health probe")
    observe_timeout_s: float = Field(default=2.0, gt=0, description="Bound on one whole observe()")
    supervisor_timeout_s: float = Field(default=5.0, gt=0)
    restart_deadline_s: float = Field(default=10.0, gt=0, description="How long restart_node waits")
    write_probe_timeout_s: float = Field(default=0.25, gt=0,
                                         description="Bound on the observer's write probe (a paused Redis hangs it)")
    stats_interval_s: float = Field(default=STATS_INTERVAL_S, gt=0, le=10,
                                    description="How often the workload reports what its clients saw "
                                                "(workload.stats); loadgen's OPLAB_LOADGEN_INTERVAL_S overrides it")
    redis_maxmemory: int = Field(default=0, ge=0, description="Declared Redis maxmemory in bytes (0 = no limit)")
    redis_maxmemory_policy: Literal[
        "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
        "volatile-random", "volatile-ttl",
    ] = Field(default="noeviction", description="Declared Redis maxmemory-policy")
    fault_hooks: bool = Field(default=False, description="Serve the nodes' /admin/faults hooks (chaos only); "
                              "off unless the lab's launcher turns it on")

    @field_validator("policy")
    @classmethod
    def _check_policy(cls, value: dict[str, int]) -> dict[str, int]:
        for key, limit in value.items():
            if not _KEY.match(key):
                raise ValueError(f"bad policy key {key!r}: letters, digits and _.:@- only")
            if limit < 0:
                raise ValueError(f"limit of {key!r} must be >= 0, got {limit}")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _KEY.match(value):
            raise ValueError(f"bad key prefix {value!r}")
        return value

    @property
    def node_urls(self) -> dict[str, str]:
        """The lab's nodes, in declaration order: node id -> base URL."""
        return parse_nodes(self.nodes)

    @property
    def window_us(self) -> int:
        return round(self.window_s * 1_000_000)

    def as_env(self) -> dict[str, str]:
        """The environment variables that make another process (a node) read these settings."""
        return {
            "REDIS_URL": self.redis_url,
            "OPLAB_RL_NODES": self.nodes,
            "OPLAB_RL_SUPERVISOR_URL": self.supervisor_url,
            "OPLAB_RL_KEY_PREFIX": self.key_prefix,
            "OPLAB_RL_WINDOW_S": str(self.window_s),
            "OPLAB_RL_HEARTBEAT_S": str(self.heartbeat_s),
            "OPLAB_RL_DOWN_AFTER_S": str(self.down_after_s),
            "OPLAB_RL_POLICY": json.dumps(self.policy),
            "OPLAB_RL_FAULT_HOOKS": "1" if self.fault_hooks else "0",
        }

    # Redis key layout, in one place.
    limits_key = _redis_key("limits", "Hash: policy key -> effective limit (seeded from the policy when absent)")
    nodes_key = _redis_key("nodes", "Hash: node id -> JSON {url, pid, started_at_us} written by each node's heartbeat")
    maintenance_key = _redis_key(
        "maintenance", "Hash: node id -> JSON {until_us, reason}: a planned restart announced by restart_node")
    probe_key = _redis_key("probe", "String the observer writes (with a short expiry) to prove Redis accepts writes")

    def window_key(self, key: str) -> str:
        """ZSET holding the sliding-window log of one policy key (score = microseconds)."""
        return f"{self.key_prefix}:w:{key}"


class DeploymentSettings(BaseSettings):
    """What ``oplab up`` runs for the rate limiter: the nodes, and valkey unless ``REDIS_URL`` names a Redis.

    ``OPLAB_REDIS_URL`` and ``OPLAB_NODES`` are the names these had when the launcher knew only the
    rate limiter; they still work."""

    model_config = SettingsConfigDict(env_prefix="OPLAB_RL_", extra="ignore", populate_by_name=True)

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPLAB_RL_REDIS_URL", "REDIS_URL", "OPLAB_REDIS_URL"),
        description="Use this Redis instead of starting valkey")
    node_count: int = Field(default=3, ge=1, le=9, validation_alias=AliasChoices("OPLAB_RL_NODE_COUNT", "OPLAB_NODES"),
                            description="Rate limiter nodes")
