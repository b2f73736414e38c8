"""The clients' retry, timeout and transport behaviour: requests-mock (sync) and httpx.MockTransport (async)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import requests
import requests_mock

from airflow_provider_flink_vvp.api import Credentials, VVPApiError, VVPConfigurationError, VVPConnectionError
from airflow_provider_flink_vvp.api.operations import get_deployments_by_name
from airflow_provider_flink_vvp.client import AsyncVVPClient, ClientSettings, VVPClient

ENDPOINT = "https://ververica.cn-hangzhou.aliyuncs.com"
URL = f"{ENDPOINT}/api/v2/namespaces/ns/deployments/name/job?ignoreJobSummary=false&ignoreResourceSetting=false"
OPERATION = get_deployments_by_name(namespace="ns", workspace="ws", deployment_name="job")
OK = {"requestId": "R-ok", "success": True, "data": [{"deploymentId": "d-1", "name": "job", "namespace": "ns"}]}
THROTTLED = {"RequestId": "R-t", "Code": "Throttling.User", "Message": "Request was denied due to user flow control."}
BAD_SECRET = {"RequestId": "R-s", "Code": "SignatureDoesNotMatch", "Message": "signature mismatch"}


def settings(**kwargs: Any) -> ClientSettings:
    values: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "credentials": Credentials("AKID", "the-secret"),
        "timeout": 7.0,
        "retry_limit": 4,
        "retry_delay": 0.5,
    }
    return ClientSettings(**{**values, **kwargs})


@pytest.fixture
def sync_client() -> tuple[VVPClient, list[float]]:
    client = VVPClient(settings())
    sleeps: list[float] = []
    client.sleep = sleeps.append  # type: ignore[method-assign]
    return client, sleeps


def answer(status: int, document: dict[str, Any], **headers: str) -> dict[str, Any]:
    return {"status_code": status, "json": document, "headers": headers}


def test_success_sends_one_signed_request_with_timeout(sync_client: tuple[VVPClient, list[float]]) -> None:
    client, sleeps = sync_client
    with requests_mock.Mocker() as mock:
        mock.get(URL, json=OK)
        (deployment,) = client.call(OPERATION)
    assert deployment.deployment_id == "d-1"
    (request,) = mock.request_history
    assert (request.timeout.connect_timeout, request.timeout.total) == (7.0, 7.0)
    assert request.headers["host"] == "ververica.cn-hangzhou.aliyuncs.com"
    assert request.headers["workspace"] == "ws"
    assert request.headers["authorization"].startswith("ACS3-HMAC-SHA256 Credential=AKID,SignedHeaders=host;")
    assert sleeps == []


def test_throttling_is_retried_with_a_new_nonce_and_honours_retry_after(
    sync_client: tuple[VVPClient, list[float]],
) -> None:
    client, sleeps = sync_client
    with requests_mock.Mocker() as mock:
        mock.get(
            URL,
            [
                answer(400, THROTTLED, **{"x-acs-retry-after": "3000"}),
                answer(503, {"RequestId": "R-5", "Code": "ServiceUnavailable", "Message": "busy"}),
                answer(200, OK),
            ],
        )
        assert client.call(OPERATION)[0].deployment_id == "d-1"
    assert mock.call_count == 3
    nonces = {request.headers["x-acs-signature-nonce"] for request in mock.request_history}
    assert len(nonces) == 3
    assert sleeps[0] >= 3.0  # the server asked for 3000 ms
    assert 0.5 <= sleeps[1] <= 2.5  # exponential backoff: 0.5 * 2 ** 1, plus up to 0.5 jitter


def test_retries_stop_at_the_limit_and_raise_the_last_error(sync_client: tuple[VVPClient, list[float]]) -> None:
    client, sleeps = sync_client
    with requests_mock.Mocker() as mock:
        mock.get(URL, **answer(400, THROTTLED))
        with pytest.raises(VVPApiError, match=r"Throttling.User.*requestId R-t") as info:
            client.call(OPERATION)
    assert mock.call_count == 4
    assert len(sleeps) == 3
    assert info.value.retryable


@pytest.mark.parametrize(
    "document",
    [
        BAD_SECRET,
        {"RequestId": "R", "Code": "Forbidden.RAM", "Message": "no"},
        {"requestId": "R", "success": False, "httpCode": 400, "errorCode": "InvalidParam", "errorMessage": "x"},
    ],
)
def test_definite_errors_are_not_retried(sync_client: tuple[VVPClient, list[float]], document: dict[str, Any]) -> None:
    client, sleeps = sync_client
    with requests_mock.Mocker() as mock:
        mock.get(URL, **answer(400 if "Code" in document else 200, document))
        with pytest.raises(VVPApiError):
            client.call(OPERATION)
    assert mock.call_count == 1
    assert sleeps == []


def test_read_timeouts_are_retried_then_reported(
    sync_client: tuple[VVPClient, list[float]],
) -> None:
    client, _ = sync_client
    with requests_mock.Mocker() as mock:
        mock.get(URL, [{"exc": requests.exceptions.ReadTimeout("read timed out")}, {"json": OK}])
        assert client.call(OPERATION)[0].deployment_id == "d-1"
        assert mock.call_count == 2
    with requests_mock.Mocker() as mock:
        mock.get(URL, exc=requests.exceptions.ReadTimeout("read timed out"))
        with pytest.raises(VVPConnectionError, match="no answer within 7 s"):
            client.call(OPERATION)


def test_secret_never_in_log_or_error(
    sync_client: tuple[VVPClient, list[float]], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = sync_client
    with requests_mock.Mocker() as mock, pytest.raises(VVPApiError) as info:
        mock.get(URL, **answer(400, THROTTLED))
        client.call(OPERATION)
    assert "retrying" in caplog.text
    for text in (caplog.text, str(info.value), repr(client.settings)):
        assert "the-secret" not in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"endpoint": "ververica.cn-hangzhou.aliyuncs.com"}, "endpoint must be a URL"),
        ({"endpoint": "https://proxy.example/vvp"}, "no path"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"retry_limit": 0}, "retry_limit must be 1 or more"),
        ({"retry_delay": -1}, "retry_delay must be 0 or more"),
    ],
)
def test_settings_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(VVPConfigurationError, match=message):
        settings(**kwargs)


def test_host_header_includes_a_non_default_port() -> None:
    assert settings(endpoint="http://127.0.0.1:8765/").host == "127.0.0.1:8765"
    assert settings(endpoint="http://127.0.0.1:8765/").base_url == "http://127.0.0.1:8765"


class Recorder:
    """An httpx.MockTransport handler answering from a script, recording what it was sent."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def async_call(recorder: Recorder, **kwargs: Any) -> tuple[Any, list[float]]:
    client = AsyncVVPClient(settings(**kwargs), transport=httpx.MockTransport(recorder))
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client.sleep = record_sleep  # type: ignore[method-assign]
    try:
        return await client.call(OPERATION), sleeps
    finally:
        await client.aclose()


