"""Upgrade a running streaming job of Realtime Compute for Apache Flink (VVP) in one task, with rollback.

The task composes the provider's steps: a savepoint (:mod:`.operators.savepoint`), an update of the deployment
(:mod:`.operators.deployment`) and a start from that savepoint (:mod:`.operators.vvp`). Each step is written to
the task state store before it is taken, so a retry (or a resumption from a deferral) resumes where the last try
stopped: ``FlinkVVPUpgradeJobOperator._where_the_last_try_stopped`` is the one place that works it out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowException, conf

from airflow_provider_flink_vvp.operators.deployment import (
    PREVIOUS_SPEC_XCOM_KEY,
    FlinkVVPUpdateDeploymentOperator,
    UpdatePlan,
    apply_update,
    plan_update,
)
from airflow_provider_flink_vvp.operators.savepoint import SavepointWait, take_savepoint
from airflow_provider_flink_vvp.operators.vvp import DEPLOYMENT_ID_XCOM_KEY, _active_job, _choice, _find_deployment
from airflow_provider_flink_vvp.savepoints import USER_REQUEST, created_since, taken_back_savepoint
from airflow_provider_flink_vvp.stability import NOT_RUNNING, decide_stability, flink_restarts, unstable_timeout_message
from airflow_provider_flink_vvp.tasks import JobWait, TaskState, log_diagnostics, seconds

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_flink_vvp.api.models import Job, Savepoint

#: ``savepoint_strategy`` values of :class:`FlinkVVPUpgradeJobOperator`.
SAVEPOINT_STRATEGIES = ("stop_with_savepoint", "savepoint_then_stop")
#: The XCom holding the ID of the savepoint the upgrade (and a rollback) started from.
SAVEPOINT_ID_XCOM_KEY = "savepoint_id"
#: The XCom holding the ID of the job the upgrade started with the new spec.
JOB_ID_XCOM_KEY = "job_id"
#: The task state store key of the upgrade's progress: one entry, added to step by step.
UPGRADE_STATE_KEY = "flink_vvp_upgrade"
#: The task state store key of the savepoint taken by ``savepoint_strategy="savepoint_then_stop"``.
UPGRADE_SAVEPOINT_STATE_KEY = "flink_vvp_upgrade_savepoint"
#: The origin of the savepoint a stop with savepoint takes.
STOP_WITH_SAVEPOINT = "STOP_WITH_SAVEPOINT"
#: The parts of a spec a job carries as it ran them: what a retry without a task state store reads the
#: previous spec from, once the deployment holds the new one.
JOB_SPEC_FIELDS = ("artifact", "flinkConf", "streamingResourceSetting", "batchResourceSetting", "engineVersion")
_ENDED = ("CANCELLED", "FINISHED")
_DAY = 24 * 60 * 60.0

#: The ``echo`` key that marks a deferred wait as the one for the new job to run.
_NEW_JOB = "new_job_id"


@dataclass(frozen=True)
class UpgradeProgress:
    """How far earlier tries of an upgrade got.

    :param savepoint: the upgrade's savepoint (taken, or being taken); None: no stop yet.
    :param previous_spec: the deployment's spec before the update; None: not read yet.
    :param updated: whether the deployment was updated.
    :param new_job: the job started from the savepoint with the new spec.
    :param failure: why the new version did not become stable; set, the rollback has begun.
    :param restored: whether the rollback put the previous spec back.
    :param rollback_job: the job started from the savepoint with the previous spec.
    """

    savepoint: Savepoint | None = None
    previous_spec: Mapping[str, Any] | None = None
    updated: bool = False
    new_job: Job | None = None
    failure: str | None = None
    restored: bool = False
    rollback_job: Job | None = None


class FlinkVVPUpgradeJobOperator(FlinkVVPUpdateDeploymentOperator):
    """Upgrade a deployment's running streaming job: savepoint and stop, update, start from the savepoint, and
    roll back when the new version does not run.

    The steps: (1) stop the deployment's RUNNING job with a savepoint (``savepoint_strategy="stop_with_savepoint"``),
    or take a savepoint, wait until it is COMPLETED, then stop the job (``"savepoint_then_stop"``); (2) update the
    deployment with the changes (the parameters of :class:`~.operators.deployment.FlinkVVPUpdateDeploymentOperator`;
    the diff is logged); (3) start a job ``FROM_SAVEPOINT`` with that savepoint; (4) wait until it is RUNNING and
    then stable: RUNNING for ``stable_for`` seconds, never seen leaving RUNNING (for STARTING or CANCELLING), and
    without its ``observedFlinkJobRestarts`` growing. When it does not get there (it fails, restarts, or
    ``timeout`` runs out first) and ``rollback`` is on: (5) stop it, restore the previous spec, start again from
    the same savepoint, wait until RUNNING, and fail the task (without retries) saying why the new version failed
    and that it was rolled back from which savepoint. An upgrade that changes nothing does nothing and says so;
    ``dry_run`` only logs the diff.

    Every step is written to the task state store before it is taken: a retry (or a resumption) resumes where the
    last try stopped and never stops with a savepoint twice, updates twice or starts two jobs for one step. Before
    Airflow 3.3 (no store), a retry reads where the last try stopped from the deployment: the newest savepoint of
    the strategy's origin since the DAG run began, whether the deployment holds the new spec already, and the jobs
    started since that savepoint (the first the new version's, a second the rollback's).

    Deferred (``deferrable``), every wait is the triggerer's: the savepoint, the stopped job's end, the new job's
    start, its ``stable_for`` watch (:class:`~.triggers.stability.FlinkVVPJobStabilityTrigger`, which carries the
    task's first RUNNING look, so a triggerer restart does not start the watch over), and the rollback's waits,
    on every Airflow version: why the new version failed travels with the rollback's deferrals and comes back in
    their events, so the task's message names it even without a task state store (and, when the rollback fails
    too, names it before what the rollback met). A savepoint that ends FAILED
    fails the try before the deployment is touched; its retry takes a new savepoint.

    Killed (marked failed, or its ``execution_timeout`` runs out), the task stops nothing, in the worker or
    deferred: stopping the old job, the new one or the rollback's would leave the stream down. Killed in the
    worker, or by ``execution_timeout`` while deferred, it logs the step it was in and what a retry does from
    there (takes up the savepoint, the update and the started job of this try, never a second of each).

    Pushes ``savepoint_id``, ``previous_spec`` (the spec before the update), ``job_id`` (the new job, also
    ``return_value``), ``deployment_id``, ``deployment_url`` and ``spec_diff``.

    :param savepoint_strategy: ``"stop_with_savepoint"`` or ``"savepoint_then_stop"``.
    :param allow_non_restored_state: start even when part of the savepoint's state maps to no operator of the
        new job graph.
    :param stable_for: seconds (or a timedelta) the new job must run without a restart to count as upgraded;
        shorter than ``timeout``.
    :param rollback: restore the previous spec and start it from the savepoint when the new version fails; off,
        the task fails and leaves the deployment as the new version left it.
    :param deferrable: wait in the triggerer instead of a worker slot (see above).
    :param poll_interval: seconds (or a timedelta) between looks.
    :param fetch_diagnostics: when the new version's job FAILED, log the service's diagnostics of it (see
        :class:`~.operators.vvp.FlinkVVPStartJobOperator`) before the rollback.
    :param timeout: seconds (or a timedelta) each wait may last (the savepoint, the stop, the new job's start, its
        ``stable_for`` watch, the rollback's start); a watch that runs out is a failure of the new version.

    The other parameters are :class:`~.operators.deployment.FlinkVVPUpdateDeploymentOperator`'s.
    """

    _result_key = "job_id"
    _failure_is_retryable = True
    _state_keys: tuple[str, ...] = (UPGRADE_STATE_KEY, UPGRADE_SAVEPOINT_STATE_KEY)

    def __init__(
        self,
        *,
        savepoint_strategy: str = "stop_with_savepoint",
        allow_non_restored_state: bool | None = None,
        stable_for: float | timedelta = 60.0,
        rollback: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | timedelta = 5.0,
        timeout: float | timedelta = _DAY,
        fetch_diagnostics: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.savepoint_strategy = _choice("savepoint_strategy", savepoint_strategy, SAVEPOINT_STRATEGIES)
        self.allow_non_restored_state = allow_non_restored_state
        self.stable_for = seconds("stable_for", stable_for)
        self.rollback = rollback
        self.deferrable = deferrable
        self.poll_interval = seconds("poll_interval", poll_interval)
        self.timeout = seconds("timeout", timeout)
        if self.stable_for >= self.timeout:
            raise ValueError(
                f"stable_for ({self.stable_for:g} s) must be shorter than timeout ({self.timeout:g} s), which bounds "
                "the stable_for watch too: every upgrade would time out and be rolled back. Raise timeout or lower "
                "stable_for."
            )
        self.fetch_diagnostics = fetch_diagnostics
        # The step this try is in, and what a retry does from there: what on_kill tells.
        self._step = ("reading the deployment", "starts the upgrade afresh: nothing was stopped")

    def execute(self, context: Context) -> str | None:  # type: ignore[override]  # None: nothing was upgraded
        return self._upgrade(context, resumed=False)

    def on_kill(self) -> None:
        """Stop nothing (stopping the old job, the new one or the rollback's would leave the stream down): say
        which step the upgrade was in and what a retry does from there."""
        step, retry = self._step
        self.log.warning(
            "The upgrade was killed while %s; nothing is stopped, so that the stream is not left down. A retry %s",
            step,
            retry,
        )

    def _on_execution_timeout(self, event: Mapping[str, Any]) -> None:
        if "stability" in event:
            self._watching(event["job_id"])
        else:
            waited_for = f"job {event['job_id']}" if "job_id" in event else f"savepoint {event.get('savepoint_id')}"
            self._doing(f"waiting in the triggerer for {waited_for}", "takes up the steps where this try stopped")
        self.on_kill()

    def _watching(self, job_id: str) -> None:
        self._doing(
            f"watching job {job_id} of the new version for {self.stable_for:g} s",
            "watches it again (and rolls back if it is not stable)",
        )

    def _doing(self, step: str, retry: str) -> None:
        """The step the upgrade is in now, and what a retry does from there (see :meth:`on_kill`)."""
        self._step = (step, retry)

    def execute_resume(self, context: Context, event: dict[str, Any]) -> str | None:
        """Resume after a deferred wait: look again at where the upgrade stands and go on from there.

        :param event: the trigger's payload; an error, or a timeout other than the new job's waits (to run, then to
            be stable), ends the try; those waits' outcome and why the new version failed (``echo``) are taken from
            it; any other outcome is read back from the service itself.
        """
        if self._resumed_with_an_earlier_try_event(context, event):
            return self._upgrade(context, resumed=False)
        new_job_wait = "stability" in event or (event.get("echo") or {}).get(_NEW_JOB) == event.get("job_id")
        unstable_in_time = event["status"] == "timeout" and new_job_wait and not event.get("execution_timeout")
        if event["status"] not in ("success", "failure") and not unstable_in_time:
            first_failure = (event.get("echo") or {}).get("failure")  # a rollback's wait: why the upgrade failed
            with _naming_the_first_failure(first_failure) if first_failure else nullcontext():
                self._resume(context, event)  # raises
        if event["status"] == "failure" and "savepoint_id" in event:
            # The savepoint FAILED: the try ends here, as in the worker; its retry takes a new savepoint.
            raise AirflowException(f"{event['message']}. Console: {self._publish_url(context, event['deployment_id'])}")
        return self._upgrade(context, resumed=True, event=event)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The tables the upgraded deployment reads and writes (GetLineageInfo) and the new job, for OpenLineage
        (the ``openlineage`` extra); see :func:`~airflow_provider_flink_vvp.operator_lineage.job_lineage`."""
        from airflow_provider_flink_vvp.operator_lineage import job_lineage

        return job_lineage(self, task_instance, job_id_key=JOB_ID_XCOM_KEY)

    def _upgrade(self, context: Context, *, resumed: bool, event: Mapping[str, Any] | None = None) -> str | None:
        changes = self._changes()
        try:
            changes.check()
        except ValueError as error:
            self._fail(str(error))
        with self._api_errors():
            deployment_id = _find_deployment(self, self.deployment_name, self.deployment_id).deployment_id
            context["ti"].xcom_push(key=DEPLOYMENT_ID_XCOM_KEY, value=deployment_id)
            url = self._publish_url(context, deployment_id)
            progress = self._where_the_last_try_stopped(context, deployment_id, resumed=resumed)
            # A rollback's deferral carries why the new version failed: before Airflow 3.3 nothing else keeps it
            # (the deployment's jobs only tell that it failed).
            failure = ((event or {}).get("echo") or {}).get("failure") or progress.failure
            if failure is not None:
                return self._roll_back(context, deployment_id, progress, failure)
            savepoint = progress.savepoint
            if savepoint is None:
                try:
                    plan = plan_update(self, deployment_id, changes)
                except ValueError as error:
                    self._fail(str(error))
                context["ti"].xcom_push(key=PREVIOUS_SPEC_XCOM_KEY, value=plan.previous)
                if not plan.changes:
                    self.log.info(
                        "Deployment %s already has this spec: nothing to upgrade, its job left as it is. Console: %s",
                        deployment_id,
                        url,
                    )
                    return self._succeeded(context, None)
                diff = "\n".join(f"    {line}" for line in plan.diff_lines)
                if self.only_log_changes:
                    self.log.info("Dry run: an upgrade of deployment %s would change:\n%s", deployment_id, diff)
                    return None
                self.log.info("Upgrading deployment %s:\n%s", deployment_id, diff)
                savepoint = self._take_savepoint(context, deployment_id)
            self._wait_for_savepoint_and_stop(context, savepoint)
            context["ti"].xcom_push(key=SAVEPOINT_ID_XCOM_KEY, value=savepoint.savepoint_id)
            previous = self._update(context, deployment_id, progress)
            job = progress.new_job or self._start_once(context, "start", deployment_id, savepoint.savepoint_id)
            self._push_result(context, job.job_id)
            context["ti"].xcom_push(key=JOB_ID_XCOM_KEY, value=job.job_id)
            failure = self._unstable(context, job, event)
            if failure is None:
                self.log.info(
                    "Upgraded deployment %s: job %s runs the new spec from savepoint %s. Console: %s",
                    deployment_id,
                    job.job_id,
                    savepoint.savepoint_id,
                    url,
                )
                return self._succeeded(context, job.job_id)
            where = {"namespace": self.namespace, "workspace": self.workspace}
            if self.fetch_diagnostics and self.hook.get_job(job.job_id, **where).status == "FAILED":
                log_diagnostics(self, deployment_id, job.job_id)
            if not self.rollback:
                self._fail(
                    f"The new version of deployment {deployment_id} failed: {failure} (rollback=False). Console: {url}"
                )
            self._record(context, failure=failure)
            return self._roll_back(
                context,
                deployment_id,
                UpgradeProgress(savepoint=savepoint, previous_spec=previous, updated=True, new_job=job),
                failure,
            )

    def _where_the_last_try_stopped(self, context: Context, deployment_id: str, *, resumed: bool) -> UpgradeProgress:
        """How far the earlier tries (or this try, before it deferred) got: from the task state store, else, before
        Airflow 3.3, from the deployment's savepoints, spec and jobs."""
        state = TaskState(self, context)
        hook, where = self.hook, {"namespace": self.namespace, "workspace": self.workspace}
        if not state.available:
            if not (resumed or state.is_retry):
                return UpgradeProgress()
            return self._read_from_the_deployment(context, deployment_id)
        stored = state.get(UPGRADE_STATE_KEY) or {}
        savepoint = None
        if "savepoint_id" in stored:
            savepoint = hook.get_savepoint(str(stored["savepoint_id"]), **where)
            if savepoint.state == "FAILED" and not resumed:
                savepoint = None  # an earlier try failed on it: this retry takes a new savepoint
        elif "stop" in stored:
            stop = stored["stop"]
            savepoint = created_since(hook.list_savepoints(deployment_id, **where), set(stop["savepoints_before"]))
            if savepoint is not None:
                self._record(context, savepoint_id=savepoint.savepoint_id)
            elif not hook.get_job(str(stop["job_id"]), **where).is_active:
                self._fail(
                    f"Job {stop['job_id']} of deployment {deployment_id} was stopped with a savepoint by an earlier "
                    "try, but no savepoint of that stop exists: start the deployment again from its latest state"
                )
        return UpgradeProgress(
            savepoint=savepoint,
            previous_spec=stored.get("previous_spec"),
            updated=bool(stored.get("updated")),
            new_job=self._started_by_earlier_tries(context, "start", deployment_id),
            failure=stored.get("failure"),
            restored=bool(stored.get("restored")),
            rollback_job=self._started_by_earlier_tries(context, "rollback_start", deployment_id),
        )

    def _read_from_the_deployment(self, context: Context, deployment_id: str) -> UpgradeProgress:
        """Before Airflow 3.3: the upgrade's savepoint, whether the deployment holds the new spec, and the jobs
        started from that savepoint (the first the new version's, a second the rollback's)."""
        hook, where = self.hook, {"namespace": self.namespace, "workspace": self.workspace}
        run_started = context["dag_run"].start_date
        if run_started is None:
            return UpgradeProgress()
        savepoint = taken_back_savepoint(
            hook.list_savepoints(deployment_id, **where), since=run_started, origins=(self._savepoint_origin,)
        )
        if savepoint is None or savepoint.created_at is None:
            return UpgradeProgress()
        plan = plan_update(self, deployment_id, self._changes())
        updated = not plan.changes
        previous = plan.previous
        if updated and savepoint.job_id:
            # The deployment holds the new spec: the previous one is what the stopped job ran.
            ran = hook.get_job(savepoint.job_id, **where).raw
            previous = {**previous, **{key: ran[key] for key in JOB_SPEC_FIELDS if ran.get(key) is not None}}
        since = savepoint.created_at
        started = sorted(
            (job for job in hook.list_jobs(deployment_id, **where) if job.start_time and job.start_time >= since),
            key=lambda job: job.start_time or since,
        )
        new_job = started[0] if started else None
        rolled_back = len(started) > 1 or (new_job is not None and not updated)
        failure = None
        if rolled_back and new_job is not None:
            # Nothing kept why the new version failed: how its job ended is the best account left.
            name = f"job {new_job.job_id} of the new version (started by an earlier try)"
            if new_job.status == "FAILED":
                failure = f"{name} ended FAILED" + (f": {new_job.failure.describe()}" if new_job.failure else "")
            else:
                failure = f"{name} did not become stable; it is {new_job.status}"
        return UpgradeProgress(
            savepoint=savepoint,
            previous_spec=previous,
            updated=updated,
            new_job=new_job,
            failure=failure,
            restored=rolled_back and not updated,
            rollback_job=started[1] if len(started) > 1 else None,
        )

    @property
    def _savepoint_origin(self) -> str:
        return STOP_WITH_SAVEPOINT if self.savepoint_strategy == "stop_with_savepoint" else USER_REQUEST

    def _take_savepoint(self, context: Context, deployment_id: str) -> Savepoint:
        """Step 1: stop the running job with a savepoint, or take a savepoint (stopped once it is COMPLETED)."""
        hook, where = self.hook, {"namespace": self.namespace, "workspace": self.workspace}
        running = _active_job(self, deployment_id)
        if running is None:
            self._fail(
                f"Deployment {deployment_id} has no STARTING or RUNNING job to upgrade: start it first, or change "
                "it with FlinkVVPUpdateDeploymentOperator"
            )
        if self.savepoint_strategy == "savepoint_then_stop":
            self._doing(f"taking a savepoint of job {running.job_id}", "takes up that savepoint, never a second")
            savepoint = take_savepoint(self, context, deployment_id, state_key=UPGRADE_SAVEPOINT_STATE_KEY)
            self._record(context, savepoint_id=savepoint.savepoint_id)
            return savepoint
        self._doing(
            f"stopping job {running.job_id} with a savepoint", "takes up the savepoint of that stop, never stops twice"
        )
        before = [savepoint.savepoint_id for savepoint in hook.list_savepoints(deployment_id, **where)]
        # Kept before the stop is sent: a retry finds the stop's savepoint by it, and never stops a second time.
        self._record(context, stop={"job_id": running.job_id, "savepoints_before": before})
        hook.stop_job(running.job_id, stop_strategy=STOP_WITH_SAVEPOINT, **where)
        self.log.info("Stopping job %s of deployment %s with a savepoint", running.job_id, deployment_id)
        deadline = time.monotonic() + self.timeout
        while (stopped := created_since(hook.list_savepoints(deployment_id, **where), set(before))) is None:
            if time.monotonic() >= deadline:
                self._fail(
                    f"Job {running.job_id} was stopped with a savepoint, but no savepoint appeared", timed_out=True
                )
            time.sleep(self.poll_interval)
        self._record(context, savepoint_id=stopped.savepoint_id)
        self.log.info("Savepoint %s of the stop of job %s", stopped.savepoint_id, running.job_id)
        return stopped

    def _wait_for_savepoint_and_stop(self, context: Context, savepoint: Savepoint) -> None:
        """Wait until the savepoint is COMPLETED (a FAILED one fails the try) and the job it is of has ended."""
        self._doing(
            f"waiting for savepoint {savepoint.savepoint_id} and the end of job {savepoint.job_id}",
            f"takes up savepoint {savepoint.savepoint_id}, then updates the deployment and starts the new version "
            "from it (until then the deployment may run no job)",
        )
        wait = SavepointWait(self, savepoint.savepoint_id, savepoint.deployment_id, self.poll_interval, self.timeout)
        if self.deferrable and not savepoint.is_terminal:
            wait.defer(context, method_name="execute_resume")
        wait.in_worker(context)
        if savepoint.job_id is None:
            return
        job = self.hook.get_job(savepoint.job_id, namespace=self.namespace, workspace=self.workspace)
        if job.is_active and self.savepoint_strategy == "savepoint_then_stop" and job.status != "CANCELLING":
            self.hook.stop_job(job.job_id, stop_strategy="NONE", namespace=self.namespace, workspace=self.workspace)
            self.log.info("Stopping job %s of deployment %s", job.job_id, job.deployment_id)
        if not job.is_terminal:
            self._wait_for(context, job.job_id, _ENDED, ("FAILED",))

    def _update(self, context: Context, deployment_id: str, progress: UpgradeProgress) -> Mapping[str, Any]:
        """Step 2: update the deployment, unless an earlier try did; the spec before the update."""
        previous = progress.previous_spec
        self._doing(
            f"updating deployment {deployment_id}",
            "updates it (once) and starts the new version from the savepoint (until then it may run no job)",
        )
        if not progress.updated:
            try:
                plan = plan_update(self, deployment_id, self._changes(), previous=previous)
            except ValueError as error:
                self._fail(str(error))
            previous = plan.previous
            # Kept before the update: a retry rolls back to the spec as it was, not as this try left it.
            self._record(context, previous_spec=previous)
            if plan.changes:
                apply_update(self, plan)
                self.log.info("Updated deployment %s", deployment_id)
            self._record(context, updated=True)
        assert previous is not None  # read before the update, by this try or an earlier one
        context["ti"].xcom_push(key=PREVIOUS_SPEC_XCOM_KEY, value=previous)
        return previous

    def _start_once(self, context: Context, step: str, deployment_id: str, savepoint_id: str) -> Job:
        """Start a job from the savepoint for ``step`` (``start`` or ``rollback_start``), recorded before it is sent."""
        where = {"namespace": self.namespace, "workspace": self.workspace}
        self._doing(
            f"starting a job of deployment {deployment_id} from savepoint {savepoint_id}",
            "takes up the job of that start, never starting a second",
        )
        jobs_before = [job.job_id for job in self.hook.list_jobs(deployment_id, **where)]
        self._record(context, **{step: {"jobs_before": jobs_before}})
        job = self.hook.start_job(
            deployment_id,
            restore_strategy="FROM_SAVEPOINT",
            savepoint_id=savepoint_id,
            allow_non_restored_state=self.allow_non_restored_state,
            jobs_before=jobs_before,
            namespace=self.namespace,
            workspace=self.workspace,
        )
        self._record(context, **{step: {"job_id": job.job_id}})
        self.log.info("Started job %s of deployment %s from savepoint %s", job.job_id, deployment_id, savepoint_id)
        return job

    def _started_by_earlier_tries(self, context: Context, step: str, deployment_id: str) -> Job | None:
        stored = (TaskState(self, context).get(UPGRADE_STATE_KEY) or {}).get(step)
        if stored is None:
            return None
        where = {"namespace": self.namespace, "workspace": self.workspace}
        if "job_id" in stored:
            return self.hook.get_job(str(stored["job_id"]), **where)
        before = set(stored["jobs_before"])
        return next((job for job in self.hook.list_jobs(deployment_id, **where) if job.job_id not in before), None)

    def _unstable(self, context: Context, job: Job, event: Mapping[str, Any] | None) -> str | None:
        """Step 4: wait until the job is RUNNING, then ``stable_for`` seconds more without a restart; None when it
        was, else why not. Deferred, both halves are the triggerer's; ``event`` is the stable wait's outcome when
        the task resumes from it."""
        if event is not None and "stability" in event and event.get("job_id") == job.job_id:
            return None if event["status"] == "success" else str(event["message"])
        if event is not None and event["status"] == "timeout" and event.get("job_id") == job.job_id:
            return unstable_timeout_message(job.job_id, self.stable_for, event.get("job_status"))  # never RUNNING
        if self.deferrable and job.status not in ("RUNNING", *NOT_RUNNING):
            wait = self._job_wait(job.job_id, ("RUNNING",), NOT_RUNNING)
            # Marked as the new job's: its timeout is the new version's failure (a rollback), as in the worker.
            wait.defer(context, method_name="execute_resume", echo={_NEW_JOB: job.job_id})
        self._watching(job.job_id)
        where = {"namespace": self.namespace, "workspace": self.workspace}
        deadline = time.monotonic() + self.timeout
        running_since: float | None = None
        restarts: int | None = None
        while True:
            asked_at = time.time()
            job = self.hook.get_job(job.job_id, **where)
            if running_since is None and job.status == "RUNNING":
                # The window opens when the answer came (never before the job ran) and each look closes it when
                # its question went (never after). The watch is a wait of its own, as deferred: ``timeout`` from here.
                running_since, restarts, deadline = time.time(), flink_restarts(job), time.monotonic() + self.timeout
                self.log.info("Job %s is RUNNING: watching it for %g s", job.job_id, self.stable_for)
                if self.deferrable:
                    self._defer_stable_wait(context, job.job_id, running_since, restarts)
            decision = decide_stability(
                job, running_since=running_since, restarts=restarts, stable_for=self.stable_for, now=asked_at
            )
            if decision is not None:
                return None if decision.is_stable else decision.message
            if time.monotonic() >= deadline:
                return unstable_timeout_message(job.job_id, self.stable_for, job.status)
            time.sleep(self.poll_interval)

    def _defer_stable_wait(self, context: Context, job_id: str, running_since: float, restarts: int | None) -> NoReturn:
        """Hand the ``stable_for`` wait to the triggerer; the first RUNNING look travels in the trigger's kwargs,
        so a triggerer restart keeps counting from it."""
        from airflow_provider_flink_vvp.triggers.stability import FlinkVVPJobStabilityTrigger

        deferral = self._deferral(context, self.timeout)
        self.defer(
            trigger=FlinkVVPJobStabilityTrigger(
                job_id=job_id,
                namespace=self.namespace,
                workspace=self.workspace,
                flink_vvp_conn_id=self.flink_vvp_conn_id,
                running_since=running_since,
                restarts=restarts,
                stable_for=self.stable_for,
                poll_interval=self.poll_interval,
                end_time=deferral.end_time,
                deferred_at=time.time(),
                execution_timeout=deferral.by_execution_timeout,
                try_number=deferral.try_number,
            ),
            method_name="execute_resume",
            timeout=deferral.timeout,
        )

    def _roll_back(self, context: Context, deployment_id: str, progress: UpgradeProgress, failure: str) -> NoReturn:
        """Step 5: stop the new job, restore the previous spec, start it from the same savepoint, then fail."""
        savepoint, previous = progress.savepoint, progress.previous_spec
        if savepoint is None or previous is None:
            self._fail(
                f"The new version of deployment {deployment_id} failed ({failure}), and what to roll back to "
                "is unknown: roll back by hand"
            )
        where = {"namespace": self.namespace, "workspace": self.workspace}
        self._doing(
            f"rolling deployment {deployment_id} back to the previous spec from savepoint {savepoint.savepoint_id}",
            "finishes the rollback",
        )
        self.log.warning(
            "The new version of deployment %s failed: %s. Rolling back to the previous spec from savepoint %s",
            deployment_id,
            failure,
            savepoint.savepoint_id,
        )
        job = progress.new_job
        with _naming_the_first_failure(failure):
            if job is not None and progress.rollback_job is None:
                job = self.hook.get_job(job.job_id, **where)
                if job.is_active and job.status != "CANCELLING":
                    self.hook.stop_job(job.job_id, stop_strategy="NONE", **where)
                if not job.is_terminal:
                    self._wait_for(context, job.job_id, (*_ENDED, "FAILED"), (), failure=failure)
            if not progress.restored:
                apply_update(self, UpdatePlan(deployment_id, dict(previous), dict(previous), []))
                self._record(context, restored=True)
            rollback = progress.rollback_job or self._start_once(
                context, "rollback_start", deployment_id, savepoint.savepoint_id
            )
            context["ti"].xcom_push(key=SAVEPOINT_ID_XCOM_KEY, value=savepoint.savepoint_id)
            context["ti"].xcom_push(key=PREVIOUS_SPEC_XCOM_KEY, value=previous)
            self._wait_for(context, rollback.job_id, ("RUNNING",), NOT_RUNNING, failure=failure)
        self._fail(
            f"Upgrade of deployment {deployment_id} failed: {failure}. Rolled back to the previous spec from "
            f"savepoint {savepoint.savepoint_id}: job {rollback.job_id} is RUNNING. "
            f"Console: {self._publish_url(context, deployment_id)}"
        )

    def _wait_for(
        self,
        context: Context,
        job_id: str,
        targets: Sequence[str],
        failures: Sequence[str],
        *,
        failure: str | None = None,
    ) -> None:
        """Wait for the job in the worker, or defer while it has not reached a target or failure status (a
        resumption comes back here through the same steps, and must not defer again). A rollback's ``failure``
        (why the new version failed) travels with the deferral and comes back in the event."""
        wait = self._job_wait(job_id, targets, failures)
        status = self.hook.get_job(job_id, namespace=self.namespace, workspace=self.workspace).status
        if self.deferrable and status not in (*targets, *failures, *NOT_RUNNING):
            wait.defer(context, method_name="execute_resume", echo=None if failure is None else {"failure": failure})
        wait.in_worker(context)

    def _job_wait(self, job_id: str, targets: Sequence[str], failures: Sequence[str]) -> JobWait:
        return JobWait(self, job_id, targets, failures, self.poll_interval, self.timeout)

    def _record(self, context: Context, **steps: Any) -> None:
        """Add ``steps`` to the upgrade's entry in the task state store (Airflow 3.3+)."""
        state = TaskState(self, context)
        stored = {key: value for key, value in (state.get(UPGRADE_STATE_KEY) or {}).items() if key != "series"}
        state.set(UPGRADE_STATE_KEY, {**stored, **steps})


@contextmanager
def _naming_the_first_failure(failure: str) -> Iterator[None]:
    """A rollback that fails too ends the task saying first why the new version failed, then what the rollback
    met; the task's way of failing (fail, retry, skip) stays the rollback's."""
    try:
        yield
    except AirflowException as error:
        raise type(error)(f"Upgrade failed: {failure}. The rollback did not finish: {error}") from error
