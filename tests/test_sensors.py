"""FlinkVVPJobSummarySensor, its pokes and its resumption, called directly against the emulator."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_flink_vvp.sensors.vvp import BASELINE_STATE_KEY, FlinkVVPJobSummarySensor
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


def test_no_deployment_yet_keeps_waiting(vvp_emulator: VVPEmulator, make_context: MakeContext) -> None:
    result = sensor(deployment_name="not-yet").poke(make_context())  # type: ignore[arg-type]

    assert not result.is_done


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


def test_a_retry_takes_a_fresh_baseline(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("batch", history={"finished": 4})
    first_try = make_context(try_number=1)
    sensor(deployment_name="batch", target_states=["finished"]).poke(first_try)  # type: ignore[arg-type]
    add_job(vvp_emulator, deployment_id, FINISHED)

    second_try = make_context(try_number=2, task_state_store=first_try["task_state_store"])
    result = sensor(deployment_name="batch", target_states=["finished"]).poke(second_try)  # type: ignore[arg-type]

    assert not result.is_done
    assert second_try["task_state_store"][BASELINE_STATE_KEY] == {
        "try_number": 2,
        "baseline": {
            "deployment_id": deployment_id,
            "summary": {"starting": 0, "running": 0, "cancelling": 0, "cancelled": 0, "finished": 5, "failed": 0},
        },
    }


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


def test_names_namespace_and_workspace_are_templated() -> None:
    assert set(FlinkVVPJobSummarySensor.template_fields) == {"deployment_name", "namespace", "workspace"}
