"""FlinkVVPJobSummaryTrigger, run against the emulator."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSensorTimeout,
    AirflowTaskTimeout,
)
from airflow.triggers.base import TriggerEvent

from airflow_provider_flink_vvp.api.errors import VVPApiError
from airflow_provider_flink_vvp.decisions import Baseline
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.sensors.vvp import FlinkVVPJobSummarySensor
from airflow_provider_flink_vvp.sharing import SharedEndpoint
from airflow_provider_flink_vvp.testing import Fault, FaultKind, VVPEmulator
from airflow_provider_flink_vvp.triggers.vvp import FlinkVVPJobSummaryTrigger, FlinkVVPJobTrigger
from tests.conftest import (
    VVP_ACCESS_KEY_ID,
    VVP_ACCESS_KEY_SECRET,
    AddDeployment,
    MakeContext,
    add_job,
    set_vvp_connection,
)

NOTHING_SEEN = {"deployment_id": None, "summary": {}}
SEEN = {"deployment_id": "ordres-1", "summary": {}}


def trigger(**kwargs: Any) -> FlinkVVPJobSummaryTrigger:
    arguments: dict[str, Any] = {
        "deployment_name": "orders",
        "namespace": None,
        "workspace": None,
        "flink_vvp_conn_id": "flink_vvp_default",
        "target_states": ["running"],
        "failure_states": ["failed"],
        "baseline": None,
        "poll_interval": 0.05,
        "end_time": time.time() + 30,
        **kwargs,
    }
    return FlinkVVPJobSummaryTrigger(**arguments)


async def events(of: FlinkVVPJobSummaryTrigger) -> list[TriggerEvent]:
    return [event async for event in of.run()]


async def until(condition: Callable[[], bool]) -> None:
    """Let the trigger run until ``condition`` holds (the emulator answered enough polls)."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


def test_serialize_round_trips_and_holds_no_secret(vvp_emulator: VVPEmulator) -> None:
    original = trigger(baseline={"deployment_id": "d-1", "summary": {"failed": 6}}, namespace="ns", workspace="ws")

    classpath, kwargs = original.serialize()
    rebuilt = FlinkVVPJobSummaryTrigger(**kwargs)

    assert classpath == "airflow_provider_flink_vvp.triggers.vvp.FlinkVVPJobSummaryTrigger"
    assert rebuilt.serialize() == (classpath, kwargs)
    assert set(kwargs) == {
        "deployment_name",
        "namespace",
        "workspace",
        "flink_vvp_conn_id",
        "target_states",
        "failure_states",
        "baseline",
        "missing_deployment",
        "first_look_at",
        "poll_interval",
        "end_time",
        "deferred_at",
        "execution_timeout",
        "try_number",
    }
    assert VVP_ACCESS_KEY_SECRET not in json.dumps(kwargs)
    assert VVP_ACCESS_KEY_ID not in json.dumps(kwargs)