async def test_async_path_sends_the_same_request_as_the_sync_path() -> None:
    recorder = Recorder(httpx.Response(200, json=OK))
    deployments, _ = await async_call(recorder)
    assert deployments[0].deployment_id == "d-1"
    (request,) = recorder.requests
    assert str(request.url) == URL
    assert request.headers["host"] == "ververica.cn-hangzhou.aliyuncs.com"
    assert request.headers["workspace"] == "ws"
    assert request.extensions["timeout"]["read"] == 7.0
    assert request.headers["authorization"].startswith("ACS3-HMAC-SHA256 Credential=AKID,")


async def test_async_retries_throttling_and_connection_errors() -> None:
    recorder = Recorder(
        httpx.Response(400, json=THROTTLED, headers={"x-acs-retry-after": "2000"}),
        httpx.ConnectError("refused"),
        httpx.Response(200, json=OK),
    )
    deployments, sleeps = await async_call(recorder)
    assert deployments[0].deployment_id == "d-1"
    assert len(recorder.requests) == 3
    assert len({r.headers["x-acs-signature-nonce"] for r in recorder.requests}) == 3
    assert sleeps[0] >= 2.0


async def test_async_does_not_retry_a_wrong_secret() -> None:
    recorder = Recorder(httpx.Response(400, json=BAD_SECRET))
    with pytest.raises(VVPApiError, match="SignatureDoesNotMatch") as info:
        await async_call(recorder)
    assert len(recorder.requests) == 1
    assert info.value.request_id == "R-s"


async def test_async_timeout_is_reported_after_the_retry_limit() -> None:
    recorder = Recorder(httpx.ReadTimeout("slow"))
    with pytest.raises(VVPConnectionError, match="no answer within 7 s"):
        await async_call(recorder, retry_limit=2)
    assert len(recorder.requests) == 2


async def test_async_html_error_page() -> None:
    recorder = Recorder(httpx.Response(502, content=b"<html><body>Bad Gateway</body></html>"))
    with pytest.raises(VVPApiError, match=r"HTTP502.*Bad Gateway"):
        await async_call(recorder, retry_limit=1)
