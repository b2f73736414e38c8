"""Temporary credentials over real HTTP: a local STS stand-in issues short-lived tokens, the emulator accepts
each until it expires; the hooks renew them before that, mask them as they come, and fail clearly (and in
bounded time) when STS refuses or cannot be reached."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_flink_vvp.api import Credentials, VVPApiError, operations
from airflow_provider_flink_vvp.client import ClientSettings, VVPClient
from airflow_provider_flink_vvp.credentials import VVPCredentialsError
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import STSFailure, STSStandIn, VVPEmulator
from tests.conftest import VVP_ACCESS_KEY_ID, VVP_ACCESS_KEY_SECRET, VVP_WORKSPACE, set_vvp_connection

ROLE_ARN = "acs:ram::1234567890123456:role/flink-ops"
OIDC_PROVIDER_ARN = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0ffee"
CONN_ID = "flink_vvp_role"
# Seconds an issued token lives: renewed a third of it before it expires (whole seconds, as STS says). The
# library keeps its last token when a renewal brings one that expires within the second: not too short.
LIFETIME = 3.0


@pytest.fixture
def sts(vvp_server: VVPEmulator) -> Iterator[STSStandIn]:
    with STSStandIn(vvp_server.state, roles={ROLE_ARN}, lifetime=LIFETIME) as stand_in:
        yield stand_in


@pytest.fixture
def role_connection(
    vvp_server: VVPEmulator, vvp_namespace: str, sts: STSStandIn, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Connection ``flink_vvp_role``: the emulator, its AccessKey assuming :data:`ROLE_ARN` at the stand-in."""
    vvp_server.add_namespace(VVP_WORKSPACE, vvp_namespace)
    set_vvp_connection(
        monkeypatch,
        vvp_server.url,
        namespace=vvp_namespace,
        conn_id=CONN_ID,
        credential_type="ram_role_arn",
        role_arn=ROLE_ARN,
        sts_endpoint=sts.url,
        timeout=2,
    )
    return vvp_namespace


def issued_secrets(sts: STSStandIn) -> list[str]:
    return [secret for issued in sts.issued for secret in (issued.secret, issued.security_token)]


def list_one(namespace: str) -> operations.Operation[Any]:
    return operations.list_deployments(namespace=namespace, workspace=VVP_WORKSPACE, page_size=1)


def accepted_tokens(vvp_server: VVPEmulator, sts: STSStandIn) -> set[str]:
    """The stand-in's tokens the emulator accepted requests with."""
    return {issued.security_token for issued in sts.issued} & set(vvp_server.state.accepted_tokens)


