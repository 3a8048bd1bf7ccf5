"""``svc.*``: service lifecycle, so the log shows who was alive when."""

from events.envelope import Payload


class ServiceStarted(Payload):
    TYPE = "svc.started"
    service: str
    instance: str
    version: str
    pid: int


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
