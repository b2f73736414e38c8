"""The stability trigger: waits in the triggerer until a RUNNING job has kept running, without a restart, a while."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_provider_flink_vvp.stability import decide_stability, unstable_timeout_message
from airflow_provider_flink_vvp.triggers.vvp import _PollingTrigger

if TYPE_CHECKING:
    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook


class FlinkVVPJobStabilityTrigger(_PollingTrigger):
    """Poll one RUNNING job (GetJob, answers shared by the triggerer's triggers of that job) until it has been
    RUNNING for ``stable_for`` seconds since ``running_since`` without ``observedFlinkJobRestarts`` growing past
    ``restarts``, or it restarts, or it no longer runs.

    ``running_since`` and ``restarts`` are the task's first RUNNING look, so a trigger rebuilt after a triggerer
    restart (from :meth:`serialize`) keeps counting from then instead of starting over.

    Yields one event and returns. Its payload: ``status`` (``success``, ``failure``, ``timeout`` or ``error``),
    ``message``, ``job_id``, ``running_since``, ``restarts`` and ``stability``: ``stable``, ``restarted``,
    ``ended`` or ``timeout``; with the first three also ``deployment_id``, ``job_status`` and ``restarts_seen``.

    :param job_id: the job's ID.
    :param running_since: when the job was first seen RUNNING, in epoch seconds.
    :param restarts: its ``observedFlinkJobRestarts`` then; None when it did not say.
    :param stable_for: seconds it must keep RUNNING from ``running_since``.
    :param polling: where and how to poll, as every polling trigger here takes it (``_PollingTrigger``):
        ``flink_vvp_conn_id``, ``namespace``, ``workspace``, ``poll_interval``, ``end_time``, ``deferred_at``,
        ``execution_timeout`` and ``try_number``.
    """

    def __init__(
        self,
        *,
        job_id: str,
        running_since: float,
        restarts: int | None,
        stable_for: float,
        **polling: Any,
    ) -> None:
        super().__init__(**polling)
        self.job_id = job_id
        self.running_since = running_since
        self.restarts = restarts
        self.stable_for = stable_for
        self._last_status: str | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            self._classpath(),
            {
                "job_id": self.job_id,
                "running_since": self.running_since,
                "restarts": self.restarts,
                "stable_for": self.stable_for,
                **self._common_kwargs(),
            },
        )

    async def _look(self, hook: FlinkVVPHook) -> dict[str, Any] | None:
        looked_at = time.time()
        window_end = self.running_since + self.stable_for
        # Only an answer asked for once the window is over tells that the job ran through it; a shared answer may
        # have been asked for up to a poll earlier, so after the window none older is taken.
        over = looked_at >= window_end
        job = await self._shared_job(hook, self.job_id, not_before=window_end if over else 0.0)
        self._last_status = job.status
        decision = decide_stability(
            job,
            running_since=self.running_since,
            restarts=self.restarts,
            stable_for=self.stable_for,
            now=window_end if over else looked_at,
        )
        if decision is None:
            return None
        return {
            "status": "success" if decision.is_stable else "failure",
            "message": decision.message,
            "stability": decision.outcome,
            "deployment_id": job.deployment_id,
            "job_status": job.status,
            "restarts_seen": decision.restarts_seen,
            **self._watch(),
        }

    def _watch(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "running_since": self.running_since, "restarts": self.restarts}

    def _timeout_message(self) -> str:
        return unstable_timeout_message(self.job_id, self.stable_for, self._last_status)

    def _timeout_payload(self) -> dict[str, Any]:
        return {"stability": "timeout", **self._watch()}
