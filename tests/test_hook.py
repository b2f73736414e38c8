"""FlinkVVPHook: connection handling, the sync calls, test_connection and secrecy."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests_mock

from airflow_provider_flink_vvp.api import DeploymentNotFoundError, VVPConfigurationError, signing
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook, config_from_connection

SECRET = "the-access-key-secret"
TOKEN = "the-sts-security-token"
LIST_URL = "https://ververica.cn-beijing.aliyuncs.com/api/v2/namespaces/ns/deployments?pageIndex=1&pageSize=1"


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str = "flink_vvp_default", **fields: Any) -> None:
    connection = {
        "conn_type": "flink_vvp",
        "login": "AKID",
        "password": SECRET,
        "extra": {"region": "cn-beijing", "workspace": "ws", "namespace": "ns"},
    }
    connection.update(fields)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))


def build(**fields: Any) -> Any:
    values: dict[str, Any] = {
        "conn_id": "c",
        "host": None,
        "port": None,
        "login": "AKID",
        "password": SECRET,
        "extra": {"region": "cn-hangzhou"},
        "environ": {},
        "overrides": {},
    }
    return config_from_connection(**{**values, **fields})


def verify_signature(request: Any, secret: str = SECRET) -> None:
    """Recompute the signature from what was received, as the gateway does."""
    _, names, received = signing.parse_authorization(request.headers["authorization"])
    parts = urlsplit(request.url)
    signed = signing.select_signed_headers(signing.normalize_headers(request.headers.items()), names)
    canonical = signing.canonical_request(
        request.method,
        parts.path,
        dict(parse_qsl(parts.query, keep_blank_values=True)),
        signed,
        signing.hex_sha256(request.body or b""),
    )
    assert received == signing.signature(secret, signing.string_to_sign(canonical))


@pytest.mark.parametrize(
    ("host", "port", "extra", "endpoint"),
    [
        (None, None, {"region": "cn-hangzhou"}, "https://ververica.cn-hangzhou.aliyuncs.com"),
        ("vvp-vpc.example.com", None, {}, "https://vvp-vpc.example.com"),
        ("vvp-vpc.example.com", 8443, {}, "https://vvp-vpc.example.com:8443"),
        ("http://127.0.0.1:8765", None, {"region": "cn-shanghai"}, "http://127.0.0.1:8765"),
    ],
)
def test_endpoint_from_host_or_region(host: str | None, port: int | None, extra: dict[str, str], endpoint: str) -> None:
    assert build(host=host, port=port, extra=extra).client.endpoint == endpoint


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"extra": {}}, "Connection 'c' has no endpoint: set the extra 'region'"),
        ({"extra": {"region": "Hangzhou!"}}, "extra 'region' must be a region ID like cn-hangzhou, got 'Hangzhou!'"),
        ({"login": None}, "Connection 'c' has a password but no login"),
        ({"password": ""}, "Connection 'c' has no password: set the AccessKey Secret"),
        ({"login": None, "password": None}, "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        ({"extra": {"region": "cn-hangzhou", "timeout": "soon"}}, "extra 'timeout' must be a number, got 'soon'"),
        ({"extra": {"region": "cn-hangzhou", "retry_limit": "0"}}, "retry_limit must be 1 or more"),
        ({"host": "http://h:1/some/path"}, "no path"),
    ],
)
def test_invalid_connections_name_the_connection_and_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(VVPConfigurationError) as info:
        build(**fields)
    assert message in str(info.value)
    assert SECRET not in str(info.value)


def test_environment_credentials_when_the_connection_has_none() -> None:
    environ = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "ENVID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "env-token",
    }
    credentials = build(login=None, password=None, environ=environ).client.credentials
    assert (credentials.access_key_id, credentials.access_key_secret, credentials.security_token) == (
        "ENVID",
        "env-secret",
        "env-token",
    )
    assert build(environ=environ).client.credentials.access_key_id == "AKID"  # the connection wins


def test_extras_as_strings_form_prefixes_and_hook_overrides() -> None:
    config = build(
        extra={
            "extra__flink_vvp__region": "cn-shanghai",
            "timeout": "12.5",
            "retry_limit": "3",
            "extra__flink_vvp__retry_delay": "2",
            "extra__flink_vvp__workspace": "old",
            "workspace": "ws",
            "namespace": "ns",
            "security_token": TOKEN,
            "extra__flink_vvp__console_url": "https://console.example/{workspace}/{deployment_id}",
        },
        overrides={"timeout": 4, "retry_limit": None},
    )
    assert config.deployment_url("d/1", None, None) == "https://console.example/ws/d%2F1"
    assert config.client.endpoint == "https://ververica.cn-shanghai.aliyuncs.com"
    assert (config.client.timeout, config.client.retry_limit, config.client.retry_delay) == (4.0, 3, 2.0)
    assert (config.workspace, config.namespace) == ("ws", "ns")
    assert config.client.credentials.security_token == TOKEN


def test_defaults_when_extras_are_absent() -> None:
    client = build().client
    assert (client.timeout, client.retry_limit, client.retry_delay) == (30.0, 5, 1.0)


def test_target_prefers_arguments_and_names_what_is_missing() -> None:
    config = build(extra={"region": "cn-hangzhou", "workspace": "ws", "namespace": "ns"})
    assert config.target(None, None) == ("ns", "ws")
    assert config.target("other-ns", "other-ws") == ("other-ns", "other-ws")
    with pytest.raises(VVPConfigurationError, match=r"No workspace: pass workspace=\.\.\. or set the extra"):
        build().target("ns", None)
    with pytest.raises(VVPConfigurationError, match=r"No namespace: pass namespace=\.\.\."):
        build().target(None, "ws")


def test_hook_from_airflow_conn_env_returns_typed_signed_deployments(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch)
    hook = FlinkVVPHook()
    url = (
        "https://ververica.cn-beijing.aliyuncs.com/api/v2/namespaces/ns/deployments/name/a%2Fb%20c"
        "?ignoreJobSummary=false&ignoreResourceSetting=true"
    )
    body = {
        "requestId": "R",
        "success": True,
        "data": [
            {"deploymentId": "old", "name": "a/b c", "namespace": "ns", "createdAt": "1714058507", "jobSummary": {}},
            {"deploymentId": "new", "name": "a/b c", "namespace": "ns", "createdAt": "1714058600", "jobSummary": {}},
        ],
    }
    with requests_mock.Mocker() as mock:
        mock.get(url, json=body)
        deployments = hook.get_deployments_by_name("a/b c", ignore_resource_setting=True)
        latest = hook.get_latest_deployment("a/b c", ignore_resource_setting=True)
    assert [d.deployment_id for d in deployments] == ["new", "old"]
    assert latest.deployment_id == "new"
    assert latest.created_at is not None and latest.created_at.tzinfo is not None
    for request in mock.request_history:
        verify_signature(request)
        assert request.headers["workspace"] == "ws"
    assert hook.get_conn() is hook.get_conn()  # one session for the hook's life


def test_latest_deployment_not_found_names_name_namespace_and_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch)
    with requests_mock.Mocker() as mock:
        mock.get(requests_mock.ANY, json={"requestId": "R", "success": True, "data": []})
        with pytest.raises(DeploymentNotFoundError) as info:
            FlinkVVPHook().get_latest_deployment("ghost", namespace="prod", workspace="ws9")
    assert str(info.value) == (
        "No deployment named 'ghost' in namespace 'prod' of workspace 'ws9': check the name, namespace and workspace."
    )


def test_test_connection_reports_success_and_the_api_error(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch)
    with requests_mock.Mocker() as mock:
        mock.get(LIST_URL, json={"requestId": "R", "success": True, "data": [], "totalSize": 0})
        ok, message = FlinkVVPHook().test_connection()
    assert ok, message
    assert "namespace 'ns' of workspace 'ws'" in message
    with requests_mock.Mocker() as mock:
        mock.get(
            LIST_URL,
            status_code=400,
            json={"RequestId": "REQ-42", "Code": "SignatureDoesNotMatch", "Message": "signature mismatch"},
        )
        ok, message = FlinkVVPHook().test_connection()
    assert not ok
    assert message.startswith("SignatureDoesNotMatch: signature mismatch (HTTP 400, requestId REQ-42)")
    assert mock.call_count == 1


def test_test_connection_reports_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, extra={"region": "cn-beijing"})
    ok, message = FlinkVVPHook().test_connection()
    assert not ok
    assert "No workspace" in message


def test_hook_kwargs_override_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "other", extra={"region": "cn-beijing", "timeout": 60, "retry_limit": 9})
    client = FlinkVVPHook("other", timeout=5, retry_limit=2, retry_delay=0).config.client
    assert (client.timeout, client.retry_limit, client.retry_delay) == (5.0, 2, 0.0)


def test_secrets_never_reach_logs_errors_or_reprs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    set_connection(
        monkeypatch,
        extra={
            "region": "cn-beijing",
            "workspace": "ws",
            "namespace": "ns",
            "security_token": TOKEN,
            "retry_limit": 2,
            "retry_delay": 0,
        },
    )
    hook = FlinkVVPHook()
    caplog.set_level(logging.DEBUG)
    with requests_mock.Mocker() as mock:
        mock.get(
            requests_mock.ANY, status_code=503, json={"RequestId": "R", "Code": "ServiceUnavailable", "Message": "x"}
        )
        ok, message = hook.test_connection()
    assert not ok
    assert mock.request_history[0].headers["x-acs-security-token"] == TOKEN
    for text in (caplog.text, message, repr(hook.config), repr(hook)):
        assert SECRET not in text
        assert TOKEN not in text
