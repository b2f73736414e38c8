"""Test-wide Airflow environment, set before anything imports Airflow.

Every test session gets its own AIRFLOW_HOME (a file sqlite DB: in-memory sqlite does not work
with dag.test()) and a DAGs folder; nothing reads or writes the user's ~/airflow.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_flink_vvp.testing import VVPEmulator

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="flink-vvp-tests-"))
DAGS_FOLDER = _AIRFLOW_HOME / "dags"
DAGS_FOLDER.mkdir()

os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
)
for _name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"):
    os.environ.pop(_name, None)

VVP_ACCESS_KEY_ID = "tests-access-key-id"
VVP_ACCESS_KEY_SECRET = "tests-access-key-secret"
VVP_WORKSPACE = "ws-tests"

AddDeployment = Callable[..., str]


@pytest.fixture(scope="session")
def vvp_server() -> Iterator[VVPEmulator]:
    """One emulator on the real clock for the session; each test works in its own namespace.

    A started job is STARTING for 0.3 s, a BATCH one RUNNING for 0.6 s, a stopped one CANCELLING for 0.3 s,
    so job-control tests stay fast.
    """
    from airflow_provider_flink_vvp.testing import EmulatorState, JobDurations, VVPEmulator

    durations = JobDurations(starting=0.3, batch_running=0.6, cancelling=0.3)
    with VVPEmulator(EmulatorState(job_durations=durations)) as emulator:
        emulator.add_access_key(VVP_ACCESS_KEY_ID, VVP_ACCESS_KEY_SECRET)
        yield emulator


@pytest.fixture
def vvp_namespace() -> str:
    """The test's own namespace in :data:`VVP_WORKSPACE`."""
    return f"ns-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def vvp_emulator(vvp_server: VVPEmulator, vvp_namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[VVPEmulator]:
    """The emulator, and the ``flink_vvp_default`` connection pointing at it and the test's namespace.

    The connection makes one attempt per call, so a test sees a transient fault itself.
    """
    vvp_server.add_namespace(VVP_WORKSPACE, vvp_namespace)
    set_vvp_connection(monkeypatch, vvp_server.url, namespace=vvp_namespace)
    yield vvp_server
    vvp_server.faults.clear()


def set_vvp_connection(
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    *,
    namespace: str,
    conn_id: str = "flink_vvp_default",
    password: str = VVP_ACCESS_KEY_SECRET,
    **extra: Any,
) -> None:
    """Point connection ``conn_id`` (JSON in ``AIRFLOW_CONN_<ID>``) at the emulator."""
    connection = {
        "conn_type": "flink_vvp",
        "host": url,
        "login": VVP_ACCESS_KEY_ID,
        "password": password,
        "extra": {"workspace": VVP_WORKSPACE, "namespace": namespace, "retry_limit": 1, "timeout": 5, **extra},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))


@pytest.fixture
def add_deployment(vvp_emulator: VVPEmulator, vvp_namespace: str) -> AddDeployment:
    """Add a deployment (and optionally one job following ``timeline``) to the test's namespace; returns its ID.

    ``history`` is the deployment's own jobSummary; the job's state counts on top of it.
    Each deployment added is newer than the ones before.
    """
    created = iter(range(1_700_000_000, 1_800_000_000, 60))

    def add(
        name: str,
        *,
        history: Mapping[str, int] | None = None,
        timeline: Sequence[Sequence[Any]] | None = None,
        execution_mode: str = "STREAMING",
    ) -> str:
        created_at = next(created)
        deployment_id = f"{name}-{created_at}-{uuid.uuid4().hex[:8]}"
        vvp_emulator.add_deployment(
            {
                "deploymentId": deployment_id,
                "name": name,
                "namespace": vvp_namespace,
                "workspace": VVP_WORKSPACE,
                "executionMode": execution_mode,
                "createdAt": str(created_at),
                "jobSummary": dict(history or {}),
            }
        )
        if timeline is not None:
            add_job(vvp_emulator, deployment_id, timeline)
        return deployment_id

    return add


