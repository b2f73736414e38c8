"""What Airflow reads to register the provider and draw its connection form (without importing the hook)."""

from __future__ import annotations

from typing import Any

from airflow_provider_flink_vvp import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-flink-vvp",
        "name": "Flink VVP (Alibaba Cloud Realtime Compute for Apache Flink)",
        "description": "Operators, sensors and triggers for Alibaba Cloud Realtime Compute for Apache Flink "
        "(Ververica Platform OpenAPI).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Flink VVP",
                "external-doc-url": "https://www.alibabacloud.com/help/en/flink/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Flink VVP", "python-modules": ["airflow_provider_flink_vvp.hooks.vvp"]},
        ],
        "operators": [
            {
                "integration-name": "Flink VVP",
                "python-modules": [
                    "airflow_provider_flink_vvp.operators.vvp",
                    "airflow_provider_flink_vvp.operators.savepoint",
                    "airflow_provider_flink_vvp.operators.deployment",
                    "airflow_provider_flink_vvp.operators.upgrade",
                ],
            },
        ],
        "sensors": [
            {"integration-name": "Flink VVP", "python-modules": ["airflow_provider_flink_vvp.sensors.vvp"]},
        ],
        "triggers": [
            {
                "integration-name": "Flink VVP",
                "python-modules": [
                    "airflow_provider_flink_vvp.triggers.vvp",
                    "airflow_provider_flink_vvp.triggers.savepoint",
                    "airflow_provider_flink_vvp.triggers.stability",
                    "airflow_provider_flink_vvp.triggers.events",
                ],
            },
        ],
        "asset-uris": [
            {
                "schemes": ["flink-vvp"],
                "handler": "airflow_provider_flink_vvp.assets.normalize_uri",
                "factory": "airflow_provider_flink_vvp.assets.flink_vvp_asset",
                "to_openlineage_converter": "airflow_provider_flink_vvp.assets.convert_asset_to_openlineage",
            }
        ],
        "extra-links": ["airflow_provider_flink_vvp.links.vvp.FlinkVVPDeploymentLink"],
        "connection-types": [
            {
                "connection-type": "flink_vvp",
                "hook-class-name": "airflow_provider_flink_vvp.hooks.vvp.FlinkVVPHook",
                "hook-name": "Flink VVP (Alibaba Cloud Realtime Compute)",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "Endpoint", "login": "AccessKey ID", "password": "AccessKey Secret"},
                    "placeholders": {
                        "host": "empty: https://ververica.<region>.aliyuncs.com; or http://127.0.0.1:8765",
                        "login": "LTAI...",
                        "region": "cn-hangzhou",
                        "workspace": "a14bd5d90a****",
                        "namespace": "default-namespace",
                    },
                },
                "conn-fields": {
                    "region": _field("Region", "Region ID, e.g. cn-hangzhou. Used when the endpoint is empty."),
                    "workspace": _field("Workspace ID", "Default workspace of the operators and sensors."),
                    "namespace": _field("Namespace", "Default namespace (project) of the operators and sensors."),
                    "credential_type": _field(
                        "Credential type",
                        "access_key (default), sts, ram_role_arn, ecs_ram_role, oidc_role_arn or default_chain.",
                    ),
                    "security_token": _field(
                        "STS security token", "Only for temporary (STS) credentials.", secret=True
                    ),
                    "role_arn": _field("Role ARN", "ram_role_arn, oidc_role_arn: acs:ram::<account>:role/<name>."),
                    "role_session_name": _field("Role session name", "Default airflow-flink-vvp."),
                    "role_session_expiration": _field(
                        "Role session (s)", "Seconds an assumed session lasts, 900 to 43200 (default 3600).", "integer"
                    ),
                    "sts_endpoint": _field("STS endpoint", "Default sts.aliyuncs.com."),
                    "timeout": _field("Timeout (s)", "Seconds to wait for each request (default 30).", "number"),
                    "retry_limit": _field(
                        "Retry limit", "Attempts per call, the first included (default 5).", "integer"
                    ),
                    "retry_delay": _field(
                        "Retry delay (s)", "Seconds before the first retry, then exponential (default 1).", "number"
                    ),
                    "console_url": _field(
                        "Console URL template",
                        "Link to a deployment's console page, with {workspace}, {namespace}, {deployment_id} "
                        "and {region}; empty for the public console.",
                    ),
                },
            }
        ],
    }


def _field(label: str, description: str, kind: str = "string", *, secret: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": [kind, "null"]}
    if secret:
        schema["format"] = "password"
    return {"label": label, "description": description, "schema": schema}
