"""Upgrading a running job with dag.test() against the emulator, in the worker and deferred, with each savepoint
strategy: every test counts the savepoints, the stops, the updates and the jobs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from airflow_provider_flink_vvp.deployment_specs import spec_of
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.operators.upgrade import SAVEPOINT_STRATEGIES
from airflow_provider_flink_vvp.testing import VVPEmulator
from airflow_provider_flink_vvp.triggers.stability import FlinkVVPJobStabilityTrigger
from airflow_provider_flink_vvp.triggers.vvp import _PollingTrigger
from tests.conftest import VVP_WORKSPACE, fail_after
from tests.dag_tests.conftest import EXECUTION_TIMEOUT_SIGNAL_MAY_LAND_IN_A_CALLBACK, RunDag

WAIT_MODES = ("poke", "deferrable")
OLD_SQL = "INSERT INTO sink SELECT * FROM old_source"
NEW_SQL = "INSERT INTO sink SELECT * FROM source"
ORIGINS = {"stop_with_savepoint": "STOP_WITH_SAVEPOINT", "savepoint_then_stop": "USER_REQUEST"}
COUNTED = ("StopJob", "UpdateDeployment", "StartJobWithParams", "CreateSavepoint")
every_way = pytest.mark.parametrize(("strategy", "mode"), [(s, m) for s in SAVEPOINT_STRATEGIES for m in WAIT_MODES])


def deployment_with(emulator: VVPEmulator, namespace: str, *, sql: str = OLD_SQL, parallelism: int = 2) -> str:
    """A SQL deployment named orders with a RUNNING job."""
    deployment_id = f"orders-{namespace}"
    emulator.add_deployment(
        {
            "deploymentId": deployment_id,
            "name": "orders",
            "namespace": namespace,
            "workspace": VVP_WORKSPACE,
            "executionMode": "STREAMING",
            "createdAt": "1700000000",
            "engineVersion": "vvr-8.0.8-flink-1.17",
            "artifact": {"kind": "SQLSCRIPT", "sqlArtifact": {"sqlScript": sql}},
            "streamingResourceSetting": {
                "resourceSettingMode": "BASIC",
                "basicResourceSetting": {"parallelism": parallelism},
            },
        }
    )
    # What it runs, as the service's jobs tell it: what a retry before Airflow 3.3 rolls back to.
    add_running_job_of_its_spec(emulator, namespace, deployment_id)
    return deployment_id


def add_running_job_of_its_spec(emulator: VVPEmulator, namespace: str, deployment_id: str) -> None:
    """A RUNNING job of the deployment, running the deployment's artifact, resources and engine as they are."""
    ran = emulator.state.deployment(VVP_WORKSPACE, namespace, deployment_id)
    emulator.add_job(
        {
            "jobId": uuid.uuid4().hex,
            "deploymentId": deployment_id,
            "startTime": 1_700_000_060_000,
            **{key: ran[key] for key in ("artifact", "streamingResourceSetting", "engineVersion")},
        },
        timeline=[["RUNNING", None]],
    )