def add_job(emulator: VVPEmulator, deployment_id: str, timeline: Sequence[Sequence[Any]]) -> None:
    """A job of the deployment that follows ``timeline`` ([state, seconds or None], ...) from now."""
    emulator.add_job({"jobId": uuid.uuid4().hex, "deploymentId": deployment_id}, timeline=timeline)


@pytest.fixture
def after_start(vvp_emulator: VVPEmulator, monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[str], Any]], None]:
    """Run an action with the job's ID right after the emulator starts each job (StartJobWithParams).

    E.g. ``after_start(lambda job_id: vvp_emulator.state.set_job_timeline(job_id, [["FAILED", None]]))``
    makes the jobs a task starts fail.
    """
    state = vvp_emulator.state

    def schedule(action: Callable[[str], Any]) -> None:
        start = type(state).start_job

        def start_then_act(*args: Any, **kwargs: Any) -> dict[str, Any]:
            job = start(state, *args, **kwargs)
            action(job["jobId"])
            return job

        monkeypatch.setattr(state, "start_job", start_then_act)

    return schedule


class FakeTaskInstance:
    """What the operators use of a task instance: its try number, ``max_tries``, start date and ``xcom_push``."""

    def __init__(self, try_number: int, max_tries: int) -> None:
        self.try_number = try_number
        self.max_tries = max_tries
        self.start_date = datetime.now(UTC)
        #: What Airflow recorded as the start of the series' first rescheduled poke, once one was rescheduled.
        self.first_reschedule_date: datetime | None = None
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def get_first_reschedule_date(self, context: Mapping[str, Any]) -> datetime | None:
        return self.first_reschedule_date if context.get("task_reschedule_count") else None


@dataclass(frozen=True)
class FakeDagRun:
    """What the operators use of the DAG run: when it began."""

    start_date: datetime


class FakeTaskStateStore(dict[str, Any]):
    """``context["task_state_store"]`` in memory; ``retentions`` holds the retention each key was set with."""

    def __init__(self) -> None:
        super().__init__()
        self.retentions: dict[str, Any] = {}

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self[key] = value
        self.retentions[key] = retention

    def delete(self, key: str) -> None:
        self.pop(key, None)


MakeContext = Callable[..., dict[str, Any]]


@pytest.fixture
def make_context(monkeypatch: pytest.MonkeyPatch) -> MakeContext:
    """A task context for calling execute() or poke() directly: a fresh task instance each call.

    The context is Airflow 3.3's, with a task state store (tests of the behaviour before 3.3 delete it), and one
    DAG run, begun when the test began:
    on an older Airflow the store's ``NEVER_EXPIRE``, which came with it, is supplied as 3.3 defines it.
    Pass the ``task_state_store`` of an earlier context to act as a later run of the same task;
    ``max_tries`` is the try number plus the retries left (Airflow raises it when a task is cleared).
    """
    from airflow.sdk.execution_time import context as airflow_context

    monkeypatch.setattr(airflow_context, "NEVER_EXPIRE", timedelta.max, raising=False)
    dag_run = FakeDagRun(start_date=datetime.now(UTC))

    def context(
        *, try_number: int = 1, max_tries: int = 0, task_state_store: FakeTaskStateStore | None = None
    ) -> dict[str, Any]:
        store = FakeTaskStateStore() if task_state_store is None else task_state_store
        return {"ti": FakeTaskInstance(try_number, max_tries), "task_state_store": store, "dag_run": dag_run}

    return context


def fail_after(
    monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator, action: str, then: str, failures: int, *, nth: int = 1
) -> None:
    """Once the ``nth`` request of ``action`` from now arrives, the next ``failures`` requests of ``then`` get a 503."""
    from airflow_provider_flink_vvp.testing import Fault, FaultKind

    faults = emulator.faults
    meet = faults.faults_for
    # The emulator may be shared by earlier tests: count from now.
    first = emulator.request_counts().get(action, 0) + nth

    def faults_for(requested: str) -> list[Fault]:
        if requested == action and emulator.request_counts().get(action, 0) == first:
            faults.enqueue(*[Fault(FaultKind.UNAVAILABLE, action=then)] * failures)
        return meet(requested)

    monkeypatch.setattr(faults, "faults_for", faults_for)
