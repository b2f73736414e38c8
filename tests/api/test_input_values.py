"""Values that travel in a header or a URL path are refused before any request when they cannot travel as given."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_flink_vvp.api import Credentials, VVPConfigurationError
from airflow_provider_flink_vvp.api.operations import get_deployments_by_name, get_job, namespace_path

SECRET_HALVES = ("s3cret-FIRST-half", "s3cret-SECOND-half")
BAD_CHARACTERS = ["\n", "\r\n", "\t", "\x00", "\x1b", "\x7f", "é", "\u2028", "\u200b"]


@pytest.mark.parametrize(
    "workspace", [f"w{char}s" for char in BAD_CHARACTERS] + ["w/s", " ws", "ws\n", "", "  ", None, 5]
)
@pytest.mark.parametrize(
    "build",
    [
        lambda workspace: get_deployments_by_name(namespace="ns", workspace=workspace, deployment_name="d"),
        lambda workspace: get_job(namespace="ns", workspace=workspace, job_id="j"),
    ],
)
def test_a_workspace_that_cannot_travel_in_a_header_is_refused(build: Any, workspace: Any) -> None:
    with pytest.raises(VVPConfigurationError, match=r"^workspace must"):
        build(workspace)


@pytest.mark.parametrize(
    "namespace", [f"n{char}s" for char in BAD_CHARACTERS if char != "é"] + ["a/b", ".", "..", " ns", "", None]
)
def test_a_namespace_that_cannot_travel_in_a_path_is_refused(namespace: Any) -> None:
    with pytest.raises(VVPConfigurationError, match=r"^namespace must"):
        namespace_path(namespace, "deployments")


@pytest.mark.parametrize(("namespace", "segment"), [("项目", "%E9%A1%B9%E7%9B%AE"), ("a b", "a%20b"), ("n-1", "n-1")])
def test_a_namespace_travels_percent_encoded(namespace: str, segment: str) -> None:
    assert namespace_path(namespace) == f"/api/v2/namespaces/{segment}"


@pytest.mark.parametrize("character", BAD_CHARACTERS)
@pytest.mark.parametrize("field", ["access_key_secret", "security_token"])
def test_a_secret_that_cannot_be_sent_is_refused_without_showing_it(character: str, field: str) -> None:
    value = character.join(SECRET_HALVES)
    values = {"access_key_id": "AKID", "access_key_secret": "fine-secret", field: value}
    with pytest.raises(VVPConfigurationError, match=r"printable ASCII.*its value is not shown") as info:
        Credentials(**values)
    message = str(info.value)
    for shown in (*SECRET_HALVES, repr(value), value.encode("unicode_escape").decode()):
        assert shown not in message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"access_key_id": "AK\nID", "access_key_secret": "s"}, r"AccessKey ID must be printable ASCII.*'AK\\nID'"),
        ({"access_key_id": "", "access_key_secret": "s"}, "AccessKey ID must be a non-empty string"),
        ({"access_key_id": " AKID", "access_key_secret": "s"}, "AccessKey ID must not start or end with whitespace"),
        ({"access_key_id": "AKID", "access_key_secret": ""}, "AccessKey Secret must be a non-empty string"),
        (
            {"access_key_id": "AKID", "access_key_secret": "s "},
            "AccessKey Secret must not start or end with whitespace",
        ),
        ({"access_key_id": "AKID", "access_key_secret": "s", "security_token": ""}, "STS security token must be"),
    ],
)
def test_credentials_name_what_is_wrong(values: dict[str, Any], message: str) -> None:
    with pytest.raises(VVPConfigurationError, match=message):
        Credentials(**values)
