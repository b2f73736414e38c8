"""An event trigger for Airflow's ``AssetWatcher``: start DAGs when jobs of Flink deployments enter a status."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.version_compat import get_base_airflow_version_tuple
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_flink_vvp.api.errors import VVPError

if TYPE_CHECKING:
    from airflow_provider_flink_vvp.api.models import Job
    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

#: The statuses a watcher can wait for.
WATCHABLE_STATUSES = ("STARTING", "RUNNING", "FAILED", "CANCELLED", "FINISHED")
#: Under errors (throttling included, once the client's own retries are spent) the wait between polls doubles up
#: to this many poll intervals.
MAX_BACKOFF_FACTOR = 8
#: The first Airflow release whose triggerer lets a trigger write an Airflow Variable (its trigger runner relays
#: PutVariable from 3.0.5 on; 3.0.0 to 3.0.4 relay reads only).
DURABLE_WATERMARK_SINCE = (3, 0, 5)
#: The prefix of the Airflow Variables that keep the watermarks.
WATERMARK_VARIABLE_PREFIX = "flink_vvp.job_status_watermark."


class FlinkVVPJobStatusEventTrigger(BaseEventTrigger):
    """Yield an event each time a job of the watched deployments enters one of ``statuses``, for ``AssetWatcher``.

    Every ``poll_interval`` it lists each deployment's jobs (ListJobs). Watchers of one deployment in a triggerer
    share that listing (one call per deployment and poll interval, however many watchers), and every client of
    the endpoint waits out the API's throttling together. A poll that fails is logged and the next one comes
    later, the wait doubling up to :data:`MAX_BACKOFF_FACTOR` poll intervals, until a poll succeeds again; the
    poll after a failure reads the connection anew, so a corrected or rotated secret is taken up without a restart.

    Each transition, a job ID with a status, is yielded once: the trigger keeps, per deployment, the statuses it
    has seen each listed job in (its watermark). In the triggerer (Airflow 3.0.5+, see
    :data:`DURABLE_WATERMARK_SINCE`) the watermark is kept in an Airflow Variable (:class:`WatermarkVariable`,
    keyed by the trigger's arguments, as Airflow itself tells watchers apart), read when the trigger starts and
    written after each poll that changed it, before that poll's events are yielded. So a trigger started again
    (a triggerer restart, a re-assignment to another triggerer) yields the transitions that happened while no
    triggerer ran, once, and repeats none. The one gap: when the triggerer dies after the write and before it
    has handed the events to the metadata DB (its next state sync, about a second), those events are lost, not
    repeated. When the Variable cannot be written, the events are yielded all the same and the next poll tries
    again: a restart before it succeeds repeats them. Before 3.0.5, or where the Variable cannot be read, the
    watermark lives in the trigger alone and :meth:`serialize` carries it: a trigger started afresh only takes
    note of the jobs as they are on its first poll (a status a job held before the trigger watched is history,
    not an event), so a transition while no triggerer ran is missed, never repeated. A status held for less than
    a poll interval (a STARTING job, often) may pass unseen; a final status (FAILED, CANCELLED, FINISHED) is not
    missed.

    An event's payload: ``deployment_id``, ``job_id``, ``status``, ``failure_reason`` and ``failure_message``
    (None unless FAILED; a long message shortened as :class:`~.api.models.JobFailure` says), ``at``
    (when the job entered the status, ISO 8601, as far as the API says; else when it was seen), ``namespace`` and
    ``workspace`` as given.

    :param deployment_ids: the deployments to watch.
    :param statuses: the statuses to yield events for (any of :data:`WATCHABLE_STATUSES`); FAILED by default.
    :param namespace: the namespace; the connection's when None.
    :param workspace: the workspace ID; the connection's when None.
    :param flink_vvp_conn_id: the Airflow connection, read asynchronously in the triggerer.
    :param poll_interval: seconds between polls.
    :param seen: the watermark: per deployment ID, the statuses each job was seen in. None: nothing seen yet.
    """

    def __init__(
        self,
        *,
        deployment_ids: Sequence[str],
        statuses: Sequence[str] = ("FAILED",),
        namespace: str | None = None,
        workspace: str | None = None,
        flink_vvp_conn_id: str = "flink_vvp_default",
        poll_interval: float = 30.0,
        seen: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        if isinstance(deployment_ids, str) or not deployment_ids:
            raise ValueError(
                f"deployment_ids must be a non-empty list of deployment IDs, got {deployment_ids!r}: "
                "pass e.g. deployment_ids=['<deployment ID>']"
            )
        if not all(isinstance(item, str) and item for item in deployment_ids):
            raise ValueError(f"deployment_ids must hold non-empty strings, got {list(deployment_ids)!r}")
        wanted = [statuses] if isinstance(statuses, str) else list(statuses)
        unknown = [status for status in wanted if status not in WATCHABLE_STATUSES]
        if not wanted or unknown:
            raise ValueError(
                f"statuses must be one or more of {', '.join(WATCHABLE_STATUSES)}, got {statuses!r}"
                + (f" ({', '.join(map(repr, unknown))} unknown)" if unknown else "")
            )
        if not isinstance(poll_interval, int | float) or isinstance(poll_interval, bool) or poll_interval <= 0:
            raise ValueError(f"poll_interval must be a positive number of seconds, got {poll_interval!r}")
        self.deployment_ids = tuple(dict.fromkeys(deployment_ids))
        self.statuses = tuple(wanted)
        self.namespace = namespace
        self.workspace = workspace
        self.flink_vvp_conn_id = flink_vvp_conn_id
        self.poll_interval = float(poll_interval)
        self.seen: dict[str, dict[str, list[str]]] = {
            deployment_id: {job_id: list(job_statuses) for job_id, job_statuses in jobs.items()}
            for deployment_id, jobs in (seen or {}).items()
        }

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "deployment_ids": list(self.deployment_ids),
            "statuses": list(self.statuses),
            "namespace": self.namespace,
            "workspace": self.workspace,
            "flink_vvp_conn_id": self.flink_vvp_conn_id,
            "poll_interval": self.poll_interval,
        }
        # Only a watermark that holds something: Airflow 3.0's triggerer decodes a mapping among an asset watcher's
        # arguments one level short (its runner dies on it), and the watcher a DAG declares has seen nothing.
        if self.seen:
            kwargs["seen"] = self.seen
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

        # One hook, so one pooled HTTP client, while polls succeed.
        hook = FlinkVVPHook(self.flink_vvp_conn_id)
        watermark = WatermarkVariable(self) if get_base_airflow_version_tuple() >= DURABLE_WATERMARK_SINCE else None
        saved = (await watermark.aload() or {}) if watermark else {}
        self.seen = {**saved, **self.seen}
        backoff = 1
        try:
            while True:
                payloads, failed = await self.poll(hook)
                if watermark and self.seen != saved:
                    # Written before the events are yielded: a restart after this poll repeats none of them.
                    saved = self.seen if await watermark.asave(self.seen) else saved
                for payload in payloads:
                    yield TriggerEvent(payload)  # type: ignore[no-untyped-call]
                if failed:
                    # A hook keeps the connection it first read; the trigger runs for good, so after a failure
                    # the next poll reads the connection again (a secret fixed or rotated meanwhile).
                    await hook.aclose()
                    hook = FlinkVVPHook(self.flink_vvp_conn_id)
                backoff = min(backoff * 2, MAX_BACKOFF_FACTOR) if failed else 1
                await asyncio.sleep(self.poll_interval * backoff)
        finally:
            await hook.aclose()

    async def poll(self, hook: FlinkVVPHook) -> tuple[list[dict[str, Any]], bool]:
        """One poll of every watched deployment: the payloads of the new transitions, and whether a listing failed.

        The watermark is updated as the payloads are made.
        """
        listings = await asyncio.gather(
            *(
                hook.alist_jobs(
                    deployment_id, namespace=self.namespace, workspace=self.workspace, max_age=self.poll_interval
                )
                for deployment_id in self.deployment_ids
            ),
            return_exceptions=True,
        )
        payloads: list[dict[str, Any]] = []
        failed = False
        for deployment_id, listing in zip(self.deployment_ids, listings, strict=True):
            if isinstance(listing, BaseException):
                if not isinstance(listing, Exception):
                    raise listing  # cancelled: the triggerer stops the trigger
                # An event trigger runs for good: whatever went wrong, the next poll may go right.
                failed = True
                why = str(listing) if isinstance(listing, VVPError) else f"{type(listing).__name__}: {listing}"
                self.log.warning(
                    "Could not list the jobs of deployment %s: %s. Polling again later.", deployment_id, why
                )
                continue
            payloads.extend(self._transitions(deployment_id, listing))
        return payloads, failed

    def _transitions(self, deployment_id: str, jobs: list[Job]) -> list[dict[str, Any]]:
        """The payloads of the watched statuses the jobs entered since the last poll; the first poll has none."""
        earlier = self.seen.get(deployment_id)
        now_seen: dict[str, list[str]] = {}
        payloads = []
        for job in jobs:
            statuses = list((earlier or {}).get(job.job_id, ()))
            if earlier is not None and job.status in self.statuses and job.status not in statuses:
                payloads.append(self._payload(job))
            if job.status not in statuses:
                statuses.append(job.status)
            now_seen[job.job_id] = statuses
        # Only the jobs still listed are kept: the watermark stays as small as the deployment's job history.
        # A new dict, not an update: run() compares it with the one it saved.
        self.seen = {**self.seen, deployment_id: now_seen}
        return payloads

    def _payload(self, job: Job) -> dict[str, Any]:
        failure = job.failure if job.status == "FAILED" else None
        entered = (failure.failed_at if failure else None) or (job.end_time if job.is_terminal else job.start_time)
        return {
            "deployment_id": job.deployment_id,
            "job_id": job.job_id,
            "status": job.status,
            "failure_reason": failure.reason if failure else None,
            "failure_message": failure.message if failure else None,
            "at": (entered or datetime.now(UTC)).isoformat(),
            "namespace": self.namespace,
            "workspace": self.workspace,
        }


class WatermarkVariable:
    """The Airflow Variable that keeps a :class:`FlinkVVPJobStatusEventTrigger`'s watermark across its restarts.

    Its key is :data:`WATERMARK_VARIABLE_PREFIX` and a digest of the trigger's arguments (deployments, statuses,
    connection, namespace, workspace, poll interval): the identity Airflow gives an asset watcher's trigger, so
    every watcher Airflow runs as one trigger shares one Variable, and a changed watcher starts a new one. Its
    value, JSON: per deployment ID, per job ID the API still lists, the statuses seen; no secret. Deleting it
    makes the watcher start afresh. Read and written through the Task SDK, as a task would, off the event loop.

    :param trigger: the trigger whose watermark this is.
    """

    def __init__(self, trigger: FlinkVVPJobStatusEventTrigger) -> None:
        identity = {name: value for name, value in trigger.serialize()[1].items() if name != "seen"}
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
        self.key = WATERMARK_VARIABLE_PREFIX + digest
        self.description = (
            f"The job statuses seen by FlinkVVPJobStatusEventTrigger (deployments {', '.join(trigger.deployment_ids)}; "
            f"statuses {', '.join(trigger.statuses)}; connection {trigger.flink_vvp_conn_id}). Delete it to start "
            "the watcher afresh."
        )
        self.log = trigger.log

    async def aload(self) -> dict[str, dict[str, list[str]]] | None:
        """The saved watermark; None when there is none or it cannot be read (logged)."""
        from airflow.sdk import Variable
        from asgiref.sync import sync_to_async

        try:
            raw = await sync_to_async(Variable.get)(self.key, default=None)
        except Exception as error:
            self.log.warning(
                "Could not read the watermark (Variable %s): %s: %s. Starting afresh: transitions while no "
                "triggerer watched are not events.",
                self.key,
                type(error).__name__,
                error,
            )
            return None
        if raw is None:
            return None
        try:
            saved = json.loads(raw)
            return {
                str(deployment_id): {
                    str(job_id): [str(status) for status in statuses] for job_id, statuses in jobs.items()
                }
                for deployment_id, jobs in saved.items()
            }
        except (ValueError, AttributeError, TypeError) as error:
            self.log.warning("The watermark in Variable %s is not one (%s); starting afresh.", self.key, error)
            return None

    async def asave(self, seen: Mapping[str, Mapping[str, Sequence[str]]]) -> bool:
        """Write the watermark; whether it was written (a failure is logged)."""
        from airflow.sdk import Variable
        from asgiref.sync import sync_to_async

        try:
            await sync_to_async(Variable.set)(
                self.key, json.dumps(seen, separators=(",", ":")), description=self.description
            )
        except Exception as error:
            self.log.warning(
                "Could not write the watermark (Variable %s): %s: %s. Its events are yielded all the same; a "
                "restart before the next write repeats them.",
                self.key,
                type(error).__name__,
                error,
            )
            return False
        return True
