"""``svc.*``: service lifecycle, so the log shows who was alive when.

``heartbeat_s`` (on ``svc.started`` and ``svc.heartbeat``) is the instance's own heartbeat interval,
so a reader can tell a silent instance from a slow one without knowing how it was configured.
Optional, defaulting to :data:`HEARTBEAT_S`, the interval every service used before it was recorded:
older runs read unchanged (an additive field: no version bump)."""

from events.envelope import Payload

HEARTBEAT_S = 5.0
"""Seconds between a service's heartbeats unless configured otherwise (``OPLAB_HEARTBEAT_S``)."""


class ServiceStarted(Payload):
    TYPE = "svc.started"
    service: str
    instance: str
    version: str
    pid: int
    heartbeat_s: float = HEARTBEAT_S


class ServiceStopping(Payload):
    TYPE = "svc.stopping"
    service: str
    instance: str
    reason: str = "signal"


class ServiceHeartbeat(Payload):
    TYPE = "svc.heartbeat"
    service: str
    instance: str
    version: str
    pid: int
    uptime_s: float
    heartbeat_s: float = HEARTBEAT_S
