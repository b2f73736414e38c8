"""The trigger-fleet benchmark, small: 200 triggers on 20 deployments for about eight seconds, twice.

Correctness only (events and request counts), never timings: the benchmark's own code
(``benchmarks/triggers.py``) runs against the emulator in its own process.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
TRIGGERS = 200
DEPLOYMENTS = 20
# A deployment is fetched at most once per poll interval; a window's edges may add a few.
REQUESTS_PER_INTERVAL_LIMIT = DEPLOYMENTS * 1.1


@pytest.fixture(scope="module")
def fleet_benchmark() -> Iterator[ModuleType]:
    """``benchmarks/triggers.py``, imported the way its siblings import each other (by bare name)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("triggers")
    finally:
        sys.path.remove(str(BENCHMARKS))


def quick_config(module: ModuleType, **changes: Any) -> Any:
    return module.FleetConfig(
        triggers=TRIGGERS,
        deployments=DEPLOYMENTS,
        poll_interval=1.0,
        first_running_after=2.0,
        last_running_after=6.0,
        time_limit=60.0,
        **changes,
    )


def test_every_trigger_fires_once_and_polls_are_shared(fleet_benchmark: ModuleType) -> None:
    result = fleet_benchmark.run_fleet(quick_config(fleet_benchmark))

    assert result.missing == 0
    assert result.right_events == TRIGGERS, result.error_messages
    assert result.events == {"success": TRIGGERS}
    assert result.polls > TRIGGERS  # the jobs start running after the first polls
    assert result.requests >= DEPLOYMENTS
    assert result.peak_requests_per_interval <= REQUESTS_PER_INTERVAL_LIMIT, (
        f"{result.peak_requests_per_interval} requests in one poll interval for {DEPLOYMENTS} deployments "
        f"(max_age passed by the trigger: {result.max_age_passed})"
    )


def test_a_throttling_storm_slows_the_fleet_but_every_trigger_fires_right(fleet_benchmark: ModuleType) -> None:
    result = fleet_benchmark.run_fleet(quick_config(fleet_benchmark, throttle_rate=0.3, seed=7))

    assert result.missing == 0
    assert result.right_events == TRIGGERS, result.error_messages
    assert result.events == {"success": TRIGGERS}
    assert result.throttled > 0
