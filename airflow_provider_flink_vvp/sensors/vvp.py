"""Sensors of Realtime Compute for Apache Flink (VVP)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_flink_vvp.api.errors import DeploymentNotFoundError, VVPError
from airflow_provider_flink_vvp.decisions import (
    Baseline,
    Outcome,
    decide,
    keeps_waiting,
    missing_deployment_message,
    validate_job_watch,
    validate_watch,
)
from airflow_provider_flink_vvp.links.vvp import FlinkVVPDeploymentLink
from airflow_provider_flink_vvp.tasks import FlinkVVPBaseOperator, JobWait, TaskState, seconds

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_flink_vvp.api.models import Deployment

#: The task state store key of the baseline (see :class:`FlinkVVPJobSummarySensor`).
BASELINE_STATE_KEY = "flink_vvp_job_summary_baseline"
#: ``missing_deployment`` values of :class:`FlinkVVPJobSummarySensor`.
MISSING_DEPLOYMENT_VALUES = ("fail", "wait")
#: Looks a deferrable job summary sensor makes in the worker at most (while they get no answer) before deferring.
DEFERRABLE_LOOKS_IN_WORKER = 3


class PollIntervalAlias:
    """``poll_interval``, the name all the provider's tasks use, for a sensor's ``poke_interval``: read and set
    (a cluster policy may set either), in seconds or as a timedelta."""

    poke_interval: float

    @property
    def poll_interval(self) -> float:
        return float(self.poke_interval)

    @poll_interval.setter
    def poll_interval(self, value: float | timedelta) -> None:
        self.poke_interval = seconds("poll_interval", value)


class FlinkVVPJobSummarySensor(PollIntervalAlias, FlinkVVPBaseOperator, BaseSensorOperator):
    """Wait until the newest deployment with a name has jobs in a target state; fail on a failure state.

    ``starting``, ``running`` and ``cancelling`` are met while a job is in that state. ``cancelled``,
    ``finished`` and ``failed`` count the deployment's whole history, so they are met only when the
    count grows past the baseline, the counts the sensor's first look saw: a deployment that failed six
    times last month and runs now satisfies ``running`` and does not trip ``failed``. A deployment the
    first look did not see (a newer one with the same name, or one created later) is watched from zero.

    When the first look finds no deployment with the name, the task fails, naming the name, namespace
    and workspace, unless ``missing_deployment="wait"``: then the sensor waits for one to appear and
    logs what it looks for at every look. Transient API errors keep the sensor waiting; credential,
    permission and configuration errors fail it at once.

    When the first look gets no answer (a transient API error), the first answered look forms the baseline
    as it stood at the first attempt (:meth:`~.decisions.Baseline.as_of`): a deployment created after that
    attempt is watched from zero; an older one's counts lose the jobs (ListJobs) that ended FAILED,
    FINISHED or CANCELLED after it. A job that ended while the API erred still counts.

    The baseline, and the first attempt's time, are kept in the task state store (Airflow 3.3+) for the
    try's whole series: they survive ``mode="reschedule"`` and retries (a count that grew during a failed
    try still counts in the retry); clearing the task takes new ones. Deferrable, the sensor looks in the
    worker first, at most :data:`DEFERRABLE_LOOKS_IN_WORKER` times while the API errs, then defers; the
    baseline, or else the first attempt's time, travels inside the trigger, which forms the baseline by the
    same rule, so a triggerer restart keeps it. Before Airflow 3.3, poke and deferrable modes keep them for
    the try only; in ``mode="reschedule"`` the first run of a try only reschedules at once, so that Airflow
    records when the wait began, and every poke after it forms the baseline as it stood then, by the same
    rule, so each poke also lists the deployment's jobs.

    A failure state met fails the task without retries; the sensor's ``timeout`` fails it without retries;
    ``execution_timeout`` holds in every mode, deferred too. Pushes the deploymentId (``return_value``)
    and its console page (``deployment_url``).

    :param deployment_name: the deployment's name. (templated)
    :param namespace: the namespace (project); defaults to the connection's. (templated)
    :param workspace: the workspace ID; defaults to the connection's. (templated)
    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.
    :param target_states: job summary states that end the wait with success (any of them).
    :param failure_states: job summary states that fail the task (any of them); they win over targets.
    :param missing_deployment: ``"fail"`` (when the first look finds no deployment) or ``"wait"``.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_interval: seconds (or a timedelta) between looks; the same as Airflow's ``poke_interval``.
    :param fetch_diagnostics: when the wait fails on a failed job, log the service's diagnosis of the deployment's
        newest FAILED job, the tail of its JobManager start log and the deployment's latest events (each skipped
        with one line if unavailable).
    """

    template_fields: Sequence[str] = ("deployment_name", "namespace", "workspace")
    operator_extra_links = (FlinkVVPDeploymentLink(),)
    _timeout_error = AirflowSensorTimeout
    _state_keys = (BASELINE_STATE_KEY,)

    def __init__(
        self,
        *,
        deployment_name: str,
        namespace: str | None = None,
        workspace: str | None = None,
        flink_vvp_conn_id: str = "flink_vvp_default",
        target_states: str | Iterable[str] = ("running",),
        failure_states: str | Iterable[str] = ("failed",),
        missing_deployment: str = "fail",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | timedelta | None = None,
        fetch_diagnostics: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            namespace=namespace,
            workspace=workspace,
            flink_vvp_conn_id=flink_vvp_conn_id,
            **sensor_durations(poll_interval, kwargs),
        )
        self.fetch_diagnostics = fetch_diagnostics
        self.deployment_name = deployment_name
        self.target_states, self.failure_states = validate_watch(target_states, failure_states)
        if missing_deployment not in MISSING_DEPLOYMENT_VALUES:
            raise ValueError(f"missing_deployment must be 'fail' or 'wait', got {missing_deployment!r}")
        self.missing_deployment = missing_deployment
        self.deferrable = deferrable
        # When the first look was attempted, and the baseline; where the task state store cannot keep them
        # (Airflow before 3.3), for this try.
        self._first_look_at: float | None = None
        self._baseline: Baseline | None = None

    def execute(self, context: Context) -> Any:
        if self.reschedule and not TaskState(self, context).available and _wait_began(context) is None:
            # Before Airflow 3.3 nothing a poke keeps survives it, but Airflow records when a task reschedules: this
            # first run only has that recorded, and every poke after it counts what ended since.
            raise _reschedule_exception()(datetime.now(UTC))
        if not self.deferrable:
            return self._succeeded(context, super().execute(context))
        # The first looks are made here, so that a wait already over needs no triggerer and the baseline usually
        # travels in the trigger; after a few unanswered looks the trigger forms it by the same rule.
        started = time.monotonic()
        for look in range(1, DEFERRABLE_LOOKS_IN_WORKER + 1):
            result = self.poke(context)
            if result.is_done:
                return self._succeeded(context, result.xcom_value)
            if self._baseline is not None or look == DEFERRABLE_LOOKS_IN_WORKER:
                break
            time.sleep(self.poll_interval)
        self._defer(context, self.timeout - (time.monotonic() - started))

    def poke(self, context: Context) -> PokeReturnValue:
        state = TaskState(self, context)
        # Whether no earlier look may have seen the deployment, for ``missing_deployment``.
        first_look = True
        if self.reschedule and not state.available:
            # Nothing survives between pokes: each forms the baseline as it stood when the wait began.
            self._first_look_at, self._baseline = _wait_began(context), None
            first_look = context.get("task_reschedule_count", 0) <= 1
        else:
            self._load_watch(state)
        answered_late = self._first_look_at is not None
        if self._first_look_at is None:
            self._first_look_at = time.time()
            self._save_watch(state)
        baseline = self._baseline
        try:
            asked_at = time.time()
            deployment = self._latest_deployment(first_look=first_look and baseline is None)
            if baseline is None:
                baseline = self._first_baseline(deployment, answered_late=answered_late, asked_at=asked_at)
        except VVPError as error:
            if not keeps_waiting(error):
                self._fail(str(error))
            self.log.info("%s Waiting.", error)
            return PokeReturnValue(is_done=False)

        decision = decide(deployment, baseline, target_states=self.target_states, failure_states=self.failure_states)
        if self._baseline is None:
            self._baseline = baseline
            self._save_watch(state)
        if decision.outcome is Outcome.WAITING:
            if deployment is not None:
                self.log.info("%s. Console: %s", decision.message, self._publish_url(context, deployment.deployment_id))
            return PokeReturnValue(is_done=False)
        assert deployment is not None  # a decision without a deployment keeps waiting
        deployment_id = deployment.deployment_id
        return PokeReturnValue(
            is_done=True,
            xcom_value=self._conclude(context, decision.outcome, decision.message, deployment_id, deployment_id),
        )

    def _latest_deployment(self, *, first_look: bool) -> Deployment | None:
        """The newest deployment with the name; None when there is none and the wait goes on."""
        try:
            return self.hook.get_latest_deployment(
                self.deployment_name, namespace=self.namespace, workspace=self.workspace, ignore_resource_setting=True
            )
        except DeploymentNotFoundError as error:
            message = missing_deployment_message(
                error, missing_deployment=self.missing_deployment, first_look=first_look
            )
            if first_look and self.missing_deployment == "fail":
                self._fail(message)
            self.log.info(message)
            return None

    def _first_baseline(self, deployment: Deployment | None, *, answered_late: bool, asked_at: float) -> Baseline:
        """The baseline, from the first answered look: this one's counts when it is the first attempted look, else
        the counts as they stood at the first attempt (:meth:`~.decisions.Baseline.as_of`); ``asked_at``: when it
        was asked for."""
        if not answered_late:
            return Baseline.first_look(deployment)
        assert self._first_look_at is not None  # recorded by the first attempt
        jobs = []
        if deployment is not None and Baseline.needs_jobs(self._first_look_at, deployment):
            jobs = self.hook.list_jobs(deployment.deployment_id, namespace=self.namespace, workspace=self.workspace)
        return Baseline.as_of(self._first_look_at, deployment, jobs, asked_at=asked_at)

    def _defer(self, context: Context, time_left: float) -> Any:
        from airflow_provider_flink_vvp.triggers.vvp import FlinkVVPJobSummaryTrigger

        deferral = self._deferral(context, max(time_left, 1.0))
        self.defer(
            trigger=FlinkVVPJobSummaryTrigger(
                deployment_name=self.deployment_name,
                namespace=self.namespace,
                workspace=self.workspace,
                flink_vvp_conn_id=self.flink_vvp_conn_id,
                target_states=self.target_states,
                failure_states=self.failure_states,
                baseline=None if self._baseline is None else self._baseline.to_json(),
                first_look_at=self._first_look_at,
                poll_interval=self.poll_interval,
                end_time=deferral.end_time,
                deferred_at=time.time(),
                execution_timeout=deferral.by_execution_timeout,
                try_number=deferral.try_number,
                missing_deployment=self.missing_deployment,
            ),
            method_name="execute_complete",
            timeout=deferral.timeout,
        )

    def _load_watch(self, state: TaskState) -> None:
        """The first attempt's time and the baseline of this try series, as far as they are known."""
        stored = state.get(BASELINE_STATE_KEY)
        if stored is None:
            return
        # An entry written before the first attempt's time was kept has the baseline alone.
        if stored.get("first_look_at") is not None:
            self._first_look_at = float(stored["first_look_at"])
        if stored.get("baseline") is not None:
            self._baseline = Baseline.from_json(stored["baseline"])

    def _save_watch(self, state: TaskState) -> None:
        baseline = None if self._baseline is None else self._baseline.to_json()
        state.set(BASELINE_STATE_KEY, {"first_look_at": self._first_look_at, "baseline": baseline})


