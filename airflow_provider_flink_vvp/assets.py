"""Flink deployments as Airflow assets: ``flink-vvp://{workspace}/{namespace}/{deployment_name}``.

:func:`flink_vvp_asset` builds one (it is also the scheme's asset factory); :func:`normalize_uri` is the scheme's
URI handler, which Airflow runs on every ``Asset(uri="flink-vvp://...")``, so a malformed URI fails where it is
written. A task that ran a job of a deployment lists the deployment's asset in ``outlets`` to record an asset
event, whose ``extra`` :func:`record_outlet_events` fills in.

Module-level imports stay light: DAG files import this module on every parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

from airflow.providers.common.compat.sdk import Asset

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_flink_vvp.api.models import Job
    from airflow_provider_flink_vvp.tasks import FlinkVVPBaseOperator

#: The URI scheme of deployment assets.
SCHEME = "flink-vvp"
_FORM = f"{SCHEME}://<workspace>/<namespace>/<deployment_name>"


@dataclass(frozen=True)
class DeploymentAddress:
    """What a deployment asset's URI names.

    :param workspace: the workspace ID.
    :param namespace: the namespace (project).
    :param deployment_name: the deployment's name.
    """

    workspace: str
    namespace: str
    deployment_name: str

    @property
    def uri(self) -> str:
        parts = (self.workspace, self.namespace, self.deployment_name)
        workspace, namespace, name = (quote(part, safe="") for part in parts)
        return f"{SCHEME}://{workspace}/{namespace}/{name}"

    @classmethod
    def from_uri(cls, uri: str) -> DeploymentAddress:
        """The deployment a ``flink-vvp://`` URI names; a malformed one raises ValueError saying what is wrong.

        :param uri: the URI.
        """
        return _address(urlsplit(uri), uri)


def flink_vvp_asset(
    *,
    workspace: str,
    namespace: str,
    deployment_name: str,
    extra: dict[str, Any] | None = None,
    watchers: Sequence[Any] = (),
) -> Asset:
    """The asset of a deployment, for a task's ``outlets`` or a DAG's ``schedule``.

    Also the scheme's asset factory (what Airflow's hook lineage calls with these keywords).

    :param workspace: the workspace ID.
    :param namespace: the namespace (project).
    :param deployment_name: the deployment's name (not its ID: the name survives re-creating the deployment).
    :param extra: the asset's own extra.
    :param watchers: ``AssetWatcher`` objects whose triggers' events are the asset's events (e.g. with
        :class:`~airflow_provider_flink_vvp.triggers.events.FlinkVVPJobStatusEventTrigger`).
    """
    for name, value in (("workspace", workspace), ("namespace", namespace), ("deployment_name", deployment_name)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"flink_vvp_asset: {name} must be a non-empty string, got {value!r}")
    uri = DeploymentAddress(workspace, namespace, deployment_name).uri
    return Asset(uri=uri, extra=extra, watchers=list(watchers)) if watchers else Asset(uri=uri, extra=extra)


def normalize_uri(parts: SplitResult) -> SplitResult:
    """Airflow's URI handler of the scheme: check a ``flink-vvp://`` URI and give its canonical form.

    Each part is percent-encoded the one way (``my%2Djob`` and ``my-job`` are one asset).

    :param parts: the URI, split (Airflow has lower-cased the scheme and dropped trailing slashes and fragment).
    """
    address = _address(parts, urlunsplit(parts))
    return urlsplit(address.uri)


def _address(parts: SplitResult, uri: str) -> DeploymentAddress:
    def malformed(why: str) -> ValueError:
        return ValueError(f"Asset URI {uri!r} is not a Flink VVP deployment: {why}; the form is {_FORM}")

    if parts.scheme.lower() != SCHEME:
        raise malformed(f"the scheme must be {SCHEME!r}")
    if "@" in parts.netloc or ":" in parts.netloc:
        raise malformed("the workspace ID takes no user, password or port")
    if parts.query:
        raise malformed("it takes no query (?...)")
    workspace = unquote(parts.netloc)
    if not workspace.strip():
        raise malformed("the workspace ID is missing")
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if len(segments) != 2:
        raise malformed(f"it needs /<namespace>/<deployment_name> after the workspace, got {parts.path!r}")
    namespace, deployment_name = (unquote(segment) for segment in segments)
    for what, value in (("namespace", namespace), ("deployment name", deployment_name)):
        if not value.strip():
            raise malformed(f"the {what} is empty")
    return DeploymentAddress(workspace, namespace, deployment_name)


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any) -> Any:
    """The OpenLineage dataset of a deployment asset: namespace ``flink-vvp://{workspace}``, name
    ``{namespace}/{deployment_name}``. Only called where the OpenLineage provider is installed.

    :param asset: the asset.
    :param lineage_context: unused; part of Airflow's converter signature.
    """
    from airflow.providers.common.compat.openlineage.facet import Dataset

    address = DeploymentAddress.from_uri(asset.uri)
    return Dataset(
        namespace=f"{SCHEME}://{quote(address.workspace, safe='')}",
        name=f"{quote(address.namespace, safe='')}/{quote(address.deployment_name, safe='')}",
    )


def record_outlet_events(task: FlinkVVPBaseOperator, context: Context, *, result_key: str, result: str) -> None:
    """Fill in the ``extra`` of the asset events of the task's deployment assets, as the task succeeds.

    Airflow records an event for each asset in ``outlets`` when the task succeeds; the task's own deployment's
    gets ``deploymentId``, ``jobId``, ``jobStatus`` (the job's status as the task ended) and, after a savepoint,
    ``savepointId``. A deployment asset of another deployment gets no extra, and the log says so. Without
    deployment assets in ``outlets`` nothing is read.

    :param task: the task that succeeded.
    :param context: its context.
    :param result_key: what ``result`` is: ``job_id`` or ``savepoint_id``.
    :param result: the task's result.
    """
    outlets = [
        (asset, DeploymentAddress.from_uri(asset.uri))
        for asset in task.outlets
        if isinstance(asset, Asset) and urlsplit(asset.uri).scheme == SCHEME
    ]
    if not outlets:
        return
    hook, where = task.hook, {"namespace": task.namespace, "workspace": task.workspace}
    savepoint = hook.get_savepoint(result, **where) if result_key == "savepoint_id" else None
    job: Job | None
    job_id: str | None
    if savepoint is None:
        started = hook.get_job(result, **where)
        job, job_id, deployment_id = started, started.job_id, started.deployment_id
    else:
        job_id, deployment_id = savepoint.job_id, savepoint.deployment_id
        job = hook.get_job(job_id, **where) if job_id else None
    deployment = hook.get_deployment(deployment_id, **where)
    namespace, workspace = hook.config.target(task.namespace, task.workspace)
    ran = DeploymentAddress(deployment.workspace or workspace, deployment.namespace or namespace, deployment.name)
    found = {
        "deploymentId": deployment_id,
        "jobId": job_id,
        "jobStatus": job.status if job else None,
        "savepointId": savepoint.savepoint_id if savepoint else None,
    }
    extra = {key: value for key, value in found.items() if value}
    for asset, address in outlets:
        if address == ran:
            context["outlet_events"][asset].extra.update(extra)
            task.log.info("Asset event of %s: %s", asset.uri, extra)
        else:
            task.log.warning(
                "Outlet %s is not the deployment this task ran (%s): its asset event has no extra", asset.uri, ran.uri
            )
