"""``svc.*``: service lifecycle, so the log shows who was alive when.

``heartbeat_s`` (on ``svc.started`` and ``svc.heartbeat``) is the instance's own heartbeat interval,
so a reader can tell a silent instance from a slow one without knowing how it was configured.
Optional, defaulting to :data:`HEARTBEAT_S`, the interval every service used before it was recorded:
older runs read unchanged (an additive field: no version bump)."""

from events.envelope import Payload

HEARTBEAT_S = 5.0
"""Seconds between a service's heartbeats unless configured otherwise (``OPLAB_HEARTBEAT_S``)."""


class ServiceStarted(Payload):
    """A service instance is ready for work (its endpoints up, its state restored from the log). ``instance``: its id
    (``<host>-<pid>`` unless ``OPLAB_INSTANCE`` sets it); ``version``: the operator-lab package's."""

    TYPE = "svc.started"
    service: str
    instance: str
    version: str
    pid: int
    heartbeat_s: float = HEARTBEAT_S


class ServiceStopping(Payload):
    """A service instance is leaving: recorded once its work has stopped, before it disconnects. ``reason``: ``signal``
    (SIGTERM/SIGINT), ``crash`` (its main task failed) or ``finished`` (its main task returned). An instance killed
    outright records nothing: its heartbeats just stop."""

    TYPE = "svc.stopping"
    service: str
    instance: str
    reason: str = "signal"


class ServiceHeartbeat(Payload):
    """A service instance is alive: one every ``heartbeat_s`` seconds while it runs. ``uptime_s``: seconds since the
    process began serving."""

    TYPE = "svc.heartbeat"
    service: str
    instance: str
    version: str
    pid: int
    uptime_s: float
    heartbeat_s: float = HEARTBEAT_S
