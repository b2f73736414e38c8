from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flink_vvp.api import Deployment, JobSummary, VVPApiError
from airflow_provider_flink_vvp.api.models import parse_epoch
from airflow_provider_flink_vvp.api.responses import items_of, parse_envelope

SEED = Path(__file__).parent.parent / "data" / "GetDeploymentsByName.response.json"
ACTION = "GetDeploymentsByName"
parse_deployments = items_of(Deployment.from_api)


def envelope_of(document: Any, status: int = 200, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return parse_envelope(status=status, headers=headers or {}, body=body, action=ACTION)


def raised(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> VVPApiError:
    with pytest.raises(VVPApiError) as info:
        envelope_of(document, status, headers)
    return info.value


def test_the_seed_response_parses_with_its_quirks() -> None:
    body = SEED.read_bytes()
    deployments = parse_deployments(parse_envelope(status=200, headers={}, body=body, action=ACTION), ACTION)
    assert len(deployments) == 1
    deployment = deployments[0]
    assert deployment.deployment_id == "00000000-0000-0000-0000-0000012312****"
    assert deployment.name == "deploymentName"
    assert deployment.namespace == "default-namespace"
    assert deployment.workspace == "edcef******b4f"
    assert deployment.execution_mode == "STREAMING"
    assert deployment.created_at == datetime(2024, 4, 25, 15, 21, 47, tzinfo=UTC)  # "1714058507\n"
    assert deployment.modified_at == datetime(2024, 4, 25, 15, 27, 23, tzinfo=UTC)
    assert deployment.job_summary == JobSummary(starting=1, running=2, cancelling=0, cancelled=5, finished=4, failed=6)
    assert deployment.raw == json.loads(body)["data"][0]
    assert deployment.raw["labels"] == {"test": "test", "test2": 1}


def test_job_summary_is_none_when_ignored() -> None:
    seed = json.loads(SEED.read_bytes())
    del seed["data"][0]["jobSummary"]
    (deployment,) = parse_deployments(envelope_of(seed), ACTION)
    assert deployment.job_summary is None


def test_success_envelope_keeps_paging_and_request_id() -> None:
    envelope = envelope_of(
        {"requestId": "R1", "success": True, "data": [], "pageIndex": 2, "pageSize": 10, "totalSize": 11}
    )
    assert (envelope.request_id, envelope.data, envelope.page_index, envelope.total_size) == ("R1", [], 2, 11)
    assert parse_deployments(envelope_of({"requestId": "R", "success": True, "data": None}), ACTION) == []


def test_success_false_with_http_200_is_an_error() -> None:
    error = raised(
        {
            "requestId": "REQ-1",
            "success": False,
            "httpCode": 404,
            "errorCode": "990301",
            "errorMessage": "namespace not found",
            "data": None,
        }
    )
    assert (error.code, error.message, error.request_id, error.http_status) == (
        "990301",
        "namespace not found",
        "REQ-1",
        404,
    )
    assert str(error) == "GetDeploymentsByName failed: 990301: namespace not found (HTTP 404, requestId REQ-1)"
    assert not error.retryable


def test_quoted_empty_error_code_falls_back_to_the_status() -> None:
    error = raised({"requestId": "R", "success": False, "errorCode": '""', "errorMessage": '""'}, status=500)
    assert error.code == "HTTP500"
    assert error.message == "the service gave no error message"
    assert error.retryable


def test_gateway_error_shape() -> None:
    error = raised(
        {
            "RequestId": "GW-1",
            "HostId": "ververica.cn-hangzhou.aliyuncs.com",
            "Code": "SignatureDoesNotMatch",
            "Message": "Specified signature is not matched with our calculation.",
            "Recommend": "https://api.aliyun.com/troubleshoot?q=SignatureDoesNotMatch",
        },
        status=400,
    )
    assert (error.code, error.request_id, error.http_status) == ("SignatureDoesNotMatch", "GW-1", 400)
    text = str(error)
    for part in ("SignatureDoesNotMatch", "Specified signature is not matched", "HTTP 400", "GW-1"):
        assert part in text
    assert "AccessKey Secret" in text
    assert not error.retryable


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("Throttling", 400, True),
        ("Throttling.User", 400, True),
        ("Throttling.Api", 429, True),
        ("ServiceUnavailable", 503, True),
        ("InternalError", 500, True),
        ("SignatureNonceUsed", 400, True),
        ("AnythingElse", 502, True),
        ("InvalidTimeStamp.Expired", 400, False),
        ("InvalidAccessKeyId.NotFound", 404, False),
        ("Forbidden.RAM", 403, False),
        ("IncompleteSignature", 400, False),
    ],
)
def test_which_codes_are_retryable(code: str, status: int, retryable: bool) -> None:
    assert raised({"RequestId": "R", "Code": code, "Message": "m"}, status=status).retryable is retryable


