"""GetLineageInfo: the request as the official SDK sends it, and every answer read into models or refused."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from airflow_provider_flink_vvp.api import Credentials, VVPApiError, VVPConfigurationError
from airflow_provider_flink_vvp.api.models import LineageInfo, LineageRelation
from airflow_provider_flink_vvp.api.operations import MAX_LINEAGE_DEPTH, get_lineage_info, prepare
from airflow_provider_flink_vvp.api.responses import parse_envelope

SECRET = "db-pa55word"
#: A lineage answer in the shape of the SDK's LineageInfo, Node, LineageTable, Edge, Relation and JobInfo.
ANSWER: dict[str, Any] = {
    "nodes": [
        {
            "id": "97383",
            "catalogName": "paimon",
            "databaseName": "paimon-ods",
            "isTemporary": False,
            "connector": "paimon",
            "tables": [
                {
                    "id": "434508",
                    "tableName": "order-test",
                    "with": {"path": "oss://lake/ods.db/order-test", "bucket": 4, "changelog": True},
                    "properties": {"creator": "alice", "createdAt": 1700000000000},
                    "columns": [{"columnName": "id", "columnType": "BIGINT", "nullable": False}],
                }
            ],
        },
        {
            "id": "97384",
            "catalogName": None,
            "databaseName": None,
            "connector": "mysql-cdc",
            "isTemporary": True,
            "tables": [{"id": "434509", "tableName": "src", "with": {"hostname": "db", "password": SECRET}}],
        },
    ],
    "edges": {
        "tableLineage": [{"source": "434509", "destination": "434508", "jobId": "dep-1"}],
        "columnLineage": [{"source": "c1", "destination": "c2", "jobId": "dep-1"}],
    },
    "jobInfos": [{"id": "dep-1", "properties": {"deploymentName": "orders"}}, {"id": None}],
}


def parse(data: Any) -> LineageInfo:
    operation = get_lineage_info(namespace="ns", workspace="ws", deployment_id="dep-1")
    body = json.dumps({"requestId": "R-lineage", "success": True, "data": data}).encode()
    return operation.parse(parse_envelope(status=200, headers={}, body=body, action=operation.action), operation.action)


def answer(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(ANSWER)
    document.update(changes)
    return document


def test_the_request_is_a_signed_post_of_the_lineage_parameters_to_meta_v2_lineage() -> None:
    operation = get_lineage_info(namespace="default-namespace", workspace="a14bd5d90a", deployment_id="dep-1")

    assert (operation.action, operation.method, operation.path, dict(operation.query)) == (
        "GetLineageInfo",
        "POST",
        "/meta/v2/lineage",
        {},
    )
    assert operation.headers == {"workspace": "a14bd5d90a"}
    assert operation.idempotent  # a read: retried like one
    assert json.loads(operation.body) == {
        "id": "dep-1",
        "idType": "JOB",
        "direction": "BOTH",
        "depth": 1,
        "isColumnLevel": False,
        "namespace": "default-namespace",
        "workspace": "a14bd5d90a",
    }
    prepared = prepare(
        operation,
        base_url="https://vvp.example",
        host="vvp.example",
        credentials=Credentials("AK", "SK"),
        date="2026-01-01T00:00:00Z",
        nonce="n",
        user_agent="ua",
    )
    assert prepared.url == "https://vvp.example/meta/v2/lineage"
    assert prepared.headers["content-type"] == "application/json; charset=utf-8"
    assert prepared.headers["x-acs-action"] == "GetLineageInfo"


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"deployment_id": ""}, "deployment_id"),
        ({"deployment_id": "  "}, "deployment_id"),
        ({"deployment_id": None}, "deployment_id"),
        ({"namespace": ""}, "namespace"),
        ({"namespace": "a/b"}, "namespace"),
        ({"workspace": "w s\n"}, "workspace"),
        ({"direction": "SIDEWAYS"}, "direction must be one of UPSTREAM, DOWNSTREAM, BOTH, got 'SIDEWAYS'"),
        ({"depth": 0}, f"depth must be a whole number from 1 to {MAX_LINEAGE_DEPTH}, got 0"),
        ({"depth": MAX_LINEAGE_DEPTH + 1}, "depth"),
        ({"depth": True}, "depth"),
        ({"depth": 1.0}, "depth"),
    ],
)
def test_bad_arguments_are_refused_naming_the_parameter(arguments: dict[str, Any], named: str) -> None:
    with pytest.raises(VVPConfigurationError, match=named.replace("(", r"\(")):
        get_lineage_info(**{"namespace": "ns", "workspace": "ws", "deployment_id": "dep-1", **arguments})


def test_an_answer_in_the_sdk_s_shape_is_read_into_models() -> None:
    info = parse(ANSWER)

    assert [node.node_id for node in info.nodes] == ["97383", "97384"]
    paimon, cdc = info.nodes
    assert (paimon.catalog, paimon.database, paimon.connector, paimon.is_temporary) == (
        "paimon",
        "paimon-ods",
        "paimon",
        False,
    )
    assert (cdc.catalog, cdc.database, cdc.is_temporary) == (None, None, True)
    [table] = paimon.tables
    assert (table.table_id, table.name) == ("434508", "order-test")
    # Options are text, as Flink's: numbers and booleans as Flink writes them.
    assert table.options == {"path": "oss://lake/ods.db/order-test", "bucket": "4", "changelog": "true"}
    assert info.relations == (LineageRelation(source="434509", destination="434508", job_id="dep-1"),)
    assert info.job_ids == ("dep-1",)
    assert set(info.tables()) == {"434508", "434509"}


def test_connector_options_stay_out_of_reprs() -> None:
    info = parse(ANSWER)

    assert SECRET not in repr(info) and SECRET not in repr(info.nodes[1])
    assert SECRET not in repr(info.nodes[1].tables[0])


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"nodes": None, "edges": None, "jobInfos": None},
        {"nodes": [], "edges": {}, "jobInfos": []},
        {"nodes": [{"tables": []}]},
        {"edges": {"tableLineage": None}},
    ],
)
def test_an_empty_lineage_is_read_as_one(data: Any) -> None:
    info = parse(data)

    assert info.relations == () and info.tables() == {}


def node(**fields: Any) -> dict[str, Any]:
    return answer(nodes=[{**ANSWER["nodes"][0], **fields}])


def table(**fields: Any) -> dict[str, Any]:
    return node(tables=[{**ANSWER["nodes"][0]["tables"][0], **fields}])


def relation(**fields: Any) -> dict[str, Any]:
    return answer(edges={"tableLineage": [{**ANSWER["edges"]["tableLineage"][0], **fields}]})


NOT_TEXT = (5, True, [], {"x": 1})
SECRET_TEXTS = (SECRET, f"'password'='{SECRET}'")
# Answers that are not the API's shape, and what the error names.
MALFORMED: list[tuple[Any, str]] = [
    *[(value, "data") for value in (None, [], "x", 5)],
    *[(answer(nodes=value), "nodes") for value in ("x", 5, {"id": "n"}, True)],
    *[(answer(nodes=[value]), "nodes[0]") for value in (None, "x", 5, [])],
    *[(answer(edges=value), "edges") for value in ("x", 5, [])],
    *[(answer(edges={"tableLineage": value}), "tableLineage") for value in ("x", 5, {"source": "a"})],
    *[(answer(jobInfos=value), "jobInfos") for value in ("x", {"id": "j"}, [5])],
    (answer(jobInfos=[{"id": 5}]), "id"),
    *[(node(**{key: value}), key) for key in ("id", "catalogName", "databaseName", "connector") for value in NOT_TEXT],
    *[(node(isTemporary=value), "isTemporary") for value in ("yes", 1, [])],
    *[(node(tables=value), "tables") for value in ("x", {"id": "t"}, 5)],
    *[(node(tables=[value]), "tables[0]") for value in (None, "x", [])],
    *[(table(tableName=value), "tableName") for value in (None, "", "  ", 5, [])],
    *[(table(id=value), "id") for value in NOT_TEXT],
    *[(table(**{"with": value}), "with") for value in ("x", 5, [], True)],
    *[(table(**{"with": {"password": value}}), "with['password']") for value in ([SECRET], {"v": SECRET})],
    *[(relation(**{key: value}), key) for key in ("source", "destination") for value in (None, "", 5, [])],
    *[(relation(jobId=value), "jobId") for value in NOT_TEXT],
    # A value of the wrong shape is named by its type alone: it may be an option's value, a password.
    *[
        (document, field)
        for secret in (*SECRET_TEXTS, [SECRET], {"password": SECRET})
        for document, field in [
            (secret, "data"),
            (answer(nodes=[secret]), "nodes[0]"),
            (answer(edges=secret), "edges"),
            (answer(edges={"tableLineage": [secret]}), "tableLineage[0]"),
            (answer(jobInfos=[secret]), "jobInfos[0]"),
            (node(tables=[secret]), "tables[0]"),
            (table(**{"with": secret}), "with"),
        ]
        if not isinstance(secret, dict)
    ],
    *[
        (document, field)
        for secret in (*SECRET_TEXTS, {"password": SECRET})
        for document, field in [
            (answer(nodes=secret), "nodes"),
            (answer(edges={"tableLineage": secret}), "tableLineage"),
            (answer(jobInfos=secret), "jobInfos"),
            (node(tables=secret), "tables"),
        ]
    ],
    *[
        (document, field)
        for secret in ([SECRET], {"password": SECRET}, (SECRET,))
        for document, field in [
            (answer(jobInfos=[{"id": secret}]), "id"),
            *[(node(**{key: secret}), key) for key in ("id", "catalogName", "databaseName", "connector")],
            (table(tableName=secret), "tableName"),
            (table(id=secret), "id"),
            *[(relation(**{key: secret}), key) for key in ("source", "destination", "jobId")],
        ]
    ],
    *[(node(isTemporary=secret), "isTemporary") for secret in (*SECRET_TEXTS, [SECRET], {"password": SECRET})],
]


@pytest.mark.parametrize(("data", "field"), MALFORMED)
def test_an_answer_that_is_not_the_api_s_shape_is_an_invalid_response_naming_the_field(data: Any, field: str) -> None:
    with pytest.raises(VVPApiError) as info:
        parse(data)

    error = info.value
    assert (error.code, error.action, error.request_id) == ("InvalidResponse", "GetLineageInfo", "R-lineage")
    assert field in error.message
    assert SECRET not in str(error)  # an option is named by its key, never shown
    assert len(str(error)) < 400
