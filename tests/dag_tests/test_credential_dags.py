"""A deferred sensor signing with an assumed RAM role keeps polling while its short-lived tokens expire."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_flink_vvp.testing import STSFailure, STSStandIn, VVPEmulator
from tests.conftest import VVP_ACCESS_KEY_SECRET, AddDeployment, add_job, set_vvp_connection
from tests.dag_tests.conftest import RunDag

ROLE_ARN = "acs:ram::1234567890123456:role/flink-ops"
# Seconds a token lives (renewed a third of it before it expires), and how long the job takes to run.
TOKEN_LIFETIME = 3.0
STARTING_SECONDS = 7.0


@pytest.fixture
def sts(vvp_emulator: VVPEmulator, vvp_namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[STSStandIn]:
    with STSStandIn(vvp_emulator.state, roles={ROLE_ARN}, lifetime=TOKEN_LIFETIME) as stand_in:
        set_vvp_connection(
            monkeypatch,
            vvp_emulator.url,
            namespace=vvp_namespace,
            conn_id="flink_vvp_role",
            credential_type="ram_role_arn",
            role_arn=ROLE_ARN,
            sts_endpoint=stand_in.url,
        )
        yield stand_in


def test_a_deferred_sensor_keeps_polling_across_token_renewals(
    run_dag: RunDag,
    add_deployment: AddDeployment,
    after_first_poke: Callable[[Callable[[], Any]], None],
    vvp_emulator: VVPEmulator,
    sts: STSStandIn,
) -> None:
    deployment_id = add_deployment("orders")
    # The job starts once the sensor has looked (and deferred), and runs only after several tokens' lives.
    after_first_poke(lambda: add_job(vvp_emulator, deployment_id, [["STARTING", STARTING_SECONDS], ["RUNNING", None]]))

    result = run_dag("flink_vvp_credentials_deferred_role", deployment_name="orders")

    assert (result.state, result.task_state("wait"), result.tries_of("wait")) == ("success", "success", 1)
    issued = sts.issued
    assert len(issued) >= 3
    assert vvp_emulator.request_counts()["GetDeploymentsByName"] >= STARTING_SECONDS / 0.3 / 2  # it kept polling
    assert len({token.security_token for token in issued} & set(vvp_emulator.state.accepted_tokens)) >= 3
    # Only the emulator's own key assumed the role; none of the secrets reached the task's log.
    for secret in [VVP_ACCESS_KEY_SECRET, *(part for token in issued for part in (token.secret, token.security_token))]:
        assert secret not in result.logged


def test_a_role_sts_refuses_fails_the_task_without_retries(
    run_dag: RunDag, add_deployment: AddDeployment, sts: STSStandIn
) -> None:
    add_deployment("orders")
    sts.state.fail_always(STSFailure(404, "EntityNotExist.Role", "The role not exists."))

    result = run_dag("flink_vvp_credentials_refused_role", deployment_name="orders")

    assert (result.state, result.task_state("wait"), result.tries_of("wait")) == ("failed", "failed", 1)
    assert f"credential_type 'ram_role_arn' ({ROLE_ARN}) could not assume the role" in result.output
    assert "STS answered EntityNotExist.Role: The role not exists. (HTTP 404, requestId " in result.output
    assert VVP_ACCESS_KEY_SECRET not in result.logged
