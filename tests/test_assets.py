"""Deployment assets: the ``flink-vvp://`` URI handler, the factory, the OpenLineage converter, the provider info."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from airflow.sdk import Asset

from airflow_provider_flink_vvp.assets import (
    DeploymentAddress,
    convert_asset_to_openlineage,
    flink_vvp_asset,
    normalize_uri,
)
from airflow_provider_flink_vvp.get_provider_info import get_provider_info

# URI as written -> (workspace, namespace, deployment name) and the canonical URI.
VALID = [
    ("flink-vvp://ws/ns/job", ("ws", "ns", "job"), "flink-vvp://ws/ns/job"),
    ("FLINK-VVP://ws/ns/job", ("ws", "ns", "job"), "flink-vvp://ws/ns/job"),
    ("flink-vvp://ws/ns/job/", ("ws", "ns", "job"), "flink-vvp://ws/ns/job"),
    ("flink-vvp://ws/ns/job//", ("ws", "ns", "job"), "flink-vvp://ws/ns/job"),
    ("flink-vvp://ws/ns/job#fragment", ("ws", "ns", "job"), "flink-vvp://ws/ns/job"),
    ("flink-vvp://a14bd5d90a/default-namespace/orders_etl", ("a14bd5d90a", "default-namespace", "orders_etl"), None),
    ("flink-vvp://ws/ns/my%2Djob", ("ws", "ns", "my-job"), "flink-vvp://ws/ns/my-job"),
    ("flink-vvp://ws/ns/my%20job", ("ws", "ns", "my job"), "flink-vvp://ws/ns/my%20job"),
    ("flink-vvp://ws/ns/a%2Fb", ("ws", "ns", "a/b"), "flink-vvp://ws/ns/a%2Fb"),
    ("flink-vvp://ws/ns/%E8%AE%A2%E5%8D%95", ("ws", "ns", "订单"), "flink-vvp://ws/ns/%E8%AE%A2%E5%8D%95"),
]

# Malformed URI -> what the error must say.
INVALID = [
    ("flink-vvp://ws/ns", "after the workspace, got '/ns'"),
    ("flink-vvp://ws", "after the workspace, got '/'"),
    ("flink-vvp://ws/", "after the workspace"),
    ("flink-vvp://ws/ns/job/extra", "after the workspace, got '/ns/job/extra'"),
    ("flink-vvp:///ns/job", "the workspace ID is missing"),
    ("flink-vvp://%20/ns/job", "the workspace ID is missing"),
    ("flink-vvp://ws//job", "after the workspace"),
    ("flink-vvp://ws/%20/job", "the namespace is empty"),
    ("flink-vvp://ws/ns/%20", "the deployment name is empty"),
    ("flink-vvp://ws:8080/ns/job", "takes no user, password or port"),
    ("flink-vvp://user@ws/ns/job", "takes no user, password or port"),
    ("flink-vvp://ws/ns/job?version=2", "it takes no query"),
]


@pytest.mark.parametrize(("uri", "names", "canonical"), VALID)
def test_a_valid_uri_names_its_deployment_and_is_made_canonical(
    uri: str, names: tuple[str, str, str], canonical: str | None
) -> None:
    asset = Asset(uri=uri)  # through the handler registered in the provider info

    assert asset.uri == (canonical or uri)
    assert DeploymentAddress.from_uri(asset.uri) == DeploymentAddress(*names)
    assert flink_vvp_asset(workspace=names[0], namespace=names[1], deployment_name=names[2]).uri == asset.uri


@pytest.mark.parametrize(("uri", "why"), INVALID)
def test_a_malformed_uri_is_refused_naming_it_and_what_is_wrong(uri: str, why: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            Asset(uri=uri)
        except ValueError as error:
            message: str | None = str(error)
        else:
            message = None
    if message is None:
        # Airflow 3.0 drops a URI's user itself, with a warning, before the handler sees the URI.
        assert "@" in uri and any("auth info" in str(warning.message) for warning in caught)
    else:
        assert "is not a Flink VVP deployment" in message and why in message
        assert "flink-vvp://<workspace>/<namespace>/<deployment_name>" in message
    with pytest.raises(ValueError, match="is not a Flink VVP deployment"):
        normalize_uri(urlsplit(uri))
    with pytest.raises(ValueError, match="is not a Flink VVP deployment"):
        DeploymentAddress.from_uri(uri)


@pytest.mark.parametrize(("uri", "names", "canonical"), VALID)
def test_normalizing_twice_changes_nothing(uri: str, names: tuple[str, str, str], canonical: str | None) -> None:
    once = normalize_uri(urlsplit(Asset(uri=uri).uri))

    assert normalize_uri(once) == once
    assert urlunsplit(once) == (canonical or uri)


def test_another_scheme_is_not_a_deployment() -> None:
    with pytest.raises(ValueError, match="the scheme must be 'flink-vvp'"):
        DeploymentAddress.from_uri("s3://bucket/ns/job")


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"workspace": "", "namespace": "ns", "deployment_name": "job"}, "workspace"),
        ({"workspace": "ws", "namespace": "  ", "deployment_name": "job"}, "namespace"),
        ({"workspace": "ws", "namespace": "ns", "deployment_name": None}, "deployment_name"),
        ({"workspace": "ws", "namespace": "ns", "deployment_name": 3}, "deployment_name"),
    ],
)
def test_the_helper_refuses_an_empty_part_naming_it(arguments: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a non-empty string, got"):
        flink_vvp_asset(**arguments)


def test_the_helper_keeps_the_asset_extra() -> None:
    asset = flink_vvp_asset(workspace="ws", namespace="ns", deployment_name="job", extra={"team": "orders"})

    assert (asset.uri, asset.name, asset.extra) == (
        "flink-vvp://ws/ns/job",
        "flink-vvp://ws/ns/job",
        {"team": "orders"},
    )


def _providers() -> Any:
    """What tasks read asset URI handlers from: the task SDK's providers manager from Airflow 3.2, else the core's."""
    try:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
    except ImportError:
        from airflow.providers_manager import ProvidersManager

        return ProvidersManager()
    return ProvidersManagerTaskRuntime()


def test_the_provider_info_registers_the_scheme_with_its_handler_factory_and_converter() -> None:
    [entry] = get_provider_info()["asset-uris"]
    assert entry["schemes"] == ["flink-vvp"]
    manager = _providers()
    assert manager.asset_uri_handlers["flink-vvp"] is normalize_uri
    assert manager.asset_factories["flink-vvp"] is flink_vvp_asset
    assert manager.asset_to_openlineage_converters["flink-vvp"] is convert_asset_to_openlineage


def test_hook_lineage_builds_a_deployment_asset_through_the_factory() -> None:
    factory = _providers().asset_factories["flink-vvp"]
    asset = factory(workspace="ws", namespace="ns", deployment_name="job", extra={"a": 1})

    assert (asset.uri, asset.extra) == ("flink-vvp://ws/ns/job", {"a": 1})


@dataclass(frozen=True)
class _Dataset:
    namespace: str
    name: str


@pytest.mark.parametrize(
    ("uri", "namespace", "name"),
    [
        ("flink-vvp://ws/ns/job", "flink-vvp://ws", "ns/job"),
        ("flink-vvp://ws/ns/my%20job", "flink-vvp://ws", "ns/my%20job"),
    ],
)
def test_the_openlineage_dataset_of_a_deployment(
    uri: str, namespace: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.common.compat.openlineage import facet

    monkeypatch.setattr(facet, "Dataset", _Dataset)  # without the OpenLineage client it is a no-op

    assert convert_asset_to_openlineage(Asset(uri=uri), None) == _Dataset(namespace=namespace, name=name)
