"""The emulator over real HTTP on loopback: operations, signature check, business errors, robustness."""

from __future__ import annotations

import http.client
import json
import re
import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_flink_vvp.api import operations
from airflow_provider_flink_vvp.api.operations import Credentials, Operation, PreparedRequest, acs_date
from airflow_provider_flink_vvp.api.responses import Envelope, parse_envelope
from airflow_provider_flink_vvp.api.signing import (
    authorization_header,
    canonical_request,
    normalize_headers,
    select_signed_headers,
    signature,
    string_to_sign,
)
from airflow_provider_flink_vvp.testing import EmulatorState, VVPEmulator
from airflow_provider_flink_vvp.testing.server import MAX_BODY_BYTES

WORKSPACE = "edcef******b4f"
NAMESPACE = "default-namespace"
SEED_ID = "00000000-0000-0000-0000-0000012312****"
REQUEST_ID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
Send = Callable[..., requests.Response]
Sign = Callable[..., PreparedRequest]
Factory = Callable[..., dict[str, Any]]


def by_name(name: str, **flags: bool) -> Operation[Any]:
    return operations.get_deployments_by_name(namespace=NAMESPACE, workspace=WORKSPACE, deployment_name=name, **flags)


def raw_operation(
    action: str,
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Operation[Envelope]:
    """An operation the builders would refuse to build: a bad body, no workspace, a raw path."""
    return Operation(
        action=action,
        method=method,
        path=path,
        query=query or {},
        headers={"workspace": WORKSPACE} if headers is None else headers,
        parse=lambda envelope, _action: envelope,
        body=body,
    )


def namespaced(*segments: str, namespace: str = NAMESPACE) -> str:
    return operations.namespace_path(namespace, *segments)


def assert_business_error(response: requests.Response, status: int, code: str) -> None:
    document = response.json()
    assert response.status_code == status
    assert document["success"] is False
    assert (document["httpCode"], document["errorCode"], document["data"]) == (status, code, None)
    assert REQUEST_ID.fullmatch(document["requestId"])


def assert_gateway_error(response: requests.Response, status: int, code: str) -> None:
    document = response.json()
    assert response.status_code == status
    assert set(document) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert document["Code"] == code
    assert REQUEST_ID.fullmatch(document["RequestId"])


# Operations


def test_the_seed_deployment_comes_back_identical(send: Send, seed: dict[str, Any]) -> None:
    response = send(by_name("deploymentName"))
    document = response.json()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert document["data"] == [seed]
    assert (document["success"], document["httpCode"], document["errorCode"]) == (True, 200, '""')
    assert REQUEST_ID.fullmatch(document["requestId"])
    assert response.headers["x-acs-request-id"] == document["requestId"]


def test_the_client_parses_what_the_emulator_answers(send: Send) -> None:
    op = by_name("deploymentName")
    response = send(op)
    [deployment] = op.parse(
        parse_envelope(status=response.status_code, headers=response.headers, body=response.content, action=op.action),
        op.action,
    )
    assert deployment.deployment_id == SEED_ID
    assert deployment.job_summary is not None and deployment.job_summary.failed == 6


def test_ignore_flags_drop_fields(send: Send) -> None:
    [deployment] = send(by_name("deploymentName", ignore_job_summary=True, ignore_resource_setting=True)).json()["data"]
    assert not {"jobSummary", "streamingResourceSetting", "batchResourceSetting"} & set(deployment)
    assert deployment["deploymentId"] == SEED_ID


def test_deployments_by_name_come_newest_first(send: Send, emulator: VVPEmulator, make_deployment: Factory) -> None:
    for deployment_id, created_at in (("b", "1700000002"), ("c", "1700000003\n"), ("a", "1700000001")):
        emulator.add_deployment(make_deployment(deployment_id, createdAt=created_at))
    data = send(by_name("orders")).json()["data"]
    assert [d["deploymentId"] for d in data] == ["c", "b", "a"]
    assert send(by_name("nobody")).json()["data"] == []


def test_get_deployment_by_id(send: Send, seed: dict[str, Any]) -> None:
    op = operations.get_deployment(namespace=NAMESPACE, workspace=WORKSPACE, deployment_id=SEED_ID)
    assert send(op).json()["data"] == seed


def test_list_deployments_pages(send: Send, emulator: VVPEmulator, make_deployment: Factory) -> None:
    for index in range(4):
        emulator.add_deployment(make_deployment(f"d{index}", createdAt=str(1_800_000_000 + index)))
    page = send(operations.list_deployments(namespace=NAMESPACE, workspace=WORKSPACE, page_index=2, page_size=2))
    document = page.json()
    assert (document["pageIndex"], document["pageSize"], document["totalSize"]) == (2, 2, 5)
    assert [d["deploymentId"] for d in document["data"]] == ["d1", "d0"]
    filtered = send(
        raw_operation("ListDeployments", "GET", namespaced("deployments"), query={"name": "deploymentName"})
    ).json()
    assert (filtered["totalSize"], filtered["pageSize"]) == (1, 10)


@pytest.mark.parametrize("query", [{"pageSize": "101"}, {"pageIndex": "0"}, {"pageSize": "ten"}])
def test_list_deployments_refuses_bad_pages(send: Send, query: dict[str, str]) -> None:
    response = send(raw_operation("ListDeployments", "GET", namespaced("deployments"), query=query))
    assert_business_error(response, 400, "InvalidParameter")


def test_a_bad_boolean_flag_is_refused(send: Send) -> None:
    op = raw_operation(
        "GetDeploymentsByName", "GET", namespaced("deployments", "name", "x"), query={"ignoreJobSummary": "yes"}
    )
    assert_business_error(send(op), 400, "InvalidParameter")


def test_a_job_starts_runs_and_stops_on_the_emulator_clock(send: Send, emulator: VVPEmulator) -> None:
    where = {"namespace": NAMESPACE, "workspace": WORKSPACE}
    started = send(operations.start_job_with_params(deployment_id=SEED_ID, local_variables={"a": "1"}, **where))
    job = started.json()["data"]
    assert started.status_code == 200
    assert job["status"]["currentJobStatus"] == "STARTING"
    assert job["restoreStrategy"] == {"kind": "LATEST_STATE"}
    assert job["localVariables"] == [{"name": "a", "value": "1"}]

    emulator.advance(2)
    get_job = operations.get_job(job_id=job["jobId"], **where)
    assert send(get_job).json()["data"]["status"]["currentJobStatus"] == "RUNNING"
    summary = send(operations.get_deployment(deployment_id=SEED_ID, **where)).json()["data"]["jobSummary"]
    assert summary["running"] == 3  # the seed's history says 2

    stopped = send(operations.stop_job(job_id=job["jobId"], stop_strategy="STOP_WITH_DRAIN", **where)).json()
    assert stopped["data"]["status"]["currentJobStatus"] == "CANCELLING"
    emulator.advance(3)
    assert send(get_job).json()["data"]["status"]["currentJobStatus"] == "CANCELLED"
    listed = send(operations.list_jobs(deployment_id=SEED_ID, page_size=5, **where)).json()
    assert [j["jobId"] for j in listed["data"]] == [job["jobId"]]
    assert (listed["pageIndex"], listed["pageSize"], listed["totalSize"]) == (1, 5, 1)

    again = send(operations.stop_job(job_id=job["jobId"], **where))
    assert_business_error(again, 409, "JobNotActive")


def test_list_jobs_needs_a_deployment_id(send: Send) -> None:
    assert_business_error(send(raw_operation("ListJobs", "GET", namespaced("jobs"))), 400, "InvalidParameter")


@pytest.mark.parametrize(
    ("action", "segments", "body", "code"),
    [
        ("StartJobWithParams", ("jobs:start",), b"{not json", "InvalidParameter"),
        ("StartJobWithParams", ("jobs:start",), b"\xff\xfe", "InvalidParameter"),
        ("StartJobWithParams", ("jobs:start",), b"[1, 2]", "InvalidParameter"),
        ("StartJobWithParams", ("jobs:start",), b'{"deploymentId": 7}', "InvalidParameter"),
        ("StartJobWithParams", ("jobs:start",), b'{"deploymentId": "x", "localVariables": {}}', "InvalidParameter"),
        ("StopJob", ("jobs", "j:stop"), b"{}", "InvalidParameter"),
    ],
)
def test_a_bad_body_is_a_business_error(
    send: Send, action: str, segments: tuple[str, ...], body: bytes, code: str
) -> None:
    assert_business_error(send(raw_operation(action, "POST", namespaced(*segments), body=body)), 400, code)


@pytest.mark.parametrize(
    ("op", "status", "code"),
    [
        (raw_operation("GetDeploymentsByName", "GET", namespaced("deployments", "name", "x"), headers={}),
         400, "MissingParameter"),
        (operations.get_deployment(namespace="nope", workspace=WORKSPACE, deployment_id=SEED_ID),
         404, "NamespaceNotFound"),
        (operations.get_deployment(namespace=NAMESPACE, workspace="nope", deployment_id=SEED_ID),
         404, "WorkspaceNotFound"),
        (operations.get_deployment(namespace=NAMESPACE, workspace=WORKSPACE, deployment_id="nope"),
         404, "DeploymentNotFound"),
        (operations.get_job(namespace=NAMESPACE, workspace=WORKSPACE, job_id="nope"), 404, "JobNotFound"),
        (operations.start_job_with_params(namespace=NAMESPACE, workspace=WORKSPACE, deployment_id="nope"),
         404, "DeploymentNotFound"),
    ],
)  # fmt: skip
def test_unknown_things_are_business_errors(send: Send, op: Operation[Any], status: int, code: str) -> None:
    assert_business_error(send(op), status, code)


# Paths


@pytest.mark.parametrize("name", ["a/b c", "../x", "a%2Fb", "名前", "jobs:start", "?#&="])
def test_an_encoded_name_stays_one_segment(
    send: Send, emulator: VVPEmulator, make_deployment: Factory, name: str
) -> None:
    emulator.add_deployment(make_deployment("odd", name=name))
    emulator.add_deployment(make_deployment("plain", name="a"))
    data = send(by_name(name)).json()["data"]
    assert [d["name"] for d in data] == [name]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/namespaces/default-namespace/deployments/name/a/b",  # an unencoded '/' is another path
        "/api/v2/namespaces/default-namespace/deployments/name/",
        "/api/v2/namespaces//deployments",
        "/api/v2/namespaces/default-namespace/nothing",
        "/",
    ],
)
def test_an_unknown_route_is_not_found(send: Send, path: str) -> None:
    assert_gateway_error(send(raw_operation("GetDeploymentsByName", "GET", path)), 404, "InvalidAction.NotFound")


