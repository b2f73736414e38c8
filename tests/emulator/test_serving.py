"""The loopback servers of the test process (the emulator, the STS stand-in) start, stop and start again alike."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from airflow_provider_flink_vvp.testing import EmulatorState, VVPEmulator
from airflow_provider_flink_vvp.testing.serving import ServedInBackground
from airflow_provider_flink_vvp.testing.sts import STSStandIn

SERVERS: dict[str, Callable[[], ServedInBackground]] = {
    "emulator": lambda: VVPEmulator(EmulatorState()),
    "STS stand-in": lambda: STSStandIn(EmulatorState(), roles=set()),
}


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("what", SERVERS)
def test_a_server_runs_from_start_to_stop_once_at_a_time_and_may_start_again(what: str) -> None:
    server = SERVERS[what]()
    with pytest.raises(RuntimeError, match=f"^the {what} is not running$"):
        _ = server.port

    with server:
        first_port = server.port
        assert answers(first_port)
        with pytest.raises(RuntimeError, match=f"^the {what} is already running$"):
            server.start()
    assert not answers(first_port)
    with pytest.raises(RuntimeError, match=f"^the {what} is not running$"):
        _ = server.port

    server.start()
    try:
        assert answers(server.port)
    finally:
        server.stop()
    server.stop()  # stopping a stopped server does nothing
