"""Whether a RUNNING job is stable: it keeps RUNNING for a while without its Flink job restarting.

:func:`decide_stability` is the one decision, for a wait in the worker and for its deferred half,
:class:`~.triggers.stability.FlinkVVPJobStabilityTrigger`. No Airflow imports: DAG files import it on every parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_flink_vvp.api.models import Job

#: Job statuses that end a stability wait: the job no longer runs.
NOT_RUNNING = ("FAILED", "CANCELLED", "FINISHED")


def flink_restarts(job: Job) -> int | None:
    """``status.running.observedFlinkJobRestarts`` of a RUNNING job; None when the job does not say."""
    running = (job.raw.get("status") or {}).get("running") or {}
    restarts = running.get("observedFlinkJobRestarts")
    return int(restarts) if isinstance(restarts, int | float) and not isinstance(restarts, bool) else None


@dataclass(frozen=True)
class StabilityDecision:
    """How a stability wait ended.

    :param outcome: ``stable``; ``restarted`` (its Flink job restarted, or the job went from RUNNING back to
        STARTING); or ``ended`` (it no longer runs, or is CANCELLING).
    :param message: what happened, in words: a failure's message names the job, its status and the reason.
    :param restarts_seen: ``observedFlinkJobRestarts`` as this look read it.
    """

    outcome: str
    message: str
    restarts_seen: int | None

    @property
    def is_stable(self) -> bool:
        return self.outcome == "stable"


def decide_stability(
    job: Job, *, running_since: float | None, restarts: int | None, stable_for: float, now: float
) -> StabilityDecision | None:
    """One look: None while the job may still become stable.

    The window is exact only if ``running_since`` is no earlier, and ``now`` no later, than the truth: pass the time
    the first RUNNING answer arrived, and the time this answer's request was sent (a shared answer's, if older).

    :param job: the job as just read.
    :param running_since: when the job was first seen RUNNING, in epoch seconds; None: not yet.
    :param restarts: its ``observedFlinkJobRestarts`` then (None: it did not say): any growth is a restart.
    :param stable_for: seconds it must keep RUNNING from ``running_since``.
    :param now: when the job was as ``job`` says, at the latest, in epoch seconds.
    """
    seen = flink_restarts(job)
    if job.status in NOT_RUNNING:
        why = f": {job.failure.describe()}" if job.failure else ""
        return StabilityDecision("ended", f"job {job.job_id} ended {job.status}{why}", seen)
    if running_since is None:
        return None
    if seen is not None and restarts is not None and seen > restarts:
        return StabilityDecision(
            "restarted",
            f"job {job.job_id} restarted {seen - restarts} time(s) within {stable_for:g} s of running "
            f"(observedFlinkJobRestarts {restarts} -> {seen})",
            seen,
        )
    if job.status != "RUNNING":
        # It was RUNNING: STARTING again is VVP restarting it, CANCELLING someone stopping it. Either breaks the run,
        # even if a later look would see it RUNNING again: one such answer is enough to roll back.
        outcome = "ended" if job.status == "CANCELLING" else "restarted"
        return StabilityDecision(
            outcome, f"job {job.job_id} left RUNNING for {job.status} before it had run {stable_for:g} s", seen
        )
    if now - running_since >= stable_for:
        return StabilityDecision("stable", f"job {job.job_id} has been RUNNING for {stable_for:g} s", seen)
    return None


def unstable_timeout_message(job_id: str, stable_for: float, last_status: str | None) -> str:
    """Why a stability wait that timed out failed."""
    return (
        f"job {job_id} was not RUNNING and stable for {stable_for:g} s before the wait timed out "
        f"(last seen {last_status or 'never read'})"
    )
