"""The rate limiter as a plug-in subject (entry point ``ratelimiter`` in ``operator_lab.subjects``)."""

from __future__ import annotations

from subjects.contract import Roles, Subject
from subjects.ratelimiter.console_rows import RateLimiterRows
from subjects.ratelimiter.fault_kit import RateLimiterFaultKit
from subjects.ratelimiter.faults import FAULT_TYPES
from subjects.ratelimiter.invariants import INVARIANT_TYPES
from subjects.ratelimiter.observer import RateLimiterObserver
from subjects.ratelimiter.provisioner import RateLimiterProvisioner
from subjects.ratelimiter.settings import SUBJECT_NAME
from subjects.ratelimiter.toolbox import RateLimiterToolbox
from subjects.ratelimiter.tools import TOOL_TYPES
from subjects.ratelimiter.workload import RateLimiterWorkload


class RateLimiterSubject(Subject):
    name = SUBJECT_NAME
    description = ("Three (OPLAB_RL_NODE_COUNT) stateless HTTP rate limiter nodes sharing one Redis "
                   "(embedded valkey unless REDIS_URL is set): sliding-window logs per key, per-key limits.")
    roles = Roles(observer=RateLimiterObserver, toolbox=RateLimiterToolbox, fault_kit=RateLimiterFaultKit,
                  workload=RateLimiterWorkload, provisioner=RateLimiterProvisioner, console_rows=RateLimiterRows)
    fault_types, invariant_types, tool_types = FAULT_TYPES, INVARIANT_TYPES, TOOL_TYPES
