"""Sensors of Realtime Compute for Apache Flink (VVP)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
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


class FlinkVVPJobSummarySensor(FlinkVVPBaseOperator, BaseSensorOperator):
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

    The baseline is kept in the task state store (Airflow 3.3+) for the try's whole series: it survives
    ``mode="reschedule"`` and retries (a count that grew during a failed try still counts in the retry);
    clearing the task takes a new one. Deferrable, the first look is made in the worker (repeated while
    the API errs transiently) and the baseline travels inside the trigger, so a triggerer restart keeps
    it. Before Airflow 3.3, poke and deferrable modes keep the baseline for the try only, and
    ``mode="reschedule"`` is refused.

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
        **kwargs: Any,
    ) -> None:
        super().__init__(
            namespace=namespace,
            workspace=workspace,
            flink_vvp_conn_id=flink_vvp_conn_id,
            **sensor_durations(poll_interval, kwargs),
        )
        self.deployment_name = deployment_name
        self.target_states, self.failure_states = validate_watch(target_states, failure_states)
        if missing_deployment not in MISSING_DEPLOYMENT_VALUES:
            raise ValueError(f"missing_deployment must be 'fail' or 'wait', got {missing_deployment!r}")
        self.missing_deployment = missing_deployment
        self.deferrable = deferrable
        # The baseline of this try, where the task state store cannot keep it (Airflow before 3.3).
        self._baseline: Baseline | None = None

    @property
    def poll_interval(self) -> float:
        """``poke_interval``, by the name all the provider's tasks use."""
        return float(self.poke_interval)

    def execute(self, context: Context) -> Any:
        if self.reschedule and not TaskState(self, context).available:
            # A setting this Airflow cannot honour: failed even with soft_fail, which would skip the task on every run.
            raise AirflowFailException(
                'mode="reschedule" needs Airflow 3.3 or later (the task state store keeps the baseline between '
                "pokes): use deferrable=True, which frees the worker slot as well, or mode='poke'"
            )
        if not self.deferrable:
            return self._succeeded(context, super().execute(context))
        # The first look is made here, repeated while the API errs transiently: the baseline is fixed before the
        # trigger takes over, so a restarted trigger means the same thing. A wait already over needs no triggerer.
        started = time.monotonic()
        while not (result := self.poke(context)).is_done and self._baseline is None:
            if time.monotonic() - started >= self.timeout:
                self._fail(f"Timed out: no look at deployment {self.deployment_name!r} got an answer", timed_out=True)
            time.sleep(self.poll_interval)
        if result.is_done:
            return self._succeeded(context, result.xcom_value)
        assert self._baseline is not None  # the loop above ends with one
        self._defer(context, self._baseline, self.timeout - (time.monotonic() - started))

    def poke(self, context: Context) -> PokeReturnValue:
        state = TaskState(self, context)
        baseline = self._load_baseline(state)
        try:
            deployment: Deployment | None = self.hook.get_latest_deployment(
                self.deployment_name,
                namespace=self.namespace,
                workspace=self.workspace,
                ignore_resource_setting=True,
            )
        except VVPError as error:
            if not keeps_waiting(error):
                self._fail(str(error))
            if not isinstance(error, DeploymentNotFoundError):
                self.log.info("%s Waiting.", error)
                return PokeReturnValue(is_done=False)
            if baseline is None and self.missing_deployment == "fail":
                self._fail(f"{error} To wait for it to be created, set missing_deployment='wait'.")
            self.log.info("%s Waiting for it (missing_deployment='wait').", error)
            deployment = None

        decision = decide(deployment, baseline, target_states=self.target_states, failure_states=self.failure_states)
        if baseline is None:
            self._save_baseline(state, decision.baseline)
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

    def _defer(self, context: Context, baseline: Baseline, time_left: float) -> Any:
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
                baseline=baseline.to_json(),
                poll_interval=self.poll_interval,
                end_time=deferral.end_time,
                deferred_at=time.time(),
                execution_timeout=deferral.by_execution_timeout,
                missing_deployment=self.missing_deployment,
            ),
            method_name="execute_complete",
            timeout=deferral.timeout,
        )

    def _load_baseline(self, state: TaskState) -> Baseline | None:
        """The baseline of this try series; None before its first look."""
        stored = state.get(BASELINE_STATE_KEY)
        if stored is not None:
            self._baseline = Baseline.from_json(stored["baseline"])
        return self._baseline

    def _save_baseline(self, state: TaskState, baseline: Baseline) -> None:
        self._baseline = baseline
        state.set(BASELINE_STATE_KEY, {"baseline": baseline.to_json()})


class FlinkVVPJobStatusSensor(FlinkVVPBaseOperator, BaseSensorOperator):
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
        **kwargs: Any,
    ) -> None:
        super().__init__(
            namespace=namespace,
            workspace=workspace,
            flink_vvp_conn_id=flink_vvp_conn_id,
            **sensor_durations(poll_interval, kwargs),
        )
        self.job_id = job_id
        self.target_statuses, self.failure_statuses = validate_job_watch(target_statuses, failure_statuses)
        self.deferrable = deferrable

    @property
    def poll_interval(self) -> float:
        """``poke_interval``, by the name all the provider's tasks use."""
        return float(self.poke_interval)

    def execute(self, context: Context) -> Any:
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
