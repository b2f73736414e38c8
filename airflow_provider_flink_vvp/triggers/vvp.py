"""Triggers of Realtime Compute for Apache Flink (VVP): the deferrable half of the sensors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_flink_vvp.api.errors import VVPError
from airflow_provider_flink_vvp.decisions import Baseline, Outcome, decide, keeps_waiting

if TYPE_CHECKING:
    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook


class FlinkVVPJobSummaryTrigger(BaseTrigger):
    """Poll a deployment's job summary in the triggerer with the same decision as the sensor's poke.

    Yields one event and returns. Its payload: ``status`` (``success``, ``failure``, ``timeout`` or
    ``error``), ``message``, and ``deployment_id`` with success and failure. A deployment that does
    not exist yet and transient API errors keep it polling until ``end_time``.

    :param deployment_name: the deployment's name.
    :param namespace: the namespace; the connection's when None.
    :param workspace: the workspace ID; the connection's when None.
    :param flink_vvp_conn_id: the Airflow connection, read asynchronously in the triggerer.
    :param target_states: validated job summary states that end the wait with success.
    :param failure_states: validated job summary states that end it with failure.
    :param baseline: :meth:`Baseline.to_json` of the first poke; None to take it at the first poll.
    :param poll_interval: seconds between polls.
    :param end_time: when to give up, in epoch seconds (wall clock: the trigger may move to another process).
    """

    def __init__(
        self,
        *,
        deployment_name: str,
        namespace: str | None,
        workspace: str | None,
        flink_vvp_conn_id: str,
        target_states: Sequence[str],
        failure_states: Sequence[str],
        baseline: Mapping[str, Any] | None,
        poll_interval: float,
        end_time: float,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        self.deployment_name = deployment_name
        self.namespace = namespace
        self.workspace = workspace
        self.flink_vvp_conn_id = flink_vvp_conn_id
        self.target_states = tuple(target_states)
        self.failure_states = tuple(failure_states)
        self.baseline = dict(baseline) if baseline is not None else None
        self.poll_interval = poll_interval
        self.end_time = end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "deployment_name": self.deployment_name,
                "namespace": self.namespace,
                "workspace": self.workspace,
                "flink_vvp_conn_id": self.flink_vvp_conn_id,
                "target_states": list(self.target_states),
                "failure_states": list(self.failure_states),
                "baseline": self.baseline,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

        # One hook, so one pooled HTTP client, for the trigger's whole life.
        hook = FlinkVVPHook(self.flink_vvp_conn_id)
        try:
            payload = await self._watch(hook)
        except Exception as error:  # an event must tell the task, or it would wait for its timeout
            self.log.exception("The trigger failed")
            payload = {"status": "error", "message": f"The trigger failed: {type(error).__name__}: {error}"}
        finally:
            await hook.aclose()
        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def _watch(self, hook: FlinkVVPHook) -> dict[str, Any]:
        baseline = Baseline.from_json(self.baseline) if self.baseline is not None else None
        while True:
            try:
                # Triggers watching the same deployment share one answer per poll interval: no
                # staler than the interval this trigger already accepts, and one call, not hundreds.
                deployment = await hook.aget_latest_deployment(
                    self.deployment_name,
                    namespace=self.namespace,
                    workspace=self.workspace,
                    ignore_resource_setting=True,
                    max_age=self.poll_interval,
                )
            except VVPError as error:
                if not keeps_waiting(error):
                    return {"status": "error", "message": str(error)}
                self.log.info("%s Polling again.", error)
            else:
                decision = decide(
                    deployment, baseline, target_states=self.target_states, failure_states=self.failure_states
                )
                if decision.outcome is not Outcome.WAITING:
                    return {
                        "status": decision.outcome.value,
                        "message": decision.message,
                        "deployment_id": deployment.deployment_id,
                    }
                baseline = decision.baseline
                self.log.info(decision.message)
            remaining = self.end_time - time.time()
            if remaining <= 0:
                return {
                    "status": "timeout",
                    "message": f"Timed out waiting for deployment {self.deployment_name!r} "
                    f"to be {' or '.join(self.target_states)}",
                }
            await asyncio.sleep(min(self.poll_interval, remaining))
