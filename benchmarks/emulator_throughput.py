"""Emulator throughput: GetDeploymentsByName answers per second over one keep-alive connection.

The emulator serves from its own process; the client is ``http.client`` with every request signed
ahead (the emulator refuses a reused nonce), so the figure is the server's, not a client library's.
"""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

from client_cost import DEPLOYMENT_ID, _operation, _sign, client_state
from emulator_process import running_emulator

from airflow_provider_flink_vvp.api.operations import PreparedRequest


def measure(requests: int = 5000) -> float:
    """Requests answered per second, ``requests`` of them in a row after a short warm-up."""
    with running_emulator(client_state()) as emulator:
        parts = urlsplit(emulator.url)
        operation = _operation()
        signed = [_sign(operation, emulator.url) for _ in range(requests + 100)]
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        try:
            _send_all(connection, signed[:100], emulator.url)
            started = time.perf_counter()
            _send_all(connection, signed[100:], emulator.url)
            return requests / (time.perf_counter() - started)
        finally:
            connection.close()


def _send_all(connection: http.client.HTTPConnection, signed: list[PreparedRequest], base_url: str) -> None:
    for request in signed:
        connection.request("GET", request.url.removeprefix(base_url), headers=request.headers)
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 200 or DEPLOYMENT_ID.encode() not in body:
            raise RuntimeError(f"the emulator answered {answer.status}: {body[:200]!r}")


if __name__ == "__main__":
    print(f"{measure():.0f} requests/s")
