"""What differs by Airflow and common-compat version, checked on the versions installed (``make versions`` runs all).

The hook reads its connection in a trigger through whichever async API the installed versions offer;
each case below also plays an older installation by hiding the newer API. The connection form's
differences are checked in test_provider_info.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from airflow_provider_flink_vvp.hooks.vvp import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, FlinkVVPHook
from tests.conftest import VVP_WORKSPACE

SECRET = "tests-secret-0123456789"
TOKEN = "tests-sts-token-0123456789"


class RecordingSupervisor:
    """Stands in for a triggerer's line to its supervisor, as Airflow 3.0 and 3.1 have it; records what it gets.

    ``send`` runs ``asend`` on the triggerer's event loop through asgiref's ``async_to_sync``, which finds
    that loop only from a ``sync_to_async`` thread (from any other thread it runs a loop of its own, where
    the real line does not work). A blocking ``send`` from the loop's own thread stalls every trigger of
    the triggerer (and raises ``DeadlockImminentError`` on Airflow 3.3.2+).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.loop_thread = threading.get_ident()
        self.masked: list[Any] = []
        self.sent_from_loop: list[str] = []
        self.sent_on_another_loop: list[str] = []

    def send(self, msg: Any) -> Any:
        if threading.get_ident() == self.loop_thread:
            self.sent_from_loop.append(type(msg).__name__)
            return self._record(msg)
        return async_to_sync(self.asend)(msg)

    async def asend(self, msg: Any) -> Any:
        if asyncio.get_running_loop() is not self.loop:
            self.sent_on_another_loop.append(type(msg).__name__)
        return self._record(msg)

    def _record(self, msg: Any) -> None:
        if type(msg).__name__ == "MaskSecret":
            self.masked.append(msg.value)


#: What the installed versions offer, and older installations played by hiding the newer API.
INSTALLATIONS = {
    "as installed": [],
    "Airflow whose connection lookup masks synchronously (< 3.3.2)": [("airflow.sdk", "Connection.aextra_dejson")],
    "and without async masking (< 3.3)": [
        ("airflow.sdk", "Connection.aextra_dejson"),
        ("airflow.sdk.log", "amask_secret"),
    ],
}
#: Where the connection's secrets come from: (connection fields, environment, secrets that must be masked).
SECRET_SOURCES = {
    "password": ({"login": "AK", "password": SECRET}, {}, [SECRET]),
    "password and STS token in the extras": (
        {"login": "AK", "password": SECRET, "extra": {"security_token": TOKEN}},
        {},
        [SECRET, TOKEN],
    ),
    "AccessKey from the environment": ({}, {ENV_ACCESS_KEY_ID: "AK", ENV_ACCESS_KEY_SECRET: SECRET}, [SECRET]),
}


@pytest.mark.parametrize("hidden", INSTALLATIONS.values(), ids=INSTALLATIONS.keys())
@pytest.mark.parametrize(("fields", "environ", "secrets"), SECRET_SOURCES.values(), ids=SECRET_SOURCES.keys())
async def test_a_trigger_reads_the_connection_without_blocking_the_event_loop_and_masks_its_secrets(
    monkeypatch: pytest.MonkeyPatch,
    hidden: list[tuple[str, str]],
    fields: dict[str, Any],
    environ: dict[str, str],
    secrets: list[str],
) -> None:
    import importlib

    from airflow.providers.common.compat.sdk import redact
    from airflow.sdk.execution_time import comms, task_runner

    for module, name in hidden:
        *owners, attribute = name.split(".")
        owner = importlib.import_module(module)
        for step in owners:
            owner = getattr(owner, step)
        monkeypatch.delattr(owner, attribute, raising=False)
    extra = {"workspace": VVP_WORKSPACE, "namespace": "ns", **fields.get("extra", {})}
    connection = {"conn_type": "flink_vvp", "host": "http://127.0.0.1:1", **fields, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_FLINK_VVP_COMPAT", json.dumps(connection))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    supervisor = RecordingSupervisor(asyncio.get_running_loop())
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", supervisor, raising=False)

    config = await FlinkVVPHook("flink_vvp_compat").aget_config()

    assert config.client.credentials.access_key_secret == SECRET
    assert config.namespace == "ns"
    assert supervisor.sent_from_loop == []
    assert supervisor.sent_on_another_loop == []
    for secret in secrets:
        assert secret not in str(redact(f"signed with {secret}"))
        # The supervisor writes the task's log and masks it too, from Airflow 3.0.x's MaskSecret on.
        assert (secret in supervisor.masked) == hasattr(comms, "MaskSecret")
