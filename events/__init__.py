"""The contract between Operator Lab's parts.

Everything that happens in the lab is an :class:`Event`: an envelope around a
typed payload. This package holds the envelope, the catalogue of payloads, the
codec (bytes <-> event), the NATS subject scheme, the stream configuration and
the bus. It imports nothing else of ours, so every other package may import it.
"""

from events.catalogue import *  # noqa: F403 - the catalogue is the public vocabulary
from events.catalogue import __all__ as _catalogue_all
from events.codec import InvalidEvent, decode, encode
from events.envelope import Event, Payload, new_event, payload_type
from events.ids import new_campaign_id, new_event_id, new_fault_id, new_run_id, new_ticket_id

__all__ = [
    *_catalogue_all,
    "Event",
    "InvalidEvent",
    "Payload",
    "decode",
    "encode",
    "new_event",
    "new_campaign_id",
    "new_event_id",
    "new_fault_id",
    "new_run_id",
    "new_ticket_id",
    "payload_type",
]