def _wait_began(context: Context) -> float | None:
    """When a reschedule-mode wait began (epoch seconds): when Airflow recorded the first reschedule of the try;
    None before it rescheduled."""
    began = context["ti"].get_first_reschedule_date(context)
    return None if began is None else float(began.timestamp())


def _reschedule_exception() -> type[Exception]:
    """Airflow's exception that reschedules a task; it moved to the task SDK in Airflow 3.2."""
    try:
        from airflow.sdk.exceptions import AirflowRescheduleException
    except ImportError:
        from airflow.exceptions import AirflowRescheduleException
    return AirflowRescheduleException


class FlinkVVPJobStatusSensor(PollIntervalAlias, FlinkVVPBaseOperator, BaseSensorOperator):
    """Wait until a job (by its ID) is in a target status; fail on a failure status.

    Each look is :func:`~.decisions.decide_job`, as in :class:`~.operators.vvp.FlinkVVPStartJobOperator`
    and :class:`~.operators.vvp.FlinkVVPStopJobOperator`: a failure status wins over a target, and a
    terminal status (FAILED, CANCELLED, FINISHED) that is neither ends the wait as a failure (waiting for
    RUNNING on a job that FINISHED fails, saying so), with the job's failure reason. Transient API errors
    keep the sensor waiting; an unknown job, credential or permission errors fail it at once, without retries.

    Pushes the jobId (``return_value``) and its deployment's console page (``deployment_url``).

    :param job_id: the job's ID. (templated)
    :param namespace: the namespace (project); defaults to the connection's. (templated)
    :param workspace: the workspace ID; defaults to the connection's. (templated)
    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.
    :param target_statuses: job statuses (STARTING, RUNNING, CANCELLING, FAILED, CANCELLED, FINISHED, any
        case) that end the wait with success.
    :param failure_statuses: job statuses that fail the task.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_interval: seconds (or a timedelta) between looks; the same as Airflow's ``poke_interval``.
    :param fetch_diagnostics: when the job FAILED, log the service's diagnosis of it, the tail of its
        JobManager start log and the deployment's latest events (each skipped with one line if unavailable).
    """

    template_fields: Sequence[str] = ("job_id", "namespace", "workspace")
    operator_extra_links = (FlinkVVPDeploymentLink(),)
    _timeout_error = AirflowSensorTimeout
    _result_key = "job_id"

    def __init__(
        self,
        *,
        job_id: str,
        namespace: str | None = None,
        workspace: str | None = None,
        flink_vvp_conn_id: str = "flink_vvp_default",
        target_statuses: str | Iterable[str] = ("RUNNING",),
        failure_statuses: str | Iterable[str] = ("FAILED",),
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | timedelta | None = None,
        fetch_diagnostics: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            namespace=namespace,
            workspace=workspace,
            flink_vvp_conn_id=flink_vvp_conn_id,
            **sensor_durations(poll_interval, kwargs),
        )
        self.fetch_diagnostics = fetch_diagnostics
        self.job_id = job_id
        self.target_statuses, self.failure_statuses = validate_job_watch(target_statuses, failure_statuses)
        self.deferrable = deferrable

    def execute(self, context: Context) -> Any:
        if self.reschedule and not TaskState(self, context).available and _wait_began(context) is None:
            # Before Airflow 3.3 nothing a poke keeps survives it, but Airflow records when a task reschedules: this
            # first run only has that recorded, and every poke after it counts what ended since.
            raise _reschedule_exception()(datetime.now(UTC))
        if not self.deferrable:
            return super().execute(context)
        # One look first: a wait that is already over needs no triggerer.
        result = self.poke(context)
        if result.is_done:
            return result.xcom_value
        self._wait().defer(context)

    def poke(self, context: Context) -> PokeReturnValue:
        wait = self._wait()
        decision = wait.look()
        if decision is None:
            return PokeReturnValue(is_done=False)
        if decision.outcome is Outcome.WAITING:
            self.log.info(decision.message)
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=wait.conclude(context, decision))

    def _wait(self) -> JobWait:
        return JobWait(self, self.job_id, self.target_statuses, self.failure_statuses, self.poll_interval, self.timeout)


def sensor_durations(poll_interval: float | timedelta | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A sensor's keyword arguments with its durations checked: ``poll_interval`` is ``poke_interval`` by
    another name (pass one of them), ``timeout`` is checked too; both in seconds or as a timedelta."""
    durations = dict(kwargs)
    if poll_interval is not None:
        if "poke_interval" in durations:
            raise ValueError(
                f"Pass poll_interval or poke_interval (the same thing), not both: got poll_interval={poll_interval!r} "
                f"and poke_interval={durations['poke_interval']!r}"
            )
        durations["poke_interval"] = seconds("poll_interval", poll_interval)
    for name in ("poke_interval", "timeout"):
        if durations.get(name) is not None:
            durations[name] = seconds(name, durations[name])
    return durations
