"""The provider as Airflow's ProvidersManager discovers it through the entry point."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_flink_vvp.get_provider_info import get_provider_info


@pytest.fixture(scope="module")
def providers_manager() -> Any:
    from airflow.providers_manager import ProvidersManager

    return ProvidersManager()


def test_the_provider_is_discovered_under_its_distribution_name(providers_manager: Any) -> None:
    provider = providers_manager.providers["airflow-provider-flink-vvp"]
    assert provider.version == get_provider_info()["versions"][0]


def test_the_connection_type_and_hook() -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks["flink_vvp"]
    assert hook.hook_class_name == "airflow_provider_flink_vvp.hooks.vvp.FlinkVVPHook"
    assert hook.connection_id_attribute_name == "flink_vvp_conn_id"
    assert hook.hook_name == "Flink VVP (Alibaba Cloud Realtime Compute)"


def test_the_connection_form_fields_as_the_ui_gets_them(providers_manager: Any) -> None:
    widgets = providers_manager.connection_form_widgets
    fields = {
        name.removeprefix("extra__flink_vvp__"): widget for name, widget in widgets.items() if "flink_vvp" in name
    }
    assert set(fields) >= {
        "region",
        "workspace",
        "namespace",
        "security_token",
        "timeout",
        "retry_limit",
        "retry_delay",
    }
    assert fields["security_token"].is_sensitive
    assert not fields["workspace"].is_sensitive
    assert fields["region"].field["schema"]["title"] == "Region"
    assert fields["retry_limit"].field["schema"]["type"] == ["integer", "null"]

    behaviour = providers_manager.field_behaviours["flink_vvp"]
    assert behaviour["relabeling"] == {"host": "Endpoint", "login": "AccessKey ID", "password": "AccessKey Secret"}
    assert {"schema", "port"} <= set(behaviour["hidden_fields"])
    assert "cn-hangzhou" in behaviour["placeholders"]["extra__flink_vvp__region"]
