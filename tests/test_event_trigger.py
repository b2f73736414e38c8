"""The AssetWatcher event trigger over the emulator: each transition once, across rebuilds; shared polling; backoff."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import Fault, FaultKind, VVPEmulator
from airflow_provider_flink_vvp.triggers import events
from airflow_provider_flink_vvp.triggers.events import MAX_BACKOFF_FACTOR, FlinkVVPJobStatusEventTrigger
from tests.conftest import AddDeployment, set_vvp_connection


def rebuilt(trigger: FlinkVVPJobStatusEventTrigger) -> FlinkVVPJobStatusEventTrigger:
    """The trigger as a triggerer rebuilds it from its serialized form (after a restart or a re-assignment)."""
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_flink_vvp.triggers.events.FlinkVVPJobStatusEventTrigger"
    return FlinkVVPJobStatusEventTrigger(**kwargs)


def add_job(emulator: VVPEmulator, deployment_id: str, status: str) -> str:
    job_id = uuid.uuid4().hex
    emulator.add_job({"jobId": job_id, "deploymentId": deployment_id}, timeline=[[status, None]])
    return job_id


# Steps: ("job", name, status) adds a job or moves it to a status; "poll"; "rebuild" (serialize, recreate).
# Expected: the (job, status) events the polls yielded, in order.
SCENARIOS = [
    pytest.param(
        ("FAILED",),
        [("job", "a", "RUNNING"), "poll", ("job", "a", "FAILED"), "poll", "poll", "rebuild", "poll"],
        [("a", "FAILED")],
        id="a failure once, not again after a rebuild",
    ),
    pytest.param(
        ("FAILED",),
        [("job", "a", "FAILED"), "poll", "rebuild", "poll", ("job", "b", "RUNNING"), "poll"],
        [],
        id="history is not an event",
    ),
    pytest.param(
        ("FAILED",),
        ["poll", ("job", "a", "RUNNING"), "rebuild", ("job", "a", "FAILED"), "poll", "rebuild", "poll"],
        [("a", "FAILED")],
        id="a failure while the trigger was being rebuilt",
    ),
    pytest.param(
        ("RUNNING", "FAILED", "FINISHED"),
        [
            "poll",
            ("job", "a", "STARTING"),
            "poll",
            ("job", "a", "RUNNING"),
            "poll",
            "rebuild",
            "poll",
            ("job", "a", "FAILED"),
            ("job", "b", "RUNNING"),
            "poll",
            "rebuild",
            ("job", "b", "FINISHED"),
            "poll",
            "poll",
        ],
        [("a", "RUNNING"), ("a", "FAILED"), ("b", "RUNNING"), ("b", "FINISHED")],
        id="several statuses, several jobs",
    ),
    pytest.param(
        ("CANCELLED", "STARTING"),
        ["poll", ("job", "a", "STARTING"), ("job", "b", "CANCELLED"), "poll", "rebuild", "rebuild", "poll"],
        [("a", "STARTING"), ("b", "CANCELLED")],
        id="a new job's first status counts",
    ),
    pytest.param(
        ("RUNNING",),
        ["poll", ("job", "a", "RUNNING"), "poll", ("job", "a", "FAILED"), "poll", ("job", "a", "RUNNING"), "poll"],
        [("a", "RUNNING")],
        id="a status is entered once per job",
    ),
]


@pytest.mark.parametrize(("statuses", "steps", "expected"), SCENARIOS)
async def test_each_transition_is_yielded_once_across_rebuilds(
    statuses: Sequence[str],
    steps: Sequence[Any],
    expected: list[tuple[str, str]],
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
) -> None:
    deployment_id = add_deployment("stream")
    trigger = FlinkVVPJobStatusEventTrigger(deployment_ids=[deployment_id], statuses=statuses, poll_interval=0.01)
    jobs: dict[str, str] = {}
    yielded: list[tuple[str, str]] = []
    hook = FlinkVVPHook()
    try:
        for step in steps:
            if step == "poll":
                payloads, failed = await trigger.poll(hook)
                assert not failed
                names = {job_id: name for name, job_id in jobs.items()}
                yielded += [(names[payload["job_id"]], payload["status"]) for payload in payloads]
            elif step == "rebuild":
                trigger = rebuilt(trigger)
            else:
                _, name, status = step
                if name in jobs:
                    vvp_emulator.state.set_job_timeline(jobs[name], [[status, None]])
                else:
                    jobs[name] = add_job(vvp_emulator, deployment_id, status)
            await asyncio.sleep(0.02)  # older than max_age (the poll interval): each poll reads anew
    finally:
        await hook.aclose()

    assert yielded == expected


async def test_run_yields_the_failure_with_its_job_reason_and_time(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, vvp_namespace: str
) -> None:
    deployment_id = add_deployment("stream")
    job_id = add_job(vvp_emulator, deployment_id, "RUNNING")
    trigger = FlinkVVPJobStatusEventTrigger(
        deployment_ids=[deployment_id], namespace=vvp_namespace, workspace="ws-tests", poll_interval=0.05
    )
    stream = trigger.run()
    listed = vvp_emulator.request_counts().get("ListJobs", 0)
    try:
        first = asyncio.ensure_future(anext(stream))
        # Two polls begun, so the first one's answer is in: the running job is no event.
        async with asyncio.timeout(10):
            while vvp_emulator.request_counts().get("ListJobs", 0) < listed + 2:
                await asyncio.sleep(0.01)
        assert not first.done()
        vvp_emulator.state.set_job_timeline(job_id, [["FAILED", None]])
        event = await asyncio.wait_for(first, timeout=10)
    finally:
        await stream.aclose()

    payload = event.payload
    failed_at = payload.pop("at")
    assert payload == {
        "deployment_id": deployment_id,
        "job_id": job_id,
        "status": "FAILED",
        "failure_reason": "EmulatedFailure",
        "failure_message": "the emulator's timeline failed this job",
        "namespace": vvp_namespace,
        "workspace": "ws-tests",
    }
    assert failed_at.startswith("20") and "T" in failed_at


async def test_a_hundred_watchers_of_ten_deployments_list_each_deployment_once_a_poll(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_ids = [add_deployment(f"stream-{index}") for index in range(10)]
    for deployment_id in deployment_ids:
        add_job(vvp_emulator, deployment_id, "RUNNING")
    # As in a triggerer: each trigger its own hook, all in one event loop.
    watchers = [
        FlinkVVPJobStatusEventTrigger(deployment_ids=[deployment_ids[index % 10]], poll_interval=30)
        for index in range(100)
    ]
    hooks = [FlinkVVPHook() for _ in watchers]
    try:
        for _ in range(2):
            before = vvp_emulator.request_counts().get("ListJobs", 0)
            await asyncio.gather(*(watcher.poll(hook) for watcher, hook in zip(watchers, hooks, strict=True)))
            assert vvp_emulator.request_counts().get("ListJobs", 0) - before <= 10
        assert all(len(watcher.seen[watcher.deployment_ids[0]]) == 1 for watcher in watchers)
    finally:
        for hook in hooks:
            await hook.aclose()


async def test_throttling_backs_off_up_to_the_cap_and_back(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment_id = add_deployment("stream")
    throttled_polls = 5
    vvp_emulator.inject(*[Fault(FaultKind.THROTTLE, action="ListJobs")] * throttled_polls)
    sleeps: list[float] = []

    class EnoughPollsError(Exception):
        pass

    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        if sys._getframe(1).f_code is not trigger_run_code:  # the client's own pause under throttling
            return await real_sleep(seconds)
        sleeps.append(seconds)
        if len(sleeps) == throttled_polls + 2:
            raise EnoughPollsError
        return None

    trigger_run_code = FlinkVVPJobStatusEventTrigger.run.__code__
    monkeypatch.setattr(events.asyncio, "sleep", sleep)
    trigger = FlinkVVPJobStatusEventTrigger(deployment_ids=[deployment_id], poll_interval=1)
    with pytest.raises(EnoughPollsError):
        async for _ in trigger.run():
            pass

    assert sleeps == [2, 4, MAX_BACKOFF_FACTOR, MAX_BACKOFF_FACTOR, MAX_BACKOFF_FACTOR, 1, 1]


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"deployment_ids": []}, "deployment_ids must be a non-empty list of deployment IDs, got []"),
        ({"deployment_ids": "d-1"}, "deployment_ids must be a non-empty list of deployment IDs, got 'd-1'"),
        ({"deployment_ids": ["d-1", ""]}, "deployment_ids must hold non-empty strings, got ['d-1', '']"),
        ({"deployment_ids": ["d-1"], "statuses": ()}, "statuses must be one or more of STARTING, RUNNING"),
        ({"deployment_ids": ["d-1"], "statuses": ["FAILED", "BROKEN"]}, "('BROKEN' unknown)"),
        ({"deployment_ids": ["d-1"], "statuses": ["CANCELLING"]}, "('CANCELLING' unknown)"),
        ({"deployment_ids": ["d-1"], "poll_interval": 0}, "poll_interval must be a positive number of seconds, got 0"),
        ({"deployment_ids": ["d-1"], "poll_interval": "30"}, "poll_interval must be a positive number of seconds"),
    ],
)
def test_bad_arguments_are_refused_naming_them(arguments: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError) as raised:
        FlinkVVPJobStatusEventTrigger(**arguments)

    assert says in str(raised.value)


def test_a_single_status_may_be_given_as_a_string_and_the_serialized_form_round_trips() -> None:
    trigger = FlinkVVPJobStatusEventTrigger(
        deployment_ids=["d-1", "d-2", "d-1"], statuses="CANCELLED", seen={"d-1": {"j-1": ["RUNNING"]}}
    )

    assert trigger.serialize()[1] == {
        "deployment_ids": ["d-1", "d-2"],
        "statuses": ["CANCELLED"],
        "namespace": None,
        "workspace": None,
        "flink_vvp_conn_id": "flink_vvp_default",
        "poll_interval": 30.0,
        "seen": {"d-1": {"j-1": ["RUNNING"]}},
    }
    assert rebuilt(trigger).serialize() == trigger.serialize()


def watermark_key(**arguments: Any) -> str:
    return events.WatermarkVariable(FlinkVVPJobStatusEventTrigger(**arguments)).key


@pytest.mark.parametrize(
    "changed",
    [
        {"deployment_ids": ["d-2"]},
        {"deployment_ids": ["d-1", "d-2"]},
        {"statuses": ["CANCELLED"]},
        {"statuses": ["FAILED", "FINISHED"]},
        {"flink_vvp_conn_id": "flink_vvp_other"},
        {"namespace": "other-namespace"},
        {"workspace": "ws-other"},
        {"poll_interval": 60},
    ],
)
def test_the_watermark_variable_is_keyed_by_what_the_trigger_watches_not_by_what_it_saw(
    changed: dict[str, Any],
) -> None:
    watch: dict[str, Any] = {"deployment_ids": ["d-1"], "statuses": ["FAILED"], "namespace": "ns", "workspace": "ws"}

    key = watermark_key(**watch)

    assert key.startswith(events.WATERMARK_VARIABLE_PREFIX)
    assert len(key) <= 250  # Airflow's limit for a Variable's key
    assert watermark_key(**watch, seen={"d-1": {"j-1": ["RUNNING"]}}) == key
    assert watermark_key(**{**watch, **changed}) != key


@pytest.mark.parametrize(
    ("airflow_version", "reads_the_variable"),
    [((3, 0, 0), False), ((3, 0, 4), False), ((3, 0, 5), True), ((3, 1, 0), True), ((3, 3, 2), True)],
)
async def test_the_watermark_is_read_from_a_variable_only_where_a_trigger_can_also_write_one(
    airflow_version: tuple[int, int, int],
    reads_the_variable: bool,
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment_id = add_deployment("stream")
    read: list[str] = []
    real_aload = events.WatermarkVariable.aload

    async def aload(watermark: events.WatermarkVariable) -> dict[str, dict[str, list[str]]] | None:
        read.append(watermark.key)
        return await real_aload(watermark)

    monkeypatch.setattr(events, "get_base_airflow_version_tuple", lambda: airflow_version)
    monkeypatch.setattr(events.WatermarkVariable, "aload", aload)
    trigger = FlinkVVPJobStatusEventTrigger(deployment_ids=[deployment_id], poll_interval=30)
    stream = trigger.run()
    polled = vvp_emulator.request_counts().get("ListJobs", 0)
    first = asyncio.ensure_future(anext(stream))
    try:
        async with asyncio.timeout(10):
            while vvp_emulator.request_counts().get("ListJobs", 0) == polled:
                await asyncio.sleep(0.01)
    finally:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await stream.aclose()

    assert bool(read) is reads_the_variable


@pytest.mark.parametrize(
    "broken_connection",
    [
        pytest.param({"password": "not-the-secret"}, id="a wrong secret, corrected"),
        pytest.param({"conn_id": "flink_vvp_not_yet"}, id="no connection yet, then made"),
    ],
)
async def test_after_a_failed_poll_the_connection_is_read_again(
    broken_connection: dict[str, str],
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    vvp_namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment_id = add_deployment("stream")
    job_id = add_job(vvp_emulator, deployment_id, "RUNNING")
    monkeypatch.delenv("AIRFLOW_CONN_FLINK_VVP_DEFAULT")
    set_vvp_connection(monkeypatch, vvp_emulator.url, namespace=vvp_namespace, **broken_connection)
    trigger = FlinkVVPJobStatusEventTrigger(deployment_ids=[deployment_id], poll_interval=0.02)
    stream = trigger.run()
    first = asyncio.ensure_future(anext(stream))
    try:
        await asyncio.sleep(0.2)  # polls fail meanwhile, the wait between them growing to 0.16 s
        assert not first.done()
        set_vvp_connection(monkeypatch, vvp_emulator.url, namespace=vvp_namespace)
        async with asyncio.timeout(10):
            while job_id not in trigger.seen.get(deployment_id, {}):
                await asyncio.sleep(0.01)
        vvp_emulator.state.set_job_timeline(job_id, [["FAILED", None]])
        event = await asyncio.wait_for(first, timeout=10)
    finally:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await stream.aclose()

    assert (event.payload["job_id"], event.payload["status"]) == (job_id, "FAILED")


@pytest.mark.parametrize(
    "arguments",
    [
        {"deployment_ids": ["d-1"]},
        {"deployment_ids": ["d-1", "d-2"], "statuses": ["FAILED", "FINISHED"], "namespace": "ns", "workspace": "ws"},
        {"deployment_ids": ["d-1"], "statuses": "RUNNING", "poll_interval": 5, "seen": {}},
    ],
)
def test_a_watcher_as_a_dag_declares_it_serializes_no_mapping(arguments: dict[str, Any]) -> None:
    # Airflow 3.0's triggerer decodes a mapping among an asset watcher's arguments one level short, and dies on it.
    _, kwargs = FlinkVVPJobStatusEventTrigger(**arguments).serialize()

    assert not [name for name, value in kwargs.items() if isinstance(value, dict)]
    assert rebuilt(FlinkVVPJobStatusEventTrigger(**arguments)).serialize()[1] == kwargs
