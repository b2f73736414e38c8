"""The savepoint trigger: waits in the triggerer until a savepoint is COMPLETED or FAILED."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_flink_vvp.decisions import Outcome
from airflow_provider_flink_vvp.savepoints import decide_savepoint, savepoint_timeout_message
from airflow_provider_flink_vvp.triggers.vvp import _PollingTrigger

if TYPE_CHECKING:
    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook


class FlinkVVPSavepointTrigger(_PollingTrigger):
    """Poll one savepoint (GetSavepoint) with :func:`~.savepoints.decide_savepoint`.

    Yields one event and returns. Its payload: ``status`` (``success``, ``failure``, ``timeout`` or ``error``),
    ``message``, ``savepoint_id``, and ``deployment_id`` and ``savepoint_location`` once the savepoint was read.
    Transient API errors keep it polling until ``end_time``; an unknown savepoint is an error.

    :param savepoint_id: the savepoint's ID.
    :param namespace: the namespace; the connection's when None.
    :param workspace: the workspace ID; the connection's when None.
    :param flink_vvp_conn_id: the Airflow connection, read asynchronously in the triggerer.
    :param poll_interval: seconds between polls.
    :param end_time: when to give up, in epoch seconds (wall clock: the trigger may move to another process).
    :param deferred_at: when the task deferred, in epoch seconds: no answer read before it is used.
    :param execution_timeout: whether ``end_time`` is the task's ``execution_timeout`` (the timeout event says so).
    """

    def __init__(
        self,
        *,
        savepoint_id: str,
        namespace: str | None,
        workspace: str | None,
        flink_vvp_conn_id: str,
        poll_interval: float,
        end_time: float,
        deferred_at: float | None = None,
        execution_timeout: bool = False,
        try_number: int | None = None,
    ) -> None:
        super().__init__(
            flink_vvp_conn_id=flink_vvp_conn_id,
            poll_interval=poll_interval,
            end_time=end_time,
            deferred_at=deferred_at,
            execution_timeout=execution_timeout,
            try_number=try_number,
        )
        self.savepoint_id = savepoint_id
        self.namespace = namespace
        self.workspace = workspace
        self._last_state: str | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            self._classpath(),
            {
                "savepoint_id": self.savepoint_id,
                "namespace": self.namespace,
                "workspace": self.workspace,
                **self._common_kwargs(),
            },
        )

    async def _look(self, hook: FlinkVVPHook) -> dict[str, Any] | None:
        savepoint = await hook.aget_savepoint(
            self.savepoint_id,
            namespace=self.namespace,
            workspace=self.workspace,
            max_age=self.poll_interval,
            not_before=self._not_before,
        )
        self._last_state = savepoint.state
        decision = decide_savepoint(savepoint)
        if decision.outcome is Outcome.WAITING:
            self.log.info(decision.message)
            return None
        return {
            "status": decision.outcome.value,
            "message": decision.message,
            "savepoint_id": savepoint.savepoint_id,
            "deployment_id": savepoint.deployment_id,
            "savepoint_location": savepoint.location,
        }

    def _timeout_message(self) -> str:
        return savepoint_timeout_message(self.savepoint_id, self._last_state)

    def _timeout_payload(self) -> dict[str, Any]:
        return {"savepoint_id": self.savepoint_id}
