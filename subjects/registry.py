"""Subjects by name. Services pick theirs from ``OPLAB_SUBJECT`` (default: ratelimiter)."""

from __future__ import annotations

import os

from subjects.base import Adapter

SUBJECTS = ("ratelimiter",)


def load_adapter(name: str | None = None) -> Adapter:
    name = name or os.environ.get("OPLAB_SUBJECT", "ratelimiter")
    if name == "ratelimiter":
        from subjects.ratelimiter import RateLimiterAdapter

        return RateLimiterAdapter()
    raise ValueError(f"unknown subject {name!r}; known: {', '.join(SUBJECTS)}")
