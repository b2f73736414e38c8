"""What a task defers with to the job trigger and gets back in its event (``echo``), and what the upgrade's
deferred waits do when the task is killed while deferred: stop nothing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import VVPEmulator
from airflow_provider_flink_vvp.triggers.stability import FlinkVVPJobStabilityTrigger
from airflow_provider_flink_vvp.triggers.vvp import FlinkVVPJobTrigger
from tests import test_job_operators as job_operators
from tests.conftest import AddDeployment

FAILURE = {"failure": "job j-1 restarted 2 time(s) within 60 s of running (observedFlinkJobRestarts 0 -> 2)"}


def job(emulator: VVPEmulator, add_deployment: AddDeployment, timeline: list[list[Any]]) -> str:
    job_id = uuid.uuid4().hex
    emulator.add_job({"jobId": job_id, "deploymentId": add_deployment("orders")}, timeline=timeline)
    return job_id


def job_trigger(job_id: str, **kwargs: Any) -> FlinkVVPJobTrigger:
    return job_operators.job_trigger(job_id, **{"poll_interval": 0.05, **kwargs})


@pytest.mark.parametrize("echo", [FAILURE, None])
@pytest.mark.parametrize(
    ("timeline", "ends_by", "status"),
    [
        ([["STARTING", 0.1], ["RUNNING", None]], 10, "success"),
        ([["STARTING", 0.1], ["FAILED", None]], 10, "failure"),
        ([["STARTING", None]], 0.2, "timeout"),
    ],
)
async def test_every_event_but_an_error_echoes_what_the_task_deferred_with_through_a_triggerer_restart(
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    echo: dict[str, str] | None,
    timeline: list[list[Any]],
    ends_by: float,
    status: str,
) -> None:
    deferred = job_trigger(job(vvp_emulator, add_deployment, timeline), echo=echo, end_time=time.time() + ends_by)
    # What the triggerer runs: the trigger rebuilt from what the task deferred with.
    rebuilt = FlinkVVPJobTrigger(**deferred.serialize()[1])

    [event] = [event async for event in rebuilt.run()]

    assert event.payload["status"] == status
    assert event.payload.get("echo", "absent") == (echo if echo is not None else "absent")
    assert rebuilt.serialize() == deferred.serialize()


async def test_an_error_event_is_not_mistaken_for_an_echo(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    [event] = [event async for event in job_trigger("no-such-job", echo=FAILURE).run()]

    assert event.payload["status"] == "error" and "echo" not in event.payload


@pytest.mark.parametrize(
    "trigger",
    [
        lambda job_id: job_trigger(job_id, echo=FAILURE),
        lambda job_id: FlinkVVPJobStabilityTrigger(
            job_id=job_id,
            namespace=None,
            workspace=None,
            flink_vvp_conn_id="flink_vvp_default",
            running_since=time.time(),
            restarts=0,
            stable_for=60,
            poll_interval=0.05,
            end_time=time.time() + 10,
        ),
    ],
    ids=["rollback wait", "stable_for watch"],
)
async def test_the_upgrades_deferred_waits_stop_nothing_when_the_task_is_killed(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, trigger: Any
) -> None:
    job_id = job(vvp_emulator, add_deployment, [["RUNNING", None]])
    stops = vvp_emulator.request_counts().get("StopJob", 0)

    on_kill = getattr(trigger(job_id), "on_kill", None)  # None: a triggerer of this Airflow calls no on_kill
    if on_kill is not None:
        await on_kill()

    assert vvp_emulator.request_counts().get("StopJob", 0) == stops
    assert FlinkVVPHook().get_job(job_id).status == "RUNNING"
