"""The provider as Airflow's ProvidersManager discovers it through the entry point."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
from packaging.version import Version

from airflow_provider_flink_vvp.get_provider_info import get_provider_info

#: Airflow 3.2+ draws the connection form from the provider info; before, from the hook's methods.
DECLARATIVE_FORM = Version(version("apache-airflow-core")) >= Version("3.2.0.dev0")


@pytest.fixture(scope="module")
def providers_manager() -> Iterator[Any]:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    if DECLARATIVE_FORM:
        yield manager
        return
    # Before 3.2 Airflow reads the form from the hook's methods, and only where it can import wtforms (FAB's
    # form library; its UI puts stand-ins in place of the fields): a stand-in module plays it when FAB is absent.
    with pytest.MonkeyPatch.context() as monkeypatch:
        if importlib.util.find_spec("wtforms") is None:
            wtforms = types.ModuleType("wtforms")
            for name in ("BooleanField", "IntegerField", "PasswordField", "StringField"):
                setattr(wtforms, name, type(name, (), {}))
            monkeypatch.setitem(sys.modules, "wtforms", wtforms)
        manager._cleanup()  # forget hooks imported without it, as the UI does
        assert manager.hooks["flink_vvp"] is not None  # imports the hook, which fills in its form
        yield manager
    manager._cleanup()


def _hooks() -> Any:
    try:  # Airflow 3.2+
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
    except ImportError:
        from airflow.providers_manager import ProvidersManager

        return ProvidersManager().hooks
    return ProvidersManagerTaskRuntime().hooks


def test_the_provider_is_discovered_under_its_distribution_name(providers_manager: Any) -> None:
    provider = providers_manager.providers["airflow-provider-flink-vvp"]
    assert provider.version == get_provider_info()["versions"][0]


def test_the_connection_type_and_hook() -> None:
    hook = _hooks()["flink_vvp"]
    assert hook.hook_class_name == "airflow_provider_flink_vvp.hooks.vvp.FlinkVVPHook"
    assert hook.connection_id_attribute_name == "flink_vvp_conn_id"
    assert hook.hook_name == "Flink VVP (Alibaba Cloud Realtime Compute)"


def test_the_connection_form_field_behaviour_on_every_version(providers_manager: Any) -> None:
    behaviour = providers_manager.field_behaviours["flink_vvp"]
    assert behaviour["relabeling"] == {"host": "Endpoint", "login": "AccessKey ID", "password": "AccessKey Secret"}
    assert {"schema", "port"} <= set(behaviour["hidden_fields"])
    assert "cn-hangzhou" in behaviour["placeholders"]["extra__flink_vvp__region"]


def test_the_connection_form_extra_fields_from_airflow_3_2(providers_manager: Any) -> None:
    widgets = providers_manager.connection_form_widgets
    fields = {
        name.removeprefix("extra__flink_vvp__"): widget for name, widget in widgets.items() if "flink_vvp" in name
    }
    declared = set(get_provider_info()["connection-types"][0]["conn-fields"])
    # Before 3.2 the extras are set in the form's Extra JSON.
    assert set(fields) == (declared if DECLARATIVE_FORM else set())
    assert declared >= {"region", "workspace", "namespace", "security_token", "timeout", "retry_limit", "retry_delay"}
    for name, widget in fields.items():
        assert widget.is_sensitive == (name == "security_token"), name
    if fields:
        assert fields["region"].field["schema"]["title"] == "Region"
        assert fields["retry_limit"].field["schema"]["type"] == ["integer", "null"]
