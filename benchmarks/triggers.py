"""A fleet of deferred sensors: FlinkVVPJobSummaryTrigger instances in one event loop, as the triggerer runs them.

The emulator runs in a process of its own; each deployment has one job STARTING for a staggered
time, then RUNNING. Trigger k watches deployment k mod D, starts at a random moment within its
first poll interval (sensors defer at different times), and is awaited for its one event.

Measured without changing package code, by patching inside this process only:

- poll lateness: the trigger module's ``asyncio.sleep`` notes when the next poll is due, and the
  hook's ``aget_latest_deployment`` notes when it starts (lateness = start - due); a first poll is
  due when its trigger is started;
- requests: httpx's transport counts every request sent, its action and whether it was throttled;
- memory: RSS sampled from before the triggers are created until they have all fired;
- ``sharing=False`` gives every client its own HTTP pool and forces ``max_age=0``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import gc
import json
import os
import random
import resource
import statistics
import sys
import time
import types
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from emulator_process import (
    CONN_ID,
    WARMUP_DEPLOYMENT,
    EmulatorProcess,
    connection_json,
    deployment_id,
    deployment_name,
    exit_on_sigterm,
    fleet_state,
    prepare_airflow_home,
    running_emulator,
    staggered_starting_seconds,
)

_RSS_SAMPLE_SECONDS = 0.25
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class FleetConfig:
    triggers: int = 1000
    deployments: int = 100
    poll_interval: float = 5.0
    first_running_after: float = 20.0  # seconds after the emulator starts that the first job runs
    last_running_after: float = 120.0
    sharing: bool = True
    throttle_rate: float = 0.0
    seed: int = 1
    time_limit: float = 300.0  # every trigger not done by then is cancelled and counted missing


@dataclass
class FleetResult:
    config: dict[str, Any]
    duration: float = 0.0
    events: dict[str, int] = field(default_factory=dict)  # by status
    right_events: int = 0  # success with the watched deployment's ID
    missing: int = 0
    error_messages: list[str] = field(default_factory=list)
    polls: int = 0
    lateness_p50: float = 0.0
    lateness_p99: float = 0.0
    lateness_max: float = 0.0
    max_age_passed: list[float] = field(default_factory=list)
    rss_added_peak_mb: float = 0.0
    requests: int = 0  # GetDeploymentsByName requests sent during the fleet's run
    throttled: int = 0  # of them, answered with a throttling error (each one costs a retry)
    peak_requests_per_interval: int = 0  # most requests in any window of one poll interval
    mean_requests_per_interval: float = 0.0
    detection_delay_p50: float = 0.0  # from a job's RUNNING to its triggers' events (approximate)
    detection_delay_max: float = 0.0


@dataclass
class _PollSchedule:
    due_at: float


@dataclass
class Probe:
    """What the patches record, on the event loop's clock."""

    lateness: list[float] = field(default_factory=list)
    max_age_passed: set[float] = field(default_factory=set)
    sent: list[tuple[float, str, bool]] = field(default_factory=list)  # (time, action, throttled)

    def reset(self) -> None:
        self.lateness.clear()
        self.max_age_passed.clear()
        self.sent.clear()


_schedule: contextvars.ContextVar[_PollSchedule | None] = contextvars.ContextVar("poll_schedule", default=None)


def _now() -> float:
    return asyncio.get_running_loop().time()


@contextlib.contextmanager
def _patched(target: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, original)


