"""Both clients over real sockets: bounded attempts and calls, capped bodies and pauses, classified failures.

Every table runs on the sync (requests) and the async (httpx) path alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.utils
import json
import re
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_flink_vvp.api import (
    Credentials,
    VVPApiError,
    VVPConfigurationError,
    VVPConnectionError,
    VVPError,
)
from airflow_provider_flink_vvp.api.operations import get_deployments_by_name, start_job_with_params
from airflow_provider_flink_vvp.client import MAX_BODY_BYTES, MAX_RETRY_WAIT, AsyncVVPClient, VVPClient
from airflow_provider_flink_vvp.sharing import MAX_PAUSE_SECONDS, SharedEndpoint
from airflow_provider_flink_vvp.testing import EmulatorState, Fault, FaultKind, ManualClock, VVPEmulator
from tests.client_harness import (
    PATHS,
    Behaviour,
    answer,
    call,
    loopback,
    refused_url,
    self_signed_tls,
    settings,
)

SEED = json.loads((Path(__file__).parent / "data" / "GetDeploymentsByName.response.json").read_text())["data"][0]
READ = get_deployments_by_name(namespace=SEED["namespace"], workspace=SEED["workspace"], deployment_name=SEED["name"])
ACTION = READ.action
OK_BODY = json.dumps({"requestId": "R-ok", "success": True, "data": []}).encode()


@pytest.fixture
def emulator() -> Iterator[VVPEmulator]:
    state = EmulatorState(clock=ManualClock())
    state.add_access_key("transport-key", "transport-secret")
    state.add_deployment(copy.deepcopy(SEED))
    with VVPEmulator(state) as running:
        yield running


@pytest.fixture(scope="module")
def untrusted_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    return self_signed_tls(tmp_path_factory.mktemp("tls"))


def requests_made(emulator: VVPEmulator) -> int:
    return emulator.request_counts().get(ACTION, 0)


# 1. Bounded attempts and calls ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("fault", "retry_limit"),
    [
        (Fault(FaultKind.DRIP, latency_ms=150), 1),  # one byte every 150 ms: the body alone would take minutes
        (Fault(FaultKind.DRIP, latency_ms=150), 3),
        (Fault(FaultKind.LATENCY, latency_ms=3000), 1),  # the headers come late
        (Fault(FaultKind.LATENCY, latency_ms=3000), 2),
    ],
)
def test_a_slow_answer_ends_each_attempt_at_the_timeout(
    emulator: VVPEmulator, path: str, fault: Fault, retry_limit: int
) -> None:
    emulator.inject(*[fault] * retry_limit)
    outcome = call(path, settings(emulator.url, timeout=0.6, retry_limit=retry_limit), READ)
    assert isinstance(outcome.error, VVPConnectionError)
    assert f"{ACTION}: no answer within 0.6 s from {emulator.url}" in str(outcome.error)
    assert outcome.error.retryable and outcome.error.maybe_ran
    assert requests_made(emulator) == retry_limit
    # Each attempt within its timeout, the pauses (10 ms backoff) within the budget: timeout x retry_limit.
    assert 0.6 * retry_limit - 0.05 <= outcome.elapsed < 0.6 * retry_limit + 0.4


@pytest.mark.parametrize("path", PATHS)
def test_a_drip_within_the_timeout_is_read_whole(emulator: VVPEmulator, path: str) -> None:
    tiny = get_deployments_by_name(namespace=SEED["namespace"], workspace=SEED["workspace"], deployment_name="none")
    emulator.inject(Fault(FaultKind.DRIP, latency_ms=1))
    outcome = call(path, settings(emulator.url, timeout=5), tiny)
    assert outcome.error is None and outcome.result == []
    assert emulator.request_counts()[ACTION] == 1


def _drip(head: bytes, body: bytes) -> Behaviour:
    """Send ``head`` and then ``body``, one byte every 50 ms."""

    def behave(connection: socket.socket) -> None:
        for byte in head + body:
            connection.sendall(bytes([byte]))
            time.sleep(0.05)

    return behave


DRIPS = {
    "status-and-headers": _drip(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"p" * 80, b""),
    "chunk-sizes": _drip(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\n{\r\n" * 40),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("drip", DRIPS)
def test_a_drip_anywhere_in_the_answer_ends_the_attempt_at_the_timeout(path: str, drip: str) -> None:
    with loopback([DRIPS[drip]]) as server:
        outcome = call(path, settings(server.url, timeout=0.5, retry_limit=2), READ)
        assert len(server.requests) == 2
    assert isinstance(outcome.error, VVPConnectionError)
    assert f"{ACTION}: no answer within 0.5 s from {server.url}" in str(outcome.error)
    assert 0.95 <= outcome.elapsed < 1.4


def _stream_chunked(total: int) -> Behaviour:
    def behave(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        piece = b"a" * (1 << 20)
        for _ in range(total // len(piece)):
            connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        connection.sendall(b"0\r\n\r\n")

    return behave


def _declare(length: int) -> Behaviour:
    def behave(connection: socket.socket) -> None:
        connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n{{".encode())
        time.sleep(3)  # the rest never comes: a client reading it would wait out its timeout

    return behave


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "behaviour", [_declare(MAX_BODY_BYTES + 1), _stream_chunked(MAX_BODY_BYTES + (1 << 20))], ids=["declared", "sent"]
)
def test_a_body_over_the_cap_is_refused_without_reading_it_all(path: str, behaviour: Behaviour) -> None:
    with loopback([behaviour]) as server:
        outcome = call(path, settings(server.url, timeout=2.5), READ)
    assert isinstance(outcome.error, VVPApiError)
    assert outcome.error.code == "InvalidResponse"
    assert f"{ACTION} failed: InvalidResponse: the answer is larger than {MAX_BODY_BYTES} bytes" in str(outcome.error)
    # An answer that cannot be read is retried, and a start answered so may have run.
    assert outcome.error.retryable and outcome.error.maybe_ran
    assert len(server.requests) == 3
    assert outcome.elapsed < 3


# 2. Retry classes and capped pauses -------------------------------------------------------------------------

ENVELOPE_CLAIMING_400 = json.dumps(
    {"requestId": "R-5", "success": False, "httpCode": 400, "errorCode": "Odd", "errorMessage": "odd"}
).encode()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "failure",
    [
        answer(429, b"Too Many Requests", "Content-Type: text/plain"),
        answer(429, b""),
        answer(429, b'{"message": "slow down"}', "Content-Type: application/json"),
        answer(500, b""),
        answer(502, b"<html><body>Bad Gateway</body></html>", "Content-Type: text/html"),
        answer(503, b'{"error": "no envelope"}', "Content-Type: application/json"),
        answer(504, b"upstream timed out"),
        answer(503, ENVELOPE_CLAIMING_400, "Content-Type: application/json"),
    ],
    ids=["429-text", "429-empty", "429-json", "500-empty", "502-html", "503-json", "504-text", "503-claims-400"],
)
def test_429_and_any_5xx_are_retried(path: str, failure: bytes) -> None:
    with loopback([failure, failure, answer(200, OK_BODY)]) as server:
        outcome = call(path, settings(server.url, retry_limit=3), READ, fake_sleep=True)
        assert outcome.error is None and outcome.result == []
        assert len(server.requests) == 3
        assert len(outcome.sleeps) == 2
    with loopback([failure]) as server:
        outcome = call(path, settings(server.url, retry_limit=2), READ, fake_sleep=True)
    assert isinstance(outcome.error, VVPApiError)
    assert outcome.error.retryable
    # A 429 was refused before running; a 5xx may have run, so a start would be confirmed first.
    assert outcome.error.maybe_ran is (not failure.startswith(b"HTTP/1.1 429"))
    assert len(server.requests) == 2


# 200 answers that are not the API's: a gateway's page, another service, a body of the wrong shape.
UNREADABLE = {
    "html": answer(200, b"<html><body>Maintenance</body></html>", "Content-Type: text/html"),
    "no-envelope": answer(200, b'{"unexpected": 1}', "Content-Type: application/json"),
    "empty-id": answer(200, json.dumps({"requestId": "R", "success": True, "data": [{"deploymentId": ""}]}).encode()),
    "bad-page": answer(200, b'{"requestId": "R", "success": true, "data": [], "totalSize": -1}'),
    "error-code-object": answer(200, b'{"requestId": "R", "success": false, "errorCode": {"a": 1}}'),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("unreadable", UNREADABLE)
def test_an_unreadable_answer_to_a_read_is_retried_within_the_budget(path: str, unreadable: str) -> None:
    garbled = UNREADABLE[unreadable]
    with loopback([garbled, garbled, answer(200, OK_BODY)]) as server:
        outcome = call(path, settings(server.url, retry_limit=3), READ, fake_sleep=True)
        assert outcome.error is None and outcome.result == []
        assert len(server.requests) == 3
    with loopback([garbled]) as server:
        outcome = call(path, settings(server.url, retry_limit=2), READ, fake_sleep=True)
        assert len(server.requests) == 2 and len(outcome.sleeps) == 1
    assert isinstance(outcome.error, VVPApiError) and outcome.error.code == "InvalidResponse"
    assert outcome.error.retryable and outcome.error.maybe_ran


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("unreadable", UNREADABLE)
def test_a_start_answered_unreadably_is_confirmed_before_any_resend(path: str, unreadable: str) -> None:
    start = start_job_with_params(
        namespace=SEED["namespace"], workspace=SEED["workspace"], deployment_id=SEED["deploymentId"]
    )
    checks: list[str] = []

    def found() -> str:
        checks.append("looked")
        return "the started job"

    async def found_async() -> str:
        return found()

    with loopback([UNREADABLE[unreadable]]) as server:
        client_settings = settings(server.url, retry_limit=3)
        if path == "sync":
            client = VVPClient(client_settings)
            result = client.call_or_confirm(start, found)
            client.close()
        else:

            async def start_async() -> str:
                async_client = AsyncVVPClient(client_settings)
                try:
                    return await async_client.call_or_confirm(start, found_async)
                finally:
                    await async_client.aclose()

            result = asyncio.run(start_async())
        assert len(server.requests) == 1
    assert result == "the started job" and checks == ["looked"]


def dated(header: str) -> str:
    """``header`` with ``{in N}`` replaced by the HTTP date N seconds from now."""
    return re.sub(r"\{in (-?\d+)\}", lambda m: email.utils.formatdate(time.time() + int(m[1]), usegmt=True), header)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("header", "low", "high"),
    [
        ("x-acs-retry-after: 1500", 1.5, 2.25),  # milliseconds, plus up to half as jitter
        ("Retry-After: 2", 2.0, 3.0),  # seconds
        ("Retry-After: {in 4}", 2.0, 6.1),  # a date (whole seconds, so 3 to 4 s away), plus jitter
        ("x-acs-retry-after: 86400000", MAX_RETRY_WAIT, MAX_RETRY_WAIT),  # a day: capped
        ("Retry-After: 86400", MAX_RETRY_WAIT, MAX_RETRY_WAIT),
        ("Retry-After: {in 2592000}", MAX_RETRY_WAIT, MAX_RETRY_WAIT),
        ("Retry-After: 1e400", 0.0, 0.03),  # not a number it can use: the backoff
        ("Retry-After: not a date", 0.0, 0.03),
        ("Retry-After: {in -60}", 0.0, 0.03),  # past: no wait, so the backoff
    ],
)
def test_retry_after_is_honoured_up_to_the_cap(path: str, header: str, low: float, high: float) -> None:
    with loopback([answer(429, b"", dated(header)), answer(200, OK_BODY)]) as server:
        outcome = call(path, settings(server.url, timeout=30, retry_limit=5), READ, fake_sleep=True)
    assert outcome.error is None
    (slept,) = outcome.sleeps
    assert low <= slept <= high


@pytest.mark.parametrize("path", PATHS)
def test_no_pause_runs_past_the_calls_budget(path: str) -> None:
    # Budget 2 s x 3 attempts = 6 s: a server asking for a day gets at most what is left of it.
    with loopback([answer(429, b"", "Retry-After: 86400")]) as server:
        outcome = call(path, settings(server.url, timeout=2, retry_limit=3), READ, fake_sleep=True)
    assert isinstance(outcome.error, VVPApiError) and outcome.error.http_status == 429
    assert len(outcome.sleeps) == 2
    assert all(5.5 < slept <= 6 for slept in outcome.sleeps)
    # The async path also waits out the endpoint's pause before each attempt: within the budget too.
    assert all(0 < paused <= 6 for paused in outcome.endpoint_pauses)
    assert len(outcome.endpoint_pauses) == (2 if path == "async" else 0)


@pytest.mark.parametrize("path", PATHS)
def test_no_attempt_starts_after_the_budget(emulator: VVPEmulator, path: str) -> None:
    # 0.5 s x 4 attempts = 2 s; each attempt takes its whole 0.5 s and each pause is 0.3 s: three attempts fit.
    emulator.inject(*[Fault(FaultKind.LATENCY, latency_ms=1000)] * 4)
    outcome = call(path, settings(emulator.url, timeout=0.5, retry_limit=4, retry_delay=0.3), READ)
    assert isinstance(outcome.error, VVPConnectionError)
    assert requests_made(emulator) == 3
    assert outcome.elapsed < 2 + 0.5 + 0.3


async def test_a_shared_pause_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = SharedEndpoint(http=None)  # type: ignore[arg-type]
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", record)
    endpoint.pause(7 * 86400)  # an answer asking for a week
    await endpoint.wait_turn()
    assert len(slept) == 1 and MAX_PAUSE_SECONDS - 1 < slept[0] <= MAX_PAUSE_SECONDS


@pytest.mark.parametrize("header", ["x-acs-retry-after: 604800000", "Retry-After: 604800", "Retry-After: {in 604800}"])
async def test_a_429_pauses_every_async_client_of_the_endpoint_up_to_the_cap(
    monkeypatch: pytest.MonkeyPatch, header: str
) -> None:
    with loopback([answer(429, b"", dated(header)), answer(200, OK_BODY)]) as server:
        # The bystander's budget (30 s x 3) is longer than the cap: the cap is what bounds its wait.
        throttled = AsyncVVPClient(settings(server.url, timeout=30, retry_limit=1))
        bystander = AsyncVVPClient(settings(server.url, timeout=30, retry_limit=3))
        with pytest.raises(VVPApiError):
            await throttled.call(READ)
        slept: list[float] = []

        async def record(seconds: float) -> None:
            slept.append(seconds)

        monkeypatch.setattr(asyncio, "sleep", record)
        assert await bystander.call(READ, max_age=0) == []
        await throttled.aclose()
        await bystander.aclose()
    assert len(slept) == 1 and MAX_PAUSE_SECONDS - 1 < slept[0] <= MAX_PAUSE_SECONDS


# 3. Every transport failure, classified -----------------------------------------------------------------------


def _bad_chunks(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n")


def _not_http(connection: socket.socket) -> None:
    connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")


def _silence(connection: socket.socket) -> None:
    time.sleep(2)


# (fault on the emulator, or a loopback script), message, attempts made, may the request have run
EMULATOR_FAILURES = [
    (Fault(FaultKind.DROP), "the connection to {url} broke before the whole answer came", True),
    (Fault(FaultKind.RESET), "the connection to {url} broke before the whole answer came", True),
    (Fault(FaultKind.SHORT_BODY), "the connection to {url} broke before the whole answer came", True),
    (Fault(FaultKind.BAD_GZIP), "the connection to {url} broke before the whole answer came", True),
    (Fault(FaultKind.LATENCY, latency_ms=1500), "no answer within 0.5 s from {url}", True),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("fault", "message", "maybe_ran"), EMULATOR_FAILURES, ids=lambda v: getattr(v, "kind", ""))
def test_transport_failures_of_the_api_are_retried_and_named(
    emulator: VVPEmulator, path: str, fault: Fault, message: str, maybe_ran: bool
) -> None:
    emulator.inject(fault, fault)
    outcome = call(path, settings(emulator.url, timeout=0.5, retry_limit=3), READ)
    assert outcome.error is None, outcome.error  # the third attempt gets through
    assert requests_made(emulator) == 3
    emulator.inject(fault, fault)
    outcome = call(path, settings(emulator.url, timeout=0.5, retry_limit=2), READ)
    assert isinstance(outcome.error, VVPConnectionError)
    assert str(outcome.error).startswith(f"{ACTION}: " + message.format(url=emulator.url))
    assert outcome.error.retryable
    assert outcome.error.maybe_ran is maybe_ran


LOOPBACK_FAILURES = [
    (_bad_chunks, "the connection to {url} broke before the whole answer came", True),
    (_not_http, "the connection to {url} broke before the whole answer came", True),
    (_silence, "no answer within 0.5 s from {url}", True),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("behaviour", "message", "maybe_ran"), LOOPBACK_FAILURES, ids=lambda v: getattr(v, "__name__", "")
)
def test_broken_answers_are_retried_and_named(path: str, behaviour: Behaviour, message: str, maybe_ran: bool) -> None:
    with loopback([behaviour]) as server:
        outcome = call(path, settings(server.url, timeout=0.5, retry_limit=2), READ)
        assert len(server.requests) == 2
    assert isinstance(outcome.error, VVPConnectionError)
    assert str(outcome.error).startswith(f"{ACTION}: " + message.format(url=server.url))
    assert outcome.error.retryable and outcome.error.maybe_ran is maybe_ran


@pytest.mark.parametrize("path", PATHS)
def test_a_refused_connection_is_retried_and_was_not_sent(path: str) -> None:
    url = refused_url()
    outcome = call(path, settings(url, retry_limit=3), READ, fake_sleep=True)
    assert isinstance(outcome.error, VVPConnectionError)
    assert str(outcome.error).startswith(f"{ACTION}: could not connect to {url} (")
    assert outcome.error.retryable and not outcome.error.maybe_ran
    assert len(outcome.sleeps) == 2


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("server", ["untrusted-certificate", "plain-http"])
def test_a_tls_failure_is_permanent(
    emulator: VVPEmulator, untrusted_tls: ssl.SSLContext, path: str, server: str
) -> None:
    if server == "plain-http":  # https to a port that speaks plain HTTP: the handshake fails
        outcome = call(path, settings(emulator.url.replace("http://", "https://"), retry_limit=3), READ)
        attempts = requests_made(emulator)
        url = emulator.url.replace("http://", "https://")
    else:
        with loopback([answer(200, OK_BODY)], tls=untrusted_tls) as tls_server:
            outcome = call(path, settings(tls_server.url, retry_limit=3), READ)
            attempts, url = len(tls_server.requests), tls_server.url
    assert isinstance(outcome.error, VVPConnectionError)
    assert str(outcome.error).startswith(f"{ACTION}: the TLS handshake with {url} failed (")
    assert "not retried" in str(outcome.error) and "CA bundle" in str(outcome.error)
    assert not outcome.error.retryable and not outcome.error.maybe_ran
    assert attempts == 0 and outcome.sleeps == []


@pytest.mark.parametrize("path", PATHS)
def test_a_refusing_proxy_is_a_connection_error(
    emulator: VVPEmulator, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, refused_url())
    outcome = call(path, settings(emulator.url, retry_limit=2), READ, fake_sleep=True)
    assert isinstance(outcome.error, VVPConnectionError)
    # requests tells a proxy's failure apart; httpx reports the refused proxy as a refused connection.
    expected = "the proxy failed the request to" if path == "sync" else "could not connect to"
    assert str(outcome.error).startswith(f"{ACTION}: {expected} {emulator.url} (")
    assert outcome.error.retryable and not outcome.error.maybe_ran
    assert requests_made(emulator) == 0 and len(outcome.sleeps) == 1


@contextlib.contextmanager
def _full_backlog() -> Iterator[str]:
    """A port whose listen queue is full: the TCP handshake is never answered."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        queued = [socket.socket() for _ in range(4)]
        for waiting in queued:
            waiting.setblocking(False)
            waiting.connect_ex(listener.getsockname())
        try:
            yield f"http://127.0.0.1:{listener.getsockname()[1]}"
        finally:
            for waiting in queued:
                waiting.close()


