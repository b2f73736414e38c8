"""FlinkVVPGetDeploymentsByNameOperator, called directly against the emulator."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_flink_vvp.api.errors import VVPError
from airflow_provider_flink_vvp.links.vvp import FlinkVVPDeploymentLink
from airflow_provider_flink_vvp.operators.vvp import (
    FlinkVVPGetDeploymentsByNameOperator,
    FlinkVVPStartJobOperator,
    FlinkVVPStopJobOperator,
)
from airflow_provider_flink_vvp.sensors.vvp import FlinkVVPJobStatusSensor, FlinkVVPJobSummarySensor
from airflow_provider_flink_vvp.testing import Fault, FaultKind, VVPEmulator
from tests.conftest import VVP_WORKSPACE, AddDeployment, MakeContext, set_vvp_connection


def operator(**kwargs: object) -> FlinkVVPGetDeploymentsByNameOperator:
    return FlinkVVPGetDeploymentsByNameOperator(task_id="get", **{"deployment_name": "orders", **kwargs})  # type: ignore[arg-type]


def test_returns_the_newest_id_and_pushes_every_id_and_the_console_url(
    add_deployment: AddDeployment, make_context: MakeContext, vvp_namespace: str
) -> None:
    older = add_deployment("orders")
    newer = add_deployment("orders")
    add_deployment("other")
    context = make_context()

    assert operator().execute(context) == newer  # type: ignore[arg-type]
    assert context["ti"].xcoms == {
        "deployment_ids": [newer, older],
        "deployment_url": f"https://vvp.console.aliyun.com/web/{VVP_WORKSPACE}/zh/#/workspaces/{VVP_WORKSPACE}"
        f"/namespaces/{vvp_namespace}/operations/stream/{newer}",
    }


def test_the_console_url_follows_the_connections_template_and_region(
    vvp_emulator: VVPEmulator,
    vvp_namespace: str,
    add_deployment: AddDeployment,
    make_context: MakeContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment_id = add_deployment("orders")
    template = "https://{region}.console.example/{workspace}/{namespace}/{deployment_id}"
    set_vvp_connection(
        monkeypatch, vvp_emulator.url, namespace=vvp_namespace, console_url=template, region="cn-shanghai"
    )
    context = make_context()

    operator().execute(context)  # type: ignore[arg-type]

    assert context["ti"].xcoms["deployment_url"] == (
        f"https://cn-shanghai.console.example/{VVP_WORKSPACE}/{vvp_namespace}/{deployment_id}"
    )


def test_no_deployment_with_the_name_fails_naming_name_namespace_and_workspace(
    vvp_emulator: VVPEmulator, vvp_namespace: str, make_context: MakeContext
) -> None:
    with pytest.raises(AirflowFailException) as raised:
        operator(deployment_name="missing").execute(make_context())  # type: ignore[arg-type]

    message = str(raised.value)
    assert all(part in message for part in ("'missing'", repr(vvp_namespace), repr(VVP_WORKSPACE)))


def test_namespace_and_workspace_arguments_win_over_the_connection(
    vvp_emulator: VVPEmulator, make_context: MakeContext
) -> None:
    deployment_id = f"d-{uuid.uuid4().hex}"
    vvp_emulator.add_deployment(
        {
            "deploymentId": deployment_id,
            "name": "orders",
            "namespace": "other-ns",
            "workspace": "other-ws",
            "createdAt": "1",
        }
    )
    context = make_context()

    assert operator(namespace="other-ns", workspace="other-ws").execute(context) == deployment_id  # type: ignore[arg-type]
    assert "/workspaces/other-ws/namespaces/other-ns/" in context["ti"].xcoms["deployment_url"]


def test_a_definite_api_error_fails_without_retries_and_without_the_secret(
    vvp_emulator: VVPEmulator,
    vvp_namespace: str,
    add_deployment: AddDeployment,
    make_context: MakeContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_deployment("orders")
    set_vvp_connection(monkeypatch, vvp_emulator.url, namespace=vvp_namespace, password="a-wrong-secret-value")

    with pytest.raises(AirflowFailException) as raised:
        operator().execute(make_context())  # type: ignore[arg-type]

    assert "SignatureDoesNotMatch" in str(raised.value)
    assert "a-wrong-secret-value" not in str(raised.value)


def test_a_transient_error_is_left_to_the_tasks_retries(
    vvp_emulator: VVPEmulator, add_deployment: AddDeployment, make_context: MakeContext
) -> None:
    add_deployment("orders")
    vvp_emulator.inject(Fault(FaultKind.UNAVAILABLE))

    with pytest.raises(VVPError) as raised:
        operator().execute(make_context())  # type: ignore[arg-type]

    assert raised.value.retryable
    assert not isinstance(raised.value, AirflowFailException)


def test_names_namespace_and_workspace_are_templated_and_the_link_is_attached() -> None:
    assert set(FlinkVVPGetDeploymentsByNameOperator.template_fields) == {"deployment_name", "namespace", "workspace"}
    assert [link.name for link in operator().operator_extra_links] == [FlinkVVPDeploymentLink.name]


def test_importing_the_operator_sensor_and_link_modules_leaves_the_hook_http_clients_and_signer_unloaded() -> None:
    code = (
        "import sys\n"
        "import airflow_provider_flink_vvp.operators.vvp, airflow_provider_flink_vvp.sensors.vvp\n"
        "import airflow_provider_flink_vvp.tasks\n"
        "import airflow_provider_flink_vvp.links.vvp\n"
        "print([m for m in ('airflow_provider_flink_vvp.hooks.vvp', 'airflow_provider_flink_vvp.client', "
        "'requests', 'airflow_provider_flink_vvp.triggers.vvp', 'airflow_provider_flink_vvp.api.operations', "
        "'airflow_provider_flink_vvp.api.signing', 'airflow_provider_flink_vvp.api.responses') "
        "if m in sys.modules])\n"
    )
    loaded = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert loaded.strip() == "[]"


def name_of(value: Any) -> str:
    return str(getattr(value, "__name__", ""))


TASKS_WITH_DURATIONS = [
    (FlinkVVPStartJobOperator, {"deployment_name": "stream"}),
    (FlinkVVPStopJobOperator, {"job_id": "j-1"}),
    (FlinkVVPJobSummarySensor, {"deployment_name": "orders"}),
    (FlinkVVPJobStatusSensor, {"job_id": "j-1"}),
]


@pytest.mark.parametrize(
    ("task_class", "required"), TASKS_WITH_DURATIONS, ids=lambda value: getattr(value, "__name__", "")
)
@pytest.mark.parametrize("name", ["poll_interval", "timeout"])
@pytest.mark.parametrize(
    ("value", "seconds"), [(30, 30.0), (2.5, 2.5), (timedelta(minutes=2), 120.0), (timedelta(milliseconds=200), 0.2)]
)
def test_durations_take_seconds_or_a_timedelta(
    task_class: type[Any], required: dict[str, str], name: str, value: Any, seconds: float
) -> None:
    task = task_class(task_id="t", **required, **{name: value})

    assert getattr(task, name) == seconds
    assert isinstance(getattr(task, name), float)


@pytest.mark.parametrize(
    ("task_class", "required"), TASKS_WITH_DURATIONS, ids=lambda value: getattr(value, "__name__", "")
)
@pytest.mark.parametrize("name", ["poll_interval", "timeout"])
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (-1, "a positive, finite duration"),
        (0, "a positive, finite duration"),
        (timedelta(0), "a positive, finite duration"),
        (timedelta(seconds=-5), "a positive, finite duration"),
        (float("nan"), "a positive, finite duration"),
        (float("inf"), "a positive, finite duration"),
        ("30", "seconds (a number) or a timedelta, got '30' of type str"),
        (True, "seconds (a number) or a timedelta, got True of type bool"),
        ([30], "seconds (a number) or a timedelta, got [30] of type list"),
    ],
)
def test_invalid_durations_are_refused_naming_the_parameter_and_the_value(
    task_class: type[Any], required: dict[str, str], name: str, value: Any, problem: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{name} must be ")) as raised:
        task_class(task_id="t", **required, **{name: value})

    assert problem in str(raised.value)
    assert repr(value) in str(raised.value)


@pytest.mark.parametrize("sensor_class", [FlinkVVPJobSummarySensor, FlinkVVPJobStatusSensor])
def test_sensors_take_poll_interval_or_airflows_poke_interval_but_not_both(sensor_class: type[Any]) -> None:
    required = {"deployment_name": "orders"} if sensor_class is FlinkVVPJobSummarySensor else {"job_id": "j-1"}

    by_poll = sensor_class(task_id="t", **required, poll_interval=timedelta(seconds=30))
    by_poke = sensor_class(task_id="t", **required, poke_interval=30)

    assert (by_poll.poll_interval, by_poll.poke_interval) == (by_poke.poll_interval, by_poke.poke_interval) == (30, 30)
    with pytest.raises(ValueError, match="Pass poll_interval or poke_interval"):
        sensor_class(task_id="t", **required, poll_interval=30, poke_interval=30)
    with pytest.raises(ValueError, match="poke_interval must be a positive, finite duration"):
        sensor_class(task_id="t", **required, poke_interval=float("nan"))