@contextlib.contextmanager
def instrumented(probe: Probe, *, sharing: bool) -> Iterator[None]:
    """Patch the trigger module's sleep, the hook's read and httpx's transport (and sharing off)."""
    import httpx

    from airflow_provider_flink_vvp.hooks import vvp as hook_module
    from airflow_provider_flink_vvp.triggers import vvp as trigger_module

    read = hook_module.FlinkVVPHook.aget_latest_deployment
    send = httpx.AsyncHTTPTransport.handle_async_request
    client_class = hook_module.AsyncVVPClient

    async def timed_sleep(delay: float, result: Any = None) -> Any:
        schedule = _schedule.get()
        if schedule is not None:
            schedule.due_at = _now() + delay
        return await asyncio.sleep(delay, result)

    async def timed_read(self: Any, *args: Any, **kwargs: Any) -> Any:
        schedule = _schedule.get()
        if schedule is not None:
            probe.lateness.append(_now() - schedule.due_at)
        probe.max_age_passed.add(float(kwargs.get("max_age", 0.0)))
        if not sharing:
            kwargs["max_age"] = 0.0
        return await read(self, *args, **kwargs)

    async def counted_send(self: Any, request: Any) -> Any:
        sent_at = _now()
        response = await send(self, request)
        probe.sent.append((sent_at, request.headers.get("x-acs-action", ""), "x-acs-retry-after" in response.headers))
        return response

    def own_pool_client(settings: Any) -> Any:
        return client_class(settings, transport=httpx.AsyncHTTPTransport())

    asyncio_with_timed_sleep = types.ModuleType("asyncio")
    asyncio_with_timed_sleep.__dict__.update(vars(asyncio))
    asyncio_with_timed_sleep.sleep = timed_sleep  # type: ignore[attr-defined]

    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(trigger_module, "asyncio", asyncio_with_timed_sleep))
        stack.enter_context(_patched(hook_module.FlinkVVPHook, "aget_latest_deployment", timed_read))
        stack.enter_context(_patched(httpx.AsyncHTTPTransport, "handle_async_request", counted_send))
        if not sharing:
            stack.enter_context(_patched(hook_module, "AsyncVVPClient", own_pool_client))
        yield


def make_trigger(name: str, config: FleetConfig) -> Any:
    from airflow_provider_flink_vvp.triggers.vvp import FlinkVVPJobSummaryTrigger

    return FlinkVVPJobSummaryTrigger(
        deployment_name=name,
        namespace=None,
        workspace=None,
        flink_vvp_conn_id=CONN_ID,
        target_states=("running",),
        failure_states=("failed",),
        baseline=None,
        poll_interval=config.poll_interval,
        end_time=time.time() + config.time_limit,
    )


async def first_event(trigger: Any, due_at: float) -> tuple[dict[str, Any], float]:
    """The trigger's one event and the wall-clock time it came, its first poll due at ``due_at``."""
    _schedule.set(_PollSchedule(due_at=due_at))
    events = trigger.run()
    try:
        event = await anext(events)
    finally:
        await events.aclose()
    return dict(event.payload), time.time()


async def _launch(trigger: Any, start_at: float) -> tuple[dict[str, Any], float]:
    await asyncio.sleep(max(0.0, start_at - _now()))
    return await first_event(trigger, start_at)


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * _PAGE_SIZE


async def _sample_peak_rss(peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _rss_bytes())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _RSS_SAMPLE_SECONDS)


async def _warm_up(config: FleetConfig) -> None:
    """One trigger to completion on a running deployment: imports and first connection read are done."""
    payload, _ = await first_event(make_trigger(WARMUP_DEPLOYMENT, config), _now())
    if payload["status"] != "success":
        raise RuntimeError(f"the warm-up trigger did not succeed: {payload}")


