"""Every connection setting is checked where it is read, alike by ``config`` (sync) and ``aget_config`` (async)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_flink_vvp.api import Credentials, VVPConfigurationError
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook, HookConfig, config_from_connection
from airflow_provider_flink_vvp.testing import EmulatorState, VVPEmulator

CONN_ID = "vvp_settings"
# Secrets split in two by what makes them unusable: neither half may show in an error, escaped or not.
SECRET_HALVES = ("s3cret-FIRST-half", "s3cret-SECOND-half")
TOKEN_HALVES = ("t0ken-FIRST-half", "t0ken-SECOND-half")
BASE: dict[str, Any] = {
    "conn_type": "flink_vvp",
    "host": "http://127.0.0.1:8765",
    "login": "AKID",
    "password": "the-secret",
    "extra": {"workspace": "ws", "namespace": "ns"},
}


def connection(*, extra: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {**BASE, **fields, "extra": {**BASE["extra"], **(extra or {})}}


async def both_ways(monkeypatch: pytest.MonkeyPatch, conn: dict[str, Any]) -> tuple[Any, Any]:
    """``hook.config`` and ``await hook.aget_config()`` of a fresh hook each: a HookConfig or the error's text."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    outcomes = []
    for read in (lambda hook: hook.config, lambda hook: hook.aget_config()):
        try:
            outcome = read(FlinkVVPHook(CONN_ID))
            outcomes.append(await outcome if not isinstance(outcome, HookConfig) else outcome)
        except VVPConfigurationError as error:
            outcomes.append(str(error))
    return outcomes[0], outcomes[1]


REFUSED: list[tuple[dict[str, Any], str]] = [
    *[
        (connection(extra={"timeout": value}), "timeout")
        for value in ("nan", "inf", "-inf", 0, -1, "0", "-2.5", True, [], 1e10, "1e300", 86400.5)
    ],
    (connection(extra={"timeout": "soon"}), "extra 'timeout' must be a number, got 'soon'"),
    *[
        (connection(extra={"retry_limit": value}), "retry_limit")
        for value in (0, 1.5, "1.5", "x", True, -3, "0", "1e3", 101, 10**12, "1_000")
    ],
    *[
        (connection(extra={"retry_delay": value}), "retry_delay")
        for value in ("nan", -1, "inf", True, "-0.5", {}, 60.5, 1e300)
    ],
    *[
        (connection(host=host), "endpoint must be a URL like https://ververica.cn-hangzhou.aliyuncs.com")
        for host in (
            "https://vvp.example.com?x=1",
            "https://vvp.example.com/?",
            "https://vvp.example.com#frag",
            "https://vvp.example.com/vvp",
            "vvp.example.com/vvp",
            "https://vvp.example.com:99999",
            "https://vvp.example.com:port",
            "vvp.example.com:abc",
            "https://vvp.example.com:0",
            "ftp://vvp.example.com",
            "https://vvp example.com",
            "https://vvp.exämple.com",
            "https://[::1",
            "https://",
            # urlsplit drops tabs and newlines inside a URL: they must not pass as if absent.
            "http://127.0.0.1\t:8765",
            "http://127.0.0.1\n:8765",
            "https://vvp.exa\r\nmple.com",
            "https://vvp.example.com\x00",
            "https://vvp.example.com;x=1",
            "https://vvp.exa%2fmple.com",
            "https://vvp.example.com\x0b:8443",
        )
    ],
    # A port of 0 reaches the hook as None (Airflow drops it): test_a_port_the_form_cannot_mean_is_refused.
    *[(connection(host="vvp.example.com", port=port), "port must be from 1 to 65535") for port in (-1, 70000)],
    *[
        (connection(host=host, port=port), "port 9000 is not the port of the host's URL")
        for host, port in (("http://vvp.example.com:8080", 9000), ("https://vvp.example.com", 9000))
    ],
    *[
        (connection(host=host), "endpoint must not hold a user name or password")
        for host in (
            f"https://user:{SECRET_HALVES[0]}@vvp.example.com",
            f"http://{SECRET_HALVES[0]}@127.0.0.1:1",
            f"https://user:{SECRET_HALVES[0]}@vvp.example.com:port",
            f"user:{SECRET_HALVES[0]}@vvp.example.com",
            f"https://vvp.example.com/?token={SECRET_HALVES[0]}@x",
        )
    ],
    *[
        (connection(extra={"workspace": value}), "extra 'workspace'")
        for value in ("w\ns", "w\rs", "w/s", "wö", "w\x00s", "w\x7fs", "w\ts", 5, ["ws"])
    ],
    *[
        (connection(extra={"namespace": value}), "extra 'namespace'")
        for value in ("n\ns", "a/b", "..", ".", "n\x7f", [], 3)
    ],
    *[
        (connection(login=value), "the AccessKey ID must be printable ASCII")
        for value in ("AK\nID", "AKÏD", "AK\x00ID")
    ],
    *[
        (connection(password=value), "the AccessKey Secret must be printable ASCII")
        for value in (f"{SECRET_HALVES[0]}\n{SECRET_HALVES[1]}", f"{SECRET_HALVES[0]}é{SECRET_HALVES[1]}")
    ],
    *[
        (connection(extra={"security_token": value}), "the STS security token must be printable ASCII")
        for value in (f"{TOKEN_HALVES[0]}\r\n{TOKEN_HALVES[1]}", f"{TOKEN_HALVES[0]}\u2028{TOKEN_HALVES[1]}")
    ],
    (connection(extra={"security_token": 5}), "extra 'security_token' must be a string"),
    *[
        (connection(extra={"region": value}), "extra 'region' must be a region ID")
        for value in ("Hangzhou!", "cn hangzhou", 5, " cn-hangzhou", "cn-hangzhou\n", "cn-hangzhou\r\n")
    ],
    *[
        (connection(extra={"console_url": value}), "console_url")
        for value in ("https://console/{nope}", "https://console/{", 5)
    ],
]


