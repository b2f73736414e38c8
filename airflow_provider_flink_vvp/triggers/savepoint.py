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
    :param polling: where and how to poll, as every polling trigger here takes it (``_PollingTrigger``):
        ``flink_vvp_conn_id``, ``namespace``, ``workspace``, ``poll_interval``, ``end_time``, ``deferred_at``,
        ``execution_timeout`` and ``try_number``.
    """

    def __init__(
        self,
        *,
        savepoint_id: str,
        **polling: Any,
    ) -> None:
        super().__init__(**polling)
        self.savepoint_id = savepoint_id
        self._last_state: str | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            self._classpath(),
            {
                "savepoint_id": self.savepoint_id,
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
