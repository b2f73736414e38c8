"""A loopback HTTP server of the test process served from a daemon thread: the emulator's, the STS stand-in's."""

from __future__ import annotations

import socketserver
import threading
from types import TracebackType
from typing import Self

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


class ServedInBackground:
    """What ``_server()`` makes, served from a daemon thread while the ``with`` block runs (or from ``start()`` to
    ``stop()``); a stopped one may start again."""

    #: What is served, in errors, and its thread's name.
    _what = "server"
    _serving: ServingThread | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Listen and serve from a daemon thread."""
        if self._serving is not None:
            raise RuntimeError(f"the {self._what} is already running")
        self._serving = ServingThread(self._server(), self._what)

    def stop(self) -> None:
        """Stop serving and close every connection."""
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    @property
    def port(self) -> int:
        if self._serving is None:
            raise RuntimeError(f"the {self._what} is not running")
        return self._serving.port

    def _server(self) -> socketserver.BaseServer:
        """A new server, listening."""
        raise NotImplementedError