def test_the_action_header_must_name_the_route(send: Send) -> None:
    op = raw_operation("ListDeployments", "GET", namespaced("deployments", "name", "x"))
    assert_gateway_error(send(op), 400, "InvalidAction.Mismatch")


def test_a_stop_path_keeps_its_job_id_whole(send: Send, emulator: VVPEmulator) -> None:
    emulator.add_job({"jobId": "x:stop", "deploymentId": SEED_ID, "status": {"currentJobStatus": "RUNNING"}})
    stopped = send(operations.stop_job(namespace=NAMESPACE, workspace=WORKSPACE, job_id="x:stop")).json()["data"]
    assert (stopped["jobId"], stopped["status"]["currentJobStatus"]) == ("x:stop", "CANCELLING")


# Signatures


def test_a_missing_authorization_is_an_incomplete_signature(send: Send, sign: Sign) -> None:
    assert_gateway_error(send(sign(by_name("x")), authorization=None), 400, "IncompleteSignature")


@pytest.mark.parametrize(
    "authorization",
    [
        "garbage",
        "ACS3-HMAC-SHA256 Credential=emulator-test-key",
        "HMAC-SHA1 Credential=a,SignedHeaders=host,Signature=b",
    ],
)
def test_a_garbled_authorization_is_an_incomplete_signature(send: Send, sign: Sign, authorization: str) -> None:
    assert_gateway_error(send(sign(by_name("x")), authorization=authorization), 400, "IncompleteSignature")


