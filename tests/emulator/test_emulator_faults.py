"""Fault injection: each kind queued and drawn at a rate, seeded repeatability, per-action queues."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_flink_vvp.api import operations
from airflow_provider_flink_vvp.api.operations import Operation
from airflow_provider_flink_vvp.testing import EmulatorState, Fault, FaultInjector, FaultKind, VVPEmulator
from airflow_provider_flink_vvp.testing import server as server_module

WORKSPACE = "edcef******b4f"
NAMESPACE = "default-namespace"
Send = Callable[..., requests.Response]
BY_NAME = operations.get_deployments_by_name(namespace=NAMESPACE, workspace=WORKSPACE, deployment_name="x")
GET_JOB = operations.get_job(namespace=NAMESPACE, workspace=WORKSPACE, job_id="nope")


def outcome(send: Send, op: Operation[Any] = BY_NAME) -> int | str:
    """The status of a call, or 'dropped' when the connection closed without an answer."""
    try:
        return send(op).status_code
    except requests.ConnectionError:
        return "dropped"


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        (FaultKind.THROTTLE, 400, "Throttling.User"),
        (FaultKind.UNAVAILABLE, 503, "ServiceUnavailable"),
        (FaultKind.INTERNAL_ERROR, 500, "InternalError"),
    ],
)
def test_a_queued_gateway_fault_answers_once(
    send: Send, emulator: VVPEmulator, kind: FaultKind, status: int, code: str
) -> None:
    emulator.inject(Fault(kind, retry_after_ms=250))
    response = send(BY_NAME)
    assert response.status_code == status
    assert response.json()["Code"] == code
    assert response.headers.get("x-acs-retry-after") == ("250" if kind is FaultKind.THROTTLE else None)
    assert send(BY_NAME).status_code == 200


def test_a_queued_html_fault_answers_like_a_load_balancer(send: Send, emulator: VVPEmulator) -> None:
    emulator.inject(Fault(FaultKind.HTML))
    response = send(BY_NAME)
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert b"502 Bad Gateway" in response.content


def test_a_queued_drop_closes_the_connection_without_answer(send: Send, emulator: VVPEmulator) -> None:
    emulator.inject(Fault(FaultKind.DROP))
    assert outcome(send) == "dropped"
    assert outcome(send) == 200
    assert emulator.request_counts() == {"GetDeploymentsByName": 2}


def test_a_queued_latency_delays_then_answers(
    send: Send, emulator: VVPEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(server_module.time, "sleep", slept.append)
    emulator.inject(Fault(FaultKind.LATENCY, latency_ms=250))
    assert send(BY_NAME).status_code == 200
    assert send(BY_NAME).status_code == 200
    assert slept == [0.25]


def test_queued_faults_come_in_order_and_only_for_their_action(send: Send, emulator: VVPEmulator) -> None:
    emulator.inject(
        Fault(FaultKind.UNAVAILABLE, action="GetJob"),
        Fault(FaultKind.THROTTLE),
        Fault(FaultKind.INTERNAL_ERROR, action="GetJob"),
    )
    assert [outcome(send, op) for op in (BY_NAME, BY_NAME, GET_JOB, GET_JOB, GET_JOB)] == [400, 200, 503, 500, 404]
    assert emulator.faults.pending() == []
    assert emulator.request_counts() == {"GetDeploymentsByName": 2, "GetJob": 3}


def test_faults_come_before_the_signature_check(emulator: VVPEmulator) -> None:
    emulator.inject(Fault(FaultKind.UNAVAILABLE))
    assert requests.get(f"{emulator.url}/anything", timeout=5).status_code == 503
    assert emulator.request_counts() == {"": 1}


def test_a_rate_of_one_faults_every_request(send: Send, emulator: VVPEmulator) -> None:
    emulator.set_fault_rates({FaultKind.DROP: 1.0})
    assert [outcome(send) for _ in range(3)] == ["dropped"] * 3
    emulator.set_fault_rates({})
    assert outcome(send) == 200


def test_a_rate_of_latency_delays_every_request(
    send: Send, emulator: VVPEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(server_module.time, "sleep", slept.append)
    emulator.set_fault_rates({FaultKind.HTML: 1.0}, latency_ms=40)
    assert [outcome(send) for _ in range(2)] == [502, 502]
    assert slept == [0.04, 0.04]


def _codes(state: EmulatorState, seed: int, count: int) -> list[str]:
    """The gateway's Code for each of ``count`` unsigned requests: a fault's, else IncompleteSignature."""
    faults = FaultInjector(rates={FaultKind.THROTTLE: 0.3, FaultKind.UNAVAILABLE: 0.2}, seed=seed)
    with VVPEmulator(state, faults=faults) as emulator:
        session = requests.Session()
        return [session.get(f"{emulator.url}/x", timeout=5).json()["Code"] for _ in range(count)]


def test_seeded_rates_repeat_and_mix(state: EmulatorState) -> None:
    first = _codes(state, seed=1, count=60)
    assert first == _codes(state, seed=1, count=60)
    assert first != _codes(state, seed=2, count=60)
    assert set(first) == {"Throttling.User", "ServiceUnavailable", "IncompleteSignature"}


@pytest.mark.parametrize(
    "rates",
    [{FaultKind.THROTTLE: 1.5}, {FaultKind.THROTTLE: 0.6, FaultKind.DROP: 0.6}, {FaultKind.LATENCY: 0.1}],
)
def test_impossible_rates_are_refused(rates: dict[FaultKind, float]) -> None:
    with pytest.raises(ValueError, match=r"latency|rates"):
        FaultInjector(rates=rates)


def test_the_injector_draws_latency_and_one_failure() -> None:
    injector = FaultInjector(rates={FaultKind.HTML: 1.0}, latency_ms=10, seed=3)
    assert injector.faults_for("Any") == [
        Fault(FaultKind.LATENCY, latency_ms=10),
        Fault(FaultKind.HTML),
    ]
    injector.enqueue(Fault(FaultKind.DROP, action="StopJob"))
    injector.clear()
    assert injector.pending() == []
    assert injector.faults_for("StopJob") == []
