"""Per-call CPU cost of GetDeploymentsByName against the emulator (in its own process), side by side.

- ``hook``: FlinkVVPHook.get_latest_deployment, as a sensor's poke calls it.
- ``bare``: a plain requests.Session GET of the same URL, signed inline with the same ACS3 signer,
  and the JSON decoded. This is the fair floor: the emulator (like the service) refuses a
  reused nonce, so every request needs its own signature, and any client must decode the answer.
  The ratio hook / bare is what our client adds: retries, envelope checks, models, the hook.
- ``presigned``: the same GET with headers signed before the clock starts (transport and JSON only).
- ``official``: the official SDK (alibabacloud-ververica20220718), over http, sending the workspace header.

CPU time is this process's (time.process_time), so the emulator's work is not counted. Rounds of
each client alternate, and the median round is kept, so a burst of load elsewhere hits all alike.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from emulator_process import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    CONN_ID,
    NAMESPACE,
    WORKSPACE,
    connection_json,
    make_deployment,
    prepare_airflow_home,
    running_emulator,
)

DEPLOYMENT_NAME = "bench-client"
DEPLOYMENT_ID = "bench-client-0000-0000-0000-000000000000"

Call = Callable[[], Any]


@dataclass
class ClientCostResult:
    calls_per_round: int
    rounds: int
    cpu_per_call: dict[str, float] = field(default_factory=dict)  # median seconds per call, by client
    wall_per_call: dict[str, float] = field(default_factory=dict)
    official_error: str | None = None  # why the official SDK could not be measured

    def ratio(self, client: str, baseline: str) -> float | None:
        if client not in self.cpu_per_call or baseline not in self.cpu_per_call:
            return None
        return self.cpu_per_call[client] / self.cpu_per_call[baseline]


def client_state() -> dict[str, Any]:
    return {
        "access_keys": {ACCESS_KEY_ID: ACCESS_KEY_SECRET},
        "deployments": [make_deployment(DEPLOYMENT_NAME, DEPLOYMENT_ID)],
    }


def hook_call() -> Call:
    from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook

    hook = FlinkVVPHook(CONN_ID)

    def call() -> Any:
        deployment = hook.get_latest_deployment(DEPLOYMENT_NAME)
        assert deployment.deployment_id == DEPLOYMENT_ID
        return deployment

    return call


def _operation() -> Any:
    from airflow_provider_flink_vvp.api import operations

    return operations.get_deployments_by_name(namespace=NAMESPACE, workspace=WORKSPACE, deployment_name=DEPLOYMENT_NAME)


def _sign(operation: Any, url: str) -> Any:
    from airflow_provider_flink_vvp.api.operations import Credentials, acs_date, prepare

    return prepare(
        operation,
        base_url=url,
        host=urlsplit(url).netloc,
        credentials=Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET),
        date=acs_date(time.time()),
        nonce=uuid.uuid4().hex,
        user_agent="bench",
    )


def _check_bare(answer: Any) -> Any:
    document = answer.json()
    assert document["data"][0]["deploymentId"] == DEPLOYMENT_ID, document
    return document


def bare_call(url: str) -> Call:
    import requests

    session, operation = requests.Session(), _operation()

    def call() -> Any:
        request = _sign(operation, url)
        return _check_bare(session.get(request.url, headers=request.headers, timeout=30))

    return call


def presigned_calls(url: str, count: int) -> Call:
    """``count`` calls whose headers were all signed up front; one more call raises."""
    import requests

    session, operation = requests.Session(), _operation()
    requests_ahead = iter([_sign(operation, url) for _ in range(count)])

    def call() -> Any:
        request = next(requests_ahead)
        return _check_bare(session.get(request.url, headers=request.headers, timeout=30))

    return call


def official_call(url: str) -> Call:
    from alibabacloud_tea_openapi.models import Config
    from alibabacloud_ververica20220718 import models
    from alibabacloud_ververica20220718.client import Client
    from darabonba.runtime import RuntimeOptions

    config = Config(
        access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET, endpoint=urlsplit(url).netloc, protocol="http"
    )
    client = Client(config)
    request = models.GetDeploymentsByNameRequest(ignore_job_summary=False, ignore_resource_setting=False)
    headers = models.GetDeploymentsByNameHeaders(workspace=WORKSPACE)

    def call() -> Any:
        answer = client.get_deployments_by_name_with_options(
            NAMESPACE, DEPLOYMENT_NAME, request, headers, RuntimeOptions()
        )
        assert answer.body.data[0].deployment_id == DEPLOYMENT_ID, answer.body.to_map()
        return answer

    return call


def _official_or_reason(url: str) -> tuple[Call | None, str | None]:
    """The official client's call after one successful request, or why it cannot be measured."""
    try:
        call = official_call(url)
    except ImportError as error:
        return None, f"not installed ({error}): pip install '.[bench]'"
    try:
        call()
    except Exception as error:  # the finding is whatever the SDK or the emulator says
        return None, f"{type(error).__name__}: {error}"
    return call, None


def _time_round(call: Call, count: int) -> tuple[float, float]:
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        call()
    return (time.process_time() - cpu) / count, (time.perf_counter() - wall) / count


def measure(calls_per_round: int = 200, rounds: int = 7, warmup_calls: int = 30) -> ClientCostResult:
    """Start an emulator, warm each client up, then time interleaved rounds of each."""
    prepare_airflow_home()
    result = ClientCostResult(calls_per_round=calls_per_round, rounds=rounds)
    with running_emulator(client_state()) as emulator:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = connection_json(emulator.url)
        calls: dict[str, Call] = {
            "hook": hook_call(),
            "bare": bare_call(emulator.url),
            "presigned": presigned_calls(emulator.url, warmup_calls + calls_per_round * rounds),
        }
        official, result.official_error = _official_or_reason(emulator.url)
        if official is not None:
            calls["official"] = official
        for call in calls.values():
            for _ in range(warmup_calls):
                call()
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
        for _ in range(rounds):
            for name, call in calls.items():
                samples[name].append(_time_round(call, calls_per_round))
    for name, timings in samples.items():
        result.cpu_per_call[name] = statistics.median(cpu for cpu, _ in timings)
        result.wall_per_call[name] = statistics.median(wall for _, wall in timings)
    return result


def profile_hook(calls: int = 500) -> None:
    """cProfile of the hook's calls, the top functions by own time (to find a slow path)."""
    import cProfile
    import pstats

    prepare_airflow_home()
    with running_emulator(client_state()) as emulator:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = connection_json(emulator.url)
        call = hook_call()
        call()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            call()
        profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    if sys.argv[1:] == ["--profile"]:
        profile_hook()
    else:
        print(json.dumps(measure().__dict__, indent=2))
