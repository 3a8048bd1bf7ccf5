"""Which violations are active, folded from ``inv.*`` in log order.

Verification asks: has the violation this ticket is about cleared *after* a
given point in the log? Sequence numbers make that exact, so a clear that
happened before the remedy never counts as its success.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from events import InvariantCleared, InvariantViolated, Payload

Key = tuple[str, str]


@dataclass
class ViolationTracker:
    violated_at: dict[Key, int] = field(default_factory=dict)
    cleared_at: dict[Key, int] = field(default_factory=dict)
    last_seq: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def apply(self, data: Payload, seq: int) -> None:
        self.last_seq = max(self.last_seq, seq)
        if isinstance(data, InvariantViolated):
            self.violated_at[(data.invariant, data.entity)] = seq
        elif isinstance(data, InvariantCleared):
            self.cleared_at[(data.invariant, data.entity)] = seq
        else:
            return
        async with self._changed:
            self._changed.notify_all()

    def is_active(self, key: Key) -> bool:
        """Violated, and not cleared since (as far as the log has been read)."""
        return self.violated_at.get(key, 0) > self.cleared_at.get(key, 0)

    def cleared_since(self, key: Key, seq: int) -> bool:
        return self.cleared_at.get(key, 0) > max(seq, self.violated_at.get(key, 0))

    async def wait_cleared(self, key: Key, after_seq: int, timeout: float) -> bool:
        """True once ``key`` clears after ``after_seq``; False at the deadline."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.cleared_since(key, after_seq)), timeout)
            except TimeoutError:
                return False
        return True
