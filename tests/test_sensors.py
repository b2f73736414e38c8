"""FlinkVVPJobSummarySensor, its pokes and its resumption, called directly against the emulator."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.sensors.vvp import (
    BASELINE_STATE_KEY,
    FlinkVVPJobStatusSensor,
    FlinkVVPJobSummarySensor,
    _reschedule_exception,
)
from airflow_provider_flink_vvp.testing import Fault, FaultKind, VVPEmulator
from airflow_provider_flink_vvp.triggers.vvp import FlinkVVPJobSummaryTrigger
from tests.conftest import VVP_ACCESS_KEY_SECRET, AddDeployment, MakeContext, add_job, set_vvp_connection

RUNNING = [["RUNNING", None]]
FAILED = [["FAILED", None]]
FINISHED = [["FINISHED", None]]


def sensor(**kwargs: Any) -> FlinkVVPJobSummarySensor:
    return FlinkVVPJobSummarySensor(**{"task_id": "wait", "deployment_name": "orders", "poke_interval": 0.1, **kwargs})


def test_unknown_states_are_rejected_when_the_dag_is_parsed() -> None:
    with pytest.raises(
        ValueError, match=r"unknown job summary states \['deployed'\]; valid states are: starting, running, cancelling"
    ):
        sensor(target_states=("RUNNING", "deployed"))


def test_states_are_normalized() -> None:
    waiting = sensor(target_states="Finished", failure_states=["FAILED", "Cancelled"])

    assert (waiting.target_states, waiting.failure_states) == (("finished",), ("failed", "cancelled"))


def test_historical_failures_do_not_trip_a_running_deployment(
    add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("orders", history={"failed": 6}, timeline=RUNNING)
    context = make_context()

    result = sensor().poke(context)  # type: ignore[arg-type]

    assert (result.is_done, result.xcom_value) == (True, deployment_id)
    assert context["ti"].xcoms["deployment_url"].endswith(f"/operations/stream/{deployment_id}")


@pytest.mark.parametrize("soft_fail", [False, True])
def test_a_first_look_that_finds_no_deployment_fails_naming_where_it_looked(
    vvp_emulator: VVPEmulator, vvp_namespace: str, make_context: MakeContext, soft_fail: bool
) -> None:
    with pytest.raises(AirflowSkipException if soft_fail else AirflowFailException) as raised:
        sensor(deployment_name="ordres", soft_fail=soft_fail).poke(make_context())  # type: ignore[arg-type]

    assert str(raised.value) == (
        f"No deployment named 'ordres' in namespace '{vvp_namespace}' of workspace 'ws-tests': check the name, "
        "namespace and workspace. To wait for it to be created, set missing_deployment='wait'."
    )


def test_missing_deployment_wait_logs_where_it_looks_at_every_look(
    vvp_emulator: VVPEmulator, vvp_namespace: str, make_context: MakeContext, capfd: pytest.CaptureFixture[str]
) -> None:
    context = make_context()
    waiting = sensor(deployment_name="not-yet", missing_deployment="wait")

    results = [waiting.poke(context).is_done for _ in range(2)]  # type: ignore[arg-type]

    assert results == [False, False]
    where = f"No deployment named 'not-yet' in namespace '{vvp_namespace}' of workspace 'ws-tests'"
    assert capfd.readouterr().out.count(where) == 2


@pytest.mark.parametrize("value", ["never", "", None, "WAIT"])
def test_missing_deployment_takes_fail_or_wait(value: Any) -> None:
    with pytest.raises(ValueError, match=f"missing_deployment must be 'fail' or 'wait', got {value!r}"):
        sensor(missing_deployment=value)


@pytest.mark.parametrize(
    ("history", "first_job", "target", "outcome"),
    [
        # The first job of a deployment created after the first look already ended: counted from zero.
        ({}, FAILED, "running", AirflowFailException),
        ({}, FINISHED, "finished", "done"),
        ({"failed": 3}, FAILED, "running", AirflowFailException),
        ({"finished": 2}, FINISHED, "finished", "done"),
        ({}, RUNNING, "running", "done"),
    ],
)
def test_a_deployment_created_after_the_first_look_is_watched_from_zero(
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    make_context: MakeContext,
    history: dict[str, int],
    first_job: list[list[Any]],
    target: str,
    outcome: Any,
) -> None:
    context = make_context()
    waiting = sensor(deployment_name="late", missing_deployment="wait", target_states=target)
    assert not waiting.poke(context).is_done  # type: ignore[arg-type]
    deployment_id = add_deployment("late", history=history, timeline=first_job)
    later = sensor(deployment_name="late", missing_deployment="wait", target_states=target)
    again = make_context(task_state_store=context["task_state_store"])

    if outcome == "done":
        assert later.poke(again).xcom_value == deployment_id  # type: ignore[arg-type]
    else:
        with pytest.raises(outcome, match="has failed jobs"):
            later.poke(again)  # type: ignore[arg-type]


def test_the_baseline_survives_reschedules_in_the_task_state_store(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("batch", history={"finished": 4})
    first = make_context()

    assert not sensor(deployment_name="batch", target_states=["finished"]).poke(first).is_done  # type: ignore[arg-type]
    assert first["task_state_store"][BASELINE_STATE_KEY]["baseline"]["summary"]["finished"] == 4

    add_job(vvp_emulator, deployment_id, FINISHED)
    # A reschedule: a new operator object and a new task instance, the same task state store.
    later = make_context(task_state_store=first["task_state_store"])
    result = sensor(deployment_name="batch", target_states=["finished"]).poke(later)  # type: ignore[arg-type]

    assert (result.is_done, result.xcom_value) == (True, deployment_id)


@pytest.mark.parametrize(
    ("try_number", "max_tries", "retries", "done"),
    [
        (2, 1, 1, True),  # the retry of the first try: its baseline, so the job finished meanwhile counts
        (3, 2, 2, True),  # the second retry
        (2, 2, 1, False),  # the task was cleared (max_tries raised): a new series, a new baseline
        (4, 5, 2, False),
    ],
)
def test_a_retry_keeps_the_baseline_of_its_series_and_a_clear_takes_a_new_one(
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    make_context: MakeContext,
    try_number: int,
    max_tries: int,
    retries: int,
    done: bool,
) -> None:
    deployment_id = add_deployment("batch", history={"finished": 4})
    first_try = make_context(try_number=1, max_tries=retries)
    sensor(deployment_name="batch", target_states=["finished"], retries=retries).poke(first_try)  # type: ignore[arg-type]
    add_job(vvp_emulator, deployment_id, FINISHED)

    later = make_context(try_number=try_number, max_tries=max_tries, task_state_store=first_try["task_state_store"])
    result = sensor(deployment_name="batch", target_states=["finished"], retries=retries).poke(later)  # type: ignore[arg-type]

    assert result.is_done is done
    finished_before = later["task_state_store"][BASELINE_STATE_KEY]["baseline"]["summary"]["finished"]
    assert finished_before == (4 if done else 5)


def test_the_baseline_never_expires_and_is_deleted_when_the_sensor_succeeds(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    from datetime import timedelta

    deployment_id = add_deployment("batch", history={"finished": 4})
    context = make_context()
    waiting = sensor(deployment_name="batch", target_states=["finished"], poke_interval=0.05, timeout=10)
    store = context["task_state_store"]
    looks = vvp_emulator.request_counts().get("GetDeploymentsByName", 0)

    def add_job_after_the_first_look() -> None:
        while vvp_emulator.request_counts().get("GetDeploymentsByName", 0) <= looks:
            time.sleep(0.01)
        time.sleep(0.1)  # the look's answer is on its way
        add_job(vvp_emulator, deployment_id, FINISHED)

    add_job_later = threading.Thread(target=add_job_after_the_first_look, daemon=True)
    add_job_later.start()

    assert waiting.execute(context) == deployment_id  # type: ignore[arg-type]

    assert store.retentions[BASELINE_STATE_KEY] == timedelta.max  # Airflow's NEVER_EXPIRE
    assert BASELINE_STATE_KEY not in store


def test_a_new_failed_job_fails_with_the_counts_and_the_console_link(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("orders", history={"failed": 6})
    context = make_context()
    assert not sensor().poke(context).is_done  # type: ignore[arg-type]
    add_job(vvp_emulator, deployment_id, FAILED)

    with pytest.raises(AirflowFailException) as raised:
        sensor().poke(make_context(task_state_store=context["task_state_store"]))  # type: ignore[arg-type]

    message = str(raised.value)
    assert f"'orders' ({deployment_id}) has failed jobs: failed 6 -> 7" in message
    assert "Console: https://vvp.console.aliyun.com/web/ws-tests/zh/#/workspaces/ws-tests/namespaces/" in message


def test_soft_fail_skips_instead_of_failing(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("orders")
    context = make_context()
    sensor(soft_fail=True).poke(context)  # type: ignore[arg-type]
    add_job(vvp_emulator, deployment_id, FAILED)

    with pytest.raises(AirflowSkipException, match="has failed jobs"):
        sensor(soft_fail=True).poke(make_context(task_state_store=context["task_state_store"]))  # type: ignore[arg-type]


def test_a_newer_deployment_with_the_same_name_is_watched_from_zero(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    add_deployment("batch", history={"finished": 9})
    context = make_context()
    sensor(deployment_name="batch", target_states="finished").poke(context)  # type: ignore[arg-type]
    newer = add_deployment("batch", timeline=FINISHED)

    later = make_context(task_state_store=context["task_state_store"])
    result = sensor(deployment_name="batch", target_states="finished").poke(later)  # type: ignore[arg-type]

    assert (result.is_done, result.xcom_value) == (True, newer)


@pytest.mark.parametrize("kind", [FaultKind.THROTTLE, FaultKind.UNAVAILABLE, FaultKind.DROP, FaultKind.HTML])
def test_a_transient_error_never_fails_a_poke(
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    make_context: MakeContext,
    kind: FaultKind,
) -> None:
    add_deployment("orders", timeline=RUNNING)
    vvp_emulator.inject(Fault(kind))

    waiting = sensor().poke(make_context())  # type: ignore[arg-type]
    done = sensor().poke(make_context())  # type: ignore[arg-type]

    assert (waiting.is_done, done.is_done) == (False, True)


@pytest.mark.parametrize("soft_fail", [False, True])
def test_a_definite_error_fails_at_once_with_the_hooks_message(
    vvp_emulator: VVPEmulator,
    vvp_namespace: str,
    add_deployment: AddDeployment,
    make_context: MakeContext,
    monkeypatch: pytest.MonkeyPatch,
    soft_fail: bool,
) -> None:
    add_deployment("orders", timeline=RUNNING)
    set_vvp_connection(monkeypatch, vvp_emulator.url, namespace=vvp_namespace, password="a-wrong-secret-value")

    with pytest.raises(AirflowSkipException if soft_fail else AirflowFailException) as raised:
        sensor(soft_fail=soft_fail).poke(make_context())  # type: ignore[arg-type]

    assert "SignatureDoesNotMatch" in str(raised.value)
    assert "a-wrong-secret-value" not in str(raised.value)


def test_deferrable_returns_at_once_when_the_wait_is_already_over(
    add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("orders", timeline=RUNNING)

    assert sensor(deferrable=True).execute(make_context()) == deployment_id  # type: ignore[arg-type]


def test_deferrable_defers_with_the_baseline_and_a_wall_clock_deadline(
    add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("batch", history={"finished": 4, "failed": 1})
    before = time.time()

    with pytest.raises(TaskDeferred) as deferred:
        sensor(deployment_name="batch", target_states=["finished"], timeout=300, deferrable=True).execute(
            make_context()  # type: ignore[arg-type]
        )

    trigger = deferred.value.trigger
    assert isinstance(trigger, FlinkVVPJobSummaryTrigger)
    assert deferred.value.method_name == "execute_complete"
    _, kwargs = trigger.serialize()
    assert kwargs["baseline"] == {
        "deployment_id": deployment_id,
        "summary": {"starting": 0, "running": 0, "cancelling": 0, "cancelled": 0, "finished": 4, "failed": 1},
    }
    assert (kwargs["target_states"], kwargs["failure_states"], kwargs["poll_interval"]) == (
        ["finished"],
        ["failed"],
        0.1,
    )
    assert before + 300 <= kwargs["end_time"] <= time.time() + 300
    assert VVP_ACCESS_KEY_SECRET not in json.dumps(kwargs)


def test_execute_complete_returns_the_deployment_id_and_publishes_its_url(
    vvp_emulator: VVPEmulator, make_context: MakeContext, vvp_namespace: str
) -> None:
    context = make_context()
    event = {"status": "success", "message": "Deployment 'orders' (d-1) is running", "deployment_id": "d-1"}

    assert sensor().execute_complete(context, event) == "d-1"  # type: ignore[arg-type]
    assert context["ti"].xcoms["deployment_url"].endswith(f"/namespaces/{vvp_namespace}/operations/stream/d-1")


@pytest.mark.parametrize(
    ("event", "error", "text"),
    [
        (
            {"status": "failure", "message": "Deployment 'orders' (d-1) has failed jobs", "deployment_id": "d-1"},
            AirflowFailException,
            "has failed jobs. Console: https://",
        ),
        ({"status": "timeout", "message": "Timed out waiting"}, AirflowSensorTimeout, "Timed out waiting"),
        ({"status": "error", "message": "SignatureDoesNotMatch: ..."}, AirflowFailException, "SignatureDoesNotMatch"),
    ],
)
@pytest.mark.parametrize("soft_fail", [False, True])
def test_execute_complete_fails_or_skips_as_a_poke_would(
    vvp_emulator: VVPEmulator,
    make_context: MakeContext,
    event: dict[str, str],
    error: type[Exception],
    text: str,
    soft_fail: bool,
) -> None:
    with pytest.raises(AirflowSkipException if soft_fail else error, match=text):
        sensor(soft_fail=soft_fail).execute_complete(make_context(), event)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("deferred_by", "try_number", "afresh"),
    [
        (1, 2, True),  # Airflow before 3.1.1 resumes a retry with the failed try's event: the retry starts afresh
        (2, 4, True),
        (2, 2, False),  # this try's own event decides
        (None, 2, False),  # an event that names no try (a trigger of an older release of this provider)
    ],
)
def test_a_try_resumed_with_an_earlier_tries_event_runs_afresh_instead_of_failing_again(
    add_deployment: AddDeployment,
    make_context: MakeContext,
    capfd: pytest.CaptureFixture[str],
    deferred_by: int | None,
    try_number: int,
    afresh: bool,
) -> None:
    deployment_id = add_deployment("orders", timeline=RUNNING)
    event: dict[str, Any] = {
        "status": "failure",
        "message": "Deployment 'orders' has failed jobs",
        "deployment_id": "d",
    }
    if deferred_by is not None:
        event["try_number"] = deferred_by
    context = make_context(try_number=try_number, max_tries=3)

    if afresh:
        assert sensor(retries=3).execute_complete(context, event) == deployment_id  # type: ignore[arg-type]
        assert f"Resumed with the event of try {deferred_by}'s deferral, not of this try ({try_number})" in (
            capfd.readouterr().out
        )
    else:
        with pytest.raises(AirflowFailException, match="has failed jobs"):
            sensor(retries=3).execute_complete(context, event)  # type: ignore[arg-type]


def test_names_namespace_and_workspace_are_templated() -> None:
    assert set(FlinkVVPJobSummarySensor.template_fields) == {"deployment_name", "namespace", "workspace"}


def without_store(context: dict[str, Any]) -> dict[str, Any]:
    """The context of Airflow before 3.3, which has no task state store."""
    del context["task_state_store"]
    return context


def test_before_airflow_3_3_a_poking_sensor_keeps_the_baseline_for_its_try(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("orders", history={"failed": 6})
    context = without_store(make_context())
    poking = sensor()
    assert not poking.poke(context).is_done  # type: ignore[arg-type]
    add_job(vvp_emulator, deployment_id, FAILED)

    with pytest.raises(AirflowFailException, match="failed 6 -> 7"):
        poking.poke(context)  # type: ignore[arg-type]
    # A new try (a new operator object) starts from a new baseline.
    assert not sensor().poke(without_store(make_context(try_number=2))).is_done  # type: ignore[arg-type]


def test_before_airflow_3_3_a_deferred_sensor_carries_the_baseline_in_its_trigger(
    add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("orders", history={"failed": 6})

    with pytest.raises(TaskDeferred) as deferred:
        sensor(deferrable=True).execute(without_store(make_context()))  # type: ignore[arg-type]

    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["baseline"]["deployment_id"] == deployment_id
    assert kwargs["baseline"]["summary"]["failed"] == 6


@pytest.mark.parametrize(
    ("history", "target", "job", "ended", "outcome"),
    [
        # Ended after the wait began, whenever a poke sees it: the target is met, or the failure fails the wait.
        ({"finished": 4}, "finished", FINISHED, "between pokes", "done"),
        ({"finished": 4}, "finished", FINISHED, "before the first look", "done"),
        ({"failed": 6}, "running", FAILED, "between pokes", AirflowFailException),
        ({"failed": 6}, "running", FAILED, "before the first look", AirflowFailException),
        ({"cancelled": 1}, "cancelled", [["CANCELLED", None]], "between pokes", "done"),
        # Ended before the wait began: history.
        ({"finished": 4}, "finished", FINISHED, "before the wait began", "waiting"),
        ({"failed": 6}, "running", FAILED, "before the wait began", "waiting"),
    ],
)
def test_before_airflow_3_3_a_rescheduling_sensor_counts_what_ended_after_airflow_recorded_its_start(
    vvp_emulator: VVPEmulator,
    add_deployment: AddDeployment,
    make_context: MakeContext,
    history: dict[str, int],
    target: str,
    job: list[list[Any]],
    ended: str,
    outcome: Any,
) -> None:
    deployment_id = add_deployment("orders", history=history)
    if ended == "before the wait began":
        add_job(vvp_emulator, deployment_id, job)
        time.sleep(0.01)
    # The first run looks at nothing: it reschedules at once, and Airflow records when.
    with pytest.raises(_reschedule_exception()) as rescheduled:
        sensor(mode="reschedule", target_states=target).execute(without_store(make_context()))  # type: ignore[arg-type]
    assert rescheduled.value.reschedule_date <= datetime.now(UTC), "at once"  # type: ignore[attr-defined]
    began = datetime.now(UTC)
    time.sleep(0.01)  # job times are in milliseconds
    if ended == "before the first look":
        add_job(vvp_emulator, deployment_id, job)
    looks = []
    for number in (1, 2, 3):
        # Each poke is a new run of the task: a new operator, nothing kept but Airflow's reschedule records.
        context = without_store(make_context())
        context["ti"].first_reschedule_date = began
        context["task_reschedule_count"] = number
        if number == 2 and ended == "between pokes":
            add_job(vvp_emulator, deployment_id, job)
        waiting = sensor(mode="reschedule", target_states=target)
        if isinstance(outcome, type) and (number == 2 or ended == "before the first look"):
            with pytest.raises(outcome, match="has failed jobs"):
                waiting.poke(context)  # type: ignore[arg-type]
            return
        looks.append(waiting.poke(context).is_done)  # type: ignore[arg-type]

    expected = {
        "done": [ended == "before the first look", True, True],
        "waiting": [False, False, False],
    }[outcome]
    assert looks == expected


def test_before_airflow_3_3_a_rescheduled_poke_that_finds_no_deployment_waits_whatever_missing_deployment_says(
    add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    first, later = without_store(make_context()), without_store(make_context())
    for context, number in ((first, 1), (later, 2)):
        context["ti"].first_reschedule_date = datetime.now(UTC)
        context["task_reschedule_count"] = number
    with pytest.raises(AirflowFailException, match="No deployment named 'gone'"):
        sensor(mode="reschedule", deployment_name="gone").poke(first)  # type: ignore[arg-type]

    # An earlier poke may have seen it: it may come back.
    assert not sensor(mode="reschedule", deployment_name="gone").poke(later).is_done  # type: ignore[arg-type]


def test_a_deferrable_first_look_is_repeated_in_the_worker_while_the_api_errs_transiently(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("orders", history={"failed": 6})
    for kind in (FaultKind.UNAVAILABLE, FaultKind.DROP):
        vvp_emulator.inject(Fault(kind))
    looks = vvp_emulator.request_counts().get("GetDeploymentsByName", 0)

    with pytest.raises(TaskDeferred) as deferred:
        sensor(deferrable=True).execute(make_context())  # type: ignore[arg-type]

    assert vvp_emulator.request_counts()["GetDeploymentsByName"] == looks + 3
    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["baseline"]["deployment_id"] == deployment_id, "the trigger never takes a baseline itself"


TRANSIENT_FIRST_LOOKS = [FaultKind.UNAVAILABLE, FaultKind.THROTTLE, FaultKind.DROP]
# What happens after the unanswered first look: the deployment, its job, the target, and how the wait ends.
AFTER_AN_UNANSWERED_FIRST_LOOK = [
    # An existing deployment's job ends after the first look: counted, though the first answer came later.
    ("existing", [["RUNNING", 0.3], ["FAILED", None]], "finished", "failed 2 -> 3"),
    ("existing", [["RUNNING", 0.3], ["FINISHED", None]], "finished", "done"),
    ("existing", [["RUNNING", 0.3], ["CANCELLED", None]], "cancelled", "done"),
    # Nothing ended since: the history stays history.
    ("existing", RUNNING, "finished", "waiting"),
    # A deployment created after the first look, its first job already ended: watched from zero.
    ("new", [["RUNNING", 0.3], ["FAILED", None]], "finished", "failed 0 -> 1"),
    ("new", [["RUNNING", 0.3], ["FINISHED", None]], "finished", "done"),
]


def add_orders(vvp_emulator: VVPEmulator, vvp_namespace: str, which: str, timeline: list[list[Any]]) -> str:
    """An ``orders`` deployment with one job following ``timeline``: an ``existing`` one created long ago with a
    history (2 failed, 4 finished, 1 cancelled), or a ``new`` one created now."""
    created = 1_700_000_000 if which == "existing" else int(time.time()) + 1
    deployment_id = f"orders-{which}-{uuid.uuid4().hex[:8]}"
    vvp_emulator.add_deployment(
        {
            "deploymentId": deployment_id,
            "name": "orders",
            "namespace": vvp_namespace,
            "workspace": "ws-tests",
            "createdAt": str(created),
            "jobSummary": {"failed": 2, "finished": 4, "cancelled": 1} if which == "existing" else {},
        }
    )
    add_job(vvp_emulator, deployment_id, timeline)
    return deployment_id


def assert_ends(look: Any, deployment_id: str, ends: str) -> None:
    """``look()`` ends the wait as ``ends`` says: a failure with these counts, done, or still waiting."""
    if ends == "done":
        assert look() == deployment_id
    elif ends == "waiting":
        assert look() is None
    else:
        with pytest.raises(AirflowFailException, match=f"has failed jobs: {ends}"):
            look()


@pytest.mark.parametrize(("which", "timeline", "target", "ends"), AFTER_AN_UNANSWERED_FIRST_LOOK)
@pytest.mark.parametrize("kind", TRANSIENT_FIRST_LOOKS)
def test_what_ends_after_an_unanswered_first_poke_counts(
    vvp_emulator: VVPEmulator,
    vvp_namespace: str,
    make_context: MakeContext,
    kind: FaultKind,
    which: str,
    timeline: list[list[Any]],
    target: str,
    ends: str,
) -> None:
    vvp_emulator.inject(Fault(kind, action="GetDeploymentsByName"))
    first = make_context()
    if which == "existing":
        deployment_id = add_orders(vvp_emulator, vvp_namespace, which, timeline)
    assert not sensor(target_states=target, missing_deployment="wait").poke(first).is_done  # type: ignore[arg-type]
    if which == "new":
        deployment_id = add_orders(vvp_emulator, vvp_namespace, which, timeline)
    time.sleep(0.5)  # the job ends meanwhile
    # A reschedule: a new operator object, the same task state store.
    later = make_context(task_state_store=first["task_state_store"])

    def look() -> str | None:
        result = sensor(target_states=target, missing_deployment="wait").poke(later)  # type: ignore[arg-type]
        return result.xcom_value if result.is_done else None

    assert_ends(look, deployment_id, ends)


@pytest.mark.parametrize(("which", "timeline", "target", "ends"), AFTER_AN_UNANSWERED_FIRST_LOOK)
@pytest.mark.parametrize("kind", TRANSIENT_FIRST_LOOKS)
def test_a_deferrable_sensor_whose_looks_go_unanswered_defers_after_three_and_its_triggers_count_what_ended(
    vvp_emulator: VVPEmulator,
    vvp_namespace: str,
    make_context: MakeContext,
    kind: FaultKind,
    which: str,
    timeline: list[list[Any]],
    target: str,
    ends: str,
) -> None:
    # The job runs until the first trigger's first poll has seen it, then ends as the timeline says.
    ending, timeline = timeline[1:], [["RUNNING", None]]
    for _ in range(3):
        vvp_emulator.inject(Fault(kind, action="GetDeploymentsByName"))
    looks = vvp_emulator.request_counts().get("GetDeploymentsByName", 0)
    if which == "existing":
        deployment_id = add_orders(vvp_emulator, vvp_namespace, which, timeline)

    with pytest.raises(TaskDeferred) as deferred:
        sensor(target_states=target, missing_deployment="wait", deferrable=True, timeout=3600).execute(
            make_context()  # type: ignore[arg-type]
        )

    assert vvp_emulator.request_counts()["GetDeploymentsByName"] == looks + 3, "three looks, then it defers"
    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["baseline"] is None and kwargs["first_look_at"] <= time.time()
    if which == "new":
        deployment_id = add_orders(vvp_emulator, vvp_namespace, which, timeline)

    async def poll(trigger: FlinkVVPJobSummaryTrigger) -> dict[str, Any] | None:
        hook = FlinkVVPHook()
        try:
            return await trigger._look(hook)
        finally:
            await hook.aclose()

    first_trigger = FlinkVVPJobSummaryTrigger(**kwargs)
    assert asyncio.run(poll(first_trigger)) is None, "the job has not ended yet"
    if ending:
        [job] = FlinkVVPHook().list_jobs(deployment_id)
        vvp_emulator.state.set_job_timeline(job.job_id, ending)
    time.sleep(0.01)  # the job ends; the triggerer restarts: a trigger rebuilt from the same kwargs

    def look(trigger: FlinkVVPJobSummaryTrigger) -> str | None:
        payload = asyncio.run(poll(trigger))
        if payload is not None and payload["status"] == "failure":
            raise AirflowFailException(payload["message"])
        return None if payload is None else str(payload["deployment_id"])

    for trigger in (first_trigger, FlinkVVPJobSummaryTrigger(**kwargs)):
        assert_ends(lambda: look(trigger), deployment_id, ends)  # noqa: B023


@pytest.mark.parametrize(
    "make",
    [
        lambda: sensor(),
        lambda: FlinkVVPJobStatusSensor(task_id="wait", job_id="j-1"),
    ],
    ids=["job summary", "job status"],
)
@pytest.mark.parametrize(
    ("value", "seconds"), [(5, 5.0), (0.5, 0.5), (timedelta(minutes=2), 120.0), (timedelta(milliseconds=200), 0.2)]
)
def test_a_sensors_poll_interval_can_be_set_after_it_was_built_as_a_cluster_policy_would(
    make: Any, value: float | timedelta, seconds: float
) -> None:
    waiting = make()

    waiting.poll_interval = value

    assert waiting.poll_interval == waiting.poke_interval == seconds


@pytest.mark.parametrize("value", [0, -1, float("inf"), "30", None, timedelta(0)])
def test_a_sensors_poll_interval_set_to_a_bad_value_is_refused_naming_it(value: Any) -> None:
    waiting = sensor()

    with pytest.raises(ValueError, match=r"poll_interval must be"):
        waiting.poll_interval = value
    assert waiting.poll_interval == 0.1, "left as it was"


def test_a_baseline_kept_without_the_first_attempts_time_still_serves(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("batch", history={"finished": 4}, timeline=FINISHED)
    context = make_context()
    # As an earlier release of the provider left it: the baseline alone.
    context["task_state_store"][BASELINE_STATE_KEY] = {
        "baseline": {"deployment_id": deployment_id, "summary": {"finished": 4}},
        "series": 1,
    }

    result = sensor(deployment_name="batch", target_states=["finished"]).poke(context)  # type: ignore[arg-type]

    assert (result.is_done, result.xcom_value) == (True, deployment_id)
