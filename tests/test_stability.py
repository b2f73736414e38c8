"""Whether a RUNNING job is stable: the one decision, and FlinkVVPJobStabilityTrigger run against the emulator."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from airflow_provider_flink_vvp.api.models import Job
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.stability import decide_stability
from airflow_provider_flink_vvp.testing import VVPEmulator
from airflow_provider_flink_vvp.triggers.stability import FlinkVVPJobStabilityTrigger
from tests.conftest import AddDeployment

FAILURE = {"reason": "OutOfMemoryError", "message": "Java heap space"}


def job(status: str, restarts: int | None = None, failure: dict[str, str] | None = None) -> Job:
    details: dict[str, Any] = {"currentJobStatus": status}
    if restarts is not None:
        details["running"] = {"observedFlinkJobRestarts": restarts}
    if failure is not None:
        details["failure"] = failure
    return Job.from_api({"jobId": "job-1", "deploymentId": "dep-1", "status": details})


@pytest.mark.parametrize(
    ("seen", "running_since", "restarts", "expected"),
    [
        # No RUNNING look yet: only a job that no longer runs ends the wait.
        (job("STARTING"), None, None, None),
        (job("RUNNING", 0), None, None, None),
        (job("FAILED", failure=FAILURE), None, None, ("ended", "job job-1 ended FAILED: OutOfMemoryError: Java heap")),
        (job("FAILED", failure={"message": "lost"}), 95.0, 0, ("ended", "ended FAILED: no reason given: lost")),
        (job("FAILED"), 95.0, 0, ("ended", "job job-1 ended FAILED")),
        (job("CANCELLED"), 95.0, 0, ("ended", "job job-1 ended CANCELLED")),
        (job("FINISHED"), 10.0, 0, ("ended", "job job-1 ended FINISHED")),
        # Restarts: any growth past the first RUNNING look's count, however soon.
        (job("RUNNING", 3), 99.0, 2, ("restarted", "restarted 1 time(s) within 10 s of running (observed")),
        (job("RUNNING", 7), 10.0, 2, ("restarted", "job job-1 restarted 5 time(s) within 10 s")),
        (job("STARTING", 4), 99.0, 3, ("restarted", "(observedFlinkJobRestarts 3 -> 4)")),
        # Not growing, or not told: stable once RUNNING for stable_for.
        (job("RUNNING", 2), 95.0, 2, None),
        (job("RUNNING", 2), 90.0, 2, ("stable", "job job-1 has been RUNNING for 10 s")),
        (job("RUNNING", 1), 80.0, 2, ("stable", "has been RUNNING for 10 s")),
        (job("RUNNING"), 90.0, 2, ("stable", "has been RUNNING")),
        (job("RUNNING", 5), 90.0, None, ("stable", "has been RUNNING")),
        # Seen RUNNING, then not RUNNING (VVP restarting it, or someone stopping it): not stable, however long ago.
        (job("STARTING"), 50.0, None, ("restarted", "job job-1 left RUNNING for STARTING before it had run 10 s")),
        (job("STARTING", 0), 99.0, 0, ("restarted", "left RUNNING for STARTING")),
        (job("CANCELLING"), 50.0, 0, ("ended", "job job-1 left RUNNING for CANCELLING before it had run 10 s")),
        (job("CANCELLING", 0), 99.5, 0, ("ended", "left RUNNING for CANCELLING")),
    ],
)
def test_a_look_decides_stable_restarted_ended_or_keeps_waiting(
    seen: Job, running_since: float | None, restarts: int | None, expected: tuple[str, str] | None
) -> None:
    decision = decide_stability(seen, running_since=running_since, restarts=restarts, stable_for=10.0, now=100.0)

    if expected is None:
        assert decision is None
    else:
        assert decision is not None and decision.outcome == expected[0] and expected[1] in decision.message
        assert decision.is_stable == (expected[0] == "stable")
        assert decision.restarts_seen == seen.raw["status"].get("running", {}).get("observedFlinkJobRestarts")


def stability_trigger(job_id: str, **kwargs: Any) -> FlinkVVPJobStabilityTrigger:
    arguments: dict[str, Any] = {
        "job_id": job_id,
        "namespace": None,
        "workspace": None,
        "flink_vvp_conn_id": "flink_vvp_default",
        "running_since": time.time(),
        "restarts": 0,
        "stable_for": 0.4,
        "poll_interval": 0.05,
        "end_time": time.time() + 20,
        **kwargs,
    }
    return FlinkVVPJobStabilityTrigger(**arguments)


async def events(of: FlinkVVPJobStabilityTrigger) -> list[TriggerEvent]:
    return [event async for event in of.run()]


def running_job(emulator: VVPEmulator, add_deployment: AddDeployment, timeline: list[list[Any]]) -> str:
    job_id = uuid.uuid4().hex
    emulator.add_job({"jobId": job_id, "deploymentId": add_deployment("orders")}, timeline=timeline)
    return job_id


@pytest.mark.parametrize(
    ("timeline", "restart_every", "arguments", "expected"),
    [
        ([["RUNNING", None]], None, {}, {"status": "success", "stability": "stable", "restarts_seen": 0}),
        ([["RUNNING", None]], 0.1, {}, {"status": "failure", "stability": "restarted", "job_status": "RUNNING"}),
        (
            [["RUNNING", 0.1], ["FAILED", None]],
            None,
            {},
            {"status": "failure", "stability": "ended", "job_status": "FAILED", "restarts_seen": None},
        ),
        ([["RUNNING", None]], None, {"stable_for": 60, "end_time": time.time() - 1}, {"status": "timeout"}),
    ],
)
async def test_the_event_says_stable_restarted_ended_or_timed_out_with_the_counts(
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    timeline: list[list[Any]],
    restart_every: float | None,
    arguments: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    job_id = running_job(vvp_emulator, add_deployment, timeline)
    if restart_every is not None:
        vvp_emulator.state.set_job_restarts(job_id, every=restart_every)
    trigger = stability_trigger(job_id, try_number=2, **arguments)

    [event] = await events(trigger)

    payload = event.payload
    assert {key: payload.get(key) for key in expected} == expected
    assert (payload["job_id"], payload["running_since"], payload["restarts"]) == (job_id, trigger.running_since, 0)
    assert payload["try_number"] == 2
    if payload["status"] == "timeout":
        assert payload["stability"] == "timeout" and "was not RUNNING and stable for 60 s" in payload["message"]
        assert payload["execution_timeout"] is False
    elif payload["stability"] == "restarted":
        assert (
            payload["restarts_seen"] >= 1
            and f"observedFlinkJobRestarts 0 -> {payload['restarts_seen']}" in (payload["message"])
        )
    elif payload["stability"] == "ended":
        assert "ended FAILED: EmulatedFailure: the emulator's timeline failed this job" in payload["message"]
    else:
        assert time.time() - trigger.running_since >= trigger.stable_for


def test_serialize_round_trips() -> None:
    trigger = stability_trigger("job-1", running_since=1_700_000_000.5, restarts=None, try_number=3)
    classpath, kwargs = trigger.serialize()

    assert classpath == "airflow_provider_flink_vvp.triggers.stability.FlinkVVPJobStabilityTrigger"
    assert FlinkVVPJobStabilityTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert (kwargs["running_since"], kwargs["restarts"], kwargs["stable_for"]) == (1_700_000_000.5, None, 0.4)


async def test_a_trigger_rebuilt_after_a_triggerer_restart_counts_from_the_first_running_look(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    job_id = running_job(vvp_emulator, add_deployment, [["RUNNING", None]])
    original = stability_trigger(job_id, stable_for=1.5)
    first = original.run()
    with pytest.raises(TimeoutError):  # the triggerer stops a while into the wait
        async with asyncio.timeout(1.0):
            await anext(first)
    await first.aclose()

    restarted_at = time.time()
    [event] = await events(FlinkVVPJobStabilityTrigger(**original.serialize()[1]))

    assert event.payload["stability"] == "stable" and event.payload["running_since"] == original.running_since
    assert time.time() - original.running_since >= 1.5
    assert time.time() - restarted_at < 1.5, "the rebuilt trigger started the stable_for wait over"


async def test_an_answer_asked_for_before_the_window_ends_does_not_close_it(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    """Another trigger's answer (shared for a poll interval) shows the job before it restarted: once the window
    is over, the watch must not call it stable on that answer."""
    job_id = running_job(vvp_emulator, add_deployment, [["RUNNING", None]])
    sensor_hook = FlinkVVPHook("flink_vvp_default")
    try:
        before = await sensor_hook.aget_job(job_id, max_age=5.0)
        asked_at = time.time()
        vvp_emulator.state.set_job_restarts(job_id, every=0.05)
        trigger = stability_trigger(job_id, running_since=asked_at - 9.8, stable_for=10.0, poll_interval=5.0)
        await asyncio.sleep(max(0.0, trigger.running_since + 10.1 - time.time()))  # the window is over

        async with asyncio.timeout(4.0):  # the first look decides: no poll interval slept
            [event] = await events(trigger)
    finally:
        await sensor_hook.aclose()

    assert before.raw["status"]["running"]["observedFlinkJobRestarts"] == 0
    assert event.payload["stability"] == "restarted", event.payload["message"]


async def test_the_first_look_after_the_window_calls_a_job_that_kept_running_stable(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    """No poll more than needed: a watch whose window is over decides on its first answer."""
    job_id = running_job(vvp_emulator, add_deployment, [["RUNNING", None]])
    trigger = stability_trigger(job_id, running_since=time.time() - 10.2, stable_for=10.0, poll_interval=30.0)

    async with asyncio.timeout(10.0):
        [event] = await events(trigger)

    assert (event.payload["status"], event.payload["stability"]) == ("success", "stable")
