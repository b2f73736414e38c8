"""What the provider's operators and sensors share: the hook, the console link, how a task ends, the job wait.

Module-level imports stay light (no hook, no HTTP client): DAG files import the operators on every parse.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_flink_vvp.api.errors import VVPError
from airflow_provider_flink_vvp.decisions import JobDecision, Outcome, decide_job, job_timeout_message, keeps_waiting
from airflow_provider_flink_vvp.links.vvp import DEPLOYMENT_URL_XCOM_KEY

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook


class FlinkVVPBaseOperator(BaseOperator):
    """The shared half of the provider's tasks.

    :param namespace: the namespace (project); defaults to the connection's.
    :param workspace: the workspace ID; defaults to the connection's.
    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.

    A trigger's event ends the task in :meth:`execute_complete`: success returns the event's
    ``_result_key`` field, failure fails the task with the console link, a timeout or an error fails it.
    """

    #: Sensors skip instead of failing when set; BaseSensorOperator sets it per task.
    soft_fail: bool = False
    #: The event field a successful wait returns: ``deployment_id`` or ``job_id``.
    _result_key = "deployment_id"

    def __init__(
        self,
        *,
        namespace: str | None = None,
        workspace: str | None = None,
        flink_vvp_conn_id: str = "flink_vvp_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.namespace = namespace
        self.workspace = workspace
        self.flink_vvp_conn_id = flink_vvp_conn_id

    @cached_property
    def hook(self) -> FlinkVVPHook:
        from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

        return FlinkVVPHook(self.flink_vvp_conn_id)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger: succeed or fail as a look from the worker would have.

        :param event: the trigger's payload: ``status`` (success, failure, timeout, error) and ``message``;
            ``deployment_id`` (and ``job_id`` for a job) with success and failure.
        """
        status = event["status"]
        if status in (Outcome.SUCCESS, Outcome.FAILURE):
            return self._conclude(
                context, Outcome(status), event["message"], event[self._result_key], event["deployment_id"]
            )
        self._fail(event["message"], timed_out=status == "timeout")

    def _conclude(self, context: Context, outcome: Outcome, message: str, result: str, deployment_id: str) -> str:
        """``result`` for a wait that succeeded; a wait that failed fails the task, with the console link."""
        url = self._publish_url(context, deployment_id)
        if outcome is Outcome.FAILURE:
            self._fail(f"{message}. Console: {url}")
        self.log.info("%s. Console: %s", message, url)
        return result

    def _fail(self, message: str, *, timed_out: bool = False) -> NoReturn:
        """End the task: skipped with ``soft_fail`` (in every mode), else failed without retries.

        A timeout fails a sensor without retries (AirflowSensorTimeout) and leaves an operator to its
        retries, which find the job again instead of starting another.
        """
        from airflow.providers.common.compat.sdk import (
            AirflowException,
            AirflowFailException,
            AirflowSensorTimeout,
            AirflowSkipException,
            BaseSensorOperator,
        )

        if self.soft_fail:
            # Logged as well: resuming from a deferral replaces a skip's reason with a generic one.
            self.log.warning("Skipping (soft_fail): %s", message)
            raise AirflowSkipException(message)
        if timed_out:
            raise AirflowSensorTimeout(message) if isinstance(self, BaseSensorOperator) else AirflowException(message)
        raise AirflowFailException(message)

    @contextmanager
    def _api_errors(self) -> Iterator[None]:
        """Leave transient API errors (already retried by the client) to the task's retries; fail on the rest
        (no such deployment or job, credentials, permissions, configuration), which no retry heals."""
        try:
            yield
        except VVPError as error:
            if error.retryable:
                raise
            self._fail(str(error))

    def _publish_url(self, context: Context, deployment_id: str) -> str:
        """Push the deployment's console URL (the ``deployment_url`` XCom and the task's link) and return it."""
        with self._api_errors():
            url = self.hook.config.deployment_url(deployment_id, self.namespace, self.workspace)
        context["ti"].xcom_push(key=DEPLOYMENT_URL_XCOM_KEY, value=url)
        return url


class FlinkVVPJobWaitOperator(FlinkVVPBaseOperator):
    """Waiting for one job, in a worker or deferred to :class:`~.triggers.vvp.FlinkVVPJobTrigger`.

    Subclasses set ``deferrable``, ``poll_interval`` (seconds) and ``timeout`` (seconds).
    """

    deferrable: bool
    poll_interval: float
    timeout: float
    _result_key = "job_id"

    def _look_at_job(self, job_id: str, targets: Sequence[str], failures: Sequence[str]) -> JobDecision | None:
        """One look at the job; None after a transient error. A definite error fails the task."""
        try:
            job = self.hook.get_job(job_id, namespace=self.namespace, workspace=self.workspace)
        except VVPError as error:
            if not keeps_waiting(error):
                self._fail(str(error))
            self.log.info("%s Waiting.", error)
            return None
        return decide_job(job, target_statuses=targets, failure_statuses=failures)

    def _wait_for_job(
        self,
        context: Context,
        job_id: str,
        targets: Sequence[str],
        failures: Sequence[str],
        *,
        stop_strategy_on_kill: str | None = None,
        method_name: str = "execute_complete",
    ) -> str:
        """Wait until :func:`~.decisions.decide_job` ends the wait; return the job ID or fail the task.

        Deferrable: defer and resume in ``method_name``; else poll from the worker.
        """
        if self.deferrable:
            from airflow_provider_flink_vvp.triggers.vvp import FlinkVVPJobTrigger

            self.defer(
                trigger=FlinkVVPJobTrigger(
                    job_id=job_id,
                    namespace=self.namespace,
                    workspace=self.workspace,
                    flink_vvp_conn_id=self.flink_vvp_conn_id,
                    target_statuses=targets,
                    failure_statuses=failures,
                    poll_interval=self.poll_interval,
                    end_time=time.time() + self.timeout,
                    stop_strategy_on_kill=stop_strategy_on_kill,
                ),
                method_name=method_name,
                timeout=timedelta(seconds=self.timeout),
            )
        deadline = time.monotonic() + self.timeout
        last_status = None
        while (decision := self._look_at_job(job_id, targets, failures)) is None or decision.outcome is Outcome.WAITING:
            if decision is not None:
                last_status = decision.status
                self.log.info(decision.message)
            if time.monotonic() >= deadline:
                self._fail(job_timeout_message(job_id, targets, last_status), timed_out=True)
            time.sleep(self.poll_interval)
        return self._conclude(context, decision.outcome, decision.message, job_id, decision.deployment_id)
