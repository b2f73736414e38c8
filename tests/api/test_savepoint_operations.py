"""Savepoint and diagnostics operations: what each builder sends, and what each parser makes of any answer."""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any

import pytest

from airflow_provider_flink_vvp.api import VVPApiError, VVPConfigurationError
from airflow_provider_flink_vvp.api.models import DiagnosisSymptom, Event, JobDiagnosis, JobFailure, Savepoint
from airflow_provider_flink_vvp.api.operations import (
    create_savepoint,
    delete_savepoint,
    get_events,
    get_job_diagnosis,
    get_latest_job_start_log,
    get_savepoint,
    list_savepoints,
)
from tests.api.test_hostile_responses import _mutate, _paths, parse, with_data

WHERE = {"namespace": "ns", "workspace": "ws"}
NS = "/api/v2/namespaces/ns"

# builder, arguments, method, path, query, body (None: no body), idempotent
BUILDS: list[tuple[Any, dict[str, Any], str, str, dict[str, str], Any, bool]] = [
    (create_savepoint, {"deployment_id": "d-1"}, "POST", f"{NS}/savepoints", {}, {"deploymentId": "d-1"}, False),
    (
        create_savepoint,
        {"deployment_id": "d/1", "native_format": False, "description": "nightly 名"},
        "POST",
        f"{NS}/savepoints",
        {},
        {"deploymentId": "d/1", "nativeFormat": False, "description": "nightly 名"},
        False,
    ),
    (get_savepoint, {"savepoint_id": "sp/1"}, "GET", f"{NS}/savepoints/sp%2F1", {}, None, True),
    (delete_savepoint, {"savepoint_id": "sp 1"}, "DELETE", f"{NS}/savepoints/sp%201", {}, None, False),
    (
        list_savepoints,
        {"deployment_id": "d-1"},
        "GET",
        f"{NS}/savepoints",
        {"deploymentId": "d-1", "pageIndex": "1", "pageSize": "100"},
        None,
        True,
    ),
    (
        list_savepoints,
        {"deployment_id": "d-1", "job_id": "j-1", "page_index": 3, "page_size": 10},
        "GET",
        f"{NS}/savepoints",
        {"deploymentId": "d-1", "jobId": "j-1", "pageIndex": "3", "pageSize": "10"},
        None,
        True,
    ),
    (
        get_job_diagnosis,
        {"deployment_id": "d-1", "job_id": "j:1"},
        "GET",
        f"{NS}/deployments/d-1/jobs/j%3A1/job-diagnoses/lite",
        {},
        None,
        True,
    ),
    (
        get_latest_job_start_log,
        {"deployment_id": "d-1"},
        "GET",
        f"{NS}/deployments/d-1/latest_jobmanager_start_log",
        {},
        None,
        True,
    ),
    (
        get_events,
        {"deployment_id": "d-1", "page_size": 20},
        "GET",
        f"{NS}/events",
        {"deploymentId": "d-1", "pageIndex": "1", "pageSize": "20"},
        None,
        True,
    ),
]


@pytest.mark.parametrize(
    ("builder", "arguments", "method", "path", "query", "body", "idempotent"),
    BUILDS,
    ids=[f"{build[0].__name__}-{index}" for index, build in enumerate(BUILDS)],
)
def test_each_builder_sends_the_operation_s_method_encoded_path_query_and_body(
    builder: Any, arguments: dict[str, Any], method: str, path: str, query: dict[str, str], body: Any, idempotent: bool
) -> None:
    operation = builder(**WHERE, **arguments)
    assert (operation.method, operation.path, dict(operation.query)) == (method, path, query)
    assert operation.headers == {"workspace": "ws"}
    assert (json.loads(operation.body) if operation.body else None) == body
    # A create or a delete that may have run is confirmed by reading before it is sent again.
    assert operation.idempotent is idempotent


