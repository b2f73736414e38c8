"""What the provider's operators and sensors share: the hook, how a task ends, durations, the task state, the job wait.

Module-level imports stay light (no hook, no HTTP client): DAG files import the operators on every parse.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    AirflowTaskTimeout,
    BaseOperator,
)

from airflow_provider_flink_vvp.api.errors import VVPError
from airflow_provider_flink_vvp.decisions import JobDecision, Outcome, decide_job, job_timeout_message, keeps_waiting
from airflow_provider_flink_vvp.links.vvp import DEPLOYMENT_URL_XCOM_KEY

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_flink_vvp.api.models import Job
    from airflow_provider_flink_vvp.api.operations import Operation
    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook, HookConfig

#: A kill's whole time (seconds): the worker's supervisor sends SIGKILL 5 s after SIGTERM; the triggerer gives a
#: trigger's on_kill 30 s.
KILL_SECONDS = 4.5
#: The one attempt of each kill-time call (StopJob, then at most one read of the job) lasts at most this long.
KILL_CALL_TIMEOUT_SECONDS = 2.0
#: Airflow's deferral timeout comes this much later than the trigger's own deadline, so the trigger reports the
#: timeout itself and the task can stop the job it started before failing.
DEFERRAL_GRACE_SECONDS = 30.0

_Result = TypeVar("_Result")


def seconds(name: str, value: float | timedelta) -> float:
    """A duration argument (seconds or a ``timedelta``) in seconds; anything but a positive, finite one is refused.

    :param name: the argument's name, for the error.
    :param value: what the DAG passed.
    """
    if isinstance(value, timedelta):
        amount = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        amount = float(value)
    else:
        raise ValueError(
            f"{name} must be seconds (a number) or a timedelta, got {value!r} of type {type(value).__name__}"
        )
    if not math.isfinite(amount) or amount <= 0:
        raise ValueError(f"{name} must be a positive, finite duration (seconds or a timedelta), got {value!r}")
    return amount


class TaskState:
    """This provider's entries in the task state store (Airflow 3.3+), for one series of tries of a task.

    A retry belongs to the series of the try before it; clearing the task starts a new series, so an entry of an
    earlier series reads as absent. Entries never expire by age (a wait may last longer than any retention); the
    task deletes them when it succeeds. Without a store (Airflow before 3.3) nothing is kept: :attr:`available`.
    """

    def __init__(self, task: BaseOperator, context: Context) -> None:
        # The one place that reads the store: it is in the context from Airflow 3.3 on.
        self._store = context.get("task_state_store")
        # Airflow raises max_tries by the task's retries each time the task is cleared.
        self.series = int(context["ti"].max_tries) - int(task.retries or 0) + 1
        self._try_number = int(context["ti"].try_number)

    @property
    def available(self) -> bool:
        return self._store is not None

    @property
    def is_retry(self) -> bool:
        """Whether an earlier try of this series ran: the series' first try is numbered ``series``."""
        return self._try_number > self.series

    def get(self, key: str) -> Mapping[str, Any] | None:
        """The entry this series wrote under ``key``, if any."""
        stored = None if self._store is None else self._store.get(key)
        if not isinstance(stored, dict) or stored.get("series") != self.series:
            return None
        return stored

    def set(self, key: str, value: Mapping[str, Any]) -> None:
        if self._store is None:
            return
        from airflow.sdk.execution_time.context import NEVER_EXPIRE  # came with the store, in Airflow 3.3

        self._store.set(key, {**value, "series": self.series}, retention=NEVER_EXPIRE)

    def delete(self, key: str) -> None:
        if self._store is not None:
            self._store.delete(key)


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
    #: What the task's own ``timeout`` raises: sensors fail without retries, operators leave it to their retries.
    _timeout_error: type[Exception] = AirflowException
    #: Whether a wait that ended in failure (a job FAILED) leaves the task to its retries.
    _failure_is_retryable = False
    #: The task state store keys the task writes; deleted when it succeeds.
    _state_keys: tuple[str, ...] = ()
    #: Whether a wait that ends on a FAILED job logs the service's diagnostics of it (see :mod:`.diagnostics`);
    #: the tasks that can see one take it as a parameter.
    fetch_diagnostics: bool = False
    #: Whether the task's success fills in the asset events of its deployment's assets in ``outlets``
    #: (see :func:`~.assets.record_outlet_events`); its result is then a ``job_id`` or ``savepoint_id``.
    _records_outlet_events = False

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
            ``deployment_id`` (and ``job_id`` for a job) with success and failure; ``retryable`` with an error
            that is not a definite answer of the API; ``execution_timeout`` with a timeout.
        """
        if self._resumed_with_an_earlier_try_event(context, event):
            afresh: str = self.execute(context)
            return afresh
        return self._succeeded(context, self._resume(context, event))

    def _resumed_with_an_earlier_try_event(self, context: Context, event: Mapping[str, Any]) -> bool:
        """Whether Airflow resumed this try with the event of an earlier try's deferral.

        Before Airflow 3.1.1, the retry of a task that failed as it resumed from a deferral resumes again with
        the same event instead of running ``execute`` (apache/airflow#56704): such a retry must start afresh,
        as a retry does on later versions. Each trigger's event names the try that deferred.
        """
        deferred_by = event.get("try_number")
        if deferred_by is None or deferred_by == context["ti"].try_number:
            return False
        self.log.info(
            "Resumed with the event of try %s's deferral, not of this try (%s): running the task afresh",
            deferred_by,
            context["ti"].try_number,
        )
        return True

    def _resume(self, context: Context, event: Mapping[str, Any]) -> str:
        """The wait's result, from the trigger's event; an event that is not a success fails the task."""
        status = event["status"]
        if status in (Outcome.SUCCESS, Outcome.FAILURE):
            return self._conclude(
                context, Outcome(status), event["message"], event[self._result_key], event["deployment_id"]
            )
        if status == "error" and event.get("retryable"):
            raise AirflowException(event["message"])
        if status == "timeout" and event.get("execution_timeout"):
            self._on_execution_timeout(event)
            raise AirflowTaskTimeout(f"execution_timeout ({self.execution_timeout}) reached: {event['message']}")
        self._fail(event["message"], timed_out=status == "timeout")

    def _succeeded(self, context: Context, result: _Result) -> _Result:
        """The task succeeds with ``result``: its asset events get their extra, and the entries it kept in the task
        state store have served."""
        if self._records_outlet_events:
            from airflow_provider_flink_vvp.assets import record_outlet_events

            with self._api_errors():
                record_outlet_events(self, context, result_key=self._result_key, result=str(result))
        if self._state_keys:
            state = TaskState(self, context)
            for key in self._state_keys:
                state.delete(key)
        return result

    def _on_execution_timeout(self, event: Mapping[str, Any]) -> None:
        """What a task does when ``execution_timeout`` ends its deferred wait, before it fails (what on_kill does)."""

    def _conclude(self, context: Context, outcome: Outcome, message: str, result: str, deployment_id: str) -> str:
        """``result`` for a wait that succeeded; a wait that failed fails the task, with the console link."""
        url = self._publish_url(context, deployment_id)
        if outcome is Outcome.FAILURE:
            if self.fetch_diagnostics:
                log_diagnostics(self, deployment_id, result if self._result_key == "job_id" else None)
            if self._failure_is_retryable:
                raise AirflowException(f"{message}. Console: {url}")
            self._fail(f"{message}. Console: {url}")
        self.log.info("%s. Console: %s", message, url)
        return result

    def _fail(self, message: str, *, timed_out: bool = False) -> NoReturn:
        """End the task: skipped with ``soft_fail`` (in every mode), else failed; without retries unless the task's
        own timeout ran out and the task is an operator (see ``_timeout_error``)."""
        if self.soft_fail:
            # Logged as well: resuming from a deferral replaces a skip's reason with a generic one.
            self.log.warning("Skipping (soft_fail): %s", message)
            raise AirflowSkipException(message)
        raise (self._timeout_error if timed_out else AirflowFailException)(message)

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

    def _push_result(self, context: Context, value: str) -> None:
        """Push ``return_value`` before the task ends (so it is there even if the wait fails), unless told not to."""
        if self.do_xcom_push:
            context["ti"].xcom_push(key="return_value", value=value)

    def _deferral(self, context: Context, timeout: float) -> Deferral:
        """When a deferred wait of ``timeout`` seconds ends: at the task's ``timeout`` or when what is left of its
        ``execution_timeout`` runs out, whichever comes first (Airflow does not enforce ``execution_timeout``
        while a task is deferred)."""
        left = None
        if self.execution_timeout is not None:
            # A try resumed from a deferral keeps its start date; Airflow 3.0.0's dag.test() sets none: from now.
            started: datetime = context["ti"].start_date or datetime.now(UTC)
            left = self.execution_timeout.total_seconds() - (datetime.now(UTC) - started).total_seconds()
            if left <= 0:
                raise AirflowTaskTimeout(f"execution_timeout ({self.execution_timeout}) reached")
        by_execution_timeout = left is not None and left < timeout
        budget = left if left is not None and by_execution_timeout else timeout
        return Deferral(
            end_time=time.time() + budget,
            timeout=timedelta(seconds=budget + DEFERRAL_GRACE_SECONDS),
            by_execution_timeout=by_execution_timeout,
            try_number=int(context["ti"].try_number),
        )


@dataclass(frozen=True)
class Deferral:
    """When a deferred wait ends.

    :param end_time: the trigger's deadline, in epoch seconds.
    :param timeout: Airflow's deferral timeout, a little later, so the trigger reports the timeout itself.
    :param by_execution_timeout: whether the deadline is the task's ``execution_timeout`` (else its ``timeout``).
    :param try_number: the try that defers; the trigger's event names it.
    """

    end_time: float
    timeout: timedelta
    by_execution_timeout: bool
    try_number: int


@dataclass(frozen=True)
class JobWait:
    """Waiting for one job: in the worker, or deferred to :class:`~.triggers.vvp.FlinkVVPJobTrigger`.

    Used by the start and stop operators and the job status sensor; each look is :func:`~.decisions.decide_job`.

    :param task: the waiting task: its hook, log and way of ending.
    :param job_id: the job's ID.
    :param targets: statuses that end the wait with success.
    :param failures: statuses that end it with failure.
    :param poll_interval: seconds between looks.
    :param timeout: seconds before the wait times out.
    """

    task: FlinkVVPBaseOperator
    job_id: str
    targets: Sequence[str]
    failures: Sequence[str]
    poll_interval: float
    timeout: float

    def look(self) -> JobDecision | None:
        """One look at the job; None after a transient error. A definite error fails the task."""
        task = self.task
        try:
            job = task.hook.get_job(self.job_id, namespace=task.namespace, workspace=task.workspace)
        except VVPError as error:
            if not keeps_waiting(error):
                task._fail(str(error))
            task.log.info("%s Waiting.", error)
            return None
        return decide_job(job, target_statuses=self.targets, failure_statuses=self.failures)

    def in_worker(self, context: Context) -> str:
        """Look every ``poll_interval`` until a look ends the wait; return the job ID or fail the task."""
        deadline = time.monotonic() + self.timeout
        last_status = None
        while (decision := self.look()) is None or decision.outcome is Outcome.WAITING:
            if decision is not None:
                last_status = decision.status
                self.task.log.info(decision.message)
            if time.monotonic() >= deadline:
                self.task._fail(job_timeout_message(self.job_id, self.targets, last_status), timed_out=True)
            time.sleep(self.poll_interval)
        return self.conclude(context, decision)

    def run(
        self,
        context: Context,
        *,
        deferrable: bool,
        method_name: str = "execute_complete",
        stop_strategy_on_kill: str | None = None,
    ) -> str:
        """Wait in the worker, or defer (resuming in ``method_name``) when ``deferrable``."""
        if deferrable:
            self.defer(context, method_name=method_name, stop_strategy_on_kill=stop_strategy_on_kill)
        return self.in_worker(context)

    def conclude(self, context: Context, decision: JobDecision) -> str:
        return self.task._conclude(context, decision.outcome, decision.message, self.job_id, decision.deployment_id)

    def defer(
        self,
        context: Context,
        *,
        method_name: str = "execute_complete",
        stop_strategy_on_kill: str | None = None,
        echo: Mapping[str, Any] | None = None,
    ) -> NoReturn:
        """Hand the rest of the wait to the triggerer; the task resumes in ``method_name`` with an event that
        carries ``echo`` back (see :class:`~.triggers.vvp.FlinkVVPJobTrigger`)."""
        from airflow_provider_flink_vvp.triggers.vvp import FlinkVVPJobTrigger

        task = self.task
        deferral = task._deferral(context, self.timeout)
        task.defer(
            trigger=FlinkVVPJobTrigger(
                job_id=self.job_id,
                namespace=task.namespace,
                workspace=task.workspace,
                flink_vvp_conn_id=task.flink_vvp_conn_id,
                target_statuses=self.targets,
                failure_statuses=self.failures,
                poll_interval=self.poll_interval,
                end_time=deferral.end_time,
                deferred_at=time.time(),
                execution_timeout=deferral.by_execution_timeout,
                try_number=deferral.try_number,
                stop_strategy_on_kill=stop_strategy_on_kill,
                echo=echo,
            ),
            method_name=method_name,
            timeout=deferral.timeout,
        )


def kill_hook(flink_vvp_conn_id: str) -> FlinkVVPHook:
    """A hook for calls made while a task is killed: one attempt each, of at most :data:`KILL_CALL_TIMEOUT_SECONDS`."""
    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

    return FlinkVVPHook(flink_vvp_conn_id, timeout=KILL_CALL_TIMEOUT_SECONDS, retry_limit=1)


def stop_on_kill(task: FlinkVVPBaseOperator, job_id: str, stop_strategy: str, *, why: str) -> None:
    """Stop the job ``task`` started, from the worker, within the kill's time (see :class:`JobKill`)."""
    kill = JobKill(task.flink_vvp_conn_id, job_id, stop_strategy, task.namespace, task.workspace, why)
    task.log.log(*kill.run())


@dataclass(frozen=True)
class JobKill:
    """Stopping the job a task started when the task is killed, within :data:`KILL_SECONDS` in all.

    One StopJob of one attempt; when it fails (refused, or no answer), at most one read of the job to tell
    "already ended" or "stopping" from "could not be confirmed". A stop whose answer was lost is not sent
    again. What became of the job is told as a log line, never raised.

    :param flink_vvp_conn_id: the Airflow connection.
    :param job_id: the job to stop.
    :param stop_strategy: NONE, STOP_WITH_SAVEPOINT or STOP_WITH_DRAIN.
    :param namespace: the namespace; the connection's when None.
    :param workspace: the workspace ID; the connection's when None.
    :param why: what ended the task, for the log.
    """

    flink_vvp_conn_id: str
    job_id: str
    stop_strategy: str
    namespace: str | None
    workspace: str | None
    why: str

    def run(self) -> tuple[int, str]:
        """Stop the job from the worker (``on_kill``): two calls of one short attempt each, the second only when it
        fits the bound.

        Returns the log level and line (:meth:`report`)."""
        deadline = time.monotonic() + KILL_SECONDS
        hook = kill_hook(self.flink_vvp_conn_id)
        try:
            hook.get_conn().call(self._stop_operation(hook.config))
        except Exception as error:
            job = None
            # The read only when its whole attempt fits what is left of the kill's time (a slow stop, a slow start).
            if time.monotonic() + KILL_CALL_TIMEOUT_SECONDS <= deadline:
                with suppress(Exception):
                    job = hook.get_job(self.job_id, namespace=self.namespace, workspace=self.workspace)
            return self.report(job, error)
        finally:
            hook.close()
        return self.report(None, None)

    async def arun(self) -> tuple[int, str]:
        """Stop the job from the triggerer (a trigger's ``on_kill``), under one deadline for the whole kill.

        Returns the log level and line (:meth:`report`)."""
        hook = kill_hook(self.flink_vvp_conn_id)
        try:
            async with asyncio.timeout(KILL_SECONDS):
                return await self._astop(hook)
        except TimeoutError:
            return self.report(None, TimeoutError(f"the kill's {KILL_SECONDS:g} s ran out"))
        finally:
            with suppress(Exception):
                await hook.aclose()

    async def _astop(self, hook: FlinkVVPHook) -> tuple[int, str]:
        try:
            await (await hook.aget_conn()).call(self._stop_operation(await hook.aget_config()))
        except Exception as error:
            job = None
            with suppress(Exception):
                job = await hook.aget_job(self.job_id, namespace=self.namespace, workspace=self.workspace)
            return self.report(job, error)
        return self.report(None, None)

    def _stop_operation(self, config: HookConfig) -> Operation[Job]:
        from airflow_provider_flink_vvp.api import operations  # not loaded when DAG files import the tasks

        # Sent once, with no confirming read inside the call: the report's read serves as the confirmation.
        return config.operation(
            operations.stop_job, self.namespace, self.workspace, job_id=self.job_id, stop_strategy=self.stop_strategy
        )

    def report(self, job: Job | None, error: Exception | None) -> tuple[int, str]:
        """The log level and line: stopped, already ended, stopping, or not confirmed (``job`` None: not read)."""
        job_id, why = self.job_id, self.why
        if error is None:
            return logging.INFO, f"{why}: stopped job {job_id} ({self.stop_strategy})"
        if job is not None and job.is_terminal:
            return logging.INFO, f"{why}; job {job_id} is {job.status} already: nothing to stop"
        if job is not None and job.status == "CANCELLING":
            return logging.INFO, f"{why}: job {job_id} is CANCELLING"
        return (
            logging.WARNING,
            f"{why}, but the stop of job {job_id} could not be confirmed ({type(error).__name__}: {error}); "
            "it may still be running: check it in the console",
        )


def log_diagnostics(task: FlinkVVPBaseOperator, deployment_id: str, job_id: str | None) -> None:
    """Log what the service can tell about a failed job (``job_id``; None: the deployment's newest FAILED job).

    Each call makes one short attempt and all end within a bound (see :mod:`.diagnostics`); none raises.
    """
    from airflow_provider_flink_vvp.diagnostics import CALL_TIMEOUT_SECONDS, FailureDiagnostics
    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

    hook = FlinkVVPHook(task.flink_vvp_conn_id, timeout=CALL_TIMEOUT_SECONDS, retry_limit=1)
    try:
        FailureDiagnostics(hook, task.log, deployment_id, job_id, task.namespace, task.workspace).log_all()
    finally:
        hook.close()
