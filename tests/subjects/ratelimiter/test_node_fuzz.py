"""The node's HTTP API under hypothesis-generated requests: every answer is JSON below 500 (bad
input is the client's error, never the server's), and the node keeps serving."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers import EmbeddedValkey
from tests.subjects.ratelimiter.conftest import Cluster, running_cluster


@pytest.fixture(scope="module")
async def fuzzed(valkey_server: EmbeddedValkey, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path_factory.mktemp("fuzzed"), valkey_server.url) as c:
        yield c


KEYS = st.one_of(st.sampled_from(["user:alice", "api:search", "tenant:acme"]),
                 st.text(max_size=300), st.text(alphabet="%/.:?#&", max_size=20))
NUMBERS = st.one_of(st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
                    st.booleans(), st.none(), st.text(max_size=10))
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                 max_size=4), max_leaves=12)
BODIES = st.one_of(
    st.fixed_dictionaries({}, optional={"key": KEYS, "cost": NUMBERS, "limit": NUMBERS, "id": JSON}),
    JSON,
    st.binary(max_size=200).map(lambda raw: ("raw", raw)),
)
ROUTES = st.one_of(
    st.tuples(st.sampled_from(["POST"]), st.just("/check")),
    st.tuples(st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
              st.sampled_from(["/health", "/metrics", "/admin/nodes", "/admin/counters", "/admin/faults",
                               "/admin/faults/fail_open", "/check", "/"])),
    st.tuples(st.sampled_from(["PUT", "POST"]), KEYS.map(lambda k: f"/admin/limits/{urllib.request.quote(k)}")),
    st.tuples(st.just("POST"), KEYS.map(lambda k: f"/admin/counters/{urllib.request.quote(k)}/reset")),
)


def send(base: str, method: str, path: str, body: Any) -> tuple[int, bytes]:
    data = body[1] if isinstance(body, tuple) else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data if method != "GET" else None, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=ROUTES, body=BODIES)
def test_no_request_is_a_server_error(fuzzed: Cluster, route: tuple[str, str], body: Any) -> None:
    method, path = route
    status, raw = send(fuzzed.settings.node_urls["node-1"], method, path, body)
    assert status < 500, (method, path, body, status, raw[:300])
    if path != "/metrics":
        json.loads(raw)  # always JSON, errors included


def test_after_the_fuzzing_every_node_still_serves(fuzzed: Cluster) -> None:
    send(fuzzed.settings.node_urls["node-1"], "DELETE", "/admin/faults/fail_open", {})
    for url in fuzzed.settings.node_urls.values():
        status, raw = send(url, "GET", "/health", None)
        assert status == 200 and json.loads(raw)["status"] == "ok"
