"""FlinkVVPHook against the emulator over real HTTP: signatures, errors, faults and state, sync and async."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flink_vvp.api import (
    DeploymentNotFoundError,
    JobSummary,
    VVPApiError,
    VVPConnectionError,
    VVPOutcomeUnknownError,
)
from airflow_provider_flink_vvp.hooks import vvp as hook_module
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import EmulatorState, Fault, FaultKind, JobDurations, ManualClock, VVPEmulator
from airflow_provider_flink_vvp.testing.state import Page
from tests.conftest import fail_after

SEED = json.loads((Path(__file__).parent / "data" / "GetDeploymentsByName.response.json").read_text())["data"][0]
ACCESS_KEY_ID, SECRET = "hook-tests-key", "hook-tests-secret"
CONN_ID = "vvp_emulator"


@pytest.fixture
def emulator() -> Iterator[VVPEmulator]:
    state = EmulatorState(clock=ManualClock(), job_durations=JobDurations(starting=2, batch_running=10, cancelling=3))
    state.add_access_key(ACCESS_KEY_ID, SECRET)
    state.add_deployment(copy.deepcopy(SEED))
    with VVPEmulator(state) as running:
        yield running


def connect(monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator, **extra: Any) -> FlinkVVPHook:
    connection = {
        "conn_type": "flink_vvp",
        "host": emulator.url,
        "login": ACCESS_KEY_ID,
        "password": extra.pop("password", SECRET),
        "extra": {
            "workspace": SEED["workspace"],
            "namespace": SEED["namespace"],
            "retry_limit": 4,
            "retry_delay": 0.01,
            "timeout": 2,
            **extra,
        },
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))
    return FlinkVVPHook(CONN_ID)


def test_signed_requests_are_accepted_and_the_seed_comes_back_typed(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    hook = connect(monkeypatch, emulator)
    latest = hook.get_latest_deployment("deploymentName")
    assert latest.deployment_id == SEED["deploymentId"]
    assert latest.job_summary == JobSummary(starting=1, running=2, cancelling=0, cancelled=5, finished=4, failed=6)
    assert latest.raw["streamingResourceSetting"] == SEED["streamingResourceSetting"]
    trimmed = hook.get_latest_deployment("deploymentName", ignore_job_summary=True, ignore_resource_setting=True)
    assert trimmed.job_summary is None
    assert "streamingResourceSetting" not in trimmed.raw
    assert hook.test_connection()[0]


def test_names_with_slashes_spaces_and_dots_stay_one_segment(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    for index, name in enumerate(["a/b c", "../x", "名字?#"]):
        emulator.add_deployment({**SEED, "deploymentId": f"odd-{index}", "name": name})
    hook = connect(monkeypatch, emulator)
    for index, name in enumerate(["a/b c", "../x", "名字?#"]):
        assert [d.deployment_id for d in hook.get_deployments_by_name(name)] == [f"odd-{index}"]
    with pytest.raises(DeploymentNotFoundError, match="No deployment named 'a'"):
        hook.get_latest_deployment("a")


def test_newest_deployment_with_the_name_comes_first(monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator) -> None:
    emulator.add_deployment({**SEED, "deploymentId": "newer", "createdAt": "1800000000"})
    hook = connect(monkeypatch, emulator)
    assert [d.deployment_id for d in hook.get_deployments_by_name("deploymentName")] == ["newer", SEED["deploymentId"]]


def test_wrong_secret_is_rejected_with_its_code_and_not_retried(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    hook = connect(monkeypatch, emulator, password="not-the-secret")
    with pytest.raises(VVPApiError) as info:
        hook.get_latest_deployment("deploymentName")
    assert info.value.code == "SignatureDoesNotMatch"
    assert info.value.http_status == 400
    assert info.value.request_id
    assert "AccessKey Secret" in str(info.value)
    assert "not-the-secret" not in str(info.value)
    assert emulator.request_counts()["GetDeploymentsByName"] == 1
    ok, message = hook.test_connection()
    assert not ok
    assert message.startswith("SignatureDoesNotMatch:")


def test_unknown_namespace_is_a_business_error(monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator) -> None:
    hook = connect(monkeypatch, emulator)
    with pytest.raises(VVPApiError) as info:
        hook.get_deployments_by_name("deploymentName", namespace="nowhere")
    assert info.value.code == "NamespaceNotFound"
    assert not info.value.retryable


@pytest.mark.parametrize(
    "kind", [FaultKind.THROTTLE, FaultKind.UNAVAILABLE, FaultKind.INTERNAL_ERROR, FaultKind.HTML, FaultKind.DROP]
)
def test_transient_faults_are_retried_until_success(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator, kind: FaultKind
) -> None:
    hook = connect(monkeypatch, emulator)
    emulator.inject(Fault(kind, retry_after_ms=50), Fault(kind, retry_after_ms=50))
    assert hook.get_latest_deployment("deploymentName").deployment_id == SEED["deploymentId"]
    assert emulator.request_counts()["GetDeploymentsByName"] == 3


def test_faults_past_the_retry_limit_raise_the_last_error(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    hook = connect(monkeypatch, emulator, retry_limit=2)
    emulator.inject(*[Fault(FaultKind.THROTTLE, retry_after_ms=10)] * 2)
    with pytest.raises(VVPApiError, match=r"Throttling\.User"):
        hook.get_latest_deployment("deploymentName")
    emulator.inject(*[Fault(FaultKind.DROP)] * 2)
    with pytest.raises(VVPConnectionError, match=f"GetDeploymentsByName: .* {re.escape(emulator.url)}"):
        hook.get_latest_deployment("deploymentName")


def test_a_slow_answer_times_out(monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator) -> None:
    hook = connect(monkeypatch, emulator, timeout=0.2, retry_limit=1)
    emulator.inject(Fault(FaultKind.LATENCY, latency_ms=1500))
    with pytest.raises(VVPConnectionError, match=r"no answer within 0\.2 s"):
        hook.get_latest_deployment("deploymentName")


def test_job_state_advances_on_the_emulator_clock(monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator) -> None:
    hook = connect(monkeypatch, emulator)
    deployment_id = SEED["deploymentId"]
    job = hook.start_job(deployment_id, restore_strategy="NONE")
    assert job.status == "STARTING"
    assert hook.get_latest_deployment("deploymentName").job_summary.starting == 2  # type: ignore[union-attr]
    emulator.advance(3)
    assert hook.get_job(job.job_id).status == "RUNNING"
    assert hook.get_latest_deployment("deploymentName").job_summary.running == 3  # type: ignore[union-attr]
    assert hook.stop_job(job.job_id).status == "CANCELLING"
    emulator.advance(4)
    assert hook.get_job(job.job_id).status == "CANCELLED"
    assert [j.job_id for j in hook.list_jobs(deployment_id)] == [job.job_id]
    summary = hook.get_latest_deployment("deploymentName").job_summary
    assert summary is not None and (summary.running, summary.cancelled) == (2, 6)


def test_a_start_failing_with_a_5xx_is_checked_then_repeated_once(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator
) -> None:
    hook = connect(monkeypatch, emulator)
    emulator.inject(Fault(FaultKind.INTERNAL_ERROR, action="StartJobWithParams"))
    job = hook.start_job(SEED["deploymentId"])
    assert [j.job_id for j in hook.list_jobs(SEED["deploymentId"])] == [job.job_id]
    assert emulator.request_counts()["StartJobWithParams"] == 2  # failed before running, then started


async def test_async_path_against_the_emulator(monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator) -> None:
    hook = connect(monkeypatch, emulator)
    emulator.inject(Fault(FaultKind.THROTTLE, retry_after_ms=20))
    try:
        latest = await hook.aget_latest_deployment("deploymentName")
        assert latest.deployment_id == SEED["deploymentId"]
        client = await hook.aget_conn()
        assert client is await hook.aget_conn()
        job = hook.start_job(SEED["deploymentId"])
        assert (await hook.aget_job(job.job_id)).status == "STARTING"
        with pytest.raises(DeploymentNotFoundError):
            await hook.aget_latest_deployment("missing")
    finally:
        await hook.aclose()
    assert emulator.request_counts()["GetDeploymentsByName"] == 3


# The start's lost answer, whether it ran, how many confirming ListJobs fail (the hook makes 2 attempts a call).
START_LOSSES = [
    (FaultKind.DROP, False, 0),  # not run, confirmed not run: sent again
    (FaultKind.DROP, False, 1),  # the confirmation's own retry gets through
    (FaultKind.DROP, False, 2),  # the confirmation fails: not sent again
    (FaultKind.RESET, True, 0),  # ran, and the confirmation finds its job
    (FaultKind.RESET, True, 1),
    (FaultKind.RESET, True, 2),  # ran, and cannot be confirmed: not sent again
    (FaultKind.SHORT_BODY, True, 2),
    (FaultKind.INTERNAL_ERROR, False, 2),  # a 5xx may have run: the same path
    (FaultKind.DRIP, True, 2),
]


@pytest.mark.parametrize(("loss", "ran", "listing_failures"), START_LOSSES)
def test_a_start_is_never_sent_twice_when_it_may_have_run(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator, loss: FaultKind, ran: bool, listing_failures: int
) -> None:
    hook = connect(monkeypatch, emulator, retry_limit=2, timeout=0.5)
    deployment_id = SEED["deploymentId"]
    emulator.inject(Fault(loss, action="StartJobWithParams", latency_ms=200))
    fail_after(monkeypatch, emulator, "StartJobWithParams", "ListJobs", listing_failures)
    confirmed = listing_failures < 2
    if confirmed:
        job = hook.start_job(deployment_id)
        assert [j.job_id for j in hook.list_jobs(deployment_id)] == [job.job_id]
    else:
        with pytest.raises(VVPOutcomeUnknownError) as info:
            hook.start_job(deployment_id)
        assert info.value.retryable and info.value.maybe_ran
        assert "StartJobWithParams may have run" in str(info.value)
        assert "It is not sent again: look for its effect" in str(info.value)
        assert len(hook.list_jobs(deployment_id)) == (1 if ran else 0)
    # Sent again only when the confirmation showed it had not run.
    assert emulator.request_counts()["StartJobWithParams"] == (2 if confirmed and not ran else 1)


# The stop's lost answer, whether it ran, how many confirming GetJob fail.
STOP_LOSSES = [
    (FaultKind.DROP, False, 0),
    (FaultKind.DROP, False, 2),
    (FaultKind.RESET, True, 0),
    (FaultKind.RESET, True, 2),
    (FaultKind.BAD_GZIP, True, 2),
    (FaultKind.UNAVAILABLE, False, 1),
]


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize(("loss", "ran", "reading_failures"), STOP_LOSSES)
async def test_a_stop_is_never_sent_twice_when_it_may_have_run(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator, path: str, loss: FaultKind, ran: bool, reading_failures: int
) -> None:
    hook = connect(monkeypatch, emulator, retry_limit=2)
    job = hook.start_job(SEED["deploymentId"])
    emulator.advance(3)
    emulator.inject(Fault(loss, action="StopJob"))
    fail_after(monkeypatch, emulator, "StopJob", "GetJob", reading_failures)
    confirmed = reading_failures < 2
    try:
        if confirmed:
            stopped = hook.stop_job(job.job_id) if path == "sync" else await hook.astop_job(job.job_id)
            assert stopped.status == "CANCELLING"
        else:
            with pytest.raises(VVPOutcomeUnknownError, match="StopJob may have run"):
                hook.stop_job(job.job_id) if path == "sync" else await hook.astop_job(job.job_id)
    finally:
        await hook.aclose()
    assert hook.get_job(job.job_id).status == ("CANCELLING" if ran or confirmed else "RUNNING")
    assert emulator.request_counts()["StopJob"] == (2 if confirmed and not ran else 1)


# How a ListJobs may misreport, given the true page of 3 jobs, its index, and all the jobs.
LIES: dict[str, Callable[[Page, int, list[dict[str, Any]]], Page]] = {
    "total-too-large": lambda page, index, every: replace(page, total=10**9),
    "same-page-always": lambda page, index, every: replace(page, items=every[:3], total=10**9),
    # Each page starts one job before where the last one ended.
    "overlapping-pages": lambda page, index, every: replace(page, items=every[max(0, (index - 1) * 3 - 1) : index * 3]),
}


def jobs_listed(path: str, hook: FlinkVVPHook, deployment_id: str) -> list[Any]:
    """The deployment's jobs through the hook's sync or async ListJobs."""
    if path == "sync":
        return hook.list_jobs(deployment_id)

    async def listed() -> list[Any]:
        try:
            return await hook.alist_jobs(deployment_id)
        finally:
            await hook.aclose()

    return asyncio.run(listed())


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize(
    ("lie", "listed"),
    [("total-too-large", 7), ("same-page-always", 3), ("overlapping-pages", 7)],
)
def test_job_pages_end_when_nothing_new_comes_whatever_total_size_says(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator, lie: str, listed: int, path: str
) -> None:
    deployment_id = SEED["deploymentId"]
    for index in range(7):
        emulator.add_job(
            {
                "jobId": f"job-{index}",
                "deploymentId": deployment_id,
                "startTime": 1000 + index,
                "status": {"currentJobStatus": "FINISHED"},
            }
        )
    state = emulator.state
    true_list = type(state).list_jobs
    every = true_list(state, SEED["workspace"], SEED["namespace"], deployment_id, page_index=1, page_size=100).items

    def list_jobs(*args: Any, page_index: int, page_size: int, **kwargs: Any) -> Page:
        page = true_list(state, *args, page_index=page_index, page_size=3, **kwargs)
        return LIES[lie](page, page_index, every)

    monkeypatch.setattr(state, "list_jobs", list_jobs)
    hook = connect(monkeypatch, emulator)
    jobs = jobs_listed(path, hook, deployment_id)
    assert len(jobs) == listed == len({job.job_id for job in jobs})
    assert emulator.request_counts()["ListJobs"] <= listed // 3 + 2


@pytest.mark.parametrize("path", ["sync", "async"])
def test_job_pages_are_bounded_when_new_jobs_never_end(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator, path: str
) -> None:
    counter = iter(range(10**6))

    def endless(*args: Any, page_index: int, page_size: int, **kwargs: Any) -> Page:
        items = [
            {
                "jobId": f"endless-{next(counter)}",
                "deploymentId": SEED["deploymentId"],
                "status": {"currentJobStatus": "RUNNING"},
            }
            for _ in range(2)
        ]
        return Page(items=items, index=page_index, size=page_size, total=10**9)

    monkeypatch.setattr(emulator.state, "list_jobs", endless)
    monkeypatch.setattr(hook_module, "MAX_JOB_PAGES", 5)
    hook = connect(monkeypatch, emulator)
    with pytest.raises(VVPApiError, match=r"ListJobs of deployment .* still brought new jobs after 5 pages") as info:
        jobs_listed(path, hook, SEED["deploymentId"])
    # Retryable like any answer that cannot be read: the task's retry reads the jobs again.
    assert info.value.code == "InvalidResponse" and info.value.retryable
    assert emulator.request_counts()["ListJobs"] == 5
