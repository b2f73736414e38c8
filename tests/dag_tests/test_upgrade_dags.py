"""Upgrading a running job with dag.test() against the emulator, in the worker and deferred, with each savepoint
strategy: every test counts the savepoints, the stops, the updates and the jobs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from airflow_provider_flink_vvp.deployment_specs import spec_of
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.operators.upgrade import SAVEPOINT_STRATEGIES
from airflow_provider_flink_vvp.testing import VVPEmulator
from tests.conftest import VVP_WORKSPACE, fail_after
from tests.dag_tests.conftest import RunDag

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
    return deployment_id


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


def jobs_oldest_first(deployment_id: str) -> list[Any]:
    return sorted(FlinkVVPHook().list_jobs(deployment_id), key=lambda job: job.start_time)


@every_way
def test_a_clean_upgrade_stops_with_one_savepoint_updates_and_starts_one_job_from_it(
    strategy: str, mode: str, run_dag: RunDag, vvp_emulator: VVPEmulator, deployment: str
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


@every_way
def test_a_new_version_that_crash_loops_is_rolled_back_from_the_same_savepoint_and_the_task_fails_saying_so(
    strategy: str,
    mode: str,
    run_dag: RunDag,
    vvp_emulator: VVPEmulator,
    deployment: str,
    after_start: Any,
    task_state: str,
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
