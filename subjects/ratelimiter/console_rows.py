"""The rate limiter's console panels: nodes and Redis; keys as count/limit, over-limit first."""

from __future__ import annotations

from dataclasses import dataclass

from events import ComponentView
from subjects.contract import Cell, NeutralRows, Picture, Row
from subjects.ratelimiter.details import StoreHealth, snapshot_details, workload_details


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One rate-limited key: its counter against its limit, and recent client traffic.

    ``count`` is the server-side window count from the latest snapshot (None if
    the key was not observed); ``sent``/``allowed``/``blocked``/``errors`` come
    from the latest workload interval (None if the loadgen did not report it).
    """

    key: str
    limit: int
    count: int | None = None
    future_entries: int = 0
    sent: int | None = None
    allowed: int | None = None
    blocked: int | None = None
    errors: int | None = None

    @property
    def over_limit(self) -> bool:
        return self.count is not None and self.count > self.limit

    @property
    def ratio(self) -> float:
        """count / limit (0 when unknown)."""
        if self.count is None or self.limit <= 0:
            return 0.0
        return self.count / self.limit

    def sort_key(self) -> tuple[int, float, int, str]:
        """Over-limit first (most over first), then nearest its limit, then busiest."""
        busy = self.count if self.count is not None else (self.allowed or 0)
        return (0 if self.over_limit else 1, -self.ratio, -busy, self.key)


def key_rows(picture: Picture) -> list[KeyRow]:
    """Counters and workload merged into one row per key, over-limit first, then nearest their limit."""
    counters = {c.key: c for c in snapshot_details(picture.snapshot).counters} if picture.snapshot else {}
    ops = {o.name: o for o in picture.workload.operations} if picture.workload else {}
    limits = workload_details(picture.workload).limits if picture.workload else {}
    rows = []
    for key in dict.fromkeys([*counters, *ops]):
        c, o = counters.get(key), ops.get(key)
        rows.append(KeyRow(
            key=key, limit=c.limit if c is not None else limits.get(key, 0),
            count=c.count if c else None, future_entries=c.future_entries if c else 0,
            sent=o.sent if o else None, allowed=o.ok if o else None,
            blocked=o.rejected if o else None, errors=o.errors if o else None,
        ))
    rows.sort(key=KeyRow.sort_key)
    return rows


class RateLimiterRows(NeutralRows):
    workload_title = "Workload · busiest keys"

    def component_row(self, component: ComponentView, picture: Picture) -> Row:
        """Redis: OK with its PING latency, or FAIL with why (a refused or stalled write included)."""
        store = snapshot_details(picture.snapshot).backend if picture.snapshot else None
        if store is None or picture.blind:
            return super().component_row(component, picture)
        return _store_row(component.name, store)

    def workload(self, picture: Picture, limit: int | None = None) -> list[Row]:
        """Keys as count/limit (OVER when the window holds more than the limit), with tx/blocked."""
        rows = key_rows(picture)
        if not rows:
            return [[Cell("no workload stats yet", "dim")]]
        out: list[Row] = []
        for k in rows if limit is None else rows[:limit]:
            ratio = f"{'-' if k.count is None else k.count}/{k.limit}"
            traffic = Cell(f" tx {k.sent} blk {k.blocked}" if k.sent is not None else "")
            if k.over_limit:
                out.append([Cell(f"{k.key:<12.12} "), Cell(f"{ratio:>7} OVER", "bad"), traffic])
            else:
                out.append([Cell(f"{k.key:<12.12} "), Cell(f"{ratio:>7}     "), traffic])
        return out


def _store_row(name: str, store: StoreHealth) -> Row:
    if store.ok:
        latency = f" {store.latency_ms:.1f} ms" if store.latency_ms is not None else ""
        return [Cell(f"{name:<8.8} "), Cell("OK  ", "good"), Cell(latency)]
    return [Cell(f"{name:<8.8} "), Cell("FAIL", "bad"), Cell(f" {store.error or store.write_error or ''}")]

