"""Change a Realtime Compute for Apache Flink (VVP) deployment: its artifact, resources, configuration, engine.

:func:`plan_update` and :func:`apply_update` are the two steps, usable by any task of this provider (a task
that stops, updates and restarts a job updates the deployment the same way, and rolls back with the spec the
first step read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_flink_vvp.deployment_specs import SpecChange, SpecChanges, spec_diff, spec_of
from airflow_provider_flink_vvp.links.vvp import FlinkVVPDeploymentLink
from airflow_provider_flink_vvp.operators.vvp import DEPLOYMENT_ID_XCOM_KEY, _check_one_deployment, _find_deployment
from airflow_provider_flink_vvp.tasks import FlinkVVPBaseOperator, TaskState

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: The XCom holding the deployment's spec before the update, what a later task passes as ``spec`` to roll back.
PREVIOUS_SPEC_XCOM_KEY = "previous_spec"
#: The XCom holding the changes, one ``path: before -> after`` line each.
SPEC_DIFF_XCOM_KEY = "spec_diff"
#: The task state store key of the spec :class:`FlinkVVPUpdateDeploymentOperator` read before it updated.
PREVIOUS_SPEC_STATE_KEY = "flink_vvp_previous_spec"


@dataclass(frozen=True)
class UpdatePlan:
    """What an update does: the deployment, its spec before and after, and the differences.

    :param deployment_id: the deployment's ID.
    :param previous: its spec before the update (see :func:`~.deployment_specs.spec_of`).
    :param wanted: its spec after.
    :param changes: the differences, by dotted path; empty when the update changes nothing.
    """

    deployment_id: str
    previous: dict[str, Any]
    wanted: dict[str, Any]
    changes: list[SpecChange]

    @property
    def diff_lines(self) -> list[str]:
        return [change.describe() for change in self.changes]


def plan_update(
    task: FlinkVVPBaseOperator, deployment_id: str, changes: SpecChanges, *, previous: Mapping[str, Any] | None = None
) -> UpdatePlan:
    """Read the deployment (GetDeployment) and work out what ``changes`` do to it.

    :param task: the task (its hook, namespace and workspace).
    :param deployment_id: the deployment's ID.
    :param changes: what to change.
    :param previous: the spec before the update, when an earlier try already read it (the deployment may hold the
        update already); the deployment's current spec when None.
    """
    deployment = task.hook.get_deployment(deployment_id, namespace=task.namespace, workspace=task.workspace)
    current = spec_of(deployment.raw)
    wanted = changes.apply(current)
    return UpdatePlan(deployment_id, dict(previous) if previous else current, wanted, spec_diff(current, wanted))


def apply_update(task: FlinkVVPBaseOperator, plan: UpdatePlan) -> None:
    """Send the plan's spec (UpdateDeployment); a retry of it is safe (the same whole spec)."""
    task.hook.update_deployment(plan.deployment_id, plan.wanted, namespace=task.namespace, workspace=task.workspace)


