"""A local emulator of the VVP OpenAPI, for tests and demos; it needs neither Airflow nor the network.

    with VVPEmulator(EmulatorState.from_file("state.json", clock=ManualClock())) as emulator:
        ...  # point a client at emulator.url

Temporary credentials: an :class:`~.sts.STSStandIn` issues them (AssumeRole) and the emulator accepts them
until they expire.

The same from a shell: ``python -m airflow_provider_flink_vvp.testing.emulator --port 0 --state state.json``.
"""

from airflow_provider_flink_vvp.testing.faults import Fault, FaultInjector, FaultKind
from airflow_provider_flink_vvp.testing.harness import VVPEmulator
from airflow_provider_flink_vvp.testing.state import (
    EmulatorState,
    JobDurations,
    JobStatus,
    ManualClock,
    SystemClock,
)
from airflow_provider_flink_vvp.testing.sts import STSFailure, STSStandIn

__all__ = [
    "EmulatorState",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "JobDurations",
    "JobStatus",
    "ManualClock",
    "STSFailure",
    "STSStandIn",
    "SystemClock",
    "VVPEmulator",
]