def test_an_unknown_access_key_is_not_found(send: Send, sign: Sign) -> None:
    prepared = sign(by_name("x"), credentials=Credentials("nobody", "secret"))
    assert_gateway_error(send(prepared), 404, "InvalidAccessKeyId.NotFound")


def test_a_wrong_secret_does_not_match(send: Send, sign: Sign) -> None:
    prepared = sign(by_name("x"), credentials=Credentials("emulator-test-key", "wrong"))
    response = send(prepared)
    assert_gateway_error(response, 400, "SignatureDoesNotMatch")
    assert "ACS3-HMAC-SHA256" in response.json()["Message"]


def test_a_changed_signed_header_does_not_match(send: Send, sign: Sign) -> None:
    assert_gateway_error(send(sign(by_name("x")), x_acs_version="2099-01-01"), 400, "SignatureDoesNotMatch")


@pytest.mark.parametrize("skew", [-16 * 60, 16 * 60])
def test_a_date_over_15_minutes_off_is_expired(send: Send, sign: Sign, emulator: VVPEmulator, skew: int) -> None:
    prepared = sign(by_name("x"), date=acs_date(emulator.now() + skew))
    assert_gateway_error(send(prepared), 400, "InvalidTimeStamp.Expired")


def test_a_date_within_15_minutes_passes(send: Send, sign: Sign, emulator: VVPEmulator) -> None:
    assert send(sign(by_name("x"), date=acs_date(emulator.now() - 14 * 60))).status_code == 200


