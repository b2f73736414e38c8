"""GetLineageInfo against the emulator over real HTTP: a deployment's ``lineage`` from the state file, served in
the API's shape, read by the hook and named for OpenLineage."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_flink_vvp.api import VVPApiError
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.lineage import DatasetName, deployment_datasets
from airflow_provider_flink_vvp.testing import EmulatorState, Fault, FaultKind, VVPEmulator
from airflow_provider_flink_vvp.testing.state import InvalidArgumentError

ACCESS_KEY_ID, SECRET = "lineage-tests-key", "lineage-tests-secret"
DB_PASSWORD = "db-pa55word"
WORKSPACE, NAMESPACE = "ws-lineage", "ns-lineage"
LINEAGE = {
    "sources": [
        {
            "table": "orders",
            "connector": "kafka",
            "catalog": "vvp",
            "database": "ods",
            "with": {"topic": "orders", "properties.bootstrap.servers": "Kafka-1:9092,kafka-2:9092"},
        },
        {
            "table": "customers",
            "connector": "mysql-cdc",
            "with": {"hostname": "rds", "database-name": "crm", "table-name": "customers", "password": DB_PASSWORD},
        },
    ],
    "sinks": [{"table": "enriched", "connector": "paimon", "with": {"path": "oss://lake/dws.db/enriched"}}],
}
STATE_FILE = {
    "access_keys": {ACCESS_KEY_ID: SECRET},
    "deployments": [
        {
            "deploymentId": "dep-lineage",
            "name": "enrich",
            "namespace": NAMESPACE,
            "workspace": WORKSPACE,
            "createdAt": "1700000000",
            "lineage": LINEAGE,
        },
        {"deploymentId": "dep-bare", "name": "bare", "namespace": NAMESPACE, "workspace": WORKSPACE, "createdAt": "1"},
    ],
}
INPUTS = [DatasetName("kafka://kafka-1:9092", "orders"), DatasetName("mysql://rds:3306", "crm.customers")]
OUTPUTS = [DatasetName("oss://lake", "dws.db/enriched")]


@pytest.fixture
def emulator() -> Iterator[VVPEmulator]:
    with VVPEmulator(EmulatorState.from_document(copy.deepcopy(STATE_FILE))) as running:
        yield running


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch, emulator: VVPEmulator) -> FlinkVVPHook:
    connection = {
        "conn_type": "flink_vvp",
        "host": emulator.url,
        "login": ACCESS_KEY_ID,
        "password": SECRET,
        "extra": {"workspace": WORKSPACE, "namespace": NAMESPACE, "retry_limit": 2, "retry_delay": 0.01, "timeout": 2},
    }
    monkeypatch.setenv("AIRFLOW_CONN_VVP_LINEAGE", json.dumps(connection))
    return FlinkVVPHook("vvp_lineage")


def test_the_hook_reads_the_deployment_s_lineage_and_its_tables_are_named_for_openlineage(
    hook: FlinkVVPHook, emulator: VVPEmulator
) -> None:
    info = hook.get_lineage("dep-lineage")

    assert {table.name for node in info.nodes for table in node.tables} == {"orders", "customers", "enriched"}
    assert info.job_ids == ("dep-lineage",)
    assert {relation.job_id for relation in info.relations} == {"dep-lineage"}
    assert deployment_datasets(info, workspace=WORKSPACE, namespace=NAMESPACE, deployment_id="dep-lineage") == (
        INPUTS,
        OUTPUTS,
    )
    assert emulator.request_counts()["GetLineageInfo"] == 1


def test_the_same_table_has_the_same_id_in_every_deployment(emulator: VVPEmulator, hook: FlinkVVPHook) -> None:
    emulator.add_deployment(
        {**STATE_FILE["deployments"][1], "deploymentId": "dep-reader", "lineage": {"sources": LINEAGE["sinks"]}}
    )

    written = {table.name: table.table_id for node in hook.get_lineage("dep-lineage").nodes for table in node.tables}
    read = {table.name: table.table_id for node in hook.get_lineage("dep-reader").nodes for table in node.tables}
    assert read == {"enriched": written["enriched"]}


@pytest.mark.parametrize(
    ("lineage", "inputs", "outputs"),
    [
        ({"sources": LINEAGE["sources"]}, INPUTS, []),
        ({"sinks": LINEAGE["sinks"]}, [], OUTPUTS),
        ({"sources": [], "sinks": []}, [], []),
        ({"sources": [{"table": "gen", "connector": "datagen"}], "sinks": LINEAGE["sinks"]}, [], OUTPUTS),
    ],
)
def test_a_deployment_with_sources_or_sinks_only_has_those(
    emulator: VVPEmulator,
    hook: FlinkVVPHook,
    lineage: dict[str, Any],
    inputs: list[DatasetName],
    outputs: list[DatasetName],
) -> None:
    emulator.add_deployment({**STATE_FILE["deployments"][1], "deploymentId": "dep-one-sided", "lineage": lineage})

    info = hook.get_lineage("dep-one-sided")

    assert deployment_datasets(info, workspace=WORKSPACE, namespace=NAMESPACE, deployment_id="dep-one-sided") == (
        inputs,
        outputs,
    )


def test_a_deployment_without_lineage_has_an_empty_graph(hook: FlinkVVPHook) -> None:
    info = hook.get_lineage("dep-bare")

    assert (info.nodes, info.relations, info.job_ids) == ((), (), ("dep-bare",))


def test_an_unknown_deployment_is_the_api_s_not_found_error(hook: FlinkVVPHook) -> None:
    with pytest.raises(VVPApiError) as info:
        hook.get_lineage("dep-missing")

    assert (info.value.code, info.value.action) == ("DeploymentNotFound", "GetLineageInfo")
    assert info.value.request_id


def test_a_transient_failure_is_retried_as_the_read_it_is(emulator: VVPEmulator, hook: FlinkVVPHook) -> None:
    emulator.faults.enqueue(Fault(FaultKind.UNAVAILABLE, action="GetLineageInfo"))

    assert hook.get_lineage("dep-lineage").relations
    assert emulator.request_counts()["GetLineageInfo"] == 2


def test_the_lineage_is_kept_apart_from_the_deployment_and_written_back_to_the_state_file(
    emulator: VVPEmulator, hook: FlinkVVPHook
) -> None:
    assert "lineage" not in hook.get_deployment("dep-lineage").raw

    document = emulator.state.to_document()

    by_id = {deployment["deploymentId"]: deployment for deployment in document["deployments"]}
    assert by_id["dep-lineage"]["lineage"] == {"sources": LINEAGE["sources"], "sinks": LINEAGE["sinks"]}
    assert "lineage" not in by_id["dep-bare"]
    again = EmulatorState.from_document(document)
    assert again.lineage_info(WORKSPACE, NAMESPACE, "dep-lineage") == emulator.state.lineage_info(
        WORKSPACE, NAMESPACE, "dep-lineage"
    )


def test_adding_a_deployment_again_replaces_its_lineage(emulator: VVPEmulator) -> None:
    emulator.add_deployment({key: value for key, value in STATE_FILE["deployments"][0].items() if key != "lineage"})

    assert emulator.state.lineage_info(WORKSPACE, NAMESPACE, "dep-lineage")["nodes"] == []


@pytest.mark.parametrize(
    ("lineage", "named"),
    [
        ("kafka", "lineage must be an object of sources and sinks, got str"),
        ({"inputs": []}, r"lineage must be an object of sources and sinks, got \['inputs'\]"),
        ({"sources": {"table": "t"}}, "lineage.sources must be a list of tables, got dict"),
        ({"sinks": ["t"]}, r"lineage.sinks\[0\] must be an object of table, connector, catalog, database, with"),
        (
            {"sinks": [{"table": "t", "options": {}}]},
            r"lineage.sinks\[0\] must be an object .*got \['options', 'table'\]",
        ),
        ({"sources": [{"connector": "kafka"}]}, r"lineage.sources\[0\].table must be a non-empty string, got None"),
        ({"sources": [{"table": " "}]}, r"lineage.sources\[0\].table must be a non-empty string"),
        ({"sources": [{"table": "t", "catalog": 5}]}, r"lineage.sources\[0\].catalog must be a string, got 5"),
        ({"sources": [{"table": "t", "with": "x"}]}, r"lineage.sources\[0\].with must be an object of connector"),
        ({"sources": [{"table": "t", "with": {"password": 5}}]}, r"lineage.sources\[0\].with must be .* each a string"),
    ],
)
def test_a_state_file_lineage_the_api_could_not_send_is_refused_naming_where(lineage: Any, named: str) -> None:
    document = copy.deepcopy(STATE_FILE)
    document["deployments"][0]["lineage"] = lineage

    with pytest.raises(InvalidArgumentError, match=named) as info:
        EmulatorState.from_document(document)

    assert "deployments[0]" in info.value.message


def test_a_refused_lineage_does_not_repeat_its_options() -> None:
    document = copy.deepcopy(STATE_FILE)
    document["deployments"][0]["lineage"] = {"sources": [{"table": "t", "with": {"password": DB_PASSWORD}, "x": 1}]}

    with pytest.raises(InvalidArgumentError) as info:
        EmulatorState.from_document(document)

    assert DB_PASSWORD not in info.value.message
