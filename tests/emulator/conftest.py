"""Fixtures: an emulator on a manual clock that holds the seed deployment, and requests signed for it."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_flink_vvp.api.operations import Credentials, Operation, PreparedRequest, acs_date, prepare
from airflow_provider_flink_vvp.testing import EmulatorState, JobDurations, ManualClock, VVPEmulator

CREDENTIALS = Credentials("emulator-test-key", "emulator-test-secret")
SEED_FILE = Path(__file__).parents[1] / "data" / "GetDeploymentsByName.response.json"


@pytest.fixture
def seed() -> dict[str, Any]:
    """The seed page's example deployment (data[0] of its example response)."""
    deployment: dict[str, Any] = json.loads(SEED_FILE.read_text(encoding="utf-8"))["data"][0]
    return deployment


@pytest.fixture
def make_deployment(seed: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """A factory of small deployments, in the seed's namespace and workspace unless told otherwise."""

    def deployment(deployment_id: str, **fields: Any) -> dict[str, Any]:
        return {
            "deploymentId": deployment_id,
            "name": "orders",
            "namespace": seed["namespace"],
            "workspace": seed["workspace"],
            "executionMode": "STREAMING",
            "createdAt": "1700000000",
            **fields,
        }

    return deployment


@pytest.fixture
def state(seed: dict[str, Any]) -> EmulatorState:
    state = EmulatorState(clock=ManualClock(), job_durations=JobDurations(starting=2, batch_running=10, cancelling=3))
    state.add_access_key(CREDENTIALS.access_key_id, CREDENTIALS.access_key_secret)
    state.add_deployment(copy.deepcopy(seed))
    return state


@pytest.fixture
def emulator(state: EmulatorState) -> Iterator[VVPEmulator]:
    with VVPEmulator(state) as running:
        yield running


@pytest.fixture
def sign(emulator: VVPEmulator) -> Callable[..., PreparedRequest]:
    """Sign an operation for the emulator at its clock's time; ``date``, ``nonce`` and ``credentials`` may be given."""

    def signed(
        operation: Operation[Any],
        *,
        date: str | None = None,
        nonce: str | None = None,
        credentials: Credentials = CREDENTIALS,
    ) -> PreparedRequest:
        return prepare(
            operation,
            base_url=emulator.url,
            host=emulator.url.removeprefix("http://"),
            credentials=credentials,
            date=date or acs_date(emulator.now()),
            nonce=nonce or uuid.uuid4().hex,
            user_agent="emulator-tests",
        )

    return signed


@pytest.fixture
def send(sign: Callable[..., PreparedRequest]) -> Iterator[Callable[..., requests.Response]]:
    """Send an operation (signed now) or a prepared request over one keep-alive session.

    Keyword headers, underscores for dashes, are added, replaced or (None) removed after signing.
    """
    session = requests.Session()

    def sent(request: Operation[Any] | PreparedRequest, **headers: str | None) -> requests.Response:
        prepared = request if isinstance(request, PreparedRequest) else sign(request)
        extra = {name.replace("_", "-"): value for name, value in headers.items()}
        return session.request(
            prepared.method, prepared.url, headers={**prepared.headers, **extra}, data=prepared.body, timeout=10
        )

    yield sent
    session.close()
