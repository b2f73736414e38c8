"""Savepoints and a failed job's diagnostics through FlinkVVPHook, against the emulator over real HTTP."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from airflow_provider_flink_vvp.api import VVPApiError, VVPOutcomeUnknownError
from airflow_provider_flink_vvp.hooks import vvp as hook_module
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import EmulatorState, Fault, FaultKind, JobDurations, ManualClock, VVPEmulator
from airflow_provider_flink_vvp.testing.state import Page
from tests.conftest import fail_after
from tests.test_hook_emulator import ACCESS_KEY_ID, SECRET, SEED, connect

DEPLOYMENT_ID = SEED["deploymentId"]


@pytest.fixture
def emulator() -> Iterator[VVPEmulator]:
    """The seed deployment with a RUNNING job, on a manual clock: a savepoint takes 5 s."""
    durations = JobDurations(starting=2, batch_running=10, cancelling=3, savepoint=5)
    state = EmulatorState(clock=ManualClock(), job_durations=durations)
    state.add_access_key(ACCESS_KEY_ID, SECRET)
    state.add_deployment(copy.deepcopy(SEED))
    state.add_job(
        {"jobId": "running-job", "deploymentId": DEPLOYMENT_ID, "startTime": 1000}, timeline=[["RUNNING", None]]
    )
    with VVPEmulator(state) as running:
        yield running


def test_a_savepoint_is_started_then_completed_on_the_emulator_clock_and_can_be_listed_and_deleted(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    hook = connect(monkeypatch, emulator)
    created = hook.create_savepoint(DEPLOYMENT_ID, native_format=True, description="nightly")
    assert (created.state, created.job_id, created.location, created.is_terminal) == (
        "STARTED",
        "running-job",
        None,
        False,
    )
    assert (created.native_format, created.description, created.origin) == (True, "nightly", "USER_REQUEST")
    emulator.advance(5)
    done = hook.get_savepoint(created.savepoint_id)
    assert done.state == "COMPLETED" and done.is_terminal
    assert done.location and created.savepoint_id in done.location
    assert [s.savepoint_id for s in hook.list_savepoints(DEPLOYMENT_ID)] == [created.savepoint_id]
    assert hook.list_savepoints(DEPLOYMENT_ID, job_id="another-job") == []
    hook.delete_savepoint(created.savepoint_id)
    assert hook.list_savepoints(DEPLOYMENT_ID) == []
    with pytest.raises(VVPApiError, match="SavepointNotFound") as info:
        hook.get_savepoint(created.savepoint_id)
    assert info.value.http_status == 404 and not info.value.retryable


def test_an_injected_failure_ends_the_savepoint_failed_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    emulator.state.fail_savepoints(DEPLOYMENT_ID, reason="CheckpointDeclined", message="task not ready")
    hook = connect(monkeypatch, emulator)
    created = hook.create_savepoint(DEPLOYMENT_ID)
    emulator.advance(5)
    failed = hook.get_savepoint(created.savepoint_id)
    assert failed.state == "FAILED" and failed.location is None
    assert failed.failure is not None
    assert (failed.failure.reason, failed.failure.message) == ("CheckpointDeclined", "task not ready")


def test_a_savepoint_of_a_deployment_without_a_running_job_is_refused_and_not_retried(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    emulator.state.set_job_timeline("running-job", [["CANCELLED", None]])
    hook = connect(monkeypatch, emulator)
    with pytest.raises(VVPApiError, match="DeploymentNotRunning") as info:
        hook.create_savepoint(DEPLOYMENT_ID)
    assert not info.value.retryable
    assert emulator.request_counts()["CreateSavepoint"] == 1


def test_a_stop_with_savepoint_leaves_a_savepoint_of_that_origin(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    hook = connect(monkeypatch, emulator)
    hook.stop_job("running-job", stop_strategy="STOP_WITH_SAVEPOINT")
    [savepoint] = hook.list_savepoints(DEPLOYMENT_ID)
    assert (savepoint.origin, savepoint.job_id) == ("STOP_WITH_SAVEPOINT", "running-job")


async def test_the_async_read_follows_the_savepoint(monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator) -> None:
    hook = connect(monkeypatch, emulator)
    created = hook.create_savepoint(DEPLOYMENT_ID)
    try:
        assert (await hook.aget_savepoint(created.savepoint_id)).state == "STARTED"
        emulator.advance(5)
        assert (await hook.aget_savepoint(created.savepoint_id)).state == "COMPLETED"
    finally:
        await hook.aclose()


# The create's lost answer, whether it ran, how many confirming ListSavepoints fail.
CREATE_LOSSES = [
    (FaultKind.DROP, False, 0),
    (FaultKind.DROP, False, 2),
    (FaultKind.RESET, True, 0),
    (FaultKind.RESET, True, 1),
    (FaultKind.RESET, True, 2),  # ran, and cannot be confirmed: not sent again
    (FaultKind.SHORT_BODY, True, 2),
    (FaultKind.BAD_GZIP, True, 0),
    (FaultKind.INTERNAL_ERROR, False, 0),  # a 5xx may have run: the same path
    (FaultKind.DRIP, True, 0),  # the answer drips past the timeout
]


@pytest.mark.parametrize(("loss", "ran", "listing_failures"), CREATE_LOSSES)
def test_a_savepoint_is_never_created_twice_when_the_answer_is_lost(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator, loss: FaultKind, ran: bool, listing_failures: int
) -> None:
    hook = connect(monkeypatch, emulator, retry_limit=2, timeout=0.5)
    emulator.inject(Fault(loss, action="CreateSavepoint", latency_ms=800))
    fail_after(monkeypatch, emulator, "CreateSavepoint", "ListSavepoints", listing_failures)
    confirmed = listing_failures < 2
    if confirmed:
        savepoint = hook.create_savepoint(DEPLOYMENT_ID, savepoints_before=[])
        assert [s.savepoint_id for s in hook.list_savepoints(DEPLOYMENT_ID)] == [savepoint.savepoint_id]
    else:
        with pytest.raises(VVPOutcomeUnknownError, match="CreateSavepoint may have run") as info:
            hook.create_savepoint(DEPLOYMENT_ID, savepoints_before=[])
        assert info.value.retryable
        assert len(hook.list_savepoints(DEPLOYMENT_ID)) == (1 if ran else 0)
    # Sent again only when the listing showed it had not run.
    assert emulator.request_counts()["CreateSavepoint"] == (2 if confirmed and not ran else 1)


def test_a_create_that_reads_the_savepoints_before_it_tells_its_own_from_older_ones(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    hook = connect(monkeypatch, emulator, retry_limit=2)
    older = hook.create_savepoint(DEPLOYMENT_ID)
    emulator.inject(Fault(FaultKind.RESET, action="CreateSavepoint"))
    mine = hook.create_savepoint(DEPLOYMENT_ID)  # savepoints_before read by the hook itself
    assert mine.savepoint_id != older.savepoint_id
    assert emulator.request_counts()["CreateSavepoint"] == 2


# How a ListSavepoints may misreport, given the true page of 3, its index, and all the savepoints.
LIES: dict[str, Callable[[Page, int, list[dict[str, Any]]], Page]] = {
    "total-too-large": lambda page, index, every: replace(page, total=10**9),
    "same-page-always": lambda page, index, every: replace(page, items=every[:3], total=10**9),
    "overlapping-pages": lambda page, index, every: replace(page, items=every[max(0, (index - 1) * 3 - 1) : index * 3]),
}


@pytest.mark.parametrize(("lie", "listed"), [("total-too-large", 7), ("same-page-always", 3), ("overlapping-pages", 7)])
def test_savepoint_pages_end_when_nothing_new_comes_whatever_total_size_says(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator, lie: str, listed: int
) -> None:
    hook = connect(monkeypatch, emulator)
    for _ in range(7):
        hook.create_savepoint(DEPLOYMENT_ID, savepoints_before=[])
    state = emulator.state
    true_list = type(state).list_savepoints
    every = true_list(state, SEED["workspace"], SEED["namespace"], DEPLOYMENT_ID, page_index=1, page_size=100).items

    def list_savepoints(*args: Any, page_index: int, page_size: int, **kwargs: Any) -> Page:
        page = true_list(state, *args, page_index=page_index, page_size=3, **kwargs)
        return LIES[lie](page, page_index, every)

    monkeypatch.setattr(state, "list_savepoints", list_savepoints)
    before = emulator.request_counts().get("ListSavepoints", 0)
    savepoints = hook.list_savepoints(DEPLOYMENT_ID)
    assert len(savepoints) == listed == len({s.savepoint_id for s in savepoints})
    assert emulator.request_counts()["ListSavepoints"] - before <= listed // 3 + 2


def test_savepoint_pages_are_bounded_when_new_savepoints_never_end(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    counter = iter(range(10**6))

    def endless(*args: Any, page_index: int, page_size: int, **kwargs: Any) -> Page:
        items = [
            {"savepointId": f"endless-{next(counter)}", "deploymentId": DEPLOYMENT_ID, "status": {"state": "COMPLETED"}}
            for _ in range(2)
        ]
        return Page(items=items, index=page_index, size=page_size, total=10**9)

    monkeypatch.setattr(emulator.state, "list_savepoints", endless)
    monkeypatch.setattr(hook_module, "MAX_JOB_PAGES", 5)
    hook = connect(monkeypatch, emulator)
    with pytest.raises(VVPApiError, match=r"ListSavepoints of deployment .* new savepoints after 5 pages") as info:
        hook.list_savepoints(DEPLOYMENT_ID)
    assert info.value.code == "InvalidResponse" and info.value.retryable
    assert emulator.request_counts()["ListSavepoints"] == 5


def test_a_failed_job_has_a_diagnosis_a_start_log_ending_with_its_failure_and_events(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    hook = connect(monkeypatch, emulator)
    emulator.state.set_job_timeline("running-job", [["FAILED", None]])
    diagnosis = hook.get_job_diagnosis(DEPLOYMENT_ID, "running-job")
    assert (diagnosis.risk_level, diagnosis.health_score) == ("HIGH", 20)
    [symptom] = diagnosis.symptoms
    assert symptom.group == "runtime" and "EmulatedFailure" in (symptom.description or "")
    log = hook.get_latest_job_start_log(DEPLOYMENT_ID)
    assert log.splitlines()[-1] == "ERROR EmulatedFailure: the emulator's timeline failed this job"
    events = hook.get_events(DEPLOYMENT_ID).items
    assert [event.name for event in events] == ["JOB_STARTED", "JOB_FAILED"]
    assert all(event.job_id == "running-job" for event in events)


def test_a_healthy_job_has_a_clean_diagnosis_and_an_unknown_job_none(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    hook = connect(monkeypatch, emulator)
    assert hook.get_job_diagnosis(DEPLOYMENT_ID, "running-job").symptoms == ()
    with pytest.raises(VVPApiError, match="JobNotFound"):
        hook.get_job_diagnosis(DEPLOYMENT_ID, "no-such-job")


def test_async_hook_is_not_needed_for_the_diagnostics() -> None:
    # The diagnostics are read in the worker, even for a deferred task: the hook has no async twins of them.
    assert not any(hasattr(FlinkVVPHook, f"a{name}") for name in ("get_job_diagnosis", "get_latest_job_start_log"))
    assert asyncio.iscoroutinefunction(FlinkVVPHook.aget_savepoint)
