"""Operators of Realtime Compute for Apache Flink (VVP): find deployments, start and stop their jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf

from airflow_provider_flink_vvp.api.models import STOP_STRATEGIES, TERMINAL_JOB_STATUSES
from airflow_provider_flink_vvp.decisions import started_by_earlier_tries
from airflow_provider_flink_vvp.links.vvp import DEPLOYMENT_URL_XCOM_KEY, FlinkVVPDeploymentLink
from airflow_provider_flink_vvp.tasks import FlinkVVPBaseOperator, JobWait, TaskState, seconds, stop_on_kill

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_flink_vvp.api.models import Deployment, Job

#: The XCom holding the IDs of every deployment with the name, newest first.
DEPLOYMENT_IDS_XCOM_KEY = "deployment_ids"
#: The XCom holding the deployment of the job a job operator started, attached to or stopped.
DEPLOYMENT_ID_XCOM_KEY = "deployment_id"
#: The task state store key of the job the start operator started (see :class:`FlinkVVPStartJobOperator`).
STARTED_JOB_STATE_KEY = "flink_vvp_started_job"
#: ``wait_for`` values of :class:`FlinkVVPStartJobOperator`; "auto" is FINISHED for BATCH, RUNNING for STREAMING.
WAIT_FOR_VALUES = ("auto", "RUNNING", "FINISHED", None)
#: ``if_running`` values of :class:`FlinkVVPStartJobOperator`.
IF_RUNNING_VALUES = ("attach", "fail", "restart")
# A job that was running and finished did run: waiting for RUNNING is over on FINISHED too.
_WAIT_TARGETS = {"RUNNING": ("RUNNING", "FINISHED"), "FINISHED": ("FINISHED",)}
_JOB_FAILURES = ("FAILED", "CANCELLED")
_TERMINAL = tuple(sorted(TERMINAL_JOB_STATUSES))
_WEEK = 7 * 24 * 60 * 60.0


class FlinkVVPGetDeploymentsByNameOperator(FlinkVVPBaseOperator):
    """Find the deployments with a name (GetDeploymentsByName) and return the newest one's ID.

    Names are not unique, so every match is pushed too. XComs: ``return_value`` (the newest
    deploymentId), ``deployment_ids`` (all of them, newest first) and ``deployment_url`` (the
    newest one's console page). No deployment with the name fails the task without retries.

    :param deployment_name: the deployment's name. (templated)
    :param namespace: the namespace (project); defaults to the connection's. (templated)
    :param workspace: the workspace ID; defaults to the connection's. (templated)
    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.
    :param ignore_job_summary: leave the job summaries out of the answer.
    :param ignore_resource_setting: leave the resource settings out of the answer.
    """

    template_fields: Sequence[str] = ("deployment_name", "namespace", "workspace")
    operator_extra_links = (FlinkVVPDeploymentLink(),)

    def __init__(
        self,
        *,
        deployment_name: str,
        namespace: str | None = None,
        workspace: str | None = None,
        flink_vvp_conn_id: str = "flink_vvp_default",
        ignore_job_summary: bool = False,
        ignore_resource_setting: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(namespace=namespace, workspace=workspace, flink_vvp_conn_id=flink_vvp_conn_id, **kwargs)
        self.deployment_name = deployment_name
        self.ignore_job_summary = ignore_job_summary
        self.ignore_resource_setting = ignore_resource_setting

    def execute(self, context: Context) -> str:
        # Transient errors were retried by the client; what is left may heal with a task retry.
        # Anything else (no such deployment, credentials, permissions) will not.
        from airflow_provider_flink_vvp.hooks.vvp import newest_deployment

        with self._api_errors():
            deployments = self.hook.get_deployments_by_name(
                self.deployment_name,
                namespace=self.namespace,
                workspace=self.workspace,
                ignore_job_summary=self.ignore_job_summary,
                ignore_resource_setting=self.ignore_resource_setting,
            )
            target = self.hook.config.target(self.namespace, self.workspace)
            newest = newest_deployment(deployments, self.deployment_name, target)
            url = self.hook.config.deployment_url(newest.deployment_id, self.namespace, self.workspace)

        ids = [deployment.deployment_id for deployment in deployments]
        self.log.info("Deployments named %r, newest first: %s; console: %s", self.deployment_name, ids, url)
        ti = context["ti"]
        ti.xcom_push(key=DEPLOYMENT_IDS_XCOM_KEY, value=ids)
        ti.xcom_push(key=DEPLOYMENT_URL_XCOM_KEY, value=url)
        return ids[0]


class FlinkVVPStartJobOperator(FlinkVVPBaseOperator):
    """Start a job of a deployment (StartJobWithParams) and wait until it runs or finishes.

    The deployment is ``deployment_id``, or the newest one named ``deployment_name``. When it already has a
    STARTING or RUNNING job, ``if_running`` decides: ``attach`` waits on that job instead of starting
    another, ``fail`` fails the task, ``restart`` stops it (``stop_strategy_on_restart``), waits until it
    ended, then starts a new one. A retry (or a resumption) of this task finds the job an earlier try
    started in the task state store and waits on it again, whatever ``if_running`` says, so a task never
    runs two jobs; clearing the task starts afresh. The entry never expires and is deleted when the task
    succeeds. Before Airflow 3.3 (no task state store) a retry takes for the earlier tries' job the newest job
    of the deployment started since the DAG run began and before the retry, if any (a job someone else started
    in that window included; a task cleared while its DAG run still runs counts from the run's start).

    A job that ends FAILED or CANCELLED fails the try with its failure reason and message and the console
    link, as a normal error: the task's retries start a new job. A ``timeout`` leaves the job alone and the
    task to its retries, which wait on that job again. Configuration, credential and permission errors fail
    the task without retries.

    The jobId (``return_value``), ``deployment_id`` and ``deployment_url`` (the console page, behind the
    task's link) are pushed as soon as the job exists, so they are there even when the wait fails.

    With the deployment's asset (:func:`~airflow_provider_flink_vvp.assets.flink_vvp_asset`) in ``outlets``, the
    asset event the task's success records carries ``deploymentId``, ``jobId`` and ``jobStatus`` in its extra.

    When the task is killed while it waits (marked failed or success, cleared, ``execution_timeout``),
    a job this task started is stopped with ``stop_strategy_on_kill``: by :meth:`on_kill` in the worker,
    or, deferred, by the trigger's ``on_kill`` in the triggerer (Airflow 3.3+: before, the triggerer calls
    none and the job keeps running), or, when ``execution_timeout`` ends a
    deferred wait, by the task as it resumes. A job it only attached to is left alone. A kill takes at
    most 4.5 seconds in all (Airflow kills the worker 5 seconds after asking it to stop): one StopJob of
    at most 2 seconds, then, when that failed, at most one read of the job; the log says when the stop
    could not be confirmed.

    :param deployment_name: the deployment's name; the newest deployment with it is used. (templated)
    :param deployment_id: the deployment's ID, instead of ``deployment_name``. (templated)
    :param namespace: the namespace (project); defaults to the connection's. (templated)
    :param workspace: the workspace ID; defaults to the connection's. (templated)
    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.
    :param restore_strategy: NONE, LATEST_SAVEPOINT, FROM_SAVEPOINT (with ``savepoint_id``) or LATEST_STATE.
        (templated)
    :param savepoint_id: the savepoint to restore with FROM_SAVEPOINT. (templated)
    :param allow_non_restored_state: skip state that cannot be mapped to the new job graph.
    :param local_variables: values for the deployment's ``${name}`` variables. (templated)
    :param wait_for: ``"auto"`` (FINISHED for a BATCH deployment, RUNNING for a STREAMING one), ``"RUNNING"``
        (a job that already FINISHED counts), ``"FINISHED"``, or None to return once the job exists.
    :param if_running: ``"attach"``, ``"fail"`` or ``"restart"``, for a deployment that already has an active job.
    :param stop_strategy_on_restart: how ``if_running="restart"`` stops the active job: NONE,
        STOP_WITH_SAVEPOINT or STOP_WITH_DRAIN.
    :param stop_strategy_on_kill: how to stop the started job when the task is killed; None leaves it running.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_interval: seconds (or a timedelta) between looks at the job.
    :param timeout: seconds (or a timedelta) to wait for the job (and, with ``restart``, for the old job to
        end) before failing the try.
    :param fetch_diagnostics: when the job FAILED, log the service's diagnosis of it, the tail of its JobManager
        start log and the deployment's latest events (each skipped with one line if unavailable).
    """

    template_fields: Sequence[str] = (
        "deployment_name",
        "deployment_id",
        "namespace",
        "workspace",
        "restore_strategy",
        "savepoint_id",
        "local_variables",
    )
    operator_extra_links = (FlinkVVPDeploymentLink(),)
    _result_key = "job_id"
    _failure_is_retryable = True
    _state_keys = (STARTED_JOB_STATE_KEY,)
    _records_outlet_events = True

    def __init__(
        self,
        *,
        deployment_name: str | None = None,
        deployment_id: str | None = None,
        namespace: str | None = None,
        workspace: str | None = None,
        flink_vvp_conn_id: str = "flink_vvp_default",
        restore_strategy: str = "LATEST_STATE",
        savepoint_id: str | None = None,
        allow_non_restored_state: bool | None = None,
        local_variables: Mapping[str, str] | None = None,
        wait_for: str | None = "auto",
        if_running: str = "attach",
        stop_strategy_on_restart: str = "NONE",
        stop_strategy_on_kill: str | None = "NONE",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | timedelta = 10.0,
        timeout: float | timedelta = _WEEK,
        fetch_diagnostics: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(namespace=namespace, workspace=workspace, flink_vvp_conn_id=flink_vvp_conn_id, **kwargs)
        self.fetch_diagnostics = fetch_diagnostics
        _check_one_deployment(deployment_name, deployment_id)
        self.deployment_name = deployment_name
        self.deployment_id = deployment_id
        self.restore_strategy = restore_strategy
        self.savepoint_id = savepoint_id
        self.allow_non_restored_state = allow_non_restored_state
        self.local_variables = local_variables
        self.wait_for = _choice(
            "wait_for", wait_for.upper() if wait_for and wait_for != "auto" else wait_for, WAIT_FOR_VALUES
        )
        self.if_running = _choice("if_running", if_running, IF_RUNNING_VALUES)
        self.stop_strategy_on_restart = _choice("stop_strategy_on_restart", stop_strategy_on_restart, STOP_STRATEGIES)
        self.stop_strategy_on_kill = _choice("stop_strategy_on_kill", stop_strategy_on_kill, (*STOP_STRATEGIES, None))
        self.deferrable = deferrable
        self.poll_interval = seconds("poll_interval", poll_interval)
        self.timeout = seconds("timeout", timeout)
        # The job this try started or took back from an earlier try: what on_kill stops.
        self._owned_job_id: str | None = None

    def execute(self, context: Context) -> str:
        with self._api_errors():
            deployment = _find_deployment(self, self.deployment_name, self.deployment_id)
            deployment_id = deployment.deployment_id
            context["ti"].xcom_push(key=DEPLOYMENT_ID_XCOM_KEY, value=deployment_id)
            self._publish_url(context, deployment_id)
            targets = self._targets(deployment)
            earlier = self._started_earlier(context, deployment_id)
            # Unless it ended badly (a retry is for that: it starts a new job), it is this task's job: no second one.
            if earlier is not None and (earlier.is_active or earlier.status in targets):
                self.log.info(
                    "Job %s, started by an earlier try of this task, is %s: waiting on it again",
                    earlier.job_id,
                    earlier.status,
                )
                return self._watch(context, earlier, targets, owned=True)
            active = _active_job(self, deployment_id)
            if active is None:
                return self._start(context, deployment_id, targets)
            where = f"Deployment {deployment_id} already has job {active.job_id} {active.status}"
            if self.if_running == "attach":
                self.log.info("%s: waiting on it instead of starting another (if_running='attach')", where)
                return self._watch(context, active, targets, owned=False)
            if self.if_running == "fail":
                self._fail(
                    f"{where}: stop it first, or set if_running='attach' to wait on it or 'restart' to replace it"
                )
            self.log.info(
                "%s: stopping it (%s) to start anew (if_running='restart')", where, self.stop_strategy_on_restart
            )
            self.hook.stop_job(
                active.job_id,
                stop_strategy=self.stop_strategy_on_restart,
                namespace=self.namespace,
                workspace=self.workspace,
            )
        self._job_wait(active.job_id, _TERMINAL, ()).run(
            context, deferrable=self.deferrable, method_name="execute_after_stop"
        )
        return self._start(context, deployment_id, targets)

    def execute_after_stop(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger saw the job that ``if_running="restart"`` stopped end; start the new job.

        :param event: the trigger's payload about the stopped job (its ``deployment_id`` with success).
        """
        if self._resumed_with_an_earlier_try_event(context, event):
            return self.execute(context)
        self._resume(context, event)  # fails the task unless the old job ended
        with self._api_errors():
            deployment = self.hook.get_deployment(
                event["deployment_id"], namespace=self.namespace, workspace=self.workspace
            )
            return self._start(context, deployment.deployment_id, self._targets(deployment))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The tables the job's deployment reads and writes (GetLineageInfo) and the job, for OpenLineage
        (the ``openlineage`` extra); see :func:`~airflow_provider_flink_vvp.operator_lineage.job_lineage`."""
        from airflow_provider_flink_vvp.operator_lineage import job_lineage

        return job_lineage(self, task_instance, job_id_key="return_value")

    def on_kill(self) -> None:
        """Stop the job this try started (or took back from an earlier try) when the task is killed while waiting."""
        if self._owned_job_id is not None and self.stop_strategy_on_kill is not None:
            stop_on_kill(self, self._owned_job_id, self.stop_strategy_on_kill, why="The task was killed")

    def _on_execution_timeout(self, event: Mapping[str, Any]) -> None:
        # The trigger names a stop strategy only for a job this task started.
        if event.get("stop_strategy_on_kill") is not None and event.get("job_id"):
            stop_on_kill(
                self, event["job_id"], event["stop_strategy_on_kill"], why="execution_timeout ran out while deferred"
            )

    def _targets(self, deployment: Deployment) -> tuple[str, ...]:
        """The statuses that end the wait; empty for ``wait_for=None``."""
        if self.wait_for is None:
            return ()
        if self.wait_for == "auto":
            return _WAIT_TARGETS["FINISHED" if deployment.execution_mode == "BATCH" else "RUNNING"]
        return _WAIT_TARGETS[self.wait_for]

    def _started_earlier(self, context: Context, deployment_id: str) -> Job | None:
        """The job an earlier try of this task started, if any; a cleared task has none.

        An earlier try whose start may have run without telling (its answer and the check of it were lost)
        left the deployment's jobs as they were before that start: a job not among them is this task's.
        Without a task state store (Airflow before 3.3), a retry takes the newest job of the deployment started
        since the DAG run began and before this try (:func:`started_by_earlier_tries`).
        """
        state = TaskState(self, context)
        if not state.available:
            if not state.is_retry:
                return None
            jobs = self.hook.list_jobs(deployment_id, namespace=self.namespace, workspace=self.workspace)
            return started_by_earlier_tries(jobs, context["dag_run"].start_date, context["ti"].start_date)
        stored = state.get(STARTED_JOB_STATE_KEY)
        if stored is None:
            return None
        if "job_id" in stored:
            return self.hook.get_job(str(stored["job_id"]), namespace=self.namespace, workspace=self.workspace)
        before = set(stored["jobs_before"])
        jobs = self.hook.list_jobs(str(stored["deployment_id"]), namespace=self.namespace, workspace=self.workspace)
        return next((job for job in jobs if job.job_id not in before), None)

    def _start(self, context: Context, deployment_id: str, targets: Sequence[str]) -> str:
        state = TaskState(self, context)
        jobs = self.hook.list_jobs(deployment_id, namespace=self.namespace, workspace=self.workspace)
        jobs_before = [job.job_id for job in jobs]
        # Kept before the start is sent: should its outcome be lost, a retry tells this task's job by it.
        state.set(STARTED_JOB_STATE_KEY, {"deployment_id": deployment_id, "jobs_before": jobs_before})
        job = self.hook.start_job(
            deployment_id,
            namespace=self.namespace,
            workspace=self.workspace,
            restore_strategy=self.restore_strategy,
            savepoint_id=self.savepoint_id or None,
            allow_non_restored_state=self.allow_non_restored_state,
            local_variables=self.local_variables,
            jobs_before=jobs_before,
        )
        state.set(STARTED_JOB_STATE_KEY, {"job_id": job.job_id})
        self.log.info(
            "Started job %s of deployment %s (restore strategy %s)", job.job_id, deployment_id, self.restore_strategy
        )
        return self._watch(context, job, targets, owned=True)

    def _watch(self, context: Context, job: Job, targets: Sequence[str], *, owned: bool) -> str:
        """Push the jobId now, then wait (unless ``wait_for`` is None); on_kill stops the job when ``owned``."""
        self._push_result(context, job.job_id)
        if owned:
            self._owned_job_id = job.job_id
        if targets:
            self._job_wait(job.job_id, targets, _JOB_FAILURES).run(
                context,
                deferrable=self.deferrable,
                stop_strategy_on_kill=self.stop_strategy_on_kill if owned else None,
            )
        return self._succeeded(context, job.job_id)

    def _job_wait(self, job_id: str, targets: Sequence[str], failures: Sequence[str]) -> JobWait:
        return JobWait(self, job_id, targets, failures, self.poll_interval, self.timeout)


class FlinkVVPStopJobOperator(FlinkVVPBaseOperator):
    """Stop a job (StopJob): the one with ``job_id``, or the active job of a deployment.

    With ``deployment_name`` (the newest deployment with it) or ``deployment_id``, the deployment's
    STARTING or RUNNING job is stopped; a deployment with none is left as it is, and the log says so
    (the task then returns None). With ``wait_for_termination`` the task waits until the job has ended
    (CANCELLED or FINISHED; FAILED fails the task). A job that ended already is not stopped again.

    Pushes the jobId (``return_value``), ``deployment_id`` and ``deployment_url``.

    :param job_id: the job's ID. (templated)
    :param deployment_name: instead of ``job_id``: stop the active job of the newest deployment with this name.
        (templated)
    :param deployment_id: instead of ``job_id``: stop the active job of this deployment. (templated)
    :param namespace: the namespace (project); defaults to the connection's. (templated)
    :param workspace: the workspace ID; defaults to the connection's. (templated)
    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.
    :param stop_strategy: NONE, STOP_WITH_SAVEPOINT or STOP_WITH_DRAIN. (templated)
    :param wait_for_termination: wait until the job has ended.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_interval: seconds (or a timedelta) between looks at the job.
    :param timeout: seconds (or a timedelta) to wait for the job to end before failing.
    :param fetch_diagnostics: when the job FAILED, log the service's diagnostics of it (see the start operator).
    """

    template_fields: Sequence[str] = (
        "job_id",
        "deployment_name",
        "deployment_id",
        "namespace",
        "workspace",
        "stop_strategy",
    )
    operator_extra_links = (FlinkVVPDeploymentLink(),)
    _result_key = "job_id"

    def __init__(
        self,
        *,
        job_id: str | None = None,
        deployment_name: str | None = None,
        deployment_id: str | None = None,
        namespace: str | None = None,
        workspace: str | None = None,
        flink_vvp_conn_id: str = "flink_vvp_default",
        stop_strategy: str = "NONE",
        wait_for_termination: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | timedelta = 10.0,
        timeout: float | timedelta = _WEEK,
        fetch_diagnostics: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(namespace=namespace, workspace=workspace, flink_vvp_conn_id=flink_vvp_conn_id, **kwargs)
        self.fetch_diagnostics = fetch_diagnostics
        given = [
            name
            for name, value in (
                ("job_id", job_id),
                ("deployment_name", deployment_name),
                ("deployment_id", deployment_id),
            )
            if value
        ]
        if len(given) != 1:
            raise ValueError(
                f"Pass exactly one of job_id, deployment_name and deployment_id, got {given or 'none'}: "
                "job_id stops that job, the others stop the deployment's active job"
            )
        self.job_id = job_id
        self.deployment_name = deployment_name
        self.deployment_id = deployment_id
        self.stop_strategy = stop_strategy
        self.wait_for_termination = wait_for_termination
        self.deferrable = deferrable
        self.poll_interval = seconds("poll_interval", poll_interval)
        self.timeout = seconds("timeout", timeout)

    def execute(self, context: Context) -> str | None:
        with self._api_errors():
            if self.job_id:
                job = self.hook.get_job(self.job_id, namespace=self.namespace, workspace=self.workspace)
            else:
                deployment = _find_deployment(self, self.deployment_name, self.deployment_id)
                found = _active_job(self, deployment.deployment_id)
                if found is None:
                    self._publish(context, deployment.deployment_id)
                    self.log.info(
                        "Deployment %s has no STARTING or RUNNING job: nothing to stop", deployment.deployment_id
                    )
                    return None
                job = found
            self._publish(context, job.deployment_id)
            self._push_result(context, job.job_id)
            if job.is_terminal:
                self.log.info("Job %s is %s already: nothing to stop", job.job_id, job.status)
            else:
                self.hook.stop_job(
                    job.job_id, stop_strategy=self.stop_strategy, namespace=self.namespace, workspace=self.workspace
                )
                self.log.info(
                    "Stopping job %s of deployment %s (%s)", job.job_id, job.deployment_id, self.stop_strategy
                )
        if not self.wait_for_termination:
            return job.job_id
        wait = JobWait(self, job.job_id, ("CANCELLED", "FINISHED"), ("FAILED",), self.poll_interval, self.timeout)
        return wait.run(context, deferrable=self.deferrable)

    def _publish(self, context: Context, deployment_id: str) -> None:
        context["ti"].xcom_push(key=DEPLOYMENT_ID_XCOM_KEY, value=deployment_id)
        self._publish_url(context, deployment_id)


def _check_one_deployment(deployment_name: str | None, deployment_id: str | None) -> None:
    if bool(deployment_name) == bool(deployment_id):
        raise ValueError(
            "Pass exactly one of deployment_name (the newest deployment with that name is used) and deployment_id, "
            f"got deployment_name={deployment_name!r} and deployment_id={deployment_id!r}"
        )


def _choice(argument: str, value: Any, valid: Sequence[Any]) -> Any:
    if value not in valid:
        raise ValueError(f"{argument} must be one of {', '.join(map(repr, valid))}, got {value!r}")
    return value


def _find_deployment(task: FlinkVVPBaseOperator, deployment_name: str | None, deployment_id: str | None) -> Deployment:
    """The deployment with the ID, or the newest one with the name (checked again: both may be templated)."""
    _check_one_deployment(deployment_name, deployment_id)
    if deployment_id:
        return task.hook.get_deployment(deployment_id, namespace=task.namespace, workspace=task.workspace)
    assert deployment_name  # checked above
    return task.hook.get_latest_deployment(
        deployment_name, namespace=task.namespace, workspace=task.workspace, ignore_resource_setting=True
    )


def _active_job(task: FlinkVVPBaseOperator, deployment_id: str) -> Job | None:
    """The deployment's STARTING or RUNNING job (a deployment runs one at a time), if any."""
    jobs = task.hook.list_jobs(deployment_id, namespace=task.namespace, workspace=task.workspace)
    return next((job for job in jobs if job.is_active), None)