async def test_one_success_event_once_a_job_runs_after_the_first_poll(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("orders", history={"failed": 6})
    polls = vvp_emulator.request_counts().get("GetDeploymentsByName", 0)
    run = trigger().run()
    first_event = asyncio.ensure_future(anext(run))
    await until(lambda: vvp_emulator.request_counts().get("GetDeploymentsByName", 0) > polls + 1)
    assert not first_event.done(), "historical failures neither end nor fail the wait"

    add_job(vvp_emulator, deployment_id, [["RUNNING", None]])

    assert (await first_event).payload == {
        "status": "success",
        "message": f"Deployment 'orders' ({deployment_id}) is running: running 0 -> 1",
        "deployment_id": deployment_id,
    }
    with pytest.raises(StopAsyncIteration):
        await anext(run)


async def test_one_failure_event_for_a_failure_after_the_baseline(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("orders", history={"failed": 6})
    add_job(vvp_emulator, deployment_id, [["STARTING", 0.2], ["FAILED", None]])
    baseline = {"deployment_id": deployment_id, "summary": {"failed": 6}}

    [event] = await events(trigger(baseline=baseline))

    assert event.payload["status"] == "failure"
    assert event.payload["message"] == f"Deployment 'orders' ({deployment_id}) has failed jobs: failed 6 -> 7"


async def test_missing_deployments_and_transient_errors_keep_it_polling(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    vvp_emulator.inject(Fault(FaultKind.UNAVAILABLE), Fault(FaultKind.THROTTLE), Fault(FaultKind.DROP))
    polls = vvp_emulator.request_counts().get("GetDeploymentsByName", 0)
    run = trigger(deployment_name="late").run()
    first_event = asyncio.ensure_future(anext(run))
    await until(lambda: vvp_emulator.request_counts().get("GetDeploymentsByName", 0) > polls + 3)
    assert not first_event.done(), "three faults and no deployment: still polling"

    add_deployment("late", timeline=[["RUNNING", None]])

    assert (await first_event).payload["status"] == "success"
    with pytest.raises(StopAsyncIteration):
        await anext(run)


async def test_a_definite_error_ends_with_an_error_event(
    vvp_emulator: VVPEmulator, vvp_namespace: str, add_deployment: AddDeployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_deployment("orders", timeline=[["RUNNING", None]])
    set_vvp_connection(monkeypatch, vvp_emulator.url, namespace=vvp_namespace, password="a-wrong-secret-value")

    [event] = await events(trigger())

    assert event.payload["status"] == "error"
    assert "SignatureDoesNotMatch" in event.payload["message"]
    assert "a-wrong-secret-value" not in event.payload["message"]


@pytest.mark.parametrize("execution_timeout", [False, True])
async def test_the_deadline_ends_with_a_timeout_event_that_says_which_limit_it_was(
    add_deployment: AddDeployment, make_context: MakeContext, execution_timeout: bool
) -> None:
    add_deployment("orders", timeline=[["STARTING", None]])

    [event] = await events(trigger(end_time=time.time() - 1, execution_timeout=execution_timeout))

    assert event.payload == {
        "status": "timeout",
        "message": "Timed out waiting for deployment 'orders' to be running",
        "execution_timeout": execution_timeout,
    }
    expected = AirflowTaskTimeout if execution_timeout else AirflowSensorTimeout
    with pytest.raises(expected, match="Timed out waiting for deployment 'orders'"):
        FlinkVVPJobSummarySensor(task_id="wait", deployment_name="orders").execute_complete(
            make_context(),
            event.payload,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("boom"),
        json.JSONDecodeError("Expecting value", "<html>", 0),
        AirflowNotFoundException("The conn_id `flink_vvp_default` isn't defined"),
        ImportError("cannot import name 'x'"),
        KeyError("jobSummary"),
    ],
    ids=type,
)
async def test_an_unexpected_exception_is_a_retryable_error_event_and_the_hook_is_closed(
    vvp_emulator: VVPEmulator, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    closed: list[FlinkVVPHook] = []
    original_aclose = FlinkVVPHook.aclose

    async def broken(self: FlinkVVPHook, *args: Any, **kwargs: Any) -> None:
        raise error

    async def aclose(self: FlinkVVPHook) -> None:
        closed.append(self)
        await original_aclose(self)

    monkeypatch.setattr(FlinkVVPHook, "aget_latest_deployment", broken)
    monkeypatch.setattr(FlinkVVPHook, "aclose", aclose)

    [event] = await events(trigger(baseline=NOTHING_SEEN))

    assert event.payload == {
        "status": "error",
        "retryable": True,
        "message": f"The trigger failed: {type(error).__name__}: {error}",
    }
    assert len(closed) == 1
    with pytest.raises(AirflowException) as raised:
        FlinkVVPJobSummarySensor(task_id="wait", deployment_name="orders").execute_complete({}, event.payload)  # type: ignore[arg-type]
    assert type(raised.value) is AirflowException, "a plain error: the task's retries apply"


@pytest.mark.parametrize("ending", ["success", "failure", "timeout", "error", "crash"])
@pytest.mark.parametrize("kind", ["job summary", "job"])
async def test_every_event_names_the_try_that_deferred(
    vvp_emulator: VVPEmulator,
    vvp_namespace: str,
    add_deployment: AddDeployment,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    ending: str,
) -> None:
    timeline = {"success": [["RUNNING", None]], "failure": [["FAILED", None]]}.get(ending, [["STARTING", None]])
    deployment_id = add_deployment("orders", timeline=timeline)
    [job] = FlinkVVPHook().list_jobs(deployment_id)
    if ending == "error":
        set_vvp_connection(monkeypatch, vvp_emulator.url, namespace=vvp_namespace, password="a-wrong-secret-value")
    if ending == "crash":
        monkeypatch.setattr(FlinkVVPHook, "aget_config", lambda self: 1 / 0)
    common: dict[str, Any] = {"try_number": 3, "end_time": time.time() + (0.3 if ending == "timeout" else 30)}
    if kind == "job summary":
        watching = trigger(baseline=NOTHING_SEEN, failure_states=["failed"], **common)
    else:
        watching = FlinkVVPJobTrigger(
            job_id=job.job_id,
            namespace=None,
            workspace=None,
            flink_vvp_conn_id="flink_vvp_default",
            target_statuses=["RUNNING"],
            failure_statuses=["FAILED"],
            poll_interval=0.05,
            **common,
        )

    [event] = await events(watching)

    assert (event.payload["status"], event.payload["try_number"]) == (
        {"crash": "error"}.get(ending, ending),
        3,
    )


@pytest.mark.parametrize(
    ("code", "http_status"),
    [("Forbidden.RAM", 403), ("InvalidParameter", 400), ("SignatureDoesNotMatch", 400), ("JobNotFound", 404)],
)
async def test_a_definite_api_answer_is_an_error_event_that_fails_without_retries(
    vvp_emulator: VVPEmulator, monkeypatch: pytest.MonkeyPatch, code: str, http_status: int
) -> None:
    error = VVPApiError(code=code, message="refused", request_id="req-1", http_status=http_status)

    async def refused(self: FlinkVVPHook, *args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(FlinkVVPHook, "aget_latest_deployment", refused)

    [event] = await events(trigger(baseline=NOTHING_SEEN))

    assert event.payload == {"status": "error", "message": str(error)}
    with pytest.raises(AirflowFailException, match=code):
        FlinkVVPJobSummarySensor(task_id="wait", deployment_name="orders").execute_complete({}, event.payload)  # type: ignore[arg-type]


async def test_one_hook_serves_every_poll_and_is_closed(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_deployment("orders", timeline=[["STARTING", 0.3], ["RUNNING", None]])
    hooks: list[FlinkVVPHook] = []
    original_init = FlinkVVPHook.__init__

    def init(self: FlinkVVPHook, *args: Any, **kwargs: Any) -> None:
        hooks.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(FlinkVVPHook, "__init__", init)

    [event] = await events(trigger())

    assert event.payload["status"] == "success"
    assert len(hooks) == 1
    assert hooks[0]._async_client is None, "aclose() releases the HTTP client"


@pytest.mark.parametrize("seen", ["nothing", "the older deployment"])
async def test_a_trigger_rebuilt_from_serialize_decides_as_the_one_it_replaced(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, seen: str
) -> None:
    """A triggerer restart rebuilds the trigger from serialize(): every look must decide the same."""
    hook = FlinkVVPHook()
    if seen == "nothing":
        baseline: dict[str, Any] = NOTHING_SEEN
    else:
        older = add_deployment("orders", history={"failed": 6, "finished": 2})
        baseline = Baseline.first_look(await hook.aget_latest_deployment("orders")).to_json()
        assert baseline["deployment_id"] == older
    # Polling often: every look reads the emulator afresh.
    original = trigger(baseline=baseline, missing_deployment="wait", target_states=["finished"], poll_interval=1e-9)
    changes: list[Callable[[], Any]] = [
        lambda: None,
        # A newer deployment whose first job already failed, before any look at it.
        lambda: add_deployment("orders", timeline=[["FAILED", None]]),
        lambda: None,
    ]
    decided = []
    try:
        for change in changes:
            change()
            rebuilt = FlinkVVPJobSummaryTrigger(**original.serialize()[1])
            before, after = await original._look(hook), await rebuilt._look(hook)
            assert before == after
            decided.append(None if before is None else before["status"])
    finally:
        await hook.aclose()

    assert decided == [None, "failure", "failure"]


async def test_a_trigger_never_takes_a_shared_answer_read_before_its_deferral(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    add_deployment("orders", timeline=[["STARTING", None]])
    hooks = [FlinkVVPHook() for _ in range(3)]

    def reads() -> int:
        return int(vvp_emulator.request_counts().get("GetDeploymentsByName", 0))

    try:
        first = reads()
        await trigger(baseline=NOTHING_SEEN, poll_interval=60)._look(hooks[0])
        await asyncio.sleep(0.01)
        deferred_earlier = trigger(baseline=NOTHING_SEEN, poll_interval=60, deferred_at=time.time() - 5)
        deferred_now = trigger(baseline=NOTHING_SEEN, poll_interval=60, deferred_at=time.time())

        await deferred_earlier._look(hooks[1])
        assert reads() == first + 1, "an answer read after its deferral is shared"
        await deferred_now._look(hooks[2])
        assert reads() == first + 2, "an answer read before its deferral is not"
    finally:
        for hook in hooks:
            await hook.aclose()


async def test_a_shared_read_refuses_results_and_reads_in_flight_sent_before_not_before() -> None:
    endpoint = SharedEndpoint(httpx.AsyncClient())
    sent: list[float] = []
    release = asyncio.Event()

    async def fetch() -> int:
        sent.append(time.time())
        number = len(sent)
        await release.wait()
        return number

    in_flight = asyncio.ensure_future(endpoint.read("key", 60, fetch))
    await asyncio.sleep(0.01)
    later = time.time()
    refusing = asyncio.ensure_future(endpoint.read("key", 60, fetch, not_before=later))
    sharing = asyncio.ensure_future(endpoint.read("key", 60, fetch, not_before=later - 1))
    await asyncio.sleep(0.01)
    release.set()

    # The second reader shares the newest read in flight, whose request was sent late enough for it too.
    assert await asyncio.gather(in_flight, refusing, sharing) == [1, 2, 2]
    assert await endpoint.read("key", 60, fetch, not_before=later) == 2, "the newer result is cached"
    assert await endpoint.read("key", 60, fetch, not_before=time.time() + 1) == 3
    await endpoint.http.aclose()


@pytest.mark.parametrize(
    ("baseline", "missing_deployment", "ends", "logged"),
    [
        (None, "fail", True, None),  # the trigger's poll is the first look
        (None, "wait", False, "Waiting for it (missing_deployment='wait')"),
        # The task's first look saw nothing and the task chose to wait.
        (NOTHING_SEEN, "wait", False, "Waiting for it (missing_deployment='wait')"),
        # The task's first look saw a deployment that is gone now; the user did not choose to wait.
        (SEEN, "fail", False, "An earlier look found it; waiting for it."),
    ],
)
async def test_no_deployment_at_the_first_look_ends_the_wait_unless_told_to_wait(
    vvp_emulator: VVPEmulator,
    vvp_namespace: str,
    capfd: pytest.CaptureFixture[str],
    baseline: dict[str, Any] | None,
    missing_deployment: str,
    ends: bool,
    logged: str | None,
) -> None:
    waiting = trigger(deployment_name="ordres", baseline=baseline, missing_deployment=missing_deployment)
    hook = FlinkVVPHook()
    try:
        payload = await waiting._look(hook)
    finally:
        await hook.aclose()

    if ends:
        assert payload == {
            "status": "error",
            "message": f"No deployment named 'ordres' in namespace '{vvp_namespace}' of workspace 'ws-tests': check "
            "the name, namespace and workspace. To wait for it to be created, set missing_deployment='wait'.",
        }
    else:
        assert payload is None
    out = capfd.readouterr().out
    assert logged is None or logged in out
    assert (missing_deployment == "wait") == ("missing_deployment='wait')" in out), "says wait only if told to"


@pytest.mark.parametrize(("first_look_at", "reads"), [(None, 0), ("earlier", 1)])
async def test_a_trigger_forming_a_late_baseline_reads_the_deployment_afresh_not_a_shared_answer(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, first_look_at: str | None, reads: int
) -> None:
    # Jobs listed after an older shared answer may have ended after it: not in its counts, not to be taken off.
    add_deployment("orders", history={"failed": 6}, timeline=[["STARTING", None]])
    hook = FlinkVVPHook()
    try:
        # Another trigger's poll leaves an answer to share for a minute.
        assert await trigger(baseline=None, poll_interval=60)._look(hook) is None
        before = vvp_emulator.request_counts()["GetDeploymentsByName"]
        since = time.time() - 5 if first_look_at else None

        late = trigger(baseline=None, poll_interval=60, first_look_at=since)
        assert await late._look(hook) is None

        assert vvp_emulator.request_counts()["GetDeploymentsByName"] - before == reads
        assert late.baseline is not None and late.baseline["summary"]["failed"] == 6
    finally:
        await hook.aclose()
