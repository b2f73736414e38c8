"""DAG-level tests: real DAG files in the session's DAGs folder, a migrated metadata DB, dag.test()."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from airflow_provider_flink_vvp.links.vvp import DEPLOYMENT_URL_XCOM_KEY, FlinkVVPDeploymentLink
from airflow_provider_flink_vvp.testing import VVPEmulator
from tests.conftest import DAGS_FOLDER

REPOSITORY = Path(__file__).parents[2]
#: Whether dag.test() runs tasks as a worker does, through the task SDK (Airflow 3.0.2+), which stores each
#: task's extra links when it ends. Airflow 3.0.0 and 3.0.1 run them through the older TaskInstance runner,
#: which stores no links and lets an ``execution_timeout`` escape dag.test() itself.
DAG_TEST_RUNS_TASK_SDK = Version(version("apache-airflow-core")).release >= (3, 0, 2)
DAG_FILES = [*sorted((REPOSITORY / "example_dags").glob("*.py")), *sorted((REPOSITORY / "tests" / "dags").glob("*.py"))]
#: For the tests of a task's ``execution_timeout``: Airflow ends the task with SIGALRM, and when the signal lands
#: in a weakref callback or a ``__del__``, Python reports the ``AirflowTaskTimeout`` as "unraisable" instead of
#: raising it. That says nothing of the task, whose outcome each such test asserts.
EXECUTION_TIMEOUT_SIGNAL_MAY_LAND_IN_A_CALLBACK = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
)


@dataclass(frozen=True)
class DagRunResult:
    """What a dag.test() run left in the metadata DB."""

    state: str
    task_states: dict[tuple[str, int], str | None]
    tries: dict[tuple[str, int], int]
    xcoms: dict[tuple[str, int, str], Any]
    reschedules: int
    links: dict[tuple[str, int], dict[str, str | None]]
    output: str

    def task_state(self, task_id: str, map_index: int = -1) -> str | None:
        return self.task_states[(task_id, map_index)]

    def tries_of(self, task_id: str, map_index: int = -1) -> int:
        return self.tries[(task_id, map_index)]

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        return self.xcoms.get((task_id, map_index, key))

    @property
    def logged(self) -> str:
        """:attr:`output` but the debug lines in which dag.test() of Airflow 3.0 shows each value handed to its
        masker (``MaskSecret`` requests): what a task's log holds."""
        return "\n".join(line for line in self.output.splitlines() if "MaskSecret" not in line)

    def deployment_link(self, task_id: str, map_index: int = -1) -> Any:
        """The task's "Flink VVP deployment" link: stored by the task as it ended and read back as the UI does.

        Where dag.test() stores no links (:data:`DAG_TEST_RUNS_TASK_SDK` false), the ``deployment_url`` XCom
        the link reads (tests/test_links.py tests the link on it); the stored one must then be absent.
        """
        stored = self.xcom(task_id, f"_link_{FlinkVVPDeploymentLink.__name__}", map_index)
        if DAG_TEST_RUNS_TASK_SDK:
            assert stored is not None, f"{task_id} stored no link"
            return self.links[(task_id, map_index)].get(FlinkVVPDeploymentLink.name)
        assert stored is None
        return self.xcom(task_id, DEPLOYMENT_URL_XCOM_KEY, map_index)


