"""The extra ``credential_type`` and each type's fields: checked before any request, each error naming the
connection, the field and its value (never a secret); the library imported only for the types that need it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from airflow_provider_flink_vvp.api import Credentials, VVPConfigurationError
from airflow_provider_flink_vvp.credentials import (
    CREDENTIAL_TYPES,
    DEFAULT_ROLE_SESSION_NAME,
    INSTALL_HINT,
    CredentialSpec,
    RefreshingCredentials,
    library_provider,
)
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook, HookConfig, config_from_connection

CONN_ID = "vvp_credentials"
SECRET = "s3cret-Of-The-Base-Key-0123"
TOKEN = "t0ken-Of-The-Base-Key-0123"
ROLE_ARN = "acs:ram::1234567890123456:role/flink-ops"
OIDC_PROVIDER_ARN = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0ffee"
RRSA_ENVIRONMENT = {
    "ALIBABA_CLOUD_ROLE_ARN": ROLE_ARN,
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": OIDC_PROVIDER_ARN,
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE": "/var/run/secrets/tokens/oidc-token",
}
KEY = {"login": "AKID", "password": SECRET}
NO_KEY = {"login": None, "password": None}


def read(fields: dict[str, Any] | None = None, environ: dict[str, str] | None = None, **extra: Any) -> HookConfig:
    fields = {**KEY, **(fields or {})}
    return config_from_connection(
        conn_id=CONN_ID,
        host="http://127.0.0.1:8765",
        port=None,
        login=fields["login"],
        password=fields["password"],
        extra={"workspace": "ws", "namespace": "ns", **extra},
        environ=environ or {},
        overrides={},
    )


def spec_of(config: HookConfig) -> CredentialSpec:
    credentials = config.client.credentials
    assert isinstance(credentials, RefreshingCredentials)
    return credentials.spec


# (fields, environment, extras) -> what the connection signs with.
FIXED = {
    "no credential_type: the AccessKey, as before": ({}, {}, {}, Credentials("AKID", SECRET)),
    "access_key": ({}, {}, {"credential_type": "access_key"}, Credentials("AKID", SECRET)),
    "access_key, blank": ({}, {}, {"credential_type": " "}, Credentials("AKID", SECRET)),
    "Access_Key, spaced": ({}, {}, {"credential_type": " Access_Key "}, Credentials("AKID", SECRET)),
    "access_key with a token, as before": (
        {},
        {},
        {"security_token": TOKEN},
        Credentials("AKID", SECRET, TOKEN),
    ),
    "sts": ({}, {}, {"credential_type": "sts", "security_token": TOKEN}, Credentials("AKID", SECRET, TOKEN)),
    "the UI form's blank credential fields": (
        {},
        {},
        {
            "extra__flink_vvp__credential_type": "",
            "extra__flink_vvp__role_arn": "",
            "extra__flink_vvp__role_session_expiration": None,
            "extra__flink_vvp__sts_endpoint": " ",
        },
        Credentials("AKID", SECRET),
    ),
    "sts from the environment": (
        NO_KEY,
        {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "ENVID",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
            "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN,
        },
        {"credential_type": "sts"},
        Credentials("ENVID", SECRET, TOKEN),
    ),
}


@pytest.mark.parametrize(("fields", "environ", "extra", "expected"), FIXED.values(), ids=FIXED.keys())
def test_fixed_credentials_sign_as_given(
    fields: dict[str, Any], environ: dict[str, str], extra: dict[str, Any], expected: Credentials
) -> None:
    assert read(fields, environ, **extra).client.credentials == expected


# (fields, environment, extras) -> the spec's fields that differ from the type's defaults.
PROVIDED = {
    "ram_role_arn, defaults": (
        {},
        {},
        {"credential_type": "ram_role_arn", "role_arn": ROLE_ARN},
        {"access_key": Credentials("AKID", SECRET), "role_arn": ROLE_ARN},
    ),
    "ram_role_arn, every field": (
        {},
        {},
        {
            "credential_type": "RAM_ROLE_ARN",
            "role_arn": f" {ROLE_ARN}\n",
            "security_token": TOKEN,
            "role_session_name": "nightly@etl",
            "role_session_expiration": "3600",
            "policy": {"Version": "1", "Statement": []},
            "external_id": "abc-123",
            "sts_endpoint": "sts-vpc.cn-hangzhou.aliyuncs.com",
        },
        {
            "access_key": Credentials("AKID", SECRET, TOKEN),
            "role_arn": ROLE_ARN,
            "role_session_name": "nightly@etl",
            "role_session_expiration": 3600,
            "policy": '{"Version": "1", "Statement": []}',
            "external_id": "abc-123",
            "sts_endpoint": "sts-vpc.cn-hangzhou.aliyuncs.com",
        },
    ),
    "ram_role_arn, the AccessKey from the environment, a local STS": (
        NO_KEY,
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": "ENVID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET},
        {"credential_type": "ram_role_arn", "role_arn": ROLE_ARN, "sts_endpoint": "http://127.0.0.1:9", "timeout": 2},
        {"access_key": Credentials("ENVID", SECRET), "role_arn": ROLE_ARN, "sts_endpoint": "http://127.0.0.1:9"},
    ),
    "ecs_ram_role": (NO_KEY, {}, {"credential_type": "ecs_ram_role"}, {}),
    "ecs_ram_role with a role name": (
        NO_KEY,
        {},
        {"credential_type": "ecs_ram_role", "role_name": "flink-ecs"},
        {"role_name": "flink-ecs"},
    ),
    "oidc_role_arn from RRSA's environment": (
        NO_KEY,
        RRSA_ENVIRONMENT,
        {"credential_type": "oidc_role_arn"},
        {
            "role_arn": ROLE_ARN,
            "oidc_provider_arn": OIDC_PROVIDER_ARN,
            "oidc_token_file": "/var/run/secrets/tokens/oidc-token",
        },
    ),
    "oidc_role_arn, extras over the environment": (
        NO_KEY,
        RRSA_ENVIRONMENT,
        {
            "credential_type": "oidc_role_arn",
            "role_arn": "acs:ram::1:role/other",
            "oidc_token_file": "/tmp/token",
            "role_session_expiration": 900,
        },
        {
            "role_arn": "acs:ram::1:role/other",
            "oidc_provider_arn": OIDC_PROVIDER_ARN,
            "oidc_token_file": "/tmp/token",
            "role_session_expiration": 900,
        },
    ),
    "default_chain": (NO_KEY, {}, {"credential_type": "default_chain"}, {}),
}


@pytest.mark.parametrize(("fields", "environ", "extra", "expected"), PROVIDED.values(), ids=PROVIDED.keys())
def test_temporary_credential_types_read_their_fields(
    fields: dict[str, Any], environ: dict[str, str], extra: dict[str, Any], expected: dict[str, Any]
) -> None:
    spec = spec_of(read(fields, environ, **extra))

    defaults = CredentialSpec(conn_id=CONN_ID, credential_type=spec.credential_type, timeout=spec.timeout)
    assert spec.credential_type == str(extra["credential_type"]).lower()
    assert spec.timeout == float(extra.get("timeout", 30))
    assert {name: value for name, value in spec.__dict__.items() if value != defaults.__dict__[name]} == expected
    if spec.role_arn:
        assert spec.role_session_name == expected.get("role_session_name", DEFAULT_ROLE_SESSION_NAME)


ROLE = {"credential_type": "ram_role_arn", "role_arn": ROLE_ARN}
OIDC = {"credential_type": "oidc_role_arn"}
REFUSED: dict[str, tuple[dict[str, Any], dict[str, str], dict[str, Any], str]] = {
    **{
        f"credential_type {value!r}": (
            {},
            {},
            {"credential_type": value},
            f"extra 'credential_type' must be one of {', '.join(CREDENTIAL_TYPES)}, got {value!r}",
        )
        for value in ("iam", "ram-role-arn", 5, ["sts"], True)
    },
    "sts without a token": ({}, {}, {"credential_type": "sts"}, "credential_type 'sts' needs the STS token"),
    "ram_role_arn without a role": (
        {},
        {},
        {"credential_type": "ram_role_arn"},
        "credential_type 'ram_role_arn' needs the extra 'role_arn': a role ARN like acs:ram::123456789012:role/",
    ),
    "ram_role_arn without an AccessKey": (NO_KEY, {}, ROLE, "has no AccessKey: set its login (AccessKey ID)"),
    **{
        f"role_arn {value!r}": (
            {},
            {},
            {**ROLE, "role_arn": value},
            f"extra 'role_arn' must be a role ARN like acs:ram::123456789012:role/flink-ops, got {value!r}",
        )
        for value in ("arn:aws:iam::1:role/x", "acs:ram::abc:role/x", "flink-ops", 12, "acs:ram::1:user/x")
    },
    **{
        f"role_session_expiration {value!r}": (
            {},
            {},
            {**ROLE, "role_session_expiration": value},
            f"extra 'role_session_expiration' must be a whole number of seconds from 900 to 43200 "
            f"(at most the role's maximum session duration), got {value!r}",
        )
        for value in (899, 43201, "soon", 1800.5, True, "-900", [900])
    },
    **{
        f"role_session_name {value!r}": (
            {},
            {},
            {**ROLE, "role_session_name": value},
            f"extra 'role_session_name' must be 2 to 64 letters, digits or . @ - _, got {value!r}",
        )
        for value in ("a", "has space", "x" * 65, "naïve")
    },
    **{
        f"policy {value!r}": (
            {},
            {},
            {**ROLE, "policy": value},
            f"extra 'policy' must be a RAM policy document (a JSON object), got {value!r}",
        )
        for value in ("not json", "[1]", 7)
    },
    **{
        f"sts_endpoint {value!r}": (
            {},
            {},
            {**ROLE, "sts_endpoint": value},
            f"extra 'sts_endpoint' must be a host like sts.cn-hangzhou.aliyuncs.com (or http://host:port), "
            f"got {value!r}",
        )
        for value in ("ftp://sts", "sts.aliyuncs.com/path", "user@sts", 5)
    },
    "external_id of one character": ({}, {}, {**ROLE, "external_id": "x"}, "extra 'external_id' must be 2 to 1224"),
    **{
        f"{kind} with an AccessKey": (
            {},
            RRSA_ENVIRONMENT,
            {"credential_type": kind},
            f"credential_type {kind!r} does not use the login and password (AccessKey): leave them empty",
        )
        for kind in ("ecs_ram_role", "oidc_role_arn", "default_chain")
    },
    "access_key with a role": (
        {},
        {},
        {"role_arn": ROLE_ARN},
        "credential_type 'access_key' does not use extra 'role_arn' (only ram_role_arn, oidc_role_arn)",
    ),
    "sts with an STS endpoint": (
        {},
        {},
        {"credential_type": "sts", "security_token": TOKEN, "sts_endpoint": "sts.aliyuncs.com"},
        "credential_type 'sts' does not use extra 'sts_endpoint' (only ram_role_arn, oidc_role_arn)",
    ),
    "ecs_ram_role with a role ARN": (
        NO_KEY,
        {},
        {"credential_type": "ecs_ram_role", "role_arn": ROLE_ARN},
        "does not use extra 'role_arn' (only ram_role_arn, oidc_role_arn)",
    ),
    "default_chain with a role name": (
        NO_KEY,
        {},
        {"credential_type": "default_chain", "role_name": "r"},
        "does not use extra 'role_name' (only ecs_ram_role)",
    ),
    "ecs_ram_role with a role name that is not one": (
        NO_KEY,
        {},
        {"credential_type": "ecs_ram_role", "role_name": "a b"},
        "extra 'role_name' must be the instance's RAM role name, got 'a b'",
    ),
    "oidc_role_arn without RRSA": (
        NO_KEY,
        {},
        OIDC,
        "credential_type 'oidc_role_arn' needs the extra 'role_arn' (or the environment variable "
        "ALIBABA_CLOUD_ROLE_ARN)",
    ),
    "oidc_role_arn without a token file": (
        NO_KEY,
        {k: v for k, v in RRSA_ENVIRONMENT.items() if k != "ALIBABA_CLOUD_OIDC_TOKEN_FILE"},
        OIDC,
        "needs the extra 'oidc_token_file' (or the environment variable ALIBABA_CLOUD_OIDC_TOKEN_FILE)",
    ),
    "oidc_role_arn with a provider ARN that is not one": (
        NO_KEY,
        {**RRSA_ENVIRONMENT, "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "ack-rrsa"},
        OIDC,
        "environment variable ALIBABA_CLOUD_OIDC_PROVIDER_ARN must be an OIDC provider ARN like "
        "acs:ram::123456789012:oidc-provider/ack-rrsa-c1234, got 'ack-rrsa'",
    ),
    "oidc_role_arn with an external ID": (
        NO_KEY,
        RRSA_ENVIRONMENT,
        {**OIDC, "external_id": "abc"},
        "does not use extra 'external_id' (only ram_role_arn)",
    ),
}


@pytest.mark.parametrize(("fields", "environ", "extra", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_a_credential_setting_that_cannot_work_is_refused_naming_the_connection_and_the_field(
    fields: dict[str, Any], environ: dict[str, str], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(VVPConfigurationError) as refused:
        read(fields, environ, **extra)

    text = str(refused.value)
    assert text.startswith(f"Connection {CONN_ID!r}")
    assert message in text
    assert SECRET not in text
    assert TOKEN not in text


@pytest.mark.parametrize(
    ("extra", "environ"),
    [({**ROLE, "timeout": 3}, {}), ({"credential_type": "ecs_ram_role"}, {}), (OIDC, RRSA_ENVIRONMENT)],
    ids=["ram_role_arn", "ecs_ram_role", "oidc_role_arn"],
)
def test_each_type_gets_the_library_provider_of_its_kind_with_the_connection_settings(
    extra: dict[str, Any], environ: dict[str, str]
) -> None:
    from alibabacloud_credentials import provider as providers

    fields = {} if extra["credential_type"] == "ram_role_arn" else NO_KEY
    spec = spec_of(read(fields, environ, **extra))
    provider = library_provider(spec)

    expected = {
        "ram_role_arn": providers.RamRoleArnCredentialsProvider,
        "ecs_ram_role": providers.EcsRamRoleCredentialsProvider,
        "oidc_role_arn": providers.OIDCRoleArnCredentialsProvider,
    }[spec.credential_type]
    assert type(provider) is expected
    if spec.role_arn:  # the STS request's settings: role, session, and timeouts from the connection
        assert (provider._role_arn, provider._role_session_name) == (ROLE_ARN, DEFAULT_ROLE_SESSION_NAME)
        assert provider._runtime_options["readTimeout"] == spec.timeout * 1000


def test_without_the_library_a_temporary_type_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "alibabacloud_credentials", None)  # an import of it fails
    spec = spec_of(read(**ROLE))

    with pytest.raises(VVPConfigurationError) as refused:
        spec_source = RefreshingCredentials(spec, mask=lambda secrets: None, amask=_no_amask)
        spec_source.current()

    assert str(refused.value) == (
        f"Connection {CONN_ID!r}: credential_type 'ram_role_arn' needs the alibabacloud-credentials library: "
        f"{INSTALL_HINT}"
    )


async def _no_amask(secrets: Any) -> None:
    return None


def test_the_source_shows_its_type_and_role_never_a_secret() -> None:
    config = read(security_token=TOKEN, **ROLE)
    for text in (repr(config), repr(config.client), repr(config.client.credentials)):
        assert SECRET not in text
        assert TOKEN not in text
    assert repr(config.client.credentials) == f"RefreshingCredentials(credential_type 'ram_role_arn' ({ROLE_ARN}))"


async def test_the_hook_reads_credential_types_alike_sync_and_async(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = {"conn_type": "flink_vvp", "host": "http://127.0.0.1:1", **KEY, "extra": {**ROLE, "workspace": "w"}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))

    sync, asynchronous = FlinkVVPHook(CONN_ID).config, await FlinkVVPHook(CONN_ID).aget_config()

    assert spec_of(sync) == spec_of(asynchronous)
    assert spec_of(sync).role_arn == ROLE_ARN


# A DAG file's imports, then an access-key hook that signs a request: the library must stay unloaded.
_IMPORTS = """
import sys
import airflow_provider_flink_vvp.operators.vvp, airflow_provider_flink_vvp.sensors.vvp
assert "alibabacloud_credentials" not in sys.modules, "at DAG parse"
from airflow_provider_flink_vvp.hooks.vvp import config_from_connection
from airflow_provider_flink_vvp.client import VVPClient
config = config_from_connection(conn_id="c", host="http://127.0.0.1:1", port=None, login="AK", password="secret",
    extra={}, environ={}, overrides={})
VVPClient(config.client)._prepare(__import__("airflow_provider_flink_vvp.api.operations", fromlist=["x"])
    .get_job(namespace="n", workspace="w", job_id="j"), config.client.credentials)
assert "alibabacloud_credentials" not in sys.modules, "with an access key"
print("unloaded")
"""


def test_the_library_is_never_imported_for_dag_files_or_access_keys() -> None:
    ran = subprocess.run(  # noqa: S603 - this interpreter, this file's code
        [sys.executable, "-c", _IMPORTS], capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.stdout.strip().endswith("unloaded"), ran.stderr[-2000:]
