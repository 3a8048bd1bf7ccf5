"""``bus.rejected``: a message a consumer could not use, recorded instead of lost."""

from events.envelope import Payload


class EventRejected(Payload):
    TYPE = "bus.rejected"
    consumer: str
    subject: str
    seq: int | None = None
    reason: str
    raw: str = ""
