"""Triggers of Realtime Compute for Apache Flink (VVP): the deferrable half of the sensors and operators."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_flink_vvp.api.errors import DeploymentNotFoundError, VVPError
from airflow_provider_flink_vvp.decisions import (
    Baseline,
    Outcome,
    decide,
    decide_job,
    job_timeout_message,
    keeps_waiting,
    missing_deployment_message,
)

if TYPE_CHECKING:
    from airflow_provider_flink_vvp.api.models import Deployment, Job
    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook


class _PollingTrigger(BaseTrigger):
    """Poll with one hook until a look ends the wait, a definite error, or ``end_time``; yield one event.

    Subclasses say what one look is (:meth:`_look`) and what a timeout means (:meth:`_timeout_message`).
    Every event's payload has ``status`` (``success``, ``failure``, ``timeout`` or ``error``) and ``message``,
    and ``try_number`` when the trigger was given one.
    An error is a definite answer of the API (no such job, credentials, permissions, a bad request) that no
    retry heals; anything else that goes wrong (the connection cannot be read, an answer cannot be decoded)
    is an error event with ``retryable`` true, which leaves the task to its retries.

    :param flink_vvp_conn_id: the Airflow connection, read asynchronously in the triggerer.
    :param namespace: the namespace; the connection's when None.
    :param workspace: the workspace ID; the connection's when None.
    :param poll_interval: seconds between polls.
    :param end_time: when to give up, in epoch seconds (wall clock: the trigger may move to another process).
    :param deferred_at: when the task deferred, in epoch seconds: no answer read before it is used.
    :param execution_timeout: whether ``end_time`` is the task's ``execution_timeout`` (the timeout event says so).
    :param try_number: the try that deferred; every event names it (``try_number``).
    """

    def __init__(
        self,
        *,
        flink_vvp_conn_id: str,
        namespace: str | None,
        workspace: str | None,
        poll_interval: float,
        end_time: float,
        deferred_at: float | None = None,
        execution_timeout: bool = False,
        try_number: int | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        self.flink_vvp_conn_id = flink_vvp_conn_id
        self.namespace = namespace
        self.workspace = workspace
        self.poll_interval = poll_interval
        self.end_time = end_time
        self.deferred_at = deferred_at
        self.execution_timeout = execution_timeout
        self.try_number = try_number

    def _common_kwargs(self) -> dict[str, Any]:
        return {
            "flink_vvp_conn_id": self.flink_vvp_conn_id,
            "namespace": self.namespace,
            "workspace": self.workspace,
            "poll_interval": self.poll_interval,
            "end_time": self.end_time,
            "deferred_at": self.deferred_at,
            "execution_timeout": self.execution_timeout,
            "try_number": self.try_number,
        }

    @property
    def _not_before(self) -> float:
        """Shared answers older than the task's deferral (and so than its last look) are not good enough."""
        return self.deferred_at or 0.0

    async def _shared_job(self, hook: FlinkVVPHook, job_id: str, *, not_before: float = 0.0) -> Job:
        """The job (GetJob), one answer per poll interval shared by the triggers watching it (a sensor, an operator,
        an upgrade's watch), none asked for before the task deferred, nor before ``not_before`` (epoch seconds)."""
        return await hook.aget_job(
            job_id,
            namespace=self.namespace,
            workspace=self.workspace,
            max_age=self.poll_interval,
            not_before=max(self._not_before, not_before),
        )

    def _classpath(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}"

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

        # One hook, so one pooled HTTP client, for the trigger's whole life.
        hook = FlinkVVPHook(self.flink_vvp_conn_id)
        try:
            payload = await self._poll(hook)
        except Exception as error:  # an event must tell the task, or it would wait for its timeout
            self.log.exception("The trigger failed")
            payload = {
                "status": "error",
                "retryable": True,
                "message": f"The trigger failed: {type(error).__name__}: {error}",
            }
        finally:
            await hook.aclose()
        if self.try_number is not None:
            payload["try_number"] = self.try_number
        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def _poll(self, hook: FlinkVVPHook) -> dict[str, Any]:
        while True:
            try:
                payload = await self._look(hook)
            except VVPError as error:
                if not keeps_waiting(error):
                    return {"status": "error", "message": str(error)}
                self.log.info("%s Polling again.", error)
            else:
                if payload is not None:
                    return payload
            remaining = self.end_time - time.time()
            if remaining <= 0:
                return {
                    "status": "timeout",
                    "message": self._timeout_message(),
                    "execution_timeout": self.execution_timeout,
                    **self._timeout_payload(),
                }
            await asyncio.sleep(min(self.poll_interval, remaining))

    async def _look(self, hook: FlinkVVPHook) -> dict[str, Any] | None:
        """One poll: the event's payload when the wait is over, None to poll again."""
        raise NotImplementedError

    def _timeout_message(self) -> str:
        raise NotImplementedError

    def _timeout_payload(self) -> dict[str, Any]:
        """What a timeout event tells the task besides its message."""
        return {}