@contextlib.contextmanager
def _silent_tls() -> Iterator[str]:
    """https to a server that takes the connection and never answers the TLS ClientHello."""
    with loopback([_silence]) as server:
        yield server.url.replace("http://", "https://")


@contextlib.contextmanager
def _dripping_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An https endpoint reached through a proxy that answers CONNECT one byte every 50 ms."""
    proxy_answer = _drip(b"HTTP/1.1 200 Connection established\r\nX-Padding: " + b"p" * 200, b"")
    with loopback([proxy_answer]) as proxy:
        for name in ("NO_PROXY", "no_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        yield "https://vvp.example.invalid"


CONNECTING_STALLS = {
    "full-listen-backlog": lambda monkeypatch: _full_backlog(),
    "silent-tls-handshake": lambda monkeypatch: _silent_tls(),
    "dripping-proxy-connect": _dripping_proxy,
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stall", CONNECTING_STALLS)
def test_a_stall_while_connecting_ends_at_the_timeout_and_sent_nothing(
    monkeypatch: pytest.MonkeyPatch, path: str, stall: str
) -> None:
    with CONNECTING_STALLS[stall](monkeypatch) as url:
        outcome = call(path, settings(url, timeout=0.5, retry_limit=2), READ)
    assert isinstance(outcome.error, VVPConnectionError)
    assert str(outcome.error).startswith(f"{ACTION}: could not connect to {url} within 0.5 s (")
    # Retried (a slow handshake is no TLS failure), and never sent: a start would be sent again unconfirmed.
    assert outcome.error.retryable and not outcome.error.maybe_ran
    assert 0.95 <= outcome.elapsed < 1.6


# Credentials no header can carry: refused when built, before any library could quote them in an error or a log.
BAD_HEADER_CREDENTIALS = [
    (("transport-key\nInjected: 1", "transport-secret", None), "AccessKey ID"),
    (("transport-key", "transport-secret", "sts-token\r\nInjected: 1"), "STS security token"),
    (("transport-key", "transport-secret", "sts-token-\u20ac"), "STS security token"),  # not latin-1, not ASCII
    (("transport-key", "transport-secret", "sts-t\u00f6k\u00e9n"), "STS security token"),  # latin-1, not ASCII
    (("transport-key", "transport-secret", " sts-token"), "STS security token"),
    (("transport-key", "transport-secret", "sts-token\t"), "STS security token"),
    (("transport-key\x00", "transport-secret", None), "AccessKey ID"),
    (("transport-key", "transport-secret\nInjected: 1", None), "AccessKey Secret"),
]


@pytest.mark.parametrize(("values", "source"), BAD_HEADER_CREDENTIALS)
def test_a_value_no_header_can_carry_is_refused_before_any_request(
    values: tuple[str, str, str | None], source: str
) -> None:
    with pytest.raises(VVPConfigurationError) as raised:
        Credentials(*values)
    text = str(raised.value)
    assert source in text
    # The AccessKey ID is no secret and is quoted to help; the secret and the token never are.
    for secret in ("sts-", "transport-secret", *(("Injected",) if source != "AccessKey ID" else ())):
        assert secret not in text


@pytest.mark.parametrize("path", PATHS)
def test_a_url_the_library_refuses_is_a_configuration_error(path: str) -> None:
    client_settings = settings("http://127.0.0.1:1")
    object.__setattr__(client_settings, "endpoint", "http://127.0.0.1:8x")  # as if unvalidated
    outcome = call(path, client_settings, READ, fake_sleep=True)
    assert isinstance(outcome.error, VVPConfigurationError)
    assert str(outcome.error).startswith(f"{ACTION}: the request to http://127.0.0.1:8x cannot be sent (")
    assert outcome.error.__cause__ is None and outcome.error.__context__ is None
    assert outcome.sleeps == []


@pytest.mark.parametrize("path", PATHS)
def test_whatever_a_library_raises_becomes_the_providers_error(path: str) -> None:
    # Port 99999: urllib3 refuses the URL; anyio raises an ExceptionGroup of an OverflowError.
    client_settings = settings("http://127.0.0.1:1", retry_limit=1)
    object.__setattr__(client_settings, "endpoint", "http://127.0.0.1:99999")
    outcome = call(path, client_settings, READ)
    assert isinstance(outcome.error, VVPError)
    assert str(outcome.error).startswith(f"{ACTION}: ") and "http://127.0.0.1:99999" in str(outcome.error)


@pytest.mark.parametrize("path", PATHS)
def test_a_start_that_broke_mid_answer_is_not_repeated_blindly(emulator: VVPEmulator, path: str) -> None:
    start = start_job_with_params(
        namespace=SEED["namespace"], workspace=SEED["workspace"], deployment_id=SEED["deploymentId"]
    )
    emulator.inject(Fault(FaultKind.RESET, action=start.action))
    outcome = call(path, settings(emulator.url, retry_limit=3), start, fake_sleep=True)
    assert isinstance(outcome.error, VVPConnectionError) and outcome.error.maybe_ran
    assert emulator.request_counts()[start.action] == 1  # a plain call() never resends what may have run


def test_the_loopback_helper_counts_what_it_serves() -> None:
    with loopback([answer(200, OK_BODY)]) as server:
        assert call("sync", settings(server.url), READ).result == []
        assert len(server.requests) == 1 and server.requests[0].startswith(b"GET /api/v2/namespaces/")
