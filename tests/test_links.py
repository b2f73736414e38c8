"""The console URL and the "Flink VVP deployment" link."""

from __future__ import annotations

import pytest

from airflow_provider_flink_vvp.api.errors import VVPConfigurationError
from airflow_provider_flink_vvp.console import DEFAULT_CONSOLE_URL, deployment_console_url
from airflow_provider_flink_vvp.get_provider_info import get_provider_info
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.links.vvp import FlinkVVPDeploymentLink
from airflow_provider_flink_vvp.sensors.vvp import FlinkVVPJobSummarySensor
from airflow_provider_flink_vvp.testing import VVPEmulator
from tests.conftest import VVP_WORKSPACE, set_vvp_connection


def test_the_default_template_is_the_public_console() -> None:
    url = deployment_console_url(deployment_id="d-1", namespace="ns", workspace="ws")

    assert url == "https://vvp.console.aliyun.com/web/ws/zh/#/workspaces/ws/namespaces/ns/operations/stream/d-1"
    assert deployment_console_url(deployment_id="d-1", namespace="ns", workspace="ws", template="") == url
    assert DEFAULT_CONSOLE_URL.count("{workspace}") == 2


def test_a_template_may_use_the_region_and_values_are_encoded_whole() -> None:
    url = deployment_console_url(
        deployment_id="d/1",
        namespace="my ns",
        workspace="ws",
        region="cn-beijing",
        template="https://{region}.example/{workspace}/{namespace}/{deployment_id}",
    )

    assert url == "https://cn-beijing.example/ws/my%20ns/d%2F1"


@pytest.mark.parametrize(
    ("template", "problem"),
    [("https://x/{deployment}", "unknown fields ['deployment']"), ("https://x/{", "is malformed")],
)
def test_a_bad_template_names_the_fields_it_may_use(template: str, problem: str) -> None:
    with pytest.raises(VVPConfigurationError) as raised:
        deployment_console_url(deployment_id="d", namespace="n", workspace="w", template=template)

    assert problem in str(raised.value)
    assert "{workspace}, {namespace}, {deployment_id}, {region}" in str(raised.value)


def test_deployment_url_reads_the_template_from_the_connection_and_the_target_from_its_defaults(
    vvp_emulator: VVPEmulator, vvp_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_vvp_connection(
        monkeypatch,
        vvp_emulator.url,
        namespace=vvp_namespace,
        console_url="https://c/{workspace}/{namespace}/{deployment_id}",
    )
    config = FlinkVVPHook().config

    assert config.deployment_url("d-1", None, None) == f"https://c/{VVP_WORKSPACE}/{vvp_namespace}/d-1"
    assert config.deployment_url("d-1", "other", "w2") == "https://c/w2/other/d-1"


def test_the_link_is_named_registered_and_attached_to_the_sensor() -> None:
    link = FlinkVVPDeploymentLink()

    assert link.name == "Flink VVP deployment"
    assert get_provider_info()["extra-links"] == ["airflow_provider_flink_vvp.links.vvp.FlinkVVPDeploymentLink"]
    assert FlinkVVPJobSummarySensor.operator_extra_links == (link,)