@pytest.mark.parametrize(
    ("builder", "arguments", "message"),
    [
        (create_savepoint, {"deployment_id": ""}, "deployment_id must be a non-empty string, got ''"),
        (create_savepoint, {"deployment_id": "d", "native_format": "yes"}, "native_format must be True, False or None"),
        (create_savepoint, {"deployment_id": "d", "description": 7}, "description must be a string, got 7"),
        (get_savepoint, {"savepoint_id": " "}, "savepoint_id must be a non-empty string"),
        (get_savepoint, {"savepoint_id": ".."}, "'..' cannot be sent as a path segment"),
        (delete_savepoint, {"savepoint_id": None}, "savepoint_id must be a non-empty string, got None"),
        (list_savepoints, {"deployment_id": "d", "page_size": 101}, "page_size must be between 1 and 100, got 101"),
        (list_savepoints, {"deployment_id": "d", "job_id": ""}, "job_id must be a non-empty string"),
        (get_job_diagnosis, {"deployment_id": "d", "job_id": ""}, "job_id must be a non-empty string"),
        (get_latest_job_start_log, {"deployment_id": ""}, "deployment_id must be a non-empty string"),
        (get_events, {"deployment_id": "d", "page_index": 0}, "page_index must be 1 or more, got 0"),
    ],
)
def test_bad_arguments_are_refused_naming_the_parameter_and_the_value(
    builder: Any, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(VVPConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        builder(**WHERE, **arguments)


SAVEPOINT = {
    "savepointId": "sp-1",
    "deploymentId": "d-1",
    "jobId": "j-1",
    "namespace": "ns",
    "createdAt": 1714058507000,
    "modifiedAt": "1714058600\n",
    "description": "nightly",
    "nativeFormat": True,
    "savepointLocation": "oss://bucket/sp-1",
    "savepointOrigin": "USER_REQUEST",
    "status": {"state": "completed", "failure": {"reason": "R", "message": "M", "failedAt": 1714058600000}},
}
DIAGNOSIS = {
    "diagnoseId": "x",
    "diagnoseTime": 1714058600000,
    "healthScore": 35,
    "riskLevel": "HIGH",
    "symptoms": {
        "autopilot": {"name": "a", "description": "slots", "recommendation": "more"},
        "runtime": [{"name": "r", "description": "OOM", "recommendation": "memory"}],
        "startup": None,
    },
}
EVENT = {"eventId": "e-1", "eventName": "JOB_FAILED", "jobId": "j-1", "message": "boom", "createdAt": "1714058600000"}
GET_SAVEPOINT = get_savepoint(**WHERE, savepoint_id="sp-1")
LIST_SAVEPOINTS = list_savepoints(**WHERE, deployment_id="d-1")
DIAGNOSE = get_job_diagnosis(**WHERE, deployment_id="d-1", job_id="j-1")
START_LOG = get_latest_job_start_log(**WHERE, deployment_id="d-1")
EVENTS = get_events(**WHERE, deployment_id="d-1")


def test_real_shapes_parse_into_typed_models() -> None:
    savepoint = parse(GET_SAVEPOINT, with_data(SAVEPOINT))
    assert (savepoint.state, savepoint.is_terminal, savepoint.location) == ("COMPLETED", True, "oss://bucket/sp-1")
    assert savepoint.modified_at is not None and savepoint.modified_at.year == 2024
    assert savepoint.failure == JobFailure(reason="R", message="M", failed_at=savepoint.failure.failed_at)
    diagnosis = parse(DIAGNOSE, with_data(DIAGNOSIS))
    assert (diagnosis.risk_level, diagnosis.health_score) == ("HIGH", 35)
    assert diagnosis.symptoms == (
        DiagnosisSymptom("runtime", "r", "OOM", "memory"),
        DiagnosisSymptom("autopilot", "a", "slots", "more"),
    )
    assert parse(START_LOG, with_data("line 1\nline 2")) == "line 1\nline 2"
    assert parse(START_LOG, with_data(None)) == ""
    [event] = parse(EVENTS, with_data([EVENT], totalSize=1)).items
    assert (event.name, event.job_id, event.message) == ("JOB_FAILED", "j-1", "boom")
    assert delete_savepoint(**WHERE, savepoint_id="sp").parse is not None


HOSTILE = [
    (GET_SAVEPOINT, with_data({**SAVEPOINT, "status": {"state": ""}}), "status.state must be a non-empty string"),
    (GET_SAVEPOINT, with_data({**SAVEPOINT, "status": {"state": 3}}), "status.state must be a non-empty string"),
    (GET_SAVEPOINT, with_data({**SAVEPOINT, "status": None}), "status must be an object"),
    (GET_SAVEPOINT, with_data({**SAVEPOINT, "savepointId": None}), "savepointId must be a non-empty string"),
    (GET_SAVEPOINT, with_data({**SAVEPOINT, "nativeFormat": "true"}), "nativeFormat must be true or false"),
    (GET_SAVEPOINT, with_data({**SAVEPOINT, "savepointLocation": ["x"]}), "savepointLocation must be a string"),
    (GET_SAVEPOINT, with_data({**SAVEPOINT, "createdAt": "yesterday"}), "createdAt: an epoch time must be a number"),
    (GET_SAVEPOINT, with_data([SAVEPOINT]), "data must be an object"),
    (LIST_SAVEPOINTS, with_data(SAVEPOINT), "data must be a list"),
    (LIST_SAVEPOINTS, with_data([SAVEPOINT, {"savepointId": "x"}]), r"data\[1\]: status must be an object"),
    (DIAGNOSE, with_data({**DIAGNOSIS, "healthScore": -1}), "healthScore must be a whole number"),
    (DIAGNOSE, with_data({**DIAGNOSIS, "healthScore": True}), "healthScore must be a whole number"),
    (DIAGNOSE, with_data({**DIAGNOSIS, "symptoms": []}), "symptoms must be an object"),
    (DIAGNOSE, with_data({**DIAGNOSIS, "symptoms": {"runtime": "OOM"}}), "symptoms.runtime must be a list"),
    (DIAGNOSE, with_data({**DIAGNOSIS, "symptoms": {"state": [1]}}), r"symptoms.state\[0\] must be an object"),
    (DIAGNOSE, with_data({**DIAGNOSIS, "symptoms": {"others": [{"name": 5}]}}), "name must be a string"),
    (START_LOG, with_data(["line"]), "data must be a string"),
    (START_LOG, with_data({"log": "x"}), "data must be a string"),
    (EVENTS, with_data([{**EVENT, "message": {"a": 1}}]), r"data\[0\]: message must be a string"),
    (EVENTS, with_data([EVENT], totalSize=-1), "totalSize must be a whole number"),
]


@pytest.mark.parametrize(("operation", "body", "message"), HOSTILE, ids=range(len(HOSTILE)))
def test_an_answer_that_is_not_the_api_s_shape_is_an_invalid_response_naming_the_field(
    operation: Any, body: bytes, message: str
) -> None:
    with pytest.raises(VVPApiError, match=message) as info:
        parse(operation, body)
    assert info.value.code == "InvalidResponse" and info.value.request_id in ("R-hostile", None)


SEEDS = [
    (GET_SAVEPOINT, {"requestId": "R", "success": True, "data": SAVEPOINT}),
    (LIST_SAVEPOINTS, {"requestId": "R", "success": True, "data": [SAVEPOINT], "totalSize": 1}),
    (DIAGNOSE, {"requestId": "R", "success": True, "data": DIAGNOSIS}),
    (EVENTS, {"requestId": "R", "success": True, "data": [EVENT, EVENT], "totalSize": 2}),
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("operation", "document"), SEEDS, ids=lambda value: getattr(value, "action", ""))
def test_any_mutation_of_an_answer_parses_well_typed_or_is_a_vvp_api_error(
    operation: Any, document: Any, seed: int
) -> None:
    rng = random.Random(seed)
    paths = list(_paths(document))[1:]
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(300):
        mutated = _mutate(document, paths, rng)
        try:
            body = json.dumps(mutated).encode()
        except (ValueError, RecursionError):
            continue
        try:
            result = parse(operation, body)
        except VVPApiError as error:
            outcomes["refused"] += 1
            assert error.code == "InvalidResponse" or mutated.get("success") is not True
        else:
            outcomes["parsed"] += 1
            for model in getattr(result, "items", [result]):
                _assert_well_typed(model)
    assert outcomes["parsed"] and outcomes["refused"]


def _assert_well_typed(model: Any) -> None:
    texts: tuple[Any, ...]
    if isinstance(model, Savepoint):
        assert model.savepoint_id.strip() and model.deployment_id.strip() and model.state == model.state.upper()
        assert isinstance(model.native_format, bool | None)
        texts = (model.job_id, model.location, model.origin, model.description)
        times = (model.created_at, model.modified_at)
    elif isinstance(model, JobDiagnosis):
        assert model.health_score is None or type(model.health_score) is int
        texts = (model.risk_level, *(s.description for s in model.symptoms), *(s.name for s in model.symptoms))
        times = (model.diagnosed_at,)
    else:
        assert isinstance(model, Event)
        texts = (model.event_id, model.name, model.message, model.job_id)
        times = (model.created_at,)
    assert all(isinstance(text, str | None) for text in texts)
    assert all(isinstance(time, datetime | None) for time in times)
