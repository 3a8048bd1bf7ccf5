"""``bus.rejected``: a message a consumer could not use, recorded instead of lost."""

from events.envelope import Payload


class EventRejected(Payload):
    """A message on the log that a consumer could not use, recorded by that consumer's bus client so it is not lost
    silently: not a valid event (not JSON, unknown type, invalid payload), or its handler failed on every delivery.
    ``consumer``: the service (or durable consumer) that met it; ``seq``: the message's stream sequence; ``raw``: its
    first 200 characters. Recorded in the run its subject names (``unknown`` if none)."""

    TYPE = "bus.rejected"
    consumer: str
    subject: str
    seq: int | None = None
    reason: str
    raw: str = ""
