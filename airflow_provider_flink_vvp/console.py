"""Links to a deployment's page in the Realtime Compute console; no Airflow imports.

The console's URL layout is not part of the documented API, so it is a template that a
connection may override (extra ``console_url``).
"""

from __future__ import annotations

import string
from urllib.parse import quote

from airflow_provider_flink_vvp.api.errors import VVPConfigurationError

#: The public console's page of a deployment.
DEFAULT_CONSOLE_URL = (
    "https://vvp.console.aliyun.com/web/{workspace}/zh/#/workspaces/{workspace}"
    "/namespaces/{namespace}/operations/stream/{deployment_id}"
)
#: The fields a console URL template may use.
CONSOLE_URL_FIELDS = ("workspace", "namespace", "deployment_id", "region")


def deployment_console_url(
    *,
    deployment_id: str,
    namespace: str,
    workspace: str,
    region: str | None = None,
    template: str | None = None,
) -> str:
    """The console page of a deployment.

    :param deployment_id: the deployment's ID.
    :param namespace: its namespace.
    :param workspace: its workspace ID.
    :param region: the region ID, for templates that name it; empty when unknown.
    :param template: a ``str.format`` template using any of :data:`CONSOLE_URL_FIELDS`;
        :data:`DEFAULT_CONSOLE_URL` when empty.
    """
    template = template or DEFAULT_CONSOLE_URL
    allowed = f"it may use {{{'}, {'.join(CONSOLE_URL_FIELDS)}}}"
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as error:
        raise VVPConfigurationError(f"console_url template {template!r} is malformed ({error}); {allowed}") from None
    if unknown := sorted(fields - set(CONSOLE_URL_FIELDS)):
        raise VVPConfigurationError(f"console_url template {template!r} uses unknown fields {unknown}; {allowed}")
    # Each value fills one path segment or fragment part, so it is encoded whole.
    values = {"deployment_id": deployment_id, "namespace": namespace, "workspace": workspace, "region": region or ""}
    return template.format(**{name: quote(value, safe="") for name, value in values.items()})
