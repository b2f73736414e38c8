"""Async clients of one endpoint share their HTTP pool, identical reads and throttling pauses."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_flink_vvp.api import Credentials, VVPApiError
from airflow_provider_flink_vvp.api.operations import get_deployments_by_name
from airflow_provider_flink_vvp.client import AsyncVVPClient, ClientSettings
from airflow_provider_flink_vvp.sharing import SharedEndpoint
from airflow_provider_flink_vvp.testing import EmulatorState, Fault, FaultKind, ManualClock, VVPEmulator

SEED = json.loads((Path(__file__).parent / "data" / "GetDeploymentsByName.response.json").read_text())["data"][0]
READ = get_deployments_by_name(namespace=SEED["namespace"], workspace=SEED["workspace"], deployment_name=SEED["name"])
OTHER_READ = get_deployments_by_name(namespace=SEED["namespace"], workspace=SEED["workspace"], deployment_name="other")


@pytest.fixture
def emulator() -> Iterator[VVPEmulator]:
    state = EmulatorState(clock=ManualClock())
    state.add_access_key("key-a", "secret-a")
    state.add_access_key("key-b", "secret-b")
    state.add_deployment(copy.deepcopy(SEED))
    with VVPEmulator(state) as running:
        yield running


def client(emulator: VVPEmulator, key: str = "key-a") -> AsyncVVPClient:
    secret = {"key-a": "secret-a", "key-b": "secret-b"}[key]
    return AsyncVVPClient(
        ClientSettings(endpoint=emulator.url, credentials=Credentials(key, secret), retry_limit=3, retry_delay=0.01)
    )


def reads(emulator: VVPEmulator) -> int:
    return emulator.request_counts().get("GetDeploymentsByName", 0)


async def test_identical_concurrent_reads_make_one_request(emulator: VVPEmulator) -> None:
    clients = [client(emulator) for _ in range(20)]
    results = await asyncio.gather(*(c.call(READ) for c in clients))
    assert {r[0].deployment_id for r in results} == {SEED["deploymentId"]}
    assert reads(emulator) == 1
    assert len({id(c._shared_endpoint().http) for c in clients}) == 1  # one pool
    for c in clients:
        await c.aclose()


async def test_a_fresh_result_is_reused_within_max_age_only(emulator: VVPEmulator) -> None:
    first, second = client(emulator), client(emulator)
    await first.call(READ)
    await second.call(READ, max_age=60)
    assert reads(emulator) == 1
    await second.call(READ, max_age=0)
    assert reads(emulator) == 2
    await first.call(OTHER_READ, max_age=60)  # another deployment is another read
    assert reads(emulator) == 3
    await first.aclose()
    await second.aclose()


async def test_results_are_never_shared_across_access_keys(emulator: VVPEmulator) -> None:
    a, b = client(emulator, "key-a"), client(emulator, "key-b")
    await asyncio.gather(a.call(READ, max_age=60), b.call(READ, max_age=60))
    assert reads(emulator) == 2
    await a.aclose()
    await b.aclose()


async def test_a_failed_read_is_not_kept(emulator: VVPEmulator) -> None:
    c = AsyncVVPClient(
        ClientSettings(endpoint=emulator.url, credentials=Credentials("key-a", "secret-a"), retry_limit=1)
    )
    emulator.inject(Fault(FaultKind.UNAVAILABLE))
    with pytest.raises(VVPApiError, match="ServiceUnavailable"):
        await c.call(READ, max_age=60)
    assert (await c.call(READ, max_age=60))[0].deployment_id == SEED["deploymentId"]
    assert reads(emulator) == 2
    await c.aclose()


async def test_throttling_pauses_every_client_of_the_endpoint(
    emulator: VVPEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ClientSettings(endpoint=emulator.url, credentials=Credentials("key-a", "secret-a"), retry_limit=1)
    throttled, bystander = AsyncVVPClient(settings), AsyncVVPClient(settings)
    emulator.inject(Fault(FaultKind.THROTTLE, retry_after_ms=5000))
    with pytest.raises(VVPApiError, match=r"Throttling\.User"):
        await throttled.call(READ)
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", record)
    assert (await bystander.call(OTHER_READ)) == []  # another deployment, so not a shared read
    assert len(slept) == 1 and 4 < slept[0] <= 5  # it waited out the pause the other client met
    assert reads(emulator) == 2
    await throttled.aclose()
    await bystander.aclose()


async def test_the_last_user_closes_the_pool(emulator: VVPEmulator) -> None:
    a, b = client(emulator), client(emulator)
    await a.call(READ)
    await b.call(READ)
    http = a._shared_endpoint().http
    await a.aclose()
    assert not http.is_closed
    await b.aclose()
    assert http.is_closed
    c = client(emulator)
    await c.call(READ)
    assert c._shared_endpoint().http is not http  # a new pool after the old one closed
    await c.aclose()


async def test_a_cancelled_waiter_does_not_cancel_the_shared_read() -> None:
    endpoint = SharedEndpoint(http=None)  # type: ignore[arg-type]
    release = asyncio.Event()
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "answer"

    first = asyncio.ensure_future(endpoint.read("k", 0, fetch))
    second = asyncio.ensure_future(endpoint.read("k", 0, fetch))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "answer"
    assert first.cancelled()
    assert calls == 1


async def test_wait_turn_sleeps_out_the_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = SharedEndpoint(http=None)  # type: ignore[arg-type]
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def record(seconds: float) -> None:
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)
    await endpoint.wait_turn()
    assert slept == []
    endpoint.pause(5)
    endpoint.pause(1)  # a shorter pause never shortens a longer one
    await endpoint.wait_turn()
    assert len(slept) == 1 and 4.9 < slept[0] <= 5
