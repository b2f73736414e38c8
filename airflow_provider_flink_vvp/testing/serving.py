"""A loopback HTTP server of the test process served from a daemon thread: the emulator's, the STS stand-in's."""

from __future__ import annotations

import socketserver
import threading

# How often the serving thread checks for shutdown: stopping takes at most this long.
_SHUTDOWN_POLL_SECONDS = 0.02


class ServingThread:
    """``server`` served from a daemon thread named ``name``, from construction until :meth:`~.ServingThread.stop`."""

    def __init__(self, server: socketserver.BaseServer, name: str) -> None:
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(_SHUTDOWN_POLL_SECONDS,), name=name, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])  # type: ignore[index]  # an INET server's (host, port)

    def stop(self) -> None:
        """Stop serving, close every connection and wait for the thread."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