@pytest.mark.parametrize(("conn", "named"), REFUSED)
async def test_a_bad_setting_is_refused_alike_sync_and_async_naming_connection_and_field(
    monkeypatch: pytest.MonkeyPatch, conn: dict[str, Any], named: str
) -> None:
    sync, asynchronous = await both_ways(monkeypatch, conn)
    assert isinstance(sync, str), sync
    assert sync == asynchronous
    assert sync.startswith(f"Connection {CONN_ID!r}")
    assert named in sync
    assert "\n" not in sync and "\r" not in sync
    for half in (*SECRET_HALVES, *TOKEN_HALVES, "the-secret"):
        assert half not in sync


STRIPPED: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (connection(login=" AKID\n"), {"access_key_id": "AKID"}),
    (connection(password="\tthe-secret \r\n"), {"access_key_secret": "the-secret"}),
    (connection(extra={"security_token": "\n the-token\n"}), {"security_token": "the-token"}),
    (connection(extra={"security_token": "  "}), {"security_token": None}),
    (connection(extra={"workspace": " ws\n"}), {"workspace": "ws"}),
    (connection(extra={"namespace": "\nns "}), {"namespace": "ns"}),
    (connection(extra={"namespace": "项目"}), {"namespace": "项目"}),
    (connection(extra={"workspace": "  "}), {"workspace": None}),
    (
        connection(extra={"timeout": " 12.5 ", "retry_limit": " 3 ", "retry_delay": "0"}),
        {"timeout": 12.5, "retry_limit": 3},
    ),
    (connection(extra={"timeout": 7, "retry_limit": "", "retry_delay": 0.25}), {"timeout": 7.0, "retry_delay": 0.25}),
    (connection(host=" vvp.example.com ", port=8443), {"endpoint": "https://vvp.example.com:8443"}),
    (connection(host="https://[::1]:8443/"), {"endpoint": "https://[::1]:8443/"}),
    (connection(host="https://vvp.example.com:8443", port=8443), {"endpoint": "https://vvp.example.com:8443"}),
    (
        connection(extra={"timeout": 86400, "retry_limit": 100, "retry_delay": 60}),
        {"timeout": 86400.0, "retry_limit": 100, "retry_delay": 60.0},
    ),
]