def test_throttling_carries_retry_after_in_seconds() -> None:
    error = raised({"RequestId": "R", "Code": "Throttling.User", "Message": "m"}, 400, {"x-acs-retry-after": "1500"})
    assert error.retry_after == 1.5
    assert raised({"Code": "Throttling", "Message": "m"}, 400, {"x-acs-retry-after": "soon"}).retry_after is None


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("InvalidTimeStamp.Expired", "clock"),
        ("Forbidden.RAM", "stream:GetDeploymentsByName"),
        ("NoPermission", "stream:GetDeploymentsByName"),
        ("InvalidAccessKeyId.NotFound", "AccessKey ID"),
    ],
)
def test_known_codes_get_a_hint(code: str, hint: str) -> None:
    assert hint in str(raised({"RequestId": "R", "Code": code, "Message": "m"}, status=400))


def test_html_error_page_reports_status_and_start_of_body() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>" + b"x" * 5000
    error = raised(page, status=502)
    assert error.code == "HTTP502"
    assert error.http_status == 502
    assert "<title>502 Bad Gateway</title>" in error.message
    assert len(error.message) < 300
    assert error.retryable


@pytest.mark.parametrize("body", [b"", b"[1, 2]", b'{"unexpected": true}', b"\xff\xfe"])
def test_bodies_that_are_not_the_api_s_envelope_are_errors(body: bytes) -> None:
    error = raised(body, status=200)
    assert error.code == "InvalidResponse"


@pytest.mark.parametrize(
    "data", [{"deploymentId": "x"}, [{"name": "no id"}], [{"deploymentId": "d", "createdAt": "yesterday"}]]
)
def test_malformed_data_is_an_invalid_response_with_the_request_id(data: Any) -> None:
    with pytest.raises(VVPApiError, match=r"InvalidResponse.*requestId R7") as info:
        parse_deployments(envelope_of({"requestId": "R7", "success": True, "data": data}), ACTION)
    assert info.value.code == "InvalidResponse"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1714058507\n", datetime(2024, 4, 25, 15, 21, 47, tzinfo=UTC)),
        (1714058507, datetime(2024, 4, 25, 15, 21, 47, tzinfo=UTC)),
        ("1714058507000", datetime(2024, 4, 25, 15, 21, 47, tzinfo=UTC)),
        (None, None),
        (" ", None),
    ],
)
def test_parse_epoch_accepts_seconds_milliseconds_and_whitespace(value: Any, expected: datetime | None) -> None:
    assert parse_epoch(value) == expected


def test_deployment_model_ignores_raw_in_equality() -> None:
    one = Deployment.from_api({"deploymentId": "d", "name": "n", "namespace": "ns", "extra": 1})
    two = Deployment.from_api({"deploymentId": "d", "name": "n", "namespace": "ns", "extra": 2})
    assert one == two
    assert one.created_at is None
    assert one.job_summary is None
