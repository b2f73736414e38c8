"""Savepoints of Realtime Compute for Apache Flink (VVP) deployments: take one and wait until it is COMPLETED.

:func:`take_savepoint` and :class:`SavepointWait` are the two steps, usable by any task of this provider
(a task that stops, updates and restarts a job takes a savepoint the same way).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import conf

from airflow_provider_flink_vvp.api.errors import VVPError
from airflow_provider_flink_vvp.decisions import Outcome, keeps_waiting
from airflow_provider_flink_vvp.links.vvp import FlinkVVPDeploymentLink
from airflow_provider_flink_vvp.operators.vvp import DEPLOYMENT_ID_XCOM_KEY, _check_one_deployment, _find_deployment
from airflow_provider_flink_vvp.savepoints import (
    SavepointDecision,
    created_since,
    decide_savepoint,
    savepoint_timeout_message,
    taken_back_savepoint,
)
from airflow_provider_flink_vvp.tasks import FlinkVVPBaseOperator, TaskState, seconds

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_flink_vvp.api.models import Savepoint

#: The XCom holding where the savepoint was written.
SAVEPOINT_LOCATION_XCOM_KEY = "savepoint_location"
#: The task state store key of the savepoint :class:`FlinkVVPCreateSavepointOperator` took.
CREATED_SAVEPOINT_STATE_KEY = "flink_vvp_created_savepoint"
_HOUR = 60 * 60.0


def take_savepoint(
    task: FlinkVVPBaseOperator,
    context: Context,
    deployment_id: str,
    *,
    state_key: str,
    native_format: bool | None = None,
    description: str | None = None,
) -> Savepoint:
    """A savepoint of the deployment for ``task``: the one an earlier try of the task took, else a new one.

    A retry never takes a second savepoint while its earlier try's is in progress or COMPLETED. The task state
    store (Airflow 3.3+) remembers it under ``state_key``: the IDs listed before the create are written before
    the request goes out, so a create whose answer was lost is still told apart. Without a store, a retry takes
    back the newest savepoint the service took on request for the deployment since the DAG run started
    (:func:`~.savepoints.taken_back_savepoint`).

    :param task: the task taking the savepoint (its hook, namespace, workspace and log).
    :param context: the task's context.
    :param deployment_id: the deployment's ID.
    :param state_key: the task state store key the task keeps the savepoint under.
    :param native_format: write the savepoint in the state backend's native format.
    :param description: a description kept with the savepoint.
    """
    hook, where = task.hook, {"namespace": task.namespace, "workspace": task.workspace}
    state = TaskState(task, context)
    earlier = _taken_earlier(task, context, state, state_key, deployment_id)
    if earlier is not None and earlier.state != "FAILED":
        task.log.info(
            "Savepoint %s, taken by an earlier try of this task, is %s: waiting on it again",
            earlier.savepoint_id,
            earlier.state,
        )
        return earlier
    before = [savepoint.savepoint_id for savepoint in hook.list_savepoints(deployment_id, **where)]
    # Kept before the request is sent: should its outcome be lost, a retry tells this task's savepoint by it.
    state.set(state_key, {"deployment_id": deployment_id, "savepoints_before": before})
    savepoint = hook.create_savepoint(
        deployment_id, native_format=native_format, description=description, savepoints_before=before, **where
    )
    state.set(state_key, {"savepoint_id": savepoint.savepoint_id})
    task.log.info(
        "Taking savepoint %s of deployment %s (job %s)", savepoint.savepoint_id, deployment_id, savepoint.job_id
    )
    return savepoint


def _taken_earlier(
    task: FlinkVVPBaseOperator, context: Context, state: TaskState, state_key: str, deployment_id: str
) -> Savepoint | None:
    hook, where = task.hook, {"namespace": task.namespace, "workspace": task.workspace}
    if not state.available:
        run_started = context["dag_run"].start_date
        if int(context["ti"].try_number) <= 1 or run_started is None:
            return None
        return taken_back_savepoint(hook.list_savepoints(deployment_id, **where), since=run_started)
    stored = state.get(state_key)
    if stored is None:
        return None
    if "savepoint_id" in stored:
        return hook.get_savepoint(str(stored["savepoint_id"]), **where)
    savepoints = hook.list_savepoints(str(stored["deployment_id"]), **where)
    return created_since(savepoints, set(stored["savepoints_before"]))


@dataclass(frozen=True)
class SavepointWait:
    """Waiting for one savepoint: in the worker, or deferred to :class:`~.triggers.savepoint.FlinkVVPSavepointTrigger`.

    A COMPLETED savepoint pushes ``savepoint_location`` and ends the wait with the savepoint ID; a FAILED one fails
    the task with its reason (see the task's ``_failure_is_retryable``).

    :param task: the waiting task: its hook, log and way of ending.
    :param savepoint_id: the savepoint's ID.
    :param deployment_id: its deployment's ID.
    :param poll_interval: seconds between looks.
    :param timeout: seconds before the wait times out.
    """

    task: FlinkVVPBaseOperator
    savepoint_id: str
    deployment_id: str
    poll_interval: float
    timeout: float

    def run(self, context: Context, *, deferrable: bool, method_name: str = "execute_complete") -> str:
        """Wait in the worker, or defer (resuming in ``method_name``) when ``deferrable``; the savepoint ID."""
        if deferrable:
            self.defer(context, method_name=method_name)
        return self.in_worker(context)

    def look(self) -> tuple[Savepoint, SavepointDecision] | None:
        """One look at the savepoint; None after a transient error. A definite error fails the task."""
        task = self.task
        try:
            savepoint = task.hook.get_savepoint(self.savepoint_id, namespace=task.namespace, workspace=task.workspace)
        except VVPError as error:
            if not keeps_waiting(error):
                task._fail(str(error))
            task.log.info("%s Waiting.", error)
            return None
        return savepoint, decide_savepoint(savepoint)

    def in_worker(self, context: Context) -> str:
        """Look every ``poll_interval`` until the savepoint is COMPLETED or FAILED, or the wait times out."""
        deadline = time.monotonic() + self.timeout
        last_state = None
        while (seen := self.look()) is None or seen[1].outcome is Outcome.WAITING:
            if seen is not None:
                last_state = seen[0].state
                self.task.log.info(seen[1].message)
            if time.monotonic() >= deadline:
                self.task._fail(savepoint_timeout_message(self.savepoint_id, last_state), timed_out=True)
            time.sleep(self.poll_interval)
        savepoint, decision = seen
        return conclude_savepoint(self.task, context, decision.outcome, decision.message, savepoint)

    def defer(self, context: Context, *, method_name: str = "execute_complete") -> NoReturn:
        """Hand the rest of the wait to the triggerer; the task resumes in ``method_name``."""
        from airflow_provider_flink_vvp.triggers.savepoint import FlinkVVPSavepointTrigger

        task = self.task
        deferral = task._deferral(context, self.timeout)
        task.defer(
            trigger=FlinkVVPSavepointTrigger(
                savepoint_id=self.savepoint_id,
                namespace=task.namespace,
                workspace=task.workspace,
                flink_vvp_conn_id=task.flink_vvp_conn_id,
                poll_interval=self.poll_interval,
                end_time=deferral.end_time,
                deferred_at=time.time(),
                execution_timeout=deferral.by_execution_timeout,
                try_number=deferral.try_number,
            ),
            method_name=method_name,
            timeout=deferral.timeout,
        )


def conclude_savepoint(
    task: FlinkVVPBaseOperator, context: Context, outcome: Outcome, message: str, savepoint: Savepoint
) -> str:
    """End a savepoint wait: push ``savepoint_location`` of a COMPLETED savepoint, return its ID; fail on FAILED."""
    if outcome is Outcome.SUCCESS:
        context["ti"].xcom_push(key=SAVEPOINT_LOCATION_XCOM_KEY, value=savepoint.location)
    return task._conclude(context, outcome, message, savepoint.savepoint_id, savepoint.deployment_id)


class FlinkVVPCreateSavepointOperator(FlinkVVPBaseOperator):
    """Take a savepoint of a deployment's running job (CreateSavepoint) and wait until it is COMPLETED.

    The deployment is ``deployment_id``, or the newest one named ``deployment_name``. The task returns the
    savepoint's ID (``return_value``, pushed as soon as the savepoint exists) and pushes ``savepoint_location``
    (where it was written) once it is COMPLETED, with ``deployment_id`` and ``deployment_url``.
    With the deployment's asset (:func:`~airflow_provider_flink_vvp.assets.flink_vvp_asset`) in ``outlets``, the
    asset event the task's success records carries ``deploymentId``, ``jobId``, ``jobStatus`` and ``savepointId``.

    A savepoint that ends FAILED fails the try with its failure reason and the console link, as a normal error:
    the task's retries take a new savepoint. A retry (or a resumption) never takes a second savepoint while the
    one an earlier try took is in progress or COMPLETED: it waits on that one again. From Airflow 3.3 the task
    state store remembers it (and a create whose answer was lost, by the savepoints listed before it); before
    3.3, a retry takes back the newest savepoint taken on request for the deployment since the DAG run started,
    if it is in progress or COMPLETED. A ``timeout`` leaves the task to its retries, which wait on the same
    savepoint. A deployment without a running job, configuration, credential and permission errors fail the
    task without retries.

    :param deployment_name: the deployment's name; the newest deployment with it is used. (templated)
    :param deployment_id: the deployment's ID, instead of ``deployment_name``. (templated)
    :param namespace: the namespace (project); defaults to the connection's. (templated)
    :param workspace: the workspace ID; defaults to the connection's. (templated)
    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.
    :param native_format: write the savepoint in the state backend's native format (faster to take and restore,
        not portable across state backends); None leaves it to the service.
    :param description: a description kept with the savepoint. (templated)
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_interval: seconds (or a timedelta) between looks at the savepoint.
    :param timeout: seconds (or a timedelta) to wait for the savepoint before failing the try.
    """

    template_fields: Sequence[str] = ("deployment_name", "deployment_id", "namespace", "workspace", "description")
    operator_extra_links = (FlinkVVPDeploymentLink(),)
    _result_key = "savepoint_id"
    _failure_is_retryable = True
    _state_keys = (CREATED_SAVEPOINT_STATE_KEY,)
    _records_outlet_events = True

    def __init__(
        self,
        *,
        deployment_name: str | None = None,
        deployment_id: str | None = None,
        namespace: str | None = None,
        workspace: str | None = None,
        flink_vvp_conn_id: str = "flink_vvp_default",
        native_format: bool | None = None,
        description: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | timedelta = 5.0,
        timeout: float | timedelta = _HOUR,
        **kwargs: Any,
    ) -> None:
        super().__init__(namespace=namespace, workspace=workspace, flink_vvp_conn_id=flink_vvp_conn_id, **kwargs)
        _check_one_deployment(deployment_name, deployment_id)
        if native_format is not None and not isinstance(native_format, bool):
            raise ValueError(f"native_format must be True, False or None, got {native_format!r}")
        self.deployment_name = deployment_name
        self.deployment_id = deployment_id
        self.native_format = native_format
        self.description = description
        self.deferrable = deferrable
        self.poll_interval = seconds("poll_interval", poll_interval)
        self.timeout = seconds("timeout", timeout)

    def execute(self, context: Context) -> str:
        with self._api_errors():
            deployment_id = _find_deployment(self, self.deployment_name, self.deployment_id).deployment_id
            context["ti"].xcom_push(key=DEPLOYMENT_ID_XCOM_KEY, value=deployment_id)
            self._publish_url(context, deployment_id)
            savepoint = take_savepoint(
                self,
                context,
                deployment_id,
                state_key=CREATED_SAVEPOINT_STATE_KEY,
                native_format=self.native_format,
                description=self.description or None,
            )
        self._push_result(context, savepoint.savepoint_id)
        wait = SavepointWait(self, savepoint.savepoint_id, deployment_id, self.poll_interval, self.timeout)
        return self._succeeded(context, wait.run(context, deferrable=self.deferrable))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger: push ``savepoint_location`` of a COMPLETED savepoint, then end as the base does.

        :param event: the trigger's payload (see :class:`~.triggers.savepoint.FlinkVVPSavepointTrigger`).
        """
        push_location(context, event)
        return super().execute_complete(context, event)


def push_location(context: Context, event: Mapping[str, Any]) -> None:
    """Push ``savepoint_location`` from a savepoint trigger's success event."""
    if event.get("status") == Outcome.SUCCESS:
        context["ti"].xcom_push(key=SAVEPOINT_LOCATION_XCOM_KEY, value=event.get("savepoint_location"))