def test_a_malformed_date_is_refused(send: Send, sign: Sign) -> None:
    response = send(sign(by_name("x"), date="yesterday"))
    assert_gateway_error(response, 400, "InvalidTimeStamp.Format")


def test_a_reused_nonce_is_refused(send: Send, sign: Sign) -> None:
    assert send(sign(by_name("x"), nonce="once")).status_code == 200
    assert_gateway_error(send(sign(by_name("x"), nonce="once")), 400, "SignatureNonceUsed")


def test_a_nonce_is_forgotten_after_the_window(send: Send, sign: Sign, emulator: VVPEmulator) -> None:
    assert send(sign(by_name("x"), nonce="once")).status_code == 200
    emulator.advance(15 * 60 + 1)
    assert send(sign(by_name("x"), nonce="once")).status_code == 200


def test_a_body_that_does_not_match_its_hash_is_refused(send: Send, sign: Sign) -> None:
    op = operations.stop_job(namespace=NAMESPACE, workspace=WORKSPACE, job_id="j")
    prepared = sign(op)
    tampered = PreparedRequest(prepared.method, prepared.url, prepared.headers, b'{"stopStrategy":"STOP_WITH_DRAIN"}')
    assert_gateway_error(send(tampered), 400, "ContentSHA256Mismatch")


def test_an_unsigned_acs_header_is_an_incomplete_signature(send: Send, sign: Sign) -> None:
    assert_gateway_error(send(sign(by_name("x")), x_acs_extra="1"), 400, "IncompleteSignature")


def test_every_header_signed_as_the_sdk_does_is_accepted(send: Send, sign: Sign) -> None:
    prepared = sign(by_name("deploymentName"))
    headers = {name: value for name, value in prepared.headers.items() if name != "authorization"}
    headers["x-acs-security-token"] = "sts-token"
    normalized = normalize_headers(headers.items())
    signed = select_signed_headers(normalized, list(normalized))  # workspace, accept, user-agent too
    path, _, query = prepared.url.split("//", 1)[1].partition("/")[2].partition("?")
    canonical = canonical_request(
        "GET", f"/{path}", dict(p.split("=") for p in query.split("&")), signed, headers["x-acs-content-sha256"]
    )
    headers["authorization"] = authorization_header(
        "emulator-test-key", signed, signature("emulator-test-secret", string_to_sign(canonical))
    )
    response = send(PreparedRequest(prepared.method, prepared.url, headers, b""))
    assert response.status_code == 200
    assert response.json()["data"][0]["deploymentId"] == SEED_ID


