"""The emulator in a background thread of the test process, as a context manager."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_flink_vvp.testing.faults import Fault, FaultInjector, FaultKind
from airflow_provider_flink_vvp.testing.server import DEFAULT_IDLE_TIMEOUT, VVPApplication, VVPHTTPServer
from airflow_provider_flink_vvp.testing.serving import ServedInBackground
from airflow_provider_flink_vvp.testing.state import EmulatorState, ManualClock


class VVPEmulator(ServedInBackground):
    """A VVP OpenAPI on ``http://127.0.0.1:PORT`` while the ``with`` block runs.

    ``with VVPEmulator(state=EmulatorState(clock=ManualClock())) as emulator:`` then point a
    client at ``emulator.url``. A port of 0 picks a free one; a connection silent for
    ``idle_timeout`` seconds is closed. ``admin`` serves the admin API (``/_emulator/...``, unsigned).
    """

    _what = "emulator"

    def __init__(
        self,
        state: EmulatorState | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultInjector | None = None,
        verbose: bool = False,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        admin: bool = False,
    ) -> None:
        self.state = state or EmulatorState()
        self.application = VVPApplication(self.state, faults, admin=admin)
        self._address = (host, port)
        self._verbose = verbose
        self._idle_timeout = idle_timeout

    def _server(self) -> VVPHTTPServer:
        return VVPHTTPServer(self._address, self.application, verbose=self._verbose, idle_timeout=self._idle_timeout)

    @property
    def url(self) -> str:
        """The base URL, ``http://HOST:PORT``, to use as the API endpoint."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def faults(self) -> FaultInjector:
        return self.application.faults

    def add_access_key(self, access_key_id: str, secret: str) -> None:
        self.state.add_access_key(access_key_id, secret)

    def add_namespace(self, workspace: str, namespace: str) -> None:
        """Make an empty namespace of a workspace known."""
        self.state.add_namespace(workspace, namespace)

    def add_deployment(self, deployment: Mapping[str, Any]) -> dict[str, Any]:
        return self.state.add_deployment(deployment)

    def add_job(self, job: Mapping[str, Any], *, timeline: Iterable[Sequence[Any]] | None = None) -> dict[str, Any]:
        return self.state.add_job(job, timeline=timeline)

    def inject(self, *faults: Fault) -> None:
        """Queue exact faults for the next requests (of a given action, when a fault names one)."""
        self.faults.enqueue(*faults)

    def set_fault_rates(
        self, rates: Mapping[FaultKind, float], *, latency_ms: int = 0, latency_rate: float = 1.0
    ) -> None:
        """Fail a share of requests at random (seeded by the FaultInjector given at construction)."""
        self.faults.set_rates(rates, latency_ms=latency_ms, latency_rate=latency_rate)

    def now(self) -> float:
        """The emulator's time, in epoch seconds."""
        return self.state.clock.now()

    def advance(self, seconds: float) -> float:
        """Move a manual clock forward; returns the new time."""
        clock = self.state.clock
        if not isinstance(clock, ManualClock):
            raise TypeError("only an emulator built on a ManualClock can advance its clock")
        return clock.advance(seconds)

    def request_counts(self) -> dict[str, int]:
        """Requests received so far, by ``x-acs-action`` ("" for none), faulted ones included."""
        return self.application.request_counts()