def _value(config: HookConfig, name: str) -> Any:
    for holder in (config, config.client, config.client.credentials):
        if hasattr(holder, name):
            return getattr(holder, name)
    raise AttributeError(name)


@pytest.mark.parametrize(("conn", "expected"), STRIPPED)
async def test_good_settings_read_alike_sync_and_async_with_pasted_whitespace_stripped(
    monkeypatch: pytest.MonkeyPatch, conn: dict[str, Any], expected: dict[str, Any]
) -> None:
    sync, asynchronous = await both_ways(monkeypatch, conn)
    assert isinstance(sync, HookConfig), sync
    assert sync == asynchronous
    assert sync.client.credentials == asynchronous.client.credentials  # secrets compare too
    assert {name: _value(sync, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"ALIBABA_CLOUD_ACCESS_KEY_ID": "ENV\nID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"}, "AccessKey ID"),
        (
            {"ALIBABA_CLOUD_ACCESS_KEY_ID": "ENVID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": f"{SECRET_HALVES[0]}\x1b"},
            "AccessKey Secret",
        ),
        (
            {
                "ALIBABA_CLOUD_ACCESS_KEY_ID": "ENVID",
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret",
                "ALIBABA_CLOUD_SECURITY_TOKEN": f"{TOKEN_HALVES[0]}\n{TOKEN_HALVES[1]}",
            },
            "STS security token",
        ),
    ],
)
async def test_environment_credentials_are_checked_too(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], named: str
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    sync, asynchronous = await both_ways(monkeypatch, connection(login=None, password=None))
    assert isinstance(sync, str) and sync == asynchronous
    assert "environment variables ALIBABA_CLOUD_ACCESS_KEY_ID" in sync and named in sync
    for half in (*SECRET_HALVES, *TOKEN_HALVES):
        assert half not in sync


def test_environment_credentials_are_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", " ENVID\n")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret\n")
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection(login=None, password=None)))
    assert FlinkVVPHook(CONN_ID).config.client.credentials == Credentials("ENVID", "env-secret")


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"timeout": float("nan")}, "timeout must be a positive number of seconds (finite), at most 86400, got nan"),
        ({"timeout": 1e10}, "at most 86400, got 10000000000.0"),
        ({"retry_limit": 10**6}, "at most 100, got 1000000"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"retry_limit": 1.5}, "the hook's retry_limit argument must be a whole number"),
        ({"retry_limit": True}, "the hook's retry_limit argument"),
        ({"retry_delay": float("inf")}, "retry_delay must be 0 or more seconds"),
    ],
)
def test_hook_arguments_are_checked_like_the_extras(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any], named: str
) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection()))
    with pytest.raises(VVPConfigurationError, match=f"^Connection '{CONN_ID}'") as info:
        FlinkVVPHook(CONN_ID, **overrides).config  # noqa: B018 - reading it checks it
    assert named in str(info.value)


@pytest.mark.parametrize(
    "extra",
    [
        {"security_token": "tok\nen"},
        {"workspace": "w\ns"},
        {"namespace": "a/b"},
        {"timeout": "nan"},
        {"retry_limit": 0},
    ],
)
async def test_a_refused_setting_sends_no_request_on_either_path(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any]
) -> None:
    state = EmulatorState()
    state.add_access_key("AKID", "the-secret")
    with VVPEmulator(state) as emulator:
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection(host=emulator.url, extra=extra)))
        hook = FlinkVVPHook(CONN_ID)
        with pytest.raises(VVPConfigurationError):
            hook.get_latest_deployment("d")
        with pytest.raises(VVPConfigurationError):
            await hook.aget_latest_deployment("d")
        await hook.aclose()
        assert emulator.request_counts() == {}


@pytest.mark.parametrize(("host", "port"), [("vvp.example.com", 0), ("https://vvp.example.com", 0), ("h", True)])
def test_a_port_the_form_cannot_mean_is_refused(host: str, port: Any) -> None:
    with pytest.raises(VVPConfigurationError, match=f"^Connection '{CONN_ID}': port must be from 1 to 65535"):
        config_from_connection(
            conn_id=CONN_ID,
            host=host,
            port=port,
            login="AKID",
            password="the-secret",
            extra={},
            environ={},
            overrides={},
        )