async def run_fleet_async(config: FleetConfig, probe: Probe, emulator: EmulatorProcess) -> FleetResult:
    await _warm_up(config)
    probe.reset()
    gc.collect()
    rss_before = _rss_bytes()
    peak, stop_sampling = [rss_before], asyncio.Event()
    sampler = asyncio.create_task(_sample_peak_rss(peak, stop_sampling))

    rng = random.Random(config.seed)  # noqa: S311 - start times, not cryptography
    started_at = _now()
    triggers = [make_trigger(deployment_name(k % config.deployments), config) for k in range(config.triggers)]
    tasks = [
        asyncio.create_task(_launch(trigger, started_at + rng.uniform(0, config.poll_interval))) for trigger in triggers
    ]
    done, pending = await asyncio.wait(tasks, timeout=config.time_limit)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    duration = _now() - started_at
    stop_sampling.set()
    await sampler

    result = FleetResult(config=asdict(config), duration=duration, missing=len(pending))
    result.rss_added_peak_mb = (peak[0] - rss_before) / 2**20
    running_at = staggered_starting_seconds(config.deployments, config.first_running_after, config.last_running_after)
    delays: list[float] = []
    events: Counter[str] = Counter()
    for k, task in enumerate(tasks):
        if task not in done or task.exception() is not None:
            result.missing += task in done
            continue
        payload, fired_wall = task.result()
        events[payload["status"]] += 1
        index = k % config.deployments
        if payload["status"] == "success" and payload.get("deployment_id") == deployment_id(index):
            result.right_events += 1
            delays.append(fired_wall - (emulator.ready_at + running_at[index]))
        elif len(result.error_messages) < 5:
            result.error_messages.append(f"trigger {k}: {payload}")
    result.events = dict(events)
    _summarize_polls(result, probe)
    _summarize_requests(result, probe, started_at, config.poll_interval)
    if delays:
        result.detection_delay_p50 = statistics.median(delays)
        result.detection_delay_max = max(delays)
    return result


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _summarize_polls(result: FleetResult, probe: Probe) -> None:
    result.polls = len(probe.lateness)
    result.lateness_p50 = _percentile(probe.lateness, 0.5)
    result.lateness_p99 = _percentile(probe.lateness, 0.99)
    result.lateness_max = max(probe.lateness, default=0.0)
    result.max_age_passed = sorted(probe.max_age_passed)


def _summarize_requests(result: FleetResult, probe: Probe, started_at: float, interval: float) -> None:
    reads = sorted((at, throttled) for at, action, throttled in probe.sent if action == "GetDeploymentsByName")
    times = [sent_at for sent_at, _ in reads]
    result.requests = len(reads)
    result.throttled = sum(throttled for _, throttled in reads)
    result.peak_requests_per_interval = _most_in_any_window(times, interval)
    intervals = max(result.duration / interval, 1.0)
    result.mean_requests_per_interval = len(times) / intervals


def _most_in_any_window(times: list[float], width: float) -> int:
    """The most of the sorted ``times`` in any half-open window ``[t, t + width)``."""
    most, first = 0, 0
    for last, moment in enumerate(times):
        while times[first] <= moment - width:
            first += 1
        most = max(most, last - first + 1)
    return most


def emulator_options(config: FleetConfig) -> list[str]:
    if not config.throttle_rate:
        return []
    return ["--throttle-rate", str(config.throttle_rate), "--seed", str(config.seed)]


def raise_open_files_limit(wanted: int) -> None:
    """Unshared clients hold a socket each (and the emulator a thread and socket per connection)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def import_ahead() -> None:
    """Import what the triggers import, before the emulator's clock starts the jobs' timelines."""
    import httpx  # noqa: F401
    from airflow.providers.common.compat.connection import get_async_connection  # noqa: F401

    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook  # noqa: F401
    from airflow_provider_flink_vvp.triggers.vvp import FlinkVVPJobSummaryTrigger  # noqa: F401


def run_fleet(config: FleetConfig) -> FleetResult:
    """Start an emulator for the fleet, run it in a new event loop, stop the emulator."""
    prepare_airflow_home()
    import_ahead()
    raise_open_files_limit(config.triggers * 2 + 256)
    starting = staggered_starting_seconds(config.deployments, config.first_running_after, config.last_running_after)
    probe = Probe()
    variable = f"AIRFLOW_CONN_{CONN_ID.upper()}"
    previous = os.environ.get(variable)
    with running_emulator(fleet_state(starting), options=emulator_options(config)) as emulator:
        os.environ[variable] = connection_json(emulator.url)
        try:
            with instrumented(probe, sharing=config.sharing):
                return asyncio.run(run_fleet_async(config, probe, emulator))
        finally:
            if previous is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = previous


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", default="{}", help="FleetConfig fields as JSON")
    parser.add_argument("--output", help="write the result's JSON here (the triggers log to stdout)")
    options = parser.parse_args(argv)
    exit_on_sigterm()
    result = json.dumps(asdict(run_fleet(FleetConfig(**json.loads(options.config)))))
    if options.output:
        with open(options.output, "w", encoding="utf-8") as output:
            output.write(result)
    else:
        print(result)


if __name__ == "__main__":
    sys.exit(main())