class FlinkVVPJobSummaryTrigger(_PollingTrigger):
    """Poll a deployment's job summary in the triggerer with the same decision as the sensor's poke.

    Yields one event and returns. Its payload: ``status`` (``success``, ``failure``, ``timeout`` or
    ``error``), ``message``, and ``deployment_id`` with success and failure. A deployment that does
    not exist yet and transient API errors keep it polling until ``end_time``.

    :param deployment_name: the deployment's name.
    :param target_states: validated job summary states that end the wait with success.
    :param failure_states: validated job summary states that end it with failure.
    :param baseline: :meth:`~.decisions.Baseline.to_json` of the task's first look; None to take it at the first
        answered poll (then ``missing_deployment`` applies to that poll).
    :param missing_deployment: ``"fail"`` or ``"wait"`` when the first poll finds no deployment.
    :param first_look_at: when the task attempted its first look (epoch seconds), for a ``baseline`` of None:
        the first answered poll forms it as it stood then (:meth:`~.decisions.Baseline.as_of`), so a trigger rebuilt
        after a triggerer restart forms the same one. None: the first poll's counts are the baseline.
    :param polling: where and how to poll, as every polling trigger here takes it (``_PollingTrigger``):
        ``flink_vvp_conn_id``, ``namespace``, ``workspace``, ``poll_interval``, ``end_time``, ``deferred_at``,
        ``execution_timeout`` and ``try_number``.
    """

    def __init__(
        self,
        *,
        deployment_name: str,
        target_states: Sequence[str],
        failure_states: Sequence[str],
        baseline: Mapping[str, Any] | None,
        missing_deployment: str = "wait",
        first_look_at: float | None = None,
        **polling: Any,
    ) -> None:
        super().__init__(**polling)
        self.missing_deployment = missing_deployment
        self.deployment_name = deployment_name
        self.target_states = tuple(target_states)
        self.failure_states = tuple(failure_states)
        self.baseline = dict(baseline) if baseline is not None else None
        self.first_look_at = first_look_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            self._classpath(),
            {
                "deployment_name": self.deployment_name,
                "target_states": list(self.target_states),
                "failure_states": list(self.failure_states),
                "baseline": self.baseline,
                "missing_deployment": self.missing_deployment,
                "first_look_at": self.first_look_at,
                **self._common_kwargs(),
            },
        )

    async def _look(self, hook: FlinkVVPHook) -> dict[str, Any] | None:
        # Triggers watching the same deployment share one answer per poll interval: no
        # staler than the interval this trigger already accepts, and one call, not hundreds. A baseline formed
        # from the jobs listed next needs an answer asked for just before them (see Baseline.as_of's ``asked_at``).
        forms_late_baseline = self.baseline is None and self.first_look_at is not None
        asked_at = time.time()
        try:
            deployment: Deployment | None = await hook.aget_latest_deployment(
                self.deployment_name,
                namespace=self.namespace,
                workspace=self.workspace,
                ignore_resource_setting=True,
                max_age=0.0 if forms_late_baseline else self.poll_interval,
                not_before=asked_at if forms_late_baseline else self._not_before,
            )
        except DeploymentNotFoundError as error:
            first_look = self.baseline is None
            message = missing_deployment_message(
                error, missing_deployment=self.missing_deployment, first_look=first_look
            )
            if first_look and self.missing_deployment == "fail":
                return {"status": "error", "message": message}
            self.log.info(message)
            deployment = None
        baseline = (
            Baseline.from_json(self.baseline)
            if self.baseline is not None
            else await self._first_baseline(hook, deployment, asked_at=asked_at)
        )
        decision = decide(deployment, baseline, target_states=self.target_states, failure_states=self.failure_states)
        if decision.outcome is not Outcome.WAITING:
            assert deployment is not None  # a decision without a deployment keeps waiting
            return {
                "status": decision.outcome.value,
                "message": decision.message,
                "deployment_id": deployment.deployment_id,
            }
        # Set once, by the first answered look; a trigger rebuilt after a restart forms the same by the same rule.
        self.baseline = decision.baseline.to_json()
        if deployment is not None:
            self.log.info(decision.message)
        return None

    async def _first_baseline(self, hook: FlinkVVPHook, deployment: Deployment | None, *, asked_at: float) -> Baseline:
        """The baseline, when the task's looks got no answer: as it stood at ``first_look_at``
        (:meth:`~.decisions.Baseline.as_of`), the same whichever process forms it; this look's counts without one.
        ``asked_at``: when ``deployment`` was asked for."""
        since = self.first_look_at
        if since is None:
            return Baseline.first_look(deployment)
        jobs = []
        if deployment is not None and Baseline.needs_jobs(since, deployment):
            jobs = await hook.alist_jobs(deployment.deployment_id, namespace=self.namespace, workspace=self.workspace)
        return Baseline.as_of(since, deployment, jobs, asked_at=asked_at)

    def _timeout_message(self) -> str:
        return f"Timed out waiting for deployment {self.deployment_name!r} to be {' or '.join(self.target_states)}"


