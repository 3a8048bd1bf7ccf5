"""Faults on one rate limiter node: ``node_kill`` and ``ghost_allowing``.

- ``node_kill``: SIGKILL one node's process through supervisord. Programs run
  with ``autorestart=false``, so the node stays down until started again.
  Undo ``{"node"}``: start it if it is not running.
- ``ghost_allowing``: one node fails open through its fault hook
  (``PUT /admin/faults/fail_open``): it admits every request without
  consulting Redis. Proof: it admits a check costing more than the key's whole
  limit. Undo ``{"node"}``: ``DELETE`` the hook (a restarted node has lost it
  anyway: the state lives in the process).

Either undo derives from the target alone: start the node, clear its hook.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from subjects.contract import NoArgs, RefusedError, SubjectError
from subjects.contract.fault_kit import Injection, Reverted
from subjects.ratelimiter.backend import guarded
from subjects.ratelimiter.cluster import ALREADY_HEALTHY, NodeUnreachable
from subjects.ratelimiter.faults.base import RateLimiterFault
from subjects.supervisor import RUNNING_STATES


class NodeFault(RateLimiterFault[NoArgs]):
    """A fault on one node, without parameters. Its revert needs only the node, so an undo derives
    from the target alone."""

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        return {"node": target}

    def undo_target(self, undo: dict[str, Any]) -> str:
        """The node ``undo`` names (under ``node``), refused (RefusedError) when not one of the lab's."""
        return self.cluster.require_node(str(undo.get("node", "")))


class NodeKill(NodeFault):
    kind = "node_kill"
    detected_by = "node_down"
    description = "SIGKILL one rate limiter node's process; it stays down until started again"

    async def inject_into(self, node: str, p: NoArgs) -> Injection:
        control = self.cluster.control
        state = await control.state(node)
        if state not in RUNNING_STATES:
            raise RefusedError(f"node {node} is not running (state {state}): nothing to kill")
        pid = await control.kill(node)
        return Injection(target=node, undo={"node": node, "pid": pid})

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        node = injection.target
        probe = await self.cluster.probe(node)
        if probe.ok:
            return None
        record = await self.cluster.heartbeat(node)
        return {
            "node": node,
            "health": probe.detail,
            "process": await self._state(node),
            "last_seen": record.as_dict()["last_seen"] if record else None,
            "heartbeat_age_s": round(record.age_s, 3) if record and record.age_s is not None else None,
        }

    async def _state(self, node: str) -> str:
        try:
            return await self.cluster.control.state(node)
        except SubjectError as exc:
            return f"unknown ({exc})"

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        node = self.undo_target(undo)
        action = await self.cluster.ensure_running(node, self.cluster.settings.restart_deadline_s)
        return Reverted(f"node {node}: {action}", changed=action != ALREADY_HEALTHY)


class GhostAllowing(NodeFault):
    kind = "ghost_allowing"
    detected_by = "node_over_admitting"
    description = "make one node fail open: it admits every request without consulting Redis (a silent bug)"

    async def inject_into(self, node: str, p: NoArgs) -> Injection:
        status, body = await self.cluster.node_call(node, "PUT", "/admin/faults/fail_open")
        if status == 404:
            raise SubjectError(f"node {node} serves no fault hooks (OPLAB_RL_FAULT_HOOKS is off)")
        if status != 200 or not isinstance(body, dict) or not body.get("fail_open"):
            raise SubjectError(f"node {node} refused the fail-open hook: HTTP {status} {body!r}")
        return Injection(target=node, undo={"node": node, "instance": body.get("instance"), "pid": body.get("pid")})

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        """Proof: the node admits one check costing more than the key's whole limit, which no
        correct node can (``count + cost <= limit`` never holds), and which writes nothing."""
        node = injection.target
        limits = await guarded("ghost_allowing", self.cluster.store.limits())
        key, limit = next(((k, v) for k, v in limits.items() if 0 <= v < 1000), (None, None))
        if key is None or limit is None:
            raise SubjectError("ghost_allowing: no policy key with a limit under 1000 to prove it with")
        status, body = await self.cluster.node_call(node, "POST", "/check", {"key": key, "cost": limit + 1})
        if status != 200 or not isinstance(body, dict) or not body.get("allowed"):
            return None
        return {"node": node, "key": key, "limit": limit, "cost": limit + 1, "allowed": True,
                "proof": f"node {node} admitted a check costing {limit + 1} on {key} (limit {limit})"}

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        node = self.undo_target(undo)
        try:
            status, body = await self.cluster.node_call(node, "DELETE", "/admin/faults/fail_open")
        except NodeUnreachable as exc:
            return Reverted(f"node {node} unreachable ({exc}); its fail-open state lived only in that process's "
                            "memory", changed=False)
        if status != 200 or not isinstance(body, dict):
            raise SubjectError(f"node {node} did not clear the fail-open hook: HTTP {status} {body!r}")
        if body.get("previous"):
            return Reverted(f"node {node}: fail-open cleared")
        return Reverted(f"node {node}: was not failing open (already reverted, or restarted since)", changed=False)
