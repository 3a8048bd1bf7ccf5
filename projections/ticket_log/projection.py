"""The ticket log projection: stream deliveries -> ticket rows, exactly once.

``TicketLogProjection.process_batch`` folds a batch of deliveries into its view in
one transaction. Inside that transaction it reads the tracked sequence, drops
every delivery at or below it (and duplicates within the batch), loads the rows
of the tickets the rest touch, folds them with
:func:`tickets.state.apply_event` (the same fold the aggregate uses, per ticket
through :class:`~tickets.state.TicketFold`)
and writes the changed rows together with ``Tracking("LAB", <highest seq>)``.

Consequences:
- exactly once: a re-delivered or re-fed sequence is skipped, whoever fed it;
- resumable: the view's ``max_tracking_id()`` is where to resume (``+ 1``);
- deterministic: rows depend only on the events and their sequences, so a
  rebuild from sequence 1 into a fresh view yields identical rows, whatever the
  batch boundaries were;
- non-ticket events only advance the tracking position (one small write per batch);
- a ticket event that cannot be folded (e.g. before its ``ticket.opened``, which
  may have aged out of the stream) is logged and skipped, never retried forever.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, OperationalError, Tracking
from eventsourcing.projection import Projection
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from events import Event, TicketPayload
from events.replay import Delivered
from events.subjects import event_subject
from projections.ticket_log.rows import TicketKey
from projections.ticket_log.view import APPLICATION_NAME, BatchChanges, Loader, TicketLogView
from tickets.state import TicketFold, TicketState

log = logging.getLogger(__name__)

# every ticket event the catalogue defines: the view folds them all
TICKET_TOPICS: tuple[str, ...] = tuple(sorted(cls.TYPE for cls in TicketPayload.__subclasses__()))


class TicketLogProjection(Projection[TicketLogView]):
    """Folds ticket events from the ``LAB`` stream into a :class:`TicketLogView`."""

    name = "ticket_log"
    topics = TICKET_TOPICS

    def __init__(self, view: TicketLogView, *, attempts: int = 5) -> None:
        super().__init__(view)
        self.attempts = attempts

    def process_batch(self, batch: Sequence[Delivered]) -> BatchChanges | None:
        """Fold ``batch`` in one transaction; returns what changed, or None if nothing was new.

        Retries (on fresh state) when another writer advanced the view meanwhile or
        the store was briefly locked; other errors propagate and nothing is written.
        """
        if not batch:
            return None

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("ticket log batch retried", extra={"attempt": state.attempt_number, "error": str(error)})

        # at once (the plan reads the fresh position inside the new transaction), up to ``attempts`` in all
        retrying = Retrying(retry=retry_if_exception_type((IntegrityError, OperationalError)),
                            stop=stop_after_attempt(self.attempts), before_sleep=log_retry, reraise=True)
        return retrying(self.view.commit_batch, lambda last, load: plan_batch(batch, last, load))

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """eventsourcing's per-event entry point: ``domain_event`` is an :class:`Event`
        (or a :class:`Delivered`), ``tracking`` its position in the ``LAB`` stream."""
        if tracking.application_name != APPLICATION_NAME:
            raise ValueError(f"tracking for {tracking.application_name!r}, expected {APPLICATION_NAME!r}")
        if isinstance(domain_event, Delivered):
            delivered = domain_event
        elif isinstance(domain_event, Event):
            delivered = Delivered(domain_event, tracking.notification_id, event_subject(domain_event))
        else:
            raise TypeError(f"cannot project {type(domain_event).__name__}")
        if delivered.seq != tracking.notification_id:
            raise ValueError(f"delivery seq {delivered.seq} != tracking {tracking.notification_id}")
        self.process_batch([delivered])


def plan_batch(batch: Sequence[Delivered], last: int | None, load: Loader) -> BatchChanges | None:
    """The pure part of a batch: given the tracked position and a row loader, the changes."""
    ordered = _fresh_in_order(batch, last or 0)
    if not ordered:
        return None
    tickets: list[tuple[TicketKey, TicketPayload, Delivered]] = []
    for d in ordered:
        payload = d.event.data
        if isinstance(payload, TicketPayload):
            tickets.append(((d.event.run, payload.ticket_id), payload, d))
    states: dict[TicketKey, TicketState] = load(dict.fromkeys(k for k, _, _ in tickets)) if tickets else {}
    # one fold per ticket for the whole batch: the rows equal folding with apply_event event by
    # event (TicketFold's contract), without a model copy per event
    folds: dict[TicketKey, TicketFold] = {}
    changed: dict[TicketKey, int] = {}
    skipped = 0
    for key, payload, d in tickets:
        fold = folds.get(key)
        if fold is None:
            fold = folds[key] = TicketFold(states.get(key))
        try:
            fold.apply(payload, d.event.time, d.event.run)
        except ValueError as exc:
            skipped += 1
            log.warning("ticket event not folded", extra={
                "seq": d.seq, "type": d.event.type, "ticket": payload.ticket_id, "reason": str(exc)})
            continue
        changed[key] = d.seq
    return BatchChanges(
        tracking=Tracking(APPLICATION_NAME, ordered[-1].seq),
        rows=[(state, seq) for k, seq in changed.items() if (state := folds[k].state) is not None],
        events=len(ordered),
        skipped=skipped,
        first_seq=ordered[0].seq,
        keys=frozenset(changed),
    )


def _fresh_in_order(batch: Sequence[Delivered], floor: int) -> Sequence[Delivered]:
    """The deliveries above ``floor``, once each, by sequence."""
    previous = floor
    for d in batch:
        if d.seq <= previous:
            break
        previous = d.seq
    else:
        return batch  # the usual case, as a replay delivers: all fresh, strictly increasing
    fresh: dict[int, Delivered] = {}
    for d in batch:
        if d.seq > floor:
            fresh.setdefault(d.seq, d)
    return [fresh[s] for s in sorted(fresh)]