class FlinkVVPJobTrigger(_PollingTrigger):
    """Poll one job (GetJob) with :func:`~.decisions.decide_job`, for the job sensor and the job operators.

    Yields one event and returns. Its payload: ``status`` (``success``, ``failure``, ``timeout`` or
    ``error``), ``message``, ``job_id``, and ``deployment_id`` and ``job_status`` once the job was read.
    Transient API errors keep it polling until ``end_time``; an unknown job is an error.

    When the task is killed while deferred (marked failed or success, or cleared), Airflow 3.3+ calls
    :meth:`on_kill` in the triggerer: with ``stop_strategy_on_kill`` set, it stops the job within
    :data:`~.tasks.KILL_SECONDS` in all, well within the triggerer's ``on_kill_timeout``. A timeout event carries
    ``stop_strategy_on_kill``, so a task whose ``execution_timeout`` ended the wait stops its job too.

    :param job_id: the job's ID.
    :param target_statuses: validated job statuses that end the wait with success.
    :param failure_statuses: validated job statuses that end it with failure.
    :param stop_strategy_on_kill: how to stop the job when the task is killed; None leaves it alone.
    :param echo: what the task gets back in the event's ``echo`` (what a deferral would otherwise lose, e.g.
        before Airflow 3.3, which has no task state store); None: the event has no ``echo``.
    :param polling: where and how to poll, as every polling trigger here takes it (``_PollingTrigger``):
        ``flink_vvp_conn_id``, ``namespace``, ``workspace``, ``poll_interval``, ``end_time``, ``deferred_at``,
        ``execution_timeout`` and ``try_number``.
    """

    def __init__(
        self,
        *,
        job_id: str,
        target_statuses: Sequence[str],
        failure_statuses: Sequence[str],
        stop_strategy_on_kill: str | None = None,
        echo: Mapping[str, Any] | None = None,
        **polling: Any,
    ) -> None:
        super().__init__(**polling)
        self.job_id = job_id
        self.target_statuses = tuple(target_statuses)
        self.failure_statuses = tuple(failure_statuses)
        self.stop_strategy_on_kill = stop_strategy_on_kill
        self.echo = dict(echo) if echo is not None else None
        self._last_status: str | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            self._classpath(),
            {
                "job_id": self.job_id,
                "target_statuses": list(self.target_statuses),
                "failure_statuses": list(self.failure_statuses),
                "stop_strategy_on_kill": self.stop_strategy_on_kill,
                "echo": self.echo,
                **self._common_kwargs(),
            },
        )

    async def _look(self, hook: FlinkVVPHook) -> dict[str, Any] | None:
        job = await self._shared_job(hook, self.job_id)
        decision = decide_job(job, target_statuses=self.target_statuses, failure_statuses=self.failure_statuses)
        self._last_status = job.status
        if decision.outcome is Outcome.WAITING:
            self.log.info(decision.message)
            return None
        return {
            "status": decision.outcome.value,
            "message": decision.message,
            "job_id": job.job_id,
            "deployment_id": job.deployment_id,
            "job_status": job.status,
            **self._echoed(),
        }

    def _timeout_message(self) -> str:
        return job_timeout_message(self.job_id, self.target_statuses, self._last_status)

    def _timeout_payload(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "job_status": self._last_status,
            "stop_strategy_on_kill": self.stop_strategy_on_kill,
            **self._echoed(),
        }

    def _echoed(self) -> dict[str, Any]:
        return {} if self.echo is None else {"echo": self.echo}

    async def on_kill(self) -> None:
        """Stop the job when the task was killed while deferred, if asked to; log what became of it."""
        if self.stop_strategy_on_kill is None:
            return
        from airflow_provider_flink_vvp.tasks import JobKill

        why = "The task was killed while deferred"
        kill = JobKill(
            self.flink_vvp_conn_id, self.job_id, self.stop_strategy_on_kill, self.namespace, self.workspace, why
        )
        self.log.log(*await kill.arun())
