"""The savepoint decisions, the trigger against the emulator, and the operator's take-back rules."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_flink_vvp.api.models import Savepoint
from airflow_provider_flink_vvp.decisions import Outcome
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.operators.savepoint import (
    CREATED_SAVEPOINT_STATE_KEY,
    FlinkVVPCreateSavepointOperator,
)
from airflow_provider_flink_vvp.savepoints import created_since, decide_savepoint, taken_back_savepoint
from airflow_provider_flink_vvp.testing import Fault, FaultKind, VVPEmulator
from airflow_provider_flink_vvp.triggers.savepoint import FlinkVVPSavepointTrigger
from tests.conftest import VVP_ACCESS_KEY_SECRET, AddDeployment, MakeContext

RUN_START = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def savepoint(savepoint_id: str, state: str, *, minutes: float, origin: str = "USER_REQUEST", **raw: Any) -> Savepoint:
    created = RUN_START + timedelta(minutes=minutes)
    return Savepoint.from_api(
        {
            "savepointId": savepoint_id,
            "deploymentId": "d-1",
            "status": {"state": state, **raw},
            "savepointOrigin": origin,
            "createdAt": int(created.timestamp() * 1000),
        }
    )


@pytest.mark.parametrize(
    ("state", "failure", "outcome", "message"),
    [
        ("STARTED", None, Outcome.WAITING, "Savepoint s of deployment d-1 is STARTED, not yet COMPLETED"),
        ("IN_PROGRESS", None, Outcome.WAITING, "is IN_PROGRESS, not yet COMPLETED"),
        ("COMPLETED", None, Outcome.SUCCESS, "is COMPLETED at an unknown location"),
        ("FAILED", {"reason": "Expired", "message": "too slow"}, Outcome.FAILURE, "FAILED: Expired: too slow"),
        ("FAILED", {"reason": None}, Outcome.FAILURE, "FAILED: no reason given: no message given"),
        ("failed", None, Outcome.FAILURE, "Savepoint s of deployment d-1 FAILED"),
    ],
)
def test_a_savepoint_is_done_when_completed_or_failed_with_its_reason(
    state: str, failure: Any, outcome: Outcome, message: str
) -> None:
    raw = {"failure": failure} if failure else {}
    decision = decide_savepoint(savepoint("s", state, minutes=1, **raw))
    assert decision.outcome is outcome and message in decision.message


# The deployment's savepoints (ID, state, minutes after the run started, origin) and what a retry takes back.
TAKE_BACK_CASES = [
    ([], None),
    ([("old", "COMPLETED", -5, "USER_REQUEST")], None),  # before the run: another run's
    ([("mine", "STARTED", 1, "USER_REQUEST")], "mine"),
    ([("mine", "COMPLETED", 1, "USER_REQUEST")], "mine"),
    ([("failed", "FAILED", 1, "USER_REQUEST")], None),  # a failed one: the retry takes a new one
    ([("stop", "COMPLETED", 1, "STOP_WITH_SAVEPOINT")], None),  # a stop's, not taken on request
    ([("a", "COMPLETED", 1, "USER_REQUEST"), ("b", "STARTED", 2, "USER_REQUEST")], "b"),  # the newest
    ([("b", "STARTED", 2, "USER_REQUEST"), ("a", "COMPLETED", 1, "USER_REQUEST")], "b"),  # whatever the order
    ([("b", "FAILED", 2, "USER_REQUEST"), ("a", "COMPLETED", 1, "USER_REQUEST")], "a"),
    ([("at", "COMPLETED", 0, "USER_REQUEST")], "at"),  # at the run's start counts
]


@pytest.mark.parametrize(("listed", "taken"), TAKE_BACK_CASES)
def test_without_a_task_state_store_a_retry_takes_back_this_run_s_savepoint_in_progress_or_completed(
    listed: list[tuple[str, str, float, str]], taken: str | None
) -> None:
    savepoints = [savepoint(i, state, minutes=m, origin=origin) for i, state, m, origin in listed]
    found = taken_back_savepoint(savepoints, since=RUN_START)
    assert (found.savepoint_id if found else None) == taken


def test_created_since_is_the_newest_savepoint_not_listed_before() -> None:
    listed = [savepoint("new", "STARTED", minutes=3), savepoint("older", "COMPLETED", minutes=1)]
    assert created_since(listed, {"older"}) == listed[0]
    assert created_since(listed, {"older", "new"}) is None


def test_the_trigger_serializes_without_secrets_and_round_trips() -> None:
    trigger = FlinkVVPSavepointTrigger(
        savepoint_id="sp-1",
        namespace="ns",
        workspace=None,
        flink_vvp_conn_id="flink_vvp_default",
        poll_interval=0.5,
        end_time=123.0,
        deferred_at=100.0,
        execution_timeout=True,
        try_number=2,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_flink_vvp.triggers.savepoint.FlinkVVPSavepointTrigger"
    assert FlinkVVPSavepointTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert VVP_ACCESS_KEY_SECRET not in repr(kwargs)


async def run_trigger(savepoint_id: str, *, seconds: float = 10) -> dict[str, Any]:
    trigger = FlinkVVPSavepointTrigger(
        savepoint_id=savepoint_id,
        namespace=None,
        workspace=None,
        flink_vvp_conn_id="flink_vvp_default",
        poll_interval=0.05,
        end_time=time.time() + seconds,
    )
    [event] = [event async for event in trigger.run()]
    payload: dict[str, Any] = event.payload
    return payload


async def test_the_trigger_waits_through_transient_errors_until_the_savepoint_completes(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("stream", timeline=[["RUNNING", None]])
    taken = FlinkVVPHook().create_savepoint(deployment_id)
    vvp_emulator.inject(*[Fault(FaultKind.UNAVAILABLE, action="GetSavepoint")] * 2)
    payload = await run_trigger(taken.savepoint_id)
    done = FlinkVVPHook().get_savepoint(taken.savepoint_id)
    assert payload == {
        "status": "success",
        "message": f"Savepoint {taken.savepoint_id} of deployment {deployment_id} is COMPLETED at {done.location}",
        "savepoint_id": taken.savepoint_id,
        "deployment_id": deployment_id,
        "savepoint_location": done.location,
    }


async def test_the_trigger_reports_a_failed_savepoint_an_unknown_one_and_a_timeout(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment
) -> None:
    deployment_id = add_deployment("stream", timeline=[["RUNNING", None]])
    vvp_emulator.state.fail_savepoints(deployment_id, reason="Declined", message="not ready")
    failed = await run_trigger(FlinkVVPHook().create_savepoint(deployment_id).savepoint_id)
    assert failed["status"] == "failure" and failed["message"].endswith("FAILED: Declined: not ready")
    unknown = await run_trigger("no-such-savepoint")
    assert unknown["status"] == "error" and "SavepointNotFound" in unknown["message"]
    slow = FlinkVVPHook().create_savepoint(deployment_id).savepoint_id
    timed_out = await run_trigger(slow, seconds=0.2)
    assert timed_out == {
        "status": "timeout",
        "message": f"Timed out waiting for savepoint {slow} to be COMPLETED; it was last seen STARTED",
        "execution_timeout": False,
        "savepoint_id": slow,
    }


def test_before_airflow_3_3_a_retry_takes_back_this_run_s_savepoint_and_a_first_try_takes_a_new_one(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("stream", timeline=[["RUNNING", None]])
    hook = FlinkVVPHook()
    earlier = hook.create_savepoint(deployment_id)
    operator = FlinkVVPCreateSavepointOperator(
        task_id="savepoint", deployment_id=deployment_id, poll_interval=0.05, timeout=10, retries=2
    )
    run = SimpleNamespace(start_date=datetime.now(UTC) - timedelta(minutes=1))

    def context(try_number: int) -> dict[str, Any]:
        made = make_context(try_number=try_number, max_tries=2)
        del made["task_state_store"]  # no store before 3.3
        return {**made, "dag_run": run}

    retried = context(2)
    assert operator.execute(retried) == earlier.savepoint_id
    assert retried["ti"].xcoms["savepoint_location"] == hook.get_savepoint(earlier.savepoint_id).location
    first = operator.execute(context(1))
    assert first != earlier.savepoint_id
    assert {s.savepoint_id for s in hook.list_savepoints(deployment_id)} == {earlier.savepoint_id, first}


def test_with_a_task_state_store_the_entry_is_written_before_the_create_and_deleted_on_success(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    deployment_id = add_deployment("stream", timeline=[["RUNNING", None]])
    other = FlinkVVPHook().create_savepoint(deployment_id)  # older, another task's
    operator = FlinkVVPCreateSavepointOperator(
        task_id="savepoint", deployment_id=deployment_id, poll_interval=0.05, timeout=10, retries=1
    )
    context = make_context(try_number=1, max_tries=1)
    store = context["task_state_store"]
    written: list[dict[str, Any]] = []
    store_set = store.set
    store.set = lambda key, value, **kwargs: (written.append(dict(value)), store_set(key, value, **kwargs))

    taken = operator.execute(context)

    assert written[0] == {"deployment_id": deployment_id, "savepoints_before": [other.savepoint_id], "series": 1}
    assert written[1] == {"savepoint_id": taken, "series": 1}
    assert CREATED_SAVEPOINT_STATE_KEY not in store  # the task succeeded: the entry has served


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "Pass exactly one of deployment_name"),
        ({"deployment_name": "a", "deployment_id": "b"}, "Pass exactly one of deployment_name"),
        ({"deployment_id": "d", "native_format": "yes"}, "native_format must be True, False or None, got 'yes'"),
        ({"deployment_id": "d", "timeout": 0}, "timeout must be a positive, finite duration"),
        ({"deployment_id": "d", "poll_interval": "5"}, "poll_interval must be seconds"),
    ],
)
def test_bad_arguments_are_refused_when_the_dag_is_parsed(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FlinkVVPCreateSavepointOperator(task_id="savepoint", **arguments)


def test_importing_the_savepoint_and_update_operators_leaves_the_hook_http_clients_and_triggers_unloaded() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import airflow_provider_flink_vvp.operators.savepoint, airflow_provider_flink_vvp.operators.deployment\n"
        "print([m for m in ('airflow_provider_flink_vvp.hooks.vvp', 'airflow_provider_flink_vvp.client', 'requests', "
        "'airflow_provider_flink_vvp.triggers.vvp', 'airflow_provider_flink_vvp.triggers.savepoint', "
        "'airflow_provider_flink_vvp.diagnostics', 'airflow_provider_flink_vvp.api.operations') if m in sys.modules])\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout  # noqa: S603
    assert loaded.strip() == "[]"
