"""The emulator in a background thread of the test process, as a context manager."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from airflow_provider_flink_vvp.testing.faults import Fault, FaultInjector, FaultKind
from airflow_provider_flink_vvp.testing.server import DEFAULT_IDLE_TIMEOUT, VVPApplication, VVPHTTPServer
from airflow_provider_flink_vvp.testing.serving import ServingThread
from airflow_provider_flink_vvp.testing.state import EmulatorState, ManualClock


class VVPEmulator:
    """A VVP OpenAPI on ``http://127.0.0.1:PORT`` while the ``with`` block runs.

    ``with VVPEmulator(state=EmulatorState(clock=ManualClock())) as emulator:`` then point a
    client at ``emulator.url``. A port of 0 picks a free one; a connection silent for
    ``idle_timeout`` seconds is closed. ``admin`` serves the admin API (``/_emulator/...``, unsigned).
    """

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
        self._serving: ServingThread | None = None

    def __enter__(self) -> VVPEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Listen and serve from a daemon thread."""
        if self._serving is not None:
            raise RuntimeError("the emulator is already running")
        server = VVPHTTPServer(self._address, self.application, verbose=self._verbose, idle_timeout=self._idle_timeout)
        self._serving = ServingThread(server, "vvp-emulator")

    def stop(self) -> None:
        """Stop serving and close every connection; a stopped emulator may start again."""
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    @property
    def port(self) -> int:
        if self._serving is None:
            raise RuntimeError("the emulator is not running")
        return self._serving.port

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