# Robustness


def raw_exchange(emulator: VVPEmulator, request: bytes) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it or answers once."""
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"BREW / HTTP/1.1\r\n\r\n", b"501"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", b"414"),
        (b"GET / HTTP/1.1\r\n" + b"x: y\r\n" * 200 + b"\r\n", b"431"),
        (b"GET /\xff\xfe HTTP/1.1\r\nhost: x\r\n\r\n", b"400"),
        (b"GET /api/v2/namespaces/%ff/deployments HTTP/1.1\r\nhost: x\r\n\r\n", b"400"),
        (b"GET /?a=%ff HTTP/1.1\r\nhost: x\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\ncontent-length: -5\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\ncontent-length: 99999999999\r\n\r\n", b"413"),
        (b"POST / HTTP/1.1\r\ncontent-length: " + b"9" * 5000 + b"\r\n\r\n", b"413"),
        (b"POST / HTTP/1.1\r\ncontent-length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1), b"413"),
        (b"POST / HTTP/1.1\r\ncontent-length: 1\xb3\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", b"411"),
        (b"GET / HTTP/1.1\r\nx-acs-action: \xff\r\nauthorization: \xfe\r\n\r\n", b"400"),
        (b"DELETE /api/v2/namespaces/n/jobs/j HTTP/1.1\r\n\r\n", b"400"),
    ],
)
def test_malformed_requests_get_an_answer_and_the_server_keeps_serving(
    emulator: VVPEmulator, send: Send, request_bytes: bytes, status: bytes
) -> None:
    answer = raw_exchange(emulator, request_bytes)
    assert answer.split(b" ", 2)[1] == status
    assert send(by_name("deploymentName")).status_code == 200


def test_a_keep_alive_connection_serves_many_requests(emulator: VVPEmulator, sign: Sign) -> None:
    session = requests.Session()
    sockets = set()
    for _ in range(5):
        prepared = sign(by_name("deploymentName"))
        response = session.get(prepared.url, headers=prepared.headers, stream=True, timeout=5)
        sockets.add(id(response.raw.connection.sock))  # the pooled connection, before the body is read
        assert response.headers.get("connection", "keep-alive").lower() != "close"
        assert response.json()["success"] is True
    assert len(sockets) == 1
    session.close()


def test_requests_are_counted_by_action(send: Send, emulator: VVPEmulator) -> None:
    send(by_name("x"))
    send(by_name("y"))
    send(operations.get_job(namespace=NAMESPACE, workspace=WORKSPACE, job_id="nope"))
    raw_exchange(emulator, b"GET / HTTP/1.1\r\n\r\n")
    assert emulator.request_counts() == {"GetDeploymentsByName": 2, "GetJob": 1, "": 1}


def test_the_emulator_url_names_its_loopback_port(emulator: VVPEmulator) -> None:
    assert emulator.url == f"http://127.0.0.1:{emulator.port}"
    assert emulator.port > 0


def test_a_real_time_emulator_cannot_advance(seed: dict[str, Any]) -> None:
    with VVPEmulator(EmulatorState()) as emulator, pytest.raises(TypeError, match="ManualClock"):
        emulator.advance(1)


def test_a_stopped_emulator_refuses_connections_and_closes_kept_ones(state: EmulatorState) -> None:
    emulator = VVPEmulator(state)
    with emulator:
        port = emulator.port
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        kept.request("GET", "/")
        assert kept.getresponse().read()
    assert kept.sock is not None
    assert kept.sock.recv(1) == b""  # the server ended the idle keep-alive connection
    kept.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with pytest.raises(RuntimeError, match="not running"):
        _ = emulator.url


def test_json_answers_are_utf8(send: Send, emulator: VVPEmulator, make_deployment: Factory) -> None:
    emulator.add_deployment(make_deployment("u", name="名前", description="ünïcode"))
    response = send(by_name("名前"))
    assert json.loads(response.content.decode("utf-8"))["data"][0]["description"] == "ünïcode"
