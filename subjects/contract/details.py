"""Reading a subject's own ``details`` out of snapshots and workload stats.

``obs.snapshot`` and ``workload.stats`` carry ``details`` as a JSON object
whose schema the subject owns. :class:`DetailsReader` validates it against
the subject's pydantic model once per event object (invariants look at the same
snapshots on every tick) and answers an empty model for details that are
missing or do not validate, so a malformed or foreign snapshot reads as "nothing
observed" rather than raising inside a judge.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class HasDetails(Protocol):
    @property
    def details(self) -> dict[str, Any]: ...


class DetailsReader(Generic[M]):
    """``reader(event_payload) -> model``, cached per payload object (the cache holds the payload,
    so an entry can never be mistaken for a later object at the same address)."""

    def __init__(self, model: type[M], cache_size: int = 1024) -> None:
        self.model = model
        self.empty = model()
        self._cache: OrderedDict[int, tuple[HasDetails, M]] = OrderedDict()
        self._size = cache_size

    def __call__(self, payload: HasDetails) -> M:
        key = id(payload)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is payload:
            self._cache.move_to_end(key)
            return hit[1]
        try:
            parsed = self.model.model_validate(payload.details) if payload.details else self.empty
        except ValidationError:
            parsed = self.empty
        self._cache[key] = (payload, parsed)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return parsed
