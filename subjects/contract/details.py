"""Reading a subject's own ``details`` out of snapshots and workload stats.

``obs.snapshot`` and ``workload.stats`` carry ``details`` as a JSON object
whose schema the subject owns. :class:`DetailsReader` validates it against
the subject's pydantic model once per event object (invariants look at the same
snapshots on every tick). Details that do not validate never raise inside a
judge: each top-level field that validates on its own is kept and the others
read as their defaults (one bad counter must not hide the store's health), and
the first such problem per field is logged.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

log = logging.getLogger(__name__)


class HasDetails(Protocol):
    @property
    def details(self) -> dict[str, Any]: ...


class DetailsReader(Generic[M]):
    """``reader(event_payload) -> model``, cached per payload object (the cache holds the payload,
    so an entry can never be mistaken for a later object at the same address). The model's fields
    must all have defaults: an empty ``details`` reads as the empty model."""

    def __init__(self, model: type[M], cache_size: int = 1024) -> None:
        self.model = model
        self.empty = model()
        self._cache: OrderedDict[int, tuple[HasDetails, M]] = OrderedDict()
        self._size = cache_size
        self._reported: set[str] = set()

    def __call__(self, payload: HasDetails) -> M:
        key = id(payload)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is payload:
            self._cache.move_to_end(key)
            return hit[1]
        parsed = self._parse(payload.details)
        self._cache[key] = (payload, parsed)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return parsed

    def _parse(self, details: dict[str, Any]) -> M:
        if not details:
            return self.empty
        try:
            return self.model.model_validate(details)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e.get("loc")}
        kept = {k: v for k, v in details.items() if k not in bad}
        for name in sorted(bad - self._reported):
            self._reported.add(name)
            log.warning("ignoring an invalid field in details (read as its default)",
                        extra={"model": self.model.__name__, "field": name})
        try:
            return self.model.model_validate(kept)
        except ValidationError:  # a model-level rule failed: nothing can be trusted
            return self.empty
