"""Is a savepoint done, and which savepoint is a task's own? Pure logic, no Airflow imports, no I/O."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from airflow_provider_flink_vvp.api.models import Savepoint
from airflow_provider_flink_vvp.decisions import Outcome, newest_within

#: The origin of a savepoint that CreateSavepoint took (not a stop's, not a retained checkpoint).
USER_REQUEST = "USER_REQUEST"
_NO_TIME = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SavepointDecision:
    """What one look at a savepoint says.

    :param outcome: keep waiting, or the wait is over with success (COMPLETED) or failure (FAILED).
    :param message: a sentence naming the savepoint, its state and, for a failed one, the reason.
    """

    outcome: Outcome
    message: str


def decide_savepoint(savepoint: Savepoint) -> SavepointDecision:
    """COMPLETED is a success, FAILED a failure with its reason; any other state keeps waiting."""
    name = f"Savepoint {savepoint.savepoint_id} of deployment {savepoint.deployment_id}"
    if savepoint.state == "COMPLETED":
        return SavepointDecision(
            Outcome.SUCCESS, f"{name} is COMPLETED at {savepoint.location or 'an unknown location'}"
        )
    if savepoint.state == "FAILED":
        why = f": {savepoint.failure.describe()}" if savepoint.failure else ""
        return SavepointDecision(Outcome.FAILURE, f"{name} FAILED{why}")
    return SavepointDecision(Outcome.WAITING, f"{name} is {savepoint.state}, not yet COMPLETED")


def savepoint_timeout_message(savepoint_id: str, last_state: str | None) -> str:
    """What a wait for a savepoint that timed out says, in the worker and in the triggerer alike."""
    return (
        f"Timed out waiting for savepoint {savepoint_id} to be COMPLETED; "
        f"it was last seen {last_state or 'never (no answer)'}"
    )


def created_since(savepoints: Iterable[Savepoint], before: Collection[str]) -> Savepoint | None:
    """The newest of ``savepoints`` whose ID is not in ``before`` (the IDs listed before a create), if any."""
    new = [savepoint for savepoint in savepoints if savepoint.savepoint_id not in before]
    return _newest(new)


def taken_back_savepoint(
    savepoints: Iterable[Savepoint], *, since: datetime, origins: Collection[str] = (USER_REQUEST,)
) -> Savepoint | None:
    """The savepoint a retry takes back when no task state store remembers it (Airflow before 3.3).

    It is the newest of the deployment's ``savepoints`` of one of ``origins`` created at or after ``since`` (the
    DAG run's start) that is still in progress or COMPLETED; None when there is none, and a FAILED one is never
    taken back: the retry takes a new savepoint. A savepoint without ``createdAt`` cannot be placed and is left.
    """
    candidates = [savepoint for savepoint in savepoints if savepoint.origin in origins and savepoint.state != "FAILED"]
    return newest_within(candidates, lambda savepoint: savepoint.created_at, since=since, before=None)


def _newest(savepoints: list[Savepoint]) -> Savepoint | None:
    # max() keeps the first of equals: the list's own order (ListSavepoints answers newest first) breaks ties.
    return max(savepoints, key=lambda savepoint: savepoint.created_at or _NO_TIME, default=None)