RunDag = Callable[..., DagRunResult]


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Copy the example and test DAG files into the DAGs folder and migrate the metadata DB, once."""
    for path in DAG_FILES:
        shutil.copy(path, DAGS_FOLDER / path.name)
    from airflow.utils.db import initdb

    initdb()


@pytest.fixture
def run_dag(airflow_db: None, vvp_emulator: VVPEmulator, capfd: pytest.CaptureFixture[str]) -> RunDag:
    """Run a DAG of the DAGs folder with dag.test() and ``conf`` as its params; return what it left.

    ``links`` are the extra links as the UI resolves them, from the serialized DAG; ``output`` is
    what the run printed and what its tasks logged, exceptions with their tracebacks, in plain text.
    """

    def run(dag_id: str, **conf: Any) -> DagRunResult:
        try:  # Airflow 3.2+
            from airflow.dag_processing.dagbag import DagBag
        except ImportError:
            from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
        from airflow.models.serialized_dag import SerializedDagModel
        from airflow.models.taskreschedule import TaskReschedule
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import func, select

        dag = DagBag(dag_folder=DAGS_FOLDER / _file_of(dag_id)).get_dag(dag_id)
        assert dag is not None, f"no DAG {dag_id} in {DAGS_FOLDER}"
        logical_date: dict[str, datetime] = {}
        if not hasattr(dag, "test"):  # Airflow 3.0.0: only the scheduler's DAG class runs one
            from airflow.models.dag import DAG

            dag = DAG.from_sdk_dag(dag)
        _activate_outlet_assets(dag)
        if not DAG_TEST_RUNS_TASK_SDK:
            # Its runs have no logical date unless given one (later versions give it one), so ``ds`` is undefined.
            logical_date = {"logical_date": datetime.now(UTC)}
        capfd.readouterr()
        with _recording_task_logs() as task_logs, _execution_timeout_ends_the_task_only(), _reschedule_dates_as_dates():
            dag_run = dag.test(run_conf=conf or None, **logical_date)
        with create_session() as session:
            instances = dag_run.get_task_instances(session=session)
            xcoms = session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_id)).all()
            serialized = SerializedDagModel.get_dag(dag_id, session=session)
            if serialized is None:  # Airflow 3.0.0's dag.test() keeps the serialized DAG in memory
                from airflow.serialization.serialized_objects import SerializedDAG

                serialized = SerializedDAG.deserialize_dag(SerializedDAG.serialize_dag(dag))
            links = {
                (ti.task_id, ti.map_index): {
                    name: serialized.get_task(ti.task_id).get_extra_links(ti, name)
                    # A mapped task of Airflow 3.0.0's in-memory serialized DAG has no extra_links.
                    for name in getattr(serialized.get_task(ti.task_id), "extra_links", ())
                }
                for ti in instances
            }
            reschedules = session.scalar(
                select(func.count(TaskReschedule.id)).where(TaskReschedule.ti_id.in_([ti.id for ti in instances]))
            )
            return DagRunResult(
                state=str(dag_run.state),
                task_states={(ti.task_id, ti.map_index): ti.state and str(ti.state) for ti in instances},
                tries={(ti.task_id, ti.map_index): ti.try_number for ti in instances},
                xcoms={(x.task_id, x.map_index, x.key): XComModel.deserialize_value(x) for x in xcoms},
                reschedules=reschedules or 0,
                links=links,
                output="\n".join([capfd.readouterr().out, *task_logs]),
            )

    return run


def _activate_outlet_assets(dag: Any) -> None:
    """Register the DAG's outlet assets as active, as the DAG processor does in a deployment: dag.test() of
    Airflow 3.0 leaves them inactive (its older runner, 3.0.0 and 3.0.1, keeps the DAG in memory), and a task
    whose outlets are not active is refused. Where dag.test() activates them itself, they are found active."""
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.sdk import Asset
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        for asset in [outlet for task in dag.tasks for outlet in task.outlets if isinstance(outlet, Asset)]:
            found = session.scalar(select(AssetModel).where(AssetModel.name == asset.name, AssetModel.uri == asset.uri))
            if found is None:
                found = AssetModel(name=asset.name, uri=asset.uri, group=asset.group, extra=asset.extra)
                session.add(found)
                session.flush()
            active = select(AssetActive).where(AssetActive.name == asset.name, AssetActive.uri == asset.uri)
            if session.scalar(active) is None:
                session.add(AssetActive.for_asset(found))
                session.flush()


@contextmanager
def _reschedule_dates_as_dates() -> Iterator[None]:
    """The first reschedule date as a worker gets it. Airflow 3.0's API client builds that answer unvalidated,
    with the date as text, which a worker's supervisor turns into a date on its way to the task and dag.test()'s
    in-process one does not: the sensor base of Airflow 3.0 then fails every reschedule-mode task at its second
    poke (it subtracts the text from a date)."""
    from airflow.sdk.api.client import TaskInstanceOperations
    from airflow.sdk.execution_time.comms import TaskRescheduleStartDate

    read = TaskInstanceOperations.get_reschedule_start_date

    def read_as_a_worker_gets_it(self: Any, *args: Any, **kwargs: Any) -> Any:
        return TaskRescheduleStartDate.model_validate(read(self, *args, **kwargs).model_dump())

    TaskInstanceOperations.get_reschedule_start_date = read_as_a_worker_gets_it  # type: ignore[method-assign]
    try:
        yield
    finally:
        TaskInstanceOperations.get_reschedule_start_date = read  # type: ignore[method-assign]


@contextmanager
def _execution_timeout_ends_the_task_only() -> Iterator[None]:
    """Where dag.test() runs tasks through the older runner, the ``AirflowTaskTimeout`` of a task whose
    ``execution_timeout`` ran out (a BaseException) escapes the run after the runner failed the task: the run
    goes on, as with a worker."""
    if DAG_TEST_RUNS_TASK_SDK:
        yield
        return
    from airflow.exceptions import AirflowTaskTimeout
    from airflow.models import dag as dag_module

    run_task = dag_module._run_task

    def run_task_to_its_end(**kwargs: Any) -> None:
        with suppress(AirflowTaskTimeout):
            run_task(**kwargs)

    dag_module._run_task = run_task_to_its_end
    try:
        yield
    finally:
        dag_module._run_task = run_task


@contextmanager
def _recording_task_logs() -> Iterator[list[str]]:
    """Record, in plain text, every event logged through structlog while the block runs.

    The tasks log through structlog, as Airflow configures it or, where dag.test() leaves it unconfigured
    (Airflow 3.0), through structlog's default console renderer, whose tracebacks are drawn in boxes that
    break lines. The processor is put first in the configured chain, in place, so loggers that cached the
    chain see it as well.
    """
    import structlog

    records: list[str] = []

    def record(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        fields = " ".join(f"{key}={value}" for key, value in event_dict.items() if key not in ("event", "exc_info"))
        plain = structlog.processors.format_exc_info(logger, method_name, {"exc_info": event_dict.get("exc_info")})
        records.append(f"{event_dict.get('event')} {fields}\n{plain.get('exception', '')}")
        return event_dict

    processors = structlog.get_config()["processors"]
    processors.insert(0, record)
    try:
        yield records
    finally:
        processors.remove(record)


@pytest.fixture
def after_first_poke(vvp_emulator: VVPEmulator, monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], Any]], None]:
    """Run an action right after the emulator's next read: by default of the deployments, for a
    GetDeploymentsByName; ``read="job"`` for a GetJob.

    That read is the sensor's first look, so a job that starts or fails in the action cannot be
    mistaken for the deployment's history, nor be met at once, however long Airflow takes to get there.
    """
    state = vvp_emulator.state

    def schedule(action: Callable[[], Any], *, read: str = "deployments_by_name") -> None:
        original = getattr(type(state), read)
        pending = threading.Lock()

        def read_then_act(*args: Any, **kwargs: Any) -> Any:
            answer = original(state, *args, **kwargs)
            if pending.acquire(blocking=False):
                action()
            return answer

        monkeypatch.setattr(state, read, read_then_act)

    return schedule


# The DAG file of a DAG ID: the first entry whose prefix the ID starts with.
_FILES_BY_PREFIX = (
    ("example_flink_vvp_batch", "example_flink_vvp_batch.py"),
    ("example_flink_vvp_streaming", "example_flink_vvp_batch.py"),
    ("example_flink_vvp_job_control", "example_flink_vvp_job_control.py"),
    ("example_flink_vvp_savepoint", "example_flink_vvp_savepoint.py"),
    ("example_flink_vvp_scale_up", "example_flink_vvp_scale_up.py"),
    ("example_flink_vvp_on_failure", "example_flink_vvp_on_failure.py"),
    ("example_flink_vvp_upgrade", "example_flink_vvp_upgrade.py"),
    ("example_", "example_flink_vvp.py"),
    ("flink_vvp_job_", "flink_vvp_job_dags.py"),
    ("flink_vvp_asset_", "flink_vvp_asset_dags.py"),
    ("flink_vvp_savepoint_", "flink_vvp_savepoint_dags.py"),
    ("flink_vvp_diagnostics_", "flink_vvp_diagnostics_dags.py"),
    ("flink_vvp_update", "flink_vvp_update_dags.py"),
    ("flink_vvp_upgrade_", "flink_vvp_upgrade_dags.py"),
    ("flink_vvp_credentials_", "flink_vvp_credential_dags.py"),
    ("flink_vvp_lineage_", "flink_vvp_lineage_dags.py"),
    ("", "flink_vvp_test_dags.py"),
)


def _file_of(dag_id: str) -> str:
    return next(file for prefix, file in _FILES_BY_PREFIX if dag_id.startswith(prefix))
