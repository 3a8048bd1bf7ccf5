"""Settings: environment names, the node list, the policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from subjects.ratelimiter.node import identity, parse_args
from subjects.ratelimiter.settings import DEFAULT_POLICY, RateLimiterSettings, parse_nodes


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "OPLAB_RL_REDIS_URL", "OPLAB_RL_POLICY", "OPLAB_RL_NODES", "OPLAB_RL_KEY_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    s = RateLimiterSettings()
    assert s.redis_url == "redis://127.0.0.1:6379/0" and s.policy == DEFAULT_POLICY and len(s.policy) == 5
    assert list(s.node_urls) == ["node-1", "node-2", "node-3"]
    assert (s.window_s, s.heartbeat_s, s.down_after_s, s.key_prefix) == (1.0, 0.25, 1.0, "rl")
    monkeypatch.setenv("REDIS_URL", "redis://10.0.0.1:6380/1")
    monkeypatch.setenv("OPLAB_RL_POLICY", '{"a:b": 7}')
    monkeypatch.setenv("OPLAB_RL_NODES", "n1=http://h:1, n2=http://h:2/")
    s = RateLimiterSettings()
    assert s.redis_url == "redis://10.0.0.1:6380/1" and s.policy == {"a:b": 7}
    assert s.node_urls == {"n1": "http://h:1", "n2": "http://h:2"}
    monkeypatch.setenv("OPLAB_RL_REDIS_URL", "redis://10.0.0.2:6379/0")
    assert RateLimiterSettings().redis_url == "redis://10.0.0.2:6379/0"
    assert RateLimiterSettings(redis_url="redis://x:1/0").redis_url == "redis://x:1/0"


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected id=http"):
        parse_nodes("node-1")
    with pytest.raises(ValueError, match="twice"):
        parse_nodes("a=http://h:1,a=http://h:2")
    with pytest.raises(ValidationError):
        RateLimiterSettings(policy={"bad key": 3})
    with pytest.raises(ValidationError):
        RateLimiterSettings(policy={"k": -1})
    with pytest.raises(ValidationError):
        RateLimiterSettings(window_s=0)


def test_node_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = RateLimiterSettings(nodes="node-1=http://127.0.0.1:8101,node-2=http://127.0.0.1:8102")
    args = parse_args(["--id", "node-2"])
    ident = identity(settings, args.node, args.host, args.port, args.url)
    assert (ident.node, ident.host, ident.port, ident.url) == ("node-2", "127.0.0.1", 8102, "http://127.0.0.1:8102")
    monkeypatch.setenv("OPLAB_RL_NODE_ID", "node-7")
    monkeypatch.setenv("OPLAB_RL_PORT", "9000")
    args = parse_args(["--host", "0.0.0.0", "--url", "http://limiter-7:9000"])
    ident = identity(settings, args.node, args.host, args.port, args.url)
    assert (ident.node, ident.host, ident.port, ident.url) == ("node-7", "0.0.0.0", 9000, "http://limiter-7:9000")
    with pytest.raises(SystemExit):
        identity(settings, "node-9", "127.0.0.1", None, None)