@pytest.fixture(params=["store", "no_store"])
def task_state(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """With the task state store (Airflow 3.3+), and without it, as before Airflow 3.3."""
    if request.param == "no_store":
        from airflow_provider_flink_vvp.tasks import TaskState

        keep = TaskState.__init__

        def without_store(self: TaskState, *args: Any, **kwargs: Any) -> None:
            keep(self, *args, **kwargs)
            self._store = None

        monkeypatch.setattr(TaskState, "__init__", without_store)
    return str(request.param)


@pytest.fixture
def deployment(vvp_emulator: VVPEmulator, vvp_namespace: str) -> str:
    return deployment_with(vvp_emulator, vvp_namespace)


def spec(deployment_id: str) -> dict[str, Any]:
    return {key: value for key, value in spec_of(FlinkVVPHook().get_deployment(deployment_id).raw).items()}


def without_modified(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if key != "modifiedAt"}


class Counts:
    """The requests of :data:`COUNTED` sent from now on."""

    def __init__(self, emulator: VVPEmulator) -> None:
        self.emulator = emulator
        self.before = self._now()

    def _now(self) -> dict[str, int]:
        counts = self.emulator.request_counts()
        return {action: counts.get(action, 0) for action in COUNTED}

    def since(self) -> dict[str, int]:
        return {action: count - self.before[action] for action, count in self._now().items()}


def expected_requests(strategy: str, *, starts: int = 1, updates: int = 1) -> dict[str, int]:
    """One savepoint, and as many stops as jobs stopped: the old one, and the new one when it is rolled back."""
    return {
        "StopJob": starts,
        "UpdateDeployment": updates,
        "StartJobWithParams": starts,
        "CreateSavepoint": int(strategy == "savepoint_then_stop"),
    }


@dataclass(frozen=True)
class TriggerRun:
    """A deferred wait as the triggerer ran it: the trigger's class, its kwargs and its event's payload."""

    name: str
    kwargs: dict[str, Any]
    payload: dict[str, Any]


@pytest.fixture
def trigger_runs(monkeypatch: pytest.MonkeyPatch) -> list[TriggerRun]:
    """Every deferred wait of the run, in order (whichever runner dag.test() uses to run triggers)."""
    runs: list[TriggerRun] = []
    run = _PollingTrigger.run

    async def recording(self: _PollingTrigger) -> AsyncIterator[TriggerEvent]:
        async for event in run(self):
            runs.append(TriggerRun(type(self).__name__, self.serialize()[1], dict(event.payload)))
            yield event

    monkeypatch.setattr(_PollingTrigger, "run", recording)
    return runs


def runs_of(runs: list[TriggerRun], trigger: type[_PollingTrigger]) -> list[TriggerRun]:
    return [run for run in runs if run.name == trigger.__name__]


def jobs_oldest_first(deployment_id: str) -> list[Any]:
    return sorted(FlinkVVPHook().list_jobs(deployment_id), key=lambda job: job.start_time)


@every_way
def test_a_clean_upgrade_stops_with_one_savepoint_updates_and_starts_one_job_from_it(
    strategy: str,
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    deployment: str,
    trigger_runs: list[TriggerRun],
) -> None:
    before = spec(deployment)
    counts = Counts(vvp_emulator)

    result = run_dag(f"flink_vvp_upgrade_{strategy}_{mode}")

    assert result.state == "success", result.output
    [savepoint] = FlinkVVPHook().list_savepoints(deployment)
    assert (savepoint.state, savepoint.origin) == ("COMPLETED", ORIGINS[strategy])
    old, new = jobs_oldest_first(deployment)
    assert (old.status, new.status) == ("CANCELLED", "RUNNING")
    assert savepoint.job_id == old.job_id
    assert new.raw["restoreStrategy"] == {
        "kind": "FROM_SAVEPOINT",
        "savepointId": savepoint.savepoint_id,
        "allowNonRestoredState": True,
    }
    assert new.raw["artifact"]["sqlArtifact"]["sqlScript"] == NEW_SQL
    assert spec(deployment)["streamingResourceSetting"]["basicResourceSetting"]["parallelism"] == 4
    assert counts.since() == expected_requests(strategy)
    assert result.xcom("upgrade") == result.xcom("upgrade", "job_id") == new.job_id
    assert result.xcom("upgrade", "savepoint_id") == savepoint.savepoint_id
    assert result.xcom("upgrade", "previous_spec") == before
    assert f"Upgraded deployment {deployment}: job {new.job_id} runs the new spec from savepoint" in result.output
    # Deferred, every wait is the triggerer's, the stable_for wait too: from the first RUNNING look the task made.
    if mode == "deferrable":
        [stable_wait] = runs_of(trigger_runs, FlinkVVPJobStabilityTrigger)
        assert stable_wait.payload["stability"] == "stable" and stable_wait.payload["job_id"] == new.job_id
        assert (stable_wait.kwargs["restarts"], stable_wait.kwargs["stable_for"]) == (0, 1.5)
        assert stable_wait.kwargs["running_since"] <= stable_wait.kwargs["deferred_at"]
    else:
        assert trigger_runs == []


@every_way
def test_a_new_version_that_crash_loops_is_rolled_back_from_the_same_savepoint_and_the_task_fails_saying_so(
    strategy: str,
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    deployment: str,
    after_start: Any,
    task_state: str,
    trigger_runs: list[TriggerRun],
) -> None:
    before = spec(deployment)
    started: list[str] = []

    def crash_loop_the_first(job_id: str) -> None:
        if not started:
            vvp_emulator.state.set_job_restarts(job_id, every=0.3)
        started.append(job_id)

    after_start(crash_loop_the_first)
    counts = Counts(vvp_emulator)

    result = run_dag(f"flink_vvp_upgrade_{strategy}_{mode}_retry")

    # Failed without its retry: running the new version again would fail again.
    assert result.task_state("upgrade") == "failed" and result.tries_of("upgrade") == 1
    assert without_modified(spec(deployment)) == without_modified(before)
    [savepoint] = FlinkVVPHook().list_savepoints(deployment)
    old, new, rollback = jobs_oldest_first(deployment)
    assert [new.job_id, rollback.job_id] == started
    assert (old.status, new.status, rollback.status) == ("CANCELLED", "CANCELLED", "RUNNING")
    assert rollback.raw["restoreStrategy"]["savepointId"] == new.raw["restoreStrategy"]["savepointId"]
    assert rollback.raw["restoreStrategy"]["savepointId"] == savepoint.savepoint_id
    assert rollback.raw["artifact"]["sqlArtifact"]["sqlScript"] == OLD_SQL
    assert counts.since() == expected_requests(strategy, starts=2, updates=2)
    assert (
        f"Upgrade of deployment {deployment} failed: job {new.job_id} restarted" in result.output
        and f"Rolled back to the previous spec from savepoint {savepoint.savepoint_id}: "
        f"job {rollback.job_id} is RUNNING"
        in result.output
    )
    if mode == "deferrable":
        [stable_wait] = runs_of(trigger_runs, FlinkVVPJobStabilityTrigger)
        restarts = stable_wait.payload["restarts_seen"] - stable_wait.payload["restarts"]
        assert (stable_wait.payload["stability"], stable_wait.payload["status"]) == ("restarted", "failure")
        assert restarts >= 1 and stable_wait.payload["message"].startswith(
            f"job {new.job_id} restarted {restarts} time(s) within 1.5 s of running"
        )
        assert f"Upgrade of deployment {deployment} failed: {stable_wait.payload['message']}. Rolled back" in (
            result.output
        )


@every_way
def test_a_retry_after_a_crash_between_the_stop_and_the_start_stops_once_and_starts_one_job(
    strategy: str,
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    deployment: str,
    monkeypatch: pytest.MonkeyPatch,
    task_state: str,
) -> None:
    # The first try's first look at the stopped job after the stop gets no answer: the try fails there.
    fail_after(monkeypatch, vvp_emulator, "StopJob", then="GetJob", failures=1)
    counts = Counts(vvp_emulator)

    result = run_dag(f"flink_vvp_upgrade_{strategy}_{mode}_retry")

    assert result.task_state("upgrade") == "success" and result.tries_of("upgrade") == 2, result.output
    [savepoint] = FlinkVVPHook().list_savepoints(deployment)
    old, new = jobs_oldest_first(deployment)
    assert (old.status, new.status) == ("CANCELLED", "RUNNING")
    assert new.raw["restoreStrategy"]["savepointId"] == savepoint.savepoint_id
    assert counts.since() == expected_requests(strategy)
    assert result.xcom("upgrade") == new.job_id


@every_way
def test_a_savepoint_that_fails_fails_the_task_before_the_deployment_is_touched(
    strategy: str, mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, deployment: str, task_state: str
) -> None:
    before = spec(deployment)
    vvp_emulator.state.fail_savepoints(deployment, reason="CheckpointExpired", message="took longer than 10 min")
    counts = Counts(vvp_emulator)

    result = run_dag(f"flink_vvp_upgrade_{strategy}_{mode}")

    assert result.task_state("upgrade") == "failed"
    [savepoint] = FlinkVVPHook().list_savepoints(deployment)
    assert f"Savepoint {savepoint.savepoint_id} of deployment {deployment} FAILED: CheckpointExpired" in result.output
    assert spec(deployment) == before
    assert counts.since()["UpdateDeployment"] == counts.since()["StartJobWithParams"] == 0
    assert len(FlinkVVPHook().list_jobs(deployment)) == 1


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_an_upgrade_that_changes_nothing_does_nothing_and_says_so(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, vvp_namespace: str
) -> None:
    deployment = deployment_with(vvp_emulator, vvp_namespace, sql=NEW_SQL, parallelism=4)
    [running] = FlinkVVPHook().list_jobs(deployment)
    counts = Counts(vvp_emulator)

    result = run_dag(f"flink_vvp_upgrade_stop_with_savepoint_{mode}")

    assert result.state == "success"
    assert f"Deployment {deployment} already has this spec: nothing to upgrade" in result.output
    assert counts.since() == dict.fromkeys(COUNTED, 0)
    assert FlinkVVPHook().list_savepoints(deployment) == []
    assert [(job.job_id, job.status) for job in FlinkVVPHook().list_jobs(deployment)] == [(running.job_id, "RUNNING")]
    assert result.xcom("upgrade") is None


def test_the_example_dag_upgrades_the_deployment_named_in_its_params(
    run_dag: RunDag, vvp_emulator: VVPEmulator, deployment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow import settings

    from airflow_provider_flink_vvp.operators.upgrade import FlinkVVPUpgradeJobOperator

    def task_policy(task: object) -> None:  # poll fast and watch briefly, as a cluster policy would
        if isinstance(task, FlinkVVPUpgradeJobOperator):
            task.poll_interval, task.stable_for = 0.2, 1.0

    monkeypatch.setattr(settings, "task_policy", task_policy)

    result = run_dag("example_flink_vvp_upgrade", deployment_name="orders", sql=NEW_SQL)

    assert result.state == "success", result.output
    [savepoint] = FlinkVVPHook().list_savepoints(deployment)
    _, new = jobs_oldest_first(deployment)
    assert new.raw["artifact"]["sqlArtifact"]["sqlScript"] == NEW_SQL and new.status == "RUNNING"
    assert (
        result.xcom("record") == new.job_id and result.xcom("weekly_upgrade", "savepoint_id") == savepoint.savepoint_id
    )


FIRST_FAILURES = {
    "fails while starting": [["STARTING", 0.3], ["FAILED", None]],
    "fails while running": [["STARTING", 0.3], ["RUNNING", 1.0], ["FAILED", None]],
}


def fail_the_new_version_then_roll_back_slowly(
    emulator: VVPEmulator, after_start: Any, timeline: list[list[Any]]
) -> list[str]:
    """The first job started follows ``timeline``; the next (the rollback's) starts slowly enough that the task
    sees it STARTING, however loaded the machine. Returns the IDs of the jobs started, as they start."""
    started: list[str] = []

    def fail_the_first(job_id: str) -> None:
        emulator.state.set_job_timeline(job_id, timeline if not started else [["STARTING", 2.0], ["RUNNING", None]])
        started.append(job_id)

    after_start(fail_the_first)
    return started


@pytest.mark.parametrize("mode", WAIT_MODES)
@pytest.mark.parametrize("first_failure", FIRST_FAILURES)
def test_the_rollback_defers_its_waits_and_names_the_first_failure_with_or_without_a_task_state_store(
    first_failure: str,
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    deployment: str,
    after_start: Any,
    task_state: str,
    trigger_runs: list[TriggerRun],
) -> None:
    started = fail_the_new_version_then_roll_back_slowly(vvp_emulator, after_start, FIRST_FAILURES[first_failure])
    counts = Counts(vvp_emulator)
    diagnoses = vvp_emulator.request_counts().get("GetJobDiagnosis", 0)

    result = run_dag("flink_vvp_upgrade_stop_with_savepoint_" + mode)

    assert result.task_state("upgrade") == "failed"
    [savepoint] = FlinkVVPHook().list_savepoints(deployment)
    _, new, rollback = jobs_oldest_first(deployment)
    assert (new.status, rollback.status) == ("FAILED", "RUNNING") and [new.job_id, rollback.job_id] == started
    # One stop with savepoint, none of the FAILED job.
    assert counts.since() == {**expected_requests("stop_with_savepoint", starts=2, updates=2), "StopJob": 1}
    failure = f"job {new.job_id} ended FAILED: EmulatedFailure: the emulator's timeline failed this job"
    assert (
        f"Upgrade of deployment {deployment} failed: {failure}. Rolled back to the previous spec from savepoint "
        f"{savepoint.savepoint_id}: job {rollback.job_id} is RUNNING"
    ) in result.output
    assert "did not become stable" not in result.output
    # What the service tells of the failure is in the log, read once, before the rollback.
    assert f"Diagnosis of job {new.job_id} of deployment {deployment}: risk HIGH" in result.output
    assert vvp_emulator.request_counts().get("GetJobDiagnosis", 0) - diagnoses == 1
    if mode == "deferrable":
        # The rollback's wait for its job to run is the triggerer's, on every Airflow version: the deferral
        # carries why the new version failed, and its event brings it back.
        rollback_waits = [run for run in trigger_runs if run.kwargs.get("job_id") == rollback.job_id]
        assert rollback_waits and all(run.payload["echo"] == {"failure": failure} for run in rollback_waits)
        # A job that fails while running ends the stable_for wait (unless it failed before the task looked).
        stable_waits = [run.payload["stability"] for run in runs_of(trigger_runs, FlinkVVPJobStabilityTrigger)]
        assert stable_waits in ([["ended"], []] if first_failure == "fails while running" else [[]])


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_retry_after_a_crash_mid_rollback_finishes_it_and_names_how_the_new_version_ended(
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    deployment: str,
    after_start: Any,
    task_state: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = fail_the_new_version_then_roll_back_slowly(
        vvp_emulator, after_start, FIRST_FAILURES["fails while starting"]
    )
    # The first try's first look at the rollback's job gets no answer: the try fails there.
    fail_after(monkeypatch, vvp_emulator, "StartJobWithParams", then="GetJob", failures=1, nth=2)
    counts = Counts(vvp_emulator)

    result = run_dag(f"flink_vvp_upgrade_stop_with_savepoint_{mode}_retry")

    assert result.task_state("upgrade") == "failed" and result.tries_of("upgrade") == 2, result.output
    [savepoint] = FlinkVVPHook().list_savepoints(deployment)
    _, new, rollback = jobs_oldest_first(deployment)
    assert [new.job_id, rollback.job_id] == started and (new.status, rollback.status) == ("FAILED", "RUNNING")
    # One stop with savepoint, none of the FAILED job; one rollback start, never a second.
    assert counts.since() == {**expected_requests("stop_with_savepoint", starts=2, updates=2), "StopJob": 1}
    # Without the store (before Airflow 3.3) the retry reads why from the job itself.
    assert (
        f"ended FAILED: EmulatedFailure: the emulator's timeline failed this job. Rolled back to the previous spec "
        f"from savepoint {savepoint.savepoint_id}: job {rollback.job_id} is RUNNING"
    ) in result.output
    assert f"Upgrade of deployment {deployment} failed: job {new.job_id} " in result.output
    assert "did not become stable" not in result.output


def test_a_triggerer_restart_during_the_stable_for_wait_keeps_counting_from_the_first_running_look(
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    deployment: str,
    trigger_runs: list[TriggerRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rebuilt_waited: list[float] = []

    async def restarted_a_second_in(self: FlinkVVPJobStabilityTrigger) -> AsyncIterator[TriggerEvent]:
        first = _PollingTrigger.run(self)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await anext(first)
        await first.aclose()
        # The triggerer comes back and rebuilds the trigger from what the task deferred with.
        rebuilt = FlinkVVPJobStabilityTrigger(**self.serialize()[1])
        restarted_at = time.monotonic()
        async for event in _PollingTrigger.run(rebuilt):
            rebuilt_waited.append(time.monotonic() - restarted_at)
            yield event

    monkeypatch.setattr(FlinkVVPJobStabilityTrigger, "run", restarted_a_second_in)
    counts = Counts(vvp_emulator)

    result = run_dag("flink_vvp_upgrade_stop_with_savepoint_deferrable")

    assert result.state == "success", result.output
    _, new = jobs_oldest_first(deployment)
    [stable_wait] = runs_of(trigger_runs, FlinkVVPJobStabilityTrigger)
    assert stable_wait.payload["stability"] == "stable" and stable_wait.payload["job_id"] == new.job_id
    assert rebuilt_waited[0] < 1.5, "the rebuilt trigger started the 1.5 s stable_for wait over"
    assert counts.since() == expected_requests("stop_with_savepoint")


@EXECUTION_TIMEOUT_SIGNAL_MAY_LAND_IN_A_CALLBACK
@pytest.mark.parametrize("mode", WAIT_MODES)
@pytest.mark.parametrize("step", ["stopping the old job", "watching the new job"])
def test_a_killed_upgrade_stops_nothing_and_says_which_step_it_was_in_and_what_a_retry_does(
    step: str,
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    deployment: str,
    trigger_runs: list[TriggerRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = vvp_emulator.state
    if step == "stopping the old job":
        stop = type(state).stop_job

        def stop_that_never_ends(*args: Any, **kwargs: Any) -> dict[str, Any]:
            stopped = stop(state, *args, **kwargs)
            state.set_job_timeline(stopped["jobId"], [["CANCELLING", None]])
            return stopped

        monkeypatch.setattr(state, "stop_job", stop_that_never_ends)
    counts = Counts(vvp_emulator)

    result = run_dag(f"flink_vvp_upgrade_killed_{mode}")

    assert result.task_state("upgrade") == "failed"
    assert "AirflowTaskTimeout" in result.output
    [savepoint] = FlinkVVPHook().list_savepoints(deployment)
    if step == "stopping the old job":
        # Nothing more was sent: the deployment keeps its spec and no job was started.
        [old] = jobs_oldest_first(deployment)
        assert old.status == "CANCELLING"
        assert counts.since() == {**expected_requests("stop_with_savepoint", starts=0, updates=0), "StopJob": 1}
        said = (
            f"The upgrade was killed while waiting for savepoint {savepoint.savepoint_id} and the end of job "
            f"{old.job_id}; nothing is stopped, so that the stream is not left down. A retry takes up savepoint "
            f"{savepoint.savepoint_id}, then updates the deployment and starts the new version from it"
        )
        if mode == "deferrable":
            said = f"The upgrade was killed while waiting in the triggerer for job {old.job_id}; nothing is stopped"
    else:
        # The stream keeps running: the new job is neither stopped nor rolled back.
        old, new = jobs_oldest_first(deployment)
        assert (old.status, new.status) == ("CANCELLED", "RUNNING")
        assert counts.since() == expected_requests("stop_with_savepoint")
        said = (
            f"The upgrade was killed while watching job {new.job_id} of the new version for 30 s; nothing is "
            "stopped, so that the stream is not left down. A retry watches it again (and rolls back if it is not "
            "stable)"
        )
    assert said in result.output
    if mode == "deferrable":
        # execution_timeout, which Airflow does not enforce while a task is deferred, ended the wait.
        *_, last_wait = trigger_runs
        assert (last_wait.payload["status"], last_wait.payload["execution_timeout"]) == ("timeout", True)
        assert (last_wait.name == FlinkVVPJobStabilityTrigger.__name__) == (step == "watching the new job")


NOT_STABLE_IN_TIME = {
    # Never RUNNING: the wait for it times out.
    "never runs": (
        [["STARTING", None]],
        "was not RUNNING and stable for 6 s before the wait timed out (last seen STARTING)",
    ),
    # RUNNING long enough for a deferred task to resume and see it, shorter than stable_for, then STARTING again.
    "leaves RUNNING": (
        [["STARTING", 0.3], ["RUNNING", 3.0], ["STARTING", None]],
        "left RUNNING for STARTING before it had run 6 s",
    ),
}


@pytest.mark.parametrize("mode", WAIT_MODES)
@pytest.mark.parametrize("timeline", NOT_STABLE_IN_TIME)
def test_a_new_version_not_stable_within_the_timeout_is_rolled_back(
    timeline: str,
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    deployment: str,
    after_start: Any,
    trigger_runs: list[TriggerRun],
) -> None:
    started: list[str] = []
    statuses, why = NOT_STABLE_IN_TIME[timeline]

    def the_new_version_s_job(job_id: str) -> None:  # not the rollback's
        if not started:
            vvp_emulator.state.set_job_timeline(job_id, statuses)
        started.append(job_id)

    after_start(the_new_version_s_job)
    counts = Counts(vvp_emulator)

    result = run_dag(f"flink_vvp_upgrade_unstable_in_time_{mode}")

    assert result.task_state("upgrade") == "failed"
    _, new, rollback = jobs_oldest_first(deployment)
    assert (new.status, rollback.status) == ("CANCELLED", "RUNNING")
    assert counts.since() == expected_requests("stop_with_savepoint", starts=2, updates=2)
    assert f"Upgrade of deployment {deployment} failed: job {new.job_id} {why}. Rolled back" in result.output
    timeouts = [run.payload for run in trigger_runs if run.payload.get("status") == "timeout"]
    if mode == "deferrable" and timeline == "never runs":  # the wait that timed out was the triggerer's
        assert [(payload["job_id"], payload["execution_timeout"]) for payload in timeouts] == [(new.job_id, False)]
    elif mode == "deferrable":  # the triggerer's stable_for watch saw it leave RUNNING
        [stable_wait] = runs_of(trigger_runs, FlinkVVPJobStabilityTrigger)
        assert (stable_wait.payload["stability"], timeouts) == ("restarted", [])


@pytest.mark.parametrize("mode", WAIT_MODES)
def test_a_rollback_that_fails_too_ends_the_task_naming_the_first_failure_then_the_rollback_s(
    mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, deployment: str, after_start: Any
) -> None:
    after_start(lambda job_id: vvp_emulator.state.set_job_timeline(job_id, FIRST_FAILURES["fails while starting"]))

    result = run_dag("flink_vvp_upgrade_stop_with_savepoint_" + mode)

    assert result.task_state("upgrade") == "failed" and result.tries_of("upgrade") == 1
    _, new, rollback = jobs_oldest_first(deployment)
    assert (new.status, rollback.status) == ("FAILED", "FAILED")
    assert (
        f"Upgrade failed: job {new.job_id} ended FAILED: EmulatedFailure: the emulator's timeline failed this job. "
        f"The rollback did not finish: "
    ) in result.output
    assert f"Job {rollback.job_id}" in result.output.split("The rollback did not finish: ", 1)[1]
