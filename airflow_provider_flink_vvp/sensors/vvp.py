"""Sensors of Realtime Compute for Apache Flink (VVP)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_provider_flink_vvp.api.errors import VVPError
from airflow_provider_flink_vvp.decisions import (
    Baseline,
    Outcome,
    decide,
    keeps_waiting,
    validate_job_watch,
    validate_watch,
)
from airflow_provider_flink_vvp.links.vvp import FlinkVVPDeploymentLink
from airflow_provider_flink_vvp.tasks import FlinkVVPBaseOperator, FlinkVVPJobWaitOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: The task state store key of the baseline (see :class:`FlinkVVPJobSummarySensor`).
BASELINE_STATE_KEY = "flink_vvp_job_summary_baseline"


class _LookThenDeferSensor(BaseSensorOperator):
    """A sensor that pokes from the worker, or, deferrable, looks once and defers only if the wait is not over."""

    deferrable: bool

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        # One look first: a wait that is already over needs no triggerer.
        result = self.poke(context)
        if result.is_done:
            return result.xcom_value
        return self._defer(context)

    def poke(self, context: Context) -> PokeReturnValue:
        raise NotImplementedError

    def _defer(self, context: Context) -> Any:
        """Hand the rest of the wait to a trigger."""
        raise NotImplementedError


class FlinkVVPJobSummarySensor(FlinkVVPBaseOperator, _LookThenDeferSensor):
    """Wait until the newest deployment with a name has jobs in a target state; fail on a failure state.

    ``starting``, ``running`` and ``cancelling`` are met while a job is in that state. ``cancelled``,
    ``finished`` and ``failed`` count the deployment's whole history, so they are met only when the
    count grows after the first poke: a deployment that failed six times last month and runs now
    satisfies ``running`` and does not trip ``failed``. A newer deployment with the same name is
    watched from zero. A deployment that does not exist yet, and transient API errors, keep the
    sensor waiting; credential, permission and configuration errors fail it at once.

    The first poke's counts (the baseline) are kept in the task state store, so they survive
    ``mode="reschedule"``, where every poke runs in a new process and Airflow clears the task's
    XComs before each run; they are tied to the try, so a retry takes a fresh baseline. In
    deferrable mode the baseline travels inside the trigger.

    Pushes the deploymentId (``return_value``) and its console page (``deployment_url``).

    :param deployment_name: the deployment's name. (templated)
    :param namespace: the namespace (project); defaults to the connection's. (templated)
    :param workspace: the workspace ID; defaults to the connection's. (templated)
    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.
    :param target_states: job summary states that end the wait with success (any of them).
    :param failure_states: job summary states that fail the task (any of them); they win over targets.
    :param deferrable: wait in the triggerer instead of a worker slot.
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
        target_states: str | Iterable[str] = ("running",),
        failure_states: str | Iterable[str] = ("failed",),
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(namespace=namespace, workspace=workspace, flink_vvp_conn_id=flink_vvp_conn_id, **kwargs)
        self.deployment_name = deployment_name
        self.target_states, self.failure_states = validate_watch(target_states, failure_states)
        self.deferrable = deferrable

    def _defer(self, context: Context) -> NoReturn:
        from airflow_provider_flink_vvp.triggers.vvp import FlinkVVPJobSummaryTrigger

        baseline = _load_baseline(context)
        self.defer(
            trigger=FlinkVVPJobSummaryTrigger(
                deployment_name=self.deployment_name,
                namespace=self.namespace,
                workspace=self.workspace,
                flink_vvp_conn_id=self.flink_vvp_conn_id,
                target_states=self.target_states,
                failure_states=self.failure_states,
                baseline=baseline.to_json() if baseline else None,
                poll_interval=self.poke_interval,
                end_time=time.time() + self.timeout,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        baseline = _load_baseline(context)
        try:
            deployment = self.hook.get_latest_deployment(
                self.deployment_name,
                namespace=self.namespace,
                workspace=self.workspace,
                ignore_resource_setting=True,
            )
        except VVPError as error:
            if not keeps_waiting(error):
                self._fail(str(error))
            self.log.info("%s Waiting.", error)
            return PokeReturnValue(is_done=False)

        decision = decide(deployment, baseline, target_states=self.target_states, failure_states=self.failure_states)
        if decision.baseline != baseline:
            _save_baseline(context, decision.baseline)
        deployment_id = deployment.deployment_id
        if decision.outcome is Outcome.WAITING:
            self.log.info("%s. Console: %s", decision.message, self._publish_url(context, deployment_id))
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(
            is_done=True,
            xcom_value=self._conclude(context, decision.outcome, decision.message, deployment_id, deployment_id),
        )


class FlinkVVPJobStatusSensor(FlinkVVPJobWaitOperator, _LookThenDeferSensor):
    """Wait until a job (by its ID) is in a target status; fail on a failure status.

    Each look is :func:`~.decisions.decide_job`, as in :class:`~.operators.vvp.FlinkVVPStartJobOperator`
    and :class:`~.operators.vvp.FlinkVVPStopJobOperator`: a failure status wins over a target, and a
    terminal status (FAILED, CANCELLED, FINISHED) that is neither ends the wait as a failure (waiting for
    RUNNING on a job that FINISHED fails, saying so), with the job's failure reason. Transient API errors
    keep the sensor waiting; an unknown job, credential or permission errors fail it at once.

    Pushes the jobId (``return_value``) and its deployment's console page (``deployment_url``).

    :param job_id: the job's ID. (templated)
    :param namespace: the namespace (project); defaults to the connection's. (templated)
    :param workspace: the workspace ID; defaults to the connection's. (templated)
    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.
    :param target_statuses: job statuses (STARTING, RUNNING, CANCELLING, FAILED, CANCELLED, FINISHED, any
        case) that end the wait with success.
    :param failure_statuses: job statuses that fail the task.
    :param deferrable: wait in the triggerer instead of a worker slot.
    """

    template_fields: Sequence[str] = ("job_id", "namespace", "workspace")
    operator_extra_links = (FlinkVVPDeploymentLink(),)

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
        **kwargs: Any,
    ) -> None:
        super().__init__(namespace=namespace, workspace=workspace, flink_vvp_conn_id=flink_vvp_conn_id, **kwargs)
        self.job_id = job_id
        self.target_statuses, self.failure_statuses = validate_job_watch(target_statuses, failure_statuses)
        self.deferrable = deferrable

    @property
    def poll_interval(self) -> float:  # type: ignore[override]  # a sensor's interval is its poke_interval
        return float(self.poke_interval)

    def _defer(self, context: Context) -> Any:
        return self._wait_for_job(context, self.job_id, self.target_statuses, self.failure_statuses)

    def poke(self, context: Context) -> PokeReturnValue:
        decision = self._look_at_job(self.job_id, self.target_statuses, self.failure_statuses)
        if decision is None:
            return PokeReturnValue(is_done=False)
        if decision.outcome is Outcome.WAITING:
            self.log.info(decision.message)
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(
            is_done=True,
            xcom_value=self._conclude(context, decision.outcome, decision.message, self.job_id, decision.deployment_id),
        )


def _load_baseline(context: Context) -> Baseline | None:
    """The baseline this try stored; None before its first look."""
    stored = context["task_state_store"].get(BASELINE_STATE_KEY)
    if not isinstance(stored, dict) or stored.get("try_number") != context["ti"].try_number:
        return None
    baseline = stored["baseline"]
    assert isinstance(baseline, dict)  # written by _save_baseline
    return Baseline.from_json(baseline)


def _save_baseline(context: Context, baseline: Baseline) -> None:
    context["task_state_store"].set(
        BASELINE_STATE_KEY, {"try_number": context["ti"].try_number, "baseline": baseline.to_json()}
    )
