"""Why a job failed, for the task log: its diagnosis, the tail of its JobManager start log, the latest events.

Fetched when a task sees a job FAILED, after the fact and apart from it: each call is one attempt of at most
:data:`CALL_TIMEOUT_SECONDS`, all of them end within :data:`BUDGET_SECONDS`, and whatever goes wrong (no
permission, no such log, a timeout, an answer that cannot be read) is one log line: the task still fails with
the job's own failure reason. The server's texts are cut (each line, each section) and redacted like the
client's errors. No Airflow imports: the caller hands over a hook of one short attempt per call
(:func:`~.tasks.log_diagnostics`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from airflow_provider_flink_vvp.api import operations
from airflow_provider_flink_vvp.api.errors import VVPApiError, redact
from airflow_provider_flink_vvp.api.models import Event, Job
from airflow_provider_flink_vvp.api.responses import MAX_SERVER_TEXT_CHARS
from airflow_provider_flink_vvp.credentials import secrets_of

if TYPE_CHECKING:
    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

T = TypeVar("T")

#: One attempt of each call lasts at most this long.
CALL_TIMEOUT_SECONDS = 5.0
#: No call starts this long after the first one started.
BUDGET_SECONDS = 12.0
#: The start log's last lines shown.
START_LOG_LINES = 50
#: The deployment's latest events shown.
EVENT_COUNT = 10
#: The most of one section (the start log's tail, the events) shown, its oldest lines dropped first.
MAX_SECTION_CHARS = 8000
_EVENT_PAGE_SIZE = operations.MAX_PAGE_SIZE


class Log(Protocol):
    """What the diagnostics need of a logger (the standard library's, or a task's)."""

    def info(self, msg: str, /, *args: object) -> object: ...

    def warning(self, msg: str, /, *args: object) -> object: ...


@dataclass(frozen=True)
class FailureDiagnostics:
    """What the service can tell about a failed job, fetched and logged by ``log_all``.

    :param hook: a hook whose calls make one short attempt (``timeout=CALL_TIMEOUT_SECONDS, retry_limit=1``).
    :param log: where the sections go.
    :param deployment_id: the job's deployment.
    :param job_id: the failed job; None for the deployment's newest FAILED job (a job summary's failed count).
    :param namespace: the namespace; the connection's when None.
    :param workspace: the workspace ID; the connection's when None.
    """

    hook: FlinkVVPHook
    log: Log
    deployment_id: str
    job_id: str | None
    namespace: str | None
    workspace: str | None

    def log_all(self) -> None:
        """Log the diagnosis, the start log's tail and the latest events; never raises."""
        deadline = time.monotonic() + BUDGET_SECONDS
        try:
            secrets = _secrets(self.hook)
        except Exception as error:  # the connection cannot be read: nothing can be fetched
            self.log.warning("Diagnostics of the failed job skipped: %s", _error_text(error, ()))
            return
        fetch = _Fetcher(self.log, deadline, secrets)
        job = fetch("ListJobs" if self.job_id is None else "GetJob", self._failed_job)
        if job is None:
            return
        about = f"job {job.job_id} of deployment {self.deployment_id}"
        diagnosis = fetch("GetJobDiagnosis", lambda: self._diagnosis(job.job_id, secrets))
        if diagnosis is not None:
            self.log.info("Diagnosis of %s: %s", about, diagnosis)
        tail = fetch("GetLatestJobStartLog", lambda: self._start_log_tail(secrets))
        if tail is not None:
            self.log.info("JobManager start log of deployment %s, last lines:\n%s", self.deployment_id, tail)
        events = fetch("GetEvents", lambda: self._events(secrets))
        if events is not None:
            self.log.info("Latest events of deployment %s, newest first:\n%s", self.deployment_id, events)

    def _failed_job(self) -> Job | None:
        """The failed job to diagnose; None (nothing to say) when the job is not FAILED or there is none."""
        if self.job_id is not None:
            job = self.hook.get_job(self.job_id, namespace=self.namespace, workspace=self.workspace)
            return job if job.status == "FAILED" else None
        # One page: the newest jobs are enough to find the one that just failed, and the budget stays small.
        page = self.hook.get_conn().call(
            self.hook.config.operation(
                operations.list_jobs, self.namespace, self.workspace, deployment_id=self.deployment_id
            )
        )
        failed = [job for job in page.items if job.status == "FAILED"]
        return max(failed, key=lambda job: _sortable(job.end_time or job.start_time), default=None)

    def _diagnosis(self, job_id: str, secrets: Collection[str]) -> str:
        diagnosis = self.hook.get_job_diagnosis(
            self.deployment_id, job_id, namespace=self.namespace, workspace=self.workspace
        )
        head = f"risk {diagnosis.risk_level or 'unknown'}, health score {_or_unknown(diagnosis.health_score)}"
        lines = [
            f"[{symptom.group}] {symptom.name or 'unnamed'}: {symptom.description or 'no description'}"
            + (f" Recommendation: {symptom.recommendation}" if symptom.recommendation else "")
            for symptom in diagnosis.symptoms
        ]
        body = _section(lines, secrets) if lines else "no symptoms found"
        return f"{head}\n{body}"

    def _start_log_tail(self, secrets: Collection[str]) -> str:
        text = self.hook.get_latest_job_start_log(
            self.deployment_id, namespace=self.namespace, workspace=self.workspace
        )
        lines = text.splitlines()[-START_LOG_LINES:]
        return _section(lines, secrets) if lines else "(empty)"

    def _events(self, secrets: Collection[str]) -> str:
        events = self._latest_events()
        if not events:
            return "(none)"
        return _section(
            [
                f"{_time(event.created_at)} {event.name or 'EVENT'}"
                + (f" (job {event.job_id})" if event.job_id else "")
                + f": {event.message or ''}"
                for event in events
            ],
            secrets,
        )

    def _latest_events(self) -> list[Event]:
        """The newest :data:`EVENT_COUNT` events: from the first page and, for a longer list, the last one too
        (the order of GetEvents is not documented)."""
        first = self.hook.get_events(
            self.deployment_id, page_size=_EVENT_PAGE_SIZE, namespace=self.namespace, workspace=self.workspace
        )
        events = {_identity(event): event for event in first.items}
        last_index = -(-first.total_size // _EVENT_PAGE_SIZE)
        if last_index > 1:
            last = self.hook.get_events(
                self.deployment_id,
                page_index=last_index,
                page_size=_EVENT_PAGE_SIZE,
                namespace=self.namespace,
                workspace=self.workspace,
            )
            events.update({_identity(event): event for event in last.items})
        newest = sorted(events.values(), key=lambda event: _sortable(event.created_at), reverse=True)
        return newest[:EVENT_COUNT]


class _Fetcher:
    """Runs each fetch within the budget; an error, or the budget spent, is one log line and None."""

    def __init__(
        self,
        log: Log,
        deadline: float,
        secrets: Collection[str],
    ) -> None:
        self._log = log
        self._deadline = deadline
        self._secrets = secrets

    def __call__(self, action: str, fetch: Callable[[], T]) -> T | None:
        if time.monotonic() >= self._deadline:
            self._log.warning("Diagnostics: %s skipped: the %g s for diagnostics ran out", action, BUDGET_SECONDS)
            return None
        try:
            return fetch()
        except Exception as error:  # diagnostics never hide the job's own failure
            self._log.warning("Diagnostics: %s unavailable, skipped: %s", action, _error_text(error, self._secrets))
            return None


def _secrets(hook: FlinkVVPHook) -> tuple[str, ...]:
    return secrets_of(hook.config.client.credentials)


def _error_text(error: Exception, secrets: Collection[str]) -> str:
    text = error.summary if isinstance(error, VVPApiError) else f"{type(error).__name__}: {error}"
    return _line(text, secrets)


def _section(lines: list[str], secrets: Collection[str]) -> str:
    """``lines``, each cut and redacted, indented; the oldest dropped past :data:`MAX_SECTION_CHARS`."""
    shown: list[str] = []
    size = 0
    for line in reversed(lines):
        text = f"    {_line(line, secrets)}"
        if size + len(text) > MAX_SECTION_CHARS:
            shown.append(f"    ... ({len(lines) - len(shown)} earlier lines not shown)")
            break
        shown.append(text)
        size += len(text) + 1
    return "\n".join(reversed(shown))


def _line(text: str, secrets: Collection[str]) -> str:
    """One line of a server's text: printable (control characters, which could forge log lines, as '?'),
    redacted before it is cut (a cut could split a secret), then cut to :data:`MAX_SERVER_TEXT_CHARS`."""
    printable = "".join(char if char.isprintable() else "?" for char in text.rstrip("\r\n"))
    clean = redact(printable, secrets)
    if len(clean) <= MAX_SERVER_TEXT_CHARS:
        return clean
    return f"{clean[:MAX_SERVER_TEXT_CHARS]}... ({len(clean)} characters)"


def _or_unknown(value: object) -> str:
    return "unknown" if value is None else str(value)


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "(no time)"


def _identity(event: Event) -> tuple[str | None, ...]:
    """What tells two events apart when both pages hold one (the first page may be the last)."""
    return (event.event_id, event.name, event.job_id, event.message, _time(event.created_at))


def _sortable(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0
