"""Servers the tests run on free ports of 127.0.0.1, beyond nats-server (``oplab.infra.start_nats``)."""

from __future__ import annotations

from pathlib import Path

from oplab.infra import RunningServer, start_server
from subjects.ratelimiter.valkey import valkey_command


def start_valkey(data_dir: Path, port: int | None = None) -> RunningServer:
    """valkey (the rate limiter's store), keeping nothing on disk."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return start_server(lambda p: valkey_command(data_dir, p), lambda p: f"redis://127.0.0.1:{p}/0",
                        "valkey-server", port=port)
