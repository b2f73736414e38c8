from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from airflow_provider_flink_vvp.api import Credentials, VVPConfigurationError, signing
from airflow_provider_flink_vvp.api.operations import (
    acs_date,
    get_deployments_by_name,
    list_deployments,
    prepare,
)

CREDENTIALS = Credentials("AKID", "the-secret")


def prepared(name: str = "my-job", credentials: Credentials = CREDENTIALS, **flags: bool):  # type: ignore[no-untyped-def]
    operation = get_deployments_by_name(namespace="default-namespace", workspace="ws1", deployment_name=name, **flags)
    return prepare(
        operation,
        base_url="https://ververica.cn-hangzhou.aliyuncs.com",
        host="ververica.cn-hangzhou.aliyuncs.com",
        credentials=credentials,
        date="2026-11-28T08:00:00Z",
        nonce="nonce-1",
        user_agent="test",
    )


def test_get_deployments_by_name_request_shape() -> None:
    request = prepared(ignore_job_summary=True)
    assert request.method == "GET"
    assert request.url == (
        "https://ververica.cn-hangzhou.aliyuncs.com/api/v2/namespaces/default-namespace/deployments/name/my-job"
        "?ignoreJobSummary=true&ignoreResourceSetting=false"
    )
    assert request.body == b""
    headers = request.headers
    assert headers["workspace"] == "ws1"
    assert headers["x-acs-action"] == "GetDeploymentsByName"
    assert headers["x-acs-version"] == "2022-07-18"
    assert headers["x-acs-date"] == "2026-11-28T08:00:00Z"
    assert headers["x-acs-signature-nonce"] == "nonce-1"
    assert headers["x-acs-content-sha256"] == signing.hex_sha256(b"")
    assert headers["accept"] == "application/json"
    assert "content-type" not in headers
    assert "x-acs-security-token" not in headers


@pytest.mark.parametrize(
    ("name", "segment"),
    [("a/b c", "a%2Fb%20c"), ("../x", "..%2Fx"), ("x?y#z", "x%3Fy%23z"), ("任务", "%E4%BB%BB%E5%8A%A1")],
)
def test_deployment_name_is_one_encoded_segment(name: str, segment: str) -> None:
    path = urlsplit(prepared(name).url).path
    assert path == f"/api/v2/namespaces/default-namespace/deployments/name/{segment}"
    assert path.count("/") == 7


def test_signature_covers_the_encoded_path_and_query_as_sent() -> None:
    request = prepared("a/b c")
    parts = urlsplit(request.url)
    received = dict(pair.split("=") for pair in parts.query.split("&"))
    expected = signing.sign(
        method="GET",
        canonical_uri=parts.path,
        query=received,
        headers=request.headers.items(),
        payload_hash=request.headers["x-acs-content-sha256"],
        access_key_id="AKID",
        access_key_secret="the-secret",
    )
    assert request.headers["authorization"] == expected
    assert "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;" in expected


def test_sts_token_is_sent_and_signed() -> None:
    request = prepared(credentials=Credentials("STS.AKID", "secret", "the-token"))
    assert request.headers["x-acs-security-token"] == "the-token"
    assert "x-acs-security-token" in request.headers["authorization"]


def test_a_new_nonce_or_date_gives_a_new_signature() -> None:
    operation = get_deployments_by_name(namespace="ns", workspace="ws", deployment_name="d")
    common = {"base_url": "http://h", "host": "h", "credentials": CREDENTIALS, "user_agent": "t"}
    first = prepare(operation, date="2026-11-28T08:00:00Z", nonce="n1", **common)  # type: ignore[arg-type]
    second = prepare(operation, date="2026-11-28T08:00:00Z", nonce="n2", **common)  # type: ignore[arg-type]
    third = prepare(operation, date="2026-11-28T08:00:01Z", nonce="n1", **common)  # type: ignore[arg-type]
    signatures = {r.headers["authorization"] for r in (first, second, third)}
    assert len(signatures) == 3


def test_secrets_stay_out_of_reprs() -> None:
    credentials = Credentials("AKID", "the-secret", "the-token")
    request = prepared(credentials=credentials)
    for text in (repr(credentials), repr(request)):
        assert "the-secret" not in text
        assert "the-token" not in text
    assert "AKID" in repr(credentials)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"namespace": "", "workspace": "ws", "deployment_name": "d"}, "namespace must be a non-empty string"),
        ({"namespace": "ns", "workspace": " ", "deployment_name": "d"}, "workspace must be a non-empty string"),
        ({"namespace": "ns", "workspace": "ws", "deployment_name": ""}, "deployment_name must be a non-empty"),
        ({"namespace": "ns", "workspace": "w\r\nx: y", "deployment_name": "d"}, "control characters"),
        ({"namespace": "ns", "workspace": "ws", "deployment_name": ".."}, "cannot be sent as a path segment"),
    ],
)
def test_invalid_inputs_are_rejected_with_the_parameter_named(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(VVPConfigurationError, match=message):
        get_deployments_by_name(**kwargs)


def test_list_deployments_pages_are_validated() -> None:
    operation = list_deployments(namespace="ns", workspace="ws", page_index=2, page_size=10)
    assert operation.path == "/api/v2/namespaces/ns/deployments"
    assert operation.query == {"pageIndex": "2", "pageSize": "10"}
    with pytest.raises(VVPConfigurationError, match="page_size must be between 1 and 100, got 101"):
        list_deployments(namespace="ns", workspace="ws", page_size=101)
    with pytest.raises(VVPConfigurationError, match="page_index must be 1 or more, got 0"):
        list_deployments(namespace="ns", workspace="ws", page_index=0)


def test_acs_date_is_utc_iso8601() -> None:
    assert acs_date(0) == "1970-01-01T00:00:00Z"
    assert acs_date(1714058507.9) == "2024-04-25T15:21:47Z"