def test_the_sync_hook_renews_the_role_before_each_token_expires(
    role_connection: str, vvp_server: VVPEmulator, sts: STSStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = FlinkVVPHook(CONN_ID)
    calls = 0
    ends = time.monotonic() + 3 * LIFETIME
    while time.monotonic() < ends:
        hook.get_conn().call(list_one(role_connection))  # the emulator refuses an expired token: this would fail
        calls += 1
        time.sleep(0.1)

    assert len(sts.issued) >= 3
    assert len(sts.issued) < calls / 2  # renewed when due, not for every request
    assert len(accepted_tokens(vvp_server, sts)) >= 3
    assert {request["RoleArn"] for request in sts.state.requests} == {ROLE_ARN}
    assert {request["AccessKeyId"] for request in sts.state.requests} == {VVP_ACCESS_KEY_ID}
    assert {request["RoleSessionName"] for request in sts.state.requests} == {"airflow-flink-vvp"}
    for secret in [*issued_secrets(sts), VVP_ACCESS_KEY_SECRET]:
        assert secret not in caplog.text


async def test_the_async_hook_renews_the_role_on_the_event_loop(
    role_connection: str, vvp_server: VVPEmulator, sts: STSStandIn
) -> None:
    hook = FlinkVVPHook(CONN_ID)
    loop_stalls: list[float] = []
    # Each renewal takes this long: a renewal that blocked the loop would stall it that long, every time.
    sts.state.answer_delay = 0.6

    async def watch_the_loop() -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            loop_stalls.append(time.monotonic() - before)

    watcher = asyncio.create_task(watch_the_loop())
    rounds = 0
    try:
        ends = time.monotonic() + 3 * LIFETIME
        while time.monotonic() < ends:
            # Concurrent calls (different reads, not shared): one renewal for all of them.
            client = await hook.aget_conn()
            reads = (
                operations.list_deployments(namespace=role_connection, workspace=VVP_WORKSPACE, page_index=index)
                for index in (1, 2, 3)
            )
            await asyncio.gather(*(client.call(read) for read in reads))
            rounds += 1
            await asyncio.sleep(0.1)
    finally:
        watcher.cancel()
        await hook.aclose()

    assert 3 <= len(sts.issued) < rounds / 2  # renewed when due, once for the concurrent calls
    assert len(accepted_tokens(vvp_server, sts)) >= 3
    # Renewals awaited, never blocking the loop: no stall of a renewal's length at each renewal (one stall
    # that long may come from a loaded machine).
    assert sorted(loop_stalls)[-2] < 0.5


def test_an_expired_token_is_renewed_not_sent(role_connection: str, vvp_server: VVPEmulator, sts: STSStandIn) -> None:
    hook = FlinkVVPHook(CONN_ID)
    hook.get_conn().call(list_one(role_connection))
    first = sts.issued[-1]
    time.sleep(max(0.0, first.expires_at - time.time()) + 0.2)

    hook.get_conn().call(list_one(role_connection))

    assert len(sts.issued) == 2
    assert vvp_server.state.accepted_tokens[first.security_token] == 1
    assert vvp_server.state.accepted_tokens[sts.issued[-1].security_token] == 1


def test_credentials_that_arrive_expired_are_not_sent(
    role_connection: str, vvp_server: VVPEmulator, sts: STSStandIn
) -> None:
    hook = FlinkVVPHook(CONN_ID)
    hook.get_conn().call(list_one(role_connection))
    first = sts.issued[-1]
    sts.state.lifetime = 0.0  # from now on STS issues tokens that expire as they are issued
    time.sleep(max(0.0, first.expires_at - time.time()) + 0.2)
    requests_before = sum(vvp_server.request_counts().values())

    with pytest.raises(VVPCredentialsError, match=r"got credentials that expired at .*; they are not used"):
        hook.get_conn().call(list_one(role_connection))

    assert len(sts.issued) == 2
    assert sum(vvp_server.request_counts().values()) == requests_before  # nothing was sent


TOKEN_REFUSALS = {
    "expired": (lambda issued: issued.security_token, True, "InvalidSecurityToken.Expired"),
    "another's token": (lambda issued: "CAIS-not-this-keys-token", False, "InvalidSecurityToken.MismatchWithAccessKey"),
    "no token": (lambda issued: None, False, "MissingSecurityToken"),
}


@pytest.mark.parametrize(("token", "wait", "code"), TOKEN_REFUSALS.values(), ids=TOKEN_REFUSALS.keys())
def test_the_emulator_refuses_an_sts_key_without_its_live_token(
    role_connection: str, vvp_server: VVPEmulator, sts: STSStandIn, token: Any, wait: bool, code: str
) -> None:
    FlinkVVPHook(CONN_ID).get_conn().call(list_one(role_connection))
    issued = sts.issued[-1]
    if wait:
        time.sleep(max(0.0, issued.expires_at - time.time()) + 0.1)
    fixed = Credentials(issued.access_key_id, issued.secret, token(issued))
    client = VVPClient(ClientSettings(endpoint=vvp_server.url, credentials=fixed, retry_limit=1))

    with pytest.raises(VVPApiError) as refused:
        client.call(list_one(role_connection))

    assert (refused.value.code, refused.value.http_status) == (code, 400)


def test_renewed_secrets_are_masked_as_they_come(role_connection: str, sts: STSStandIn) -> None:
    from airflow.providers.common.compat.sdk import redact

    hook = FlinkVVPHook(CONN_ID)
    hook.get_conn().call(list_one(role_connection))
    time.sleep(LIFETIME)
    hook.get_conn().call(list_one(role_connection))

    assert len(sts.issued) == 2
    for secret in issued_secrets(sts):
        assert secret not in str(redact(f"the answer held {secret}"))


async def test_renewed_secrets_are_masked_from_the_event_loop_without_blocking_it(
    role_connection: str, sts: STSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.common.compat.sdk import redact
    from airflow.sdk.execution_time import comms, task_runner

    from tests.test_version_compat import RecordingSupervisor

    supervisor = RecordingSupervisor(asyncio.get_running_loop())
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", supervisor, raising=False)
    hook = FlinkVVPHook(CONN_ID)
    try:
        await (await hook.aget_conn()).call(list_one(role_connection))
        await asyncio.sleep(LIFETIME)
        await (await hook.aget_conn()).call(list_one(role_connection))
    finally:
        await hook.aclose()

    assert len(sts.issued) == 2
    assert supervisor.sent_from_loop == []
    for secret in issued_secrets(sts):
        assert secret not in str(redact(f"the answer held {secret}"))
        # The supervisor writes the trigger's log and masks it too, from Airflow 3.0.x's MaskSecret on.
        assert (secret in supervisor.masked) == hasattr(comms, "MaskSecret")


# What STS answers -> whether the error is worth another try, and what it must say.
STS_FAILURES = {
    "no such role": (STSFailure(404, "EntityNotExist.Role", "The role not exists."), False, "EntityNotExist.Role"),
    "not allowed to assume it": (
        STSFailure(403, "NoPermission", "You are not authorized to do this action."),
        False,
        "NoPermission",
    ),
    "throttled": (STSFailure(400, "Throttling.User", "Request was denied due to user flow control."), True, "Throttl"),
    "unavailable": (STSFailure(503, "ServiceUnavailable", "The request has failed."), True, "ServiceUnavailable"),
}


@pytest.mark.parametrize("way", ["sync", "async"])
@pytest.mark.parametrize(("failure", "retryable", "code"), STS_FAILURES.values(), ids=STS_FAILURES.keys())
async def test_an_sts_refusal_names_the_type_the_role_and_sts_code_and_says_whether_to_retry(
    role_connection: str,
    sts: STSStandIn,
    caplog: pytest.LogCaptureFixture,
    way: str,
    failure: STSFailure,
    retryable: bool,
    code: str,
) -> None:
    sts.state.fail_always(failure)

    error = await failed_call(way, role_connection)

    text = str(error)
    assert text.startswith(f"Connection {CONN_ID!r}: credential_type 'ram_role_arn' ({ROLE_ARN}) could not assume")
    assert f"STS answered {failure.code}: {failure.message} (HTTP {failure.status}, requestId " in text
    assert code in text
    assert error.retryable is retryable
    assert error.__cause__ is None and error.__context__ is None
    assert VVP_ACCESS_KEY_SECRET not in text + caplog.text


def test_a_role_sts_does_not_know_is_refused_by_the_stand_in_itself(
    role_connection: str, sts: STSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    sts.state.roles.clear()
    with pytest.raises(VVPCredentialsError, match=r"STS answered EntityNotExist.Role: .*\(HTTP 404, requestId \w"):
        FlinkVVPHook(CONN_ID).get_conn().call(list_one(role_connection))


UNREACHABLE = {"stand-in stopped": 0.0, "stand-in silent": 30.0}


@pytest.mark.parametrize("way", ["sync", "async"])
@pytest.mark.parametrize("silence", UNREACHABLE.values(), ids=UNREACHABLE.keys())
async def test_an_unreachable_sts_fails_in_bounded_time_as_retryable(
    role_connection: str, sts: STSStandIn, way: str, silence: float
) -> None:
    if silence:
        sts.state.fail_always(STSFailure(hang=silence))
    else:
        sts.stop()

    started = time.monotonic()
    error = await failed_call(way, role_connection)

    # The connection's timeout is 2 s: the library's connect and read timeouts are 2 s each.
    assert time.monotonic() - started < 9
    assert error.retryable
    assert str(error).startswith(f"Connection {CONN_ID!r}: credential_type 'ram_role_arn' ({ROLE_ARN}) could not")
    assert "a transient failure, tried again" in str(error)


async def failed_call(way: str, namespace: str) -> VVPCredentialsError:
    hook = FlinkVVPHook(CONN_ID)
    with pytest.raises(VVPCredentialsError) as failed:
        if way == "sync":
            await asyncio.to_thread(hook.get_conn().call, list_one(namespace))
        else:
            try:
                await (await hook.aget_conn()).call(list_one(namespace))
            finally:
                await hook.aclose()
    return failed.value


def test_an_oidc_role_is_assumed_with_the_token_file_named_by_rrsa(
    vvp_server: VVPEmulator,
    vvp_namespace: str,
    sts: STSStandIn,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    token_file = tmp_path / "oidc-token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.the-oidc-token")
    for name, value in {
        "ALIBABA_CLOUD_ROLE_ARN": ROLE_ARN,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": OIDC_PROVIDER_ARN,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file),
    }.items():
        monkeypatch.setenv(name, value)
    vvp_server.add_namespace(VVP_WORKSPACE, vvp_namespace)
    connection = {
        "conn_type": "flink_vvp",
        "host": vvp_server.url,
        "extra": {
            "workspace": VVP_WORKSPACE,
            "namespace": vvp_namespace,
            "credential_type": "oidc_role_arn",
            "sts_endpoint": sts.url,
            "retry_limit": 1,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_FLINK_VVP_RRSA", json.dumps(connection))

    FlinkVVPHook("flink_vvp_rrsa").get_conn().call(list_one(vvp_namespace))

    (request,) = sts.state.requests
    assert (request["Action"], request["RoleArn"], request["OIDCProviderArn"]) == (
        "AssumeRoleWithOIDC",
        ROLE_ARN,
        OIDC_PROVIDER_ARN,
    )
    assert request["OIDCToken"] == "eyJhbGciOiJSUzI1NiJ9.the-oidc-token"
    assert sts.issued[0].security_token in vvp_server.state.accepted_tokens


# A base token with characters a URL encodes: neither it nor its encoded form may be quoted.
BASE_TOKEN = "CAIS/base+token=with-url-characters-0123"


@pytest.mark.parametrize("way", ["sync", "async"])
async def test_an_unreachable_sts_error_never_quotes_the_signed_request(
    role_connection: str, vvp_server: VVPEmulator, sts: STSStandIn, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    set_vvp_connection(
        monkeypatch,
        vvp_server.url,
        namespace=role_connection,
        conn_id=CONN_ID,
        credential_type="ram_role_arn",
        role_arn=ROLE_ARN,
        sts_endpoint=sts.url,
        security_token=BASE_TOKEN,
        timeout=2,
    )
    sts.stop()

    text = str(await failed_call(way, role_connection))

    from urllib.parse import quote

    for quoted in (BASE_TOKEN, quote(BASE_TOKEN, safe=""), VVP_ACCESS_KEY_SECRET, "Signature="):
        assert quoted not in text


def test_a_missing_oidc_token_file_is_not_retried(
    vvp_server: VVPEmulator, vvp_namespace: str, sts: STSStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    connection = {
        "conn_type": "flink_vvp",
        "host": vvp_server.url,
        "extra": {
            "workspace": VVP_WORKSPACE,
            "namespace": vvp_namespace,
            "credential_type": "oidc_role_arn",
            "role_arn": ROLE_ARN,
            "oidc_provider_arn": OIDC_PROVIDER_ARN,
            "oidc_token_file": str(tmp_path / "not-mounted"),
            "sts_endpoint": sts.url,
            "retry_limit": 3,
            "retry_delay": 0,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_FLINK_VVP_RRSA", json.dumps(connection))

    with pytest.raises(VVPCredentialsError, match="FileNotFoundError") as failed:
        FlinkVVPHook("flink_vvp_rrsa").get_conn().call(list_one(vvp_namespace))

    assert not failed.value.retryable
    assert sts.state.requests == []


@pytest.mark.parametrize("way", ["sync", "async"])
@pytest.mark.parametrize("retry_limit", [2, 1])
async def test_a_token_the_service_holds_expired_early_is_renewed_for_the_next_attempt(
    role_connection: str,
    vvp_server: VVPEmulator,
    sts: STSStandIn,
    monkeypatch: pytest.MonkeyPatch,
    way: str,
    retry_limit: int,
) -> None:
    set_vvp_connection(
        monkeypatch,
        vvp_server.url,
        namespace=role_connection,
        conn_id=CONN_ID,
        credential_type="ram_role_arn",
        role_arn=ROLE_ARN,
        sts_endpoint=sts.url,
        retry_limit=retry_limit,
        retry_delay=0,
    )
    hook = FlinkVVPHook(CONN_ID)
    # Tokens that outlive the test however slow the machine: only the service's refusal renews one here.
    sts.state.lifetime = 600.0

    async def call() -> None:
        if way == "sync":
            await asyncio.to_thread(hook.get_conn().call, list_one(role_connection))
        else:
            await (await hook.aget_conn()).call(list_one(role_connection))

    try:
        await call()
        first = sts.issued[-1]
        # The service's clock runs ahead of this machine's: it holds the token expired already.
        temporary = vvp_server.state.temporary_credentials
        temporary[first.access_key_id] = dataclasses.replace(temporary[first.access_key_id], expires_at=0.0)
        if retry_limit == 1:
            with pytest.raises(VVPCredentialsError) as refused:
                await call()
            assert refused.value.retryable
            assert "found the credentials of credential_type 'ram_role_arn'" in str(refused.value)
            assert "InvalidSecurityToken.Expired" in str(refused.value)
        await call()  # renewed first, whether by the retry within the call or by the next call
    finally:
        await hook.aclose()

    assert len(sts.issued) == 2
    assert sts.issued[-1].security_token in vvp_server.state.accepted_tokens