class FlinkVVPUpdateDeploymentOperator(FlinkVVPBaseOperator):
    """Change a deployment (UpdateDeployment): its artifact, parallelism or resources, Flink configuration,
    variables, engine version or labels. A running job keeps running as it was; the next start runs the new spec.

    The deployment is ``deployment_id``, or the newest one named ``deployment_name``. The task logs what changes,
    one ``path: before -> after`` line each (values of fields named like passwords, secrets or tokens hidden),
    and does nothing, saying so, when nothing would change; ``dry_run`` only logs. It pushes the spec before the
    update as ``previous_spec``: a later task rolls back by passing it as ``spec``. Also pushed: ``spec_diff``
    (the lines logged), ``deployment_id`` and ``deployment_url``; the task returns the deployment ID.

    A retry (Airflow 3.3+) pushes the ``previous_spec`` its first try read, not the updated one. An artifact's
    kind (SQL, JAR) cannot change; asking to is an error naming the parameters, as is any invalid value.
    The update is sent by ID (UpdateDeployment), not by name (UpdateDeploymentByName): the diff needs the spec
    read first anyway, and by name the whole spec read from one deployment would be sent to whichever deployment
    has the name by then (names are not unique), where by ID a deployment replaced meanwhile is an error.

    :param deployment_name: the deployment's name; the newest deployment with it is used. (templated)
    :param deployment_id: the deployment's ID, instead of ``deployment_name``. (templated)
    :param namespace: the namespace (project); defaults to the connection's. (templated)
    :param workspace: the workspace ID; defaults to the connection's. (templated)
    :param flink_vvp_conn_id: the Airflow connection of type ``flink_vvp``.
    :param sql_script: the SQL text of a SQL deployment. (templated)
    :param jar_uri: the JAR of a JAR deployment. (templated)
    :param entry_class: its main class. (templated)
    :param main_args: its arguments, one string. (templated)
    :param parallelism: the job's parallelism.
    :param resource_setting: merged into the resource setting of the deployment's execution mode, e.g.
        ``{"basicResourceSetting": {"taskmanagerResourceSettingSpec": {"cpu": 2, "memory": "4Gi"}}}``.
    :param flink_conf: merged into the Flink configuration; a value of None removes the key. (templated)
    :param local_variables: the deployment's ``${name}`` variables, all of them. (templated)
    :param engine_version: the Flink engine, e.g. ``vvr-8.0.9-flink-1.17``. (templated)
    :param labels: merged into the labels; a value of None removes the label. (templated)
    :param spec: a whole spec to set (e.g. ``previous_spec`` of an earlier update, to roll back); the other
        changes apply on top of it. (templated)
    :param dry_run: log what would change, change nothing.
    """

    template_fields: Sequence[str] = (
        "deployment_name",
        "deployment_id",
        "namespace",
        "workspace",
        "sql_script",
        "jar_uri",
        "entry_class",
        "main_args",
        "flink_conf",
        "local_variables",
        "engine_version",
        "labels",
        "spec",
    )
    operator_extra_links = (FlinkVVPDeploymentLink(),)
    _state_keys: tuple[str, ...] = (PREVIOUS_SPEC_STATE_KEY,)

    def __init__(
        self,
        *,
        deployment_name: str | None = None,
        deployment_id: str | None = None,
        namespace: str | None = None,
        workspace: str | None = None,
        flink_vvp_conn_id: str = "flink_vvp_default",
        sql_script: str | None = None,
        jar_uri: str | None = None,
        entry_class: str | None = None,
        main_args: str | None = None,
        parallelism: int | None = None,
        resource_setting: Mapping[str, Any] | None = None,
        flink_conf: Mapping[str, Any] | None = None,
        local_variables: Mapping[str, str] | None = None,
        engine_version: str | None = None,
        labels: Mapping[str, Any] | None = None,
        spec: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(namespace=namespace, workspace=workspace, flink_vvp_conn_id=flink_vvp_conn_id, **kwargs)
        _check_one_deployment(deployment_name, deployment_id)
        self.deployment_name = deployment_name
        self.deployment_id = deployment_id
        self.sql_script = sql_script
        self.jar_uri = jar_uri
        self.entry_class = entry_class
        self.main_args = main_args
        self.parallelism = parallelism
        self.resource_setting = resource_setting
        self.flink_conf = flink_conf
        self.local_variables = local_variables
        self.engine_version = engine_version
        self.labels = labels
        self.spec = spec
        # Not ``self.dry_run``: that name is BaseOperator's method.
        self.only_log_changes = dry_run
        if all(_is_plain(value) for value in self._changes_arguments().values()):
            self._changes().check()  # templated values (and XComs) are checked once rendered

    def execute(self, context: Context) -> str:
        changes = self._changes()
        try:
            changes.check()
        except ValueError as error:
            self._fail(str(error))
        state = TaskState(self, context)
        with self._api_errors():
            deployment_id = _find_deployment(self, self.deployment_name, self.deployment_id).deployment_id
            context["ti"].xcom_push(key=DEPLOYMENT_ID_XCOM_KEY, value=deployment_id)
            url = self._publish_url(context, deployment_id)
            stored = state.get(PREVIOUS_SPEC_STATE_KEY)
            try:
                plan = plan_update(self, deployment_id, changes, previous=stored["spec"] if stored else None)
            except ValueError as error:
                self._fail(str(error))
            context["ti"].xcom_push(key=PREVIOUS_SPEC_XCOM_KEY, value=plan.previous)
            context["ti"].xcom_push(key=SPEC_DIFF_XCOM_KEY, value=plan.diff_lines)
            if not plan.changes:
                self.log.info("Deployment %s already has this spec: nothing to update. Console: %s", deployment_id, url)
                return self._succeeded(context, deployment_id)
            diff = "\n".join(f"    {line}" for line in plan.diff_lines)
            if self.only_log_changes:
                self.log.info("Dry run: deployment %s would change:\n%s", deployment_id, diff)
                return deployment_id
            self.log.info("Updating deployment %s:\n%s", deployment_id, diff)
            # Kept before the update: a retry pushes the spec as it was, not as this try left it.
            state.set(PREVIOUS_SPEC_STATE_KEY, {"spec": plan.previous})
            apply_update(self, plan)
        self.log.info("Updated deployment %s. Console: %s", deployment_id, url)
        return self._succeeded(context, deployment_id)

    def _changes_arguments(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SpecChanges.__dataclass_fields__}

    def _changes(self) -> SpecChanges:
        return SpecChanges(**self._changes_arguments())


def _is_plain(value: Any) -> bool:
    """Whether a DAG's value is final as parsed: no template string, no XCom, anywhere in it."""
    if isinstance(value, str):
        return "{{" not in value
    if isinstance(value, Mapping):
        return all(_is_plain(item) for item in value.values())
    return value is None or isinstance(value, int | float | list | tuple)
