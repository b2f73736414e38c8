"""Whatever body the service sends, parsing returns well-typed models or raises VVPApiError, never anything else."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flink_vvp.api import Deployment, Job, JobSummary, Page, VVPApiError
from airflow_provider_flink_vvp.api.errors import REDACTED
from airflow_provider_flink_vvp.api.models import JOB_SUMMARY_STATES, parse_epoch
from airflow_provider_flink_vvp.api.operations import get_deployments_by_name, get_job, list_jobs
from airflow_provider_flink_vvp.api.responses import MAX_SERVER_TEXT_CHARS, parse_envelope

SEED = json.loads((Path(__file__).parent.parent / "data" / "GetDeploymentsByName.response.json").read_text())
JOB = {
    "jobId": "j-1",
    "deploymentId": "d-1",
    "startTime": 1714058507000,
    "endTime": None,
    "status": {
        "currentJobStatus": "FAILED",
        "failure": {"reason": "OOM", "message": "heap", "failedAt": 1714058600000},
    },
}
BY_NAME = get_deployments_by_name(namespace="ns", workspace="ws", deployment_name="n")
GET_JOB = get_job(namespace="ns", workspace="ws", job_id="j-1")
LIST_JOBS = list_jobs(namespace="ns", workspace="ws", deployment_id="d-1")


def parse(operation: Any, body: bytes) -> Any:
    envelope = parse_envelope(status=200, headers={}, body=body, action=operation.action)
    return operation.parse(envelope, operation.action)


def with_data(data: Any, **envelope: Any) -> bytes:
    return json.dumps({"requestId": "R-hostile", "success": True, "data": data, **envelope}).encode()


def deployment(**fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(SEED["data"][0]), **fields}


def job(**fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(JOB), **fields}


def summary(**counts: Any) -> dict[str, Any]:
    return deployment(jobSummary={**SEED["data"][0]["jobSummary"], **counts})


def job_status(**status: Any) -> dict[str, Any]:
    return job(status={**JOB["status"], **status})


def failure(**fields: Any) -> dict[str, Any]:
    return job_status(failure={**JOB["status"]["failure"], **fields})  # type: ignore[dict-item]


HUGE = 10**30
# Bodies whose data is wrong: (operation, body, what the message names).
MALFORMED_DATA: list[tuple[Any, bytes, str]] = [
    *[
        (BY_NAME, with_data([summary(running=count)]), "jobSummary.running")
        for count in (-1, 1.5, 2.0, True, False, "3", "", [], {}, HUGE, 2**63)
    ],
    (BY_NAME, with_data([summary(failed=1)]).replace(b'"failed": 1', b'"failed": 1e400'), "jobSummary.failed"),
    *[
        (BY_NAME, with_data([deployment(deploymentId=value)]), "deploymentId")
        for value in (None, "", "   ", 5, 0, True, [], {}, ["d"])
    ],
    (
        BY_NAME,
        with_data([{key: value for key, value in deployment().items() if key != "deploymentId"}]),
        "deploymentId",
    ),
    *[(GET_JOB, with_data(job(jobId=value)), "jobId") for value in (None, "", " \n", 7, False, [], {"id": "j"})],
    *[(GET_JOB, with_data(job(deploymentId=value)), "deploymentId") for value in (None, "", 7, [])],
    *[
        (BY_NAME, with_data([deployment(createdAt=value)]), "createdAt")
        for value in (1e300, -1, "-5", "1e300", "NaN", "inf", "9" * 400, HUGE, True, [], {}, "yesterday", 2.6e14)
    ],
    (BY_NAME, with_data([deployment(modifiedAt=10**400)]), "modifiedAt"),
    *[(GET_JOB, with_data(job(startTime=value)), "startTime") for value in (1e300, -1, "x", HUGE, False)],
    (GET_JOB, with_data(failure(failedAt=1e300)), "failedAt"),
    *[(BY_NAME, with_data([deployment(jobSummary=value)]), "jobSummary") for value in ("x", 3, [], True)],
    *[(GET_JOB, with_data(job(status=value)), "status") for value in ("RUNNING", 1, [], True, None, {})],
    (GET_JOB, with_data({key: value for key, value in job().items() if key != "status"}), "status"),
    *[
        (GET_JOB, with_data(job_status(currentJobStatus=value)), "currentJobStatus")
        for value in (None, "", " ", "UNKNOWN", "PAUSED", "RUNNING!", "RUN NING")
    ],
    *[(GET_JOB, with_data(job_status(failure=value)), "failure") for value in ("OOM", 1, ["x"])],
    *[(GET_JOB, with_data(job_status(currentJobStatus=value)), "currentJobStatus") for value in (1, ["RUNNING"], {})],
    *[(GET_JOB, with_data(failure(reason=value)), "reason") for value in (1, [], {})],
    *[
        (BY_NAME, with_data([deployment(**{key: 5})]), key)
        for key in ("name", "namespace", "workspace", "executionMode")
    ],
    *[(BY_NAME, with_data(value), "data") for value in ("x", 1, {"deploymentId": "d"}, True)],
    *[(BY_NAME, with_data([value]), "deployment") for value in (1, "x", None, [], True)],
    *[(LIST_JOBS, with_data([value]), "job") for value in (1, "x", None, [])],
    (GET_JOB, with_data([job()]), "data must be an object"),
    (GET_JOB, with_data(None), "data must be an object"),
]
# Bodies whose envelope is wrong: the body's requestId is no string, or page fields are no whole numbers.
MALFORMED_ENVELOPES: list[tuple[Any, bytes, str]] = [
    *[
        (LIST_JOBS, with_data([], **{key: value}), key)
        for key in ("pageIndex", "pageSize", "totalSize")
        for value in ("1", 1.5, -1, True, HUGE, [], {})
    ],
    *[(BY_NAME, with_data([], requestId=value), "requestId") for value in (5, [], {}, True)],
]
# Bodies that are not JSON the parser can take.
NOT_JSON: list[bytes] = [
    b"[" * 100_000,
    b'{"success": true, "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"requestId": "R", "success": true, "data": [{"deploymentId": "d", "labels": '
    + b'{"a": ' * 50_000
    + b"1"
    + b"}" * 50_000
    + b"}]}",
    b'{"success": true, "data": NaN}',
    b'{"success": true, "data": [], "totalSize": Infinity}',
    b'{"success": true, "data": [], "totalSize": -Infinity}',
    b'{"success": true, "data": [], "totalSize": ' + b"1" * 5000 + b"}",
    b"\x00\x01",
    b'{"success": true',
]


@pytest.mark.parametrize(("operation", "body", "field"), MALFORMED_DATA + MALFORMED_ENVELOPES)
def test_a_body_that_is_not_the_api_s_shape_is_an_invalid_response(operation: Any, body: bytes, field: str) -> None:
    with pytest.raises(VVPApiError) as info:
        parse(operation, body)
    error = info.value
    assert error.code == "InvalidResponse"
    assert error.action == operation.action
    assert field in error.message
    assert str(error).startswith(f"{operation.action} failed: InvalidResponse:")
    assert len(error.message) < 400  # a huge or deep value is described, not dumped
    if (operation, body, field) in MALFORMED_DATA:
        assert error.request_id == "R-hostile"
        assert "requestId R-hostile" in str(error)


@pytest.mark.parametrize("body", NOT_JSON, ids=range(len(NOT_JSON)))
@pytest.mark.parametrize("operation", [BY_NAME, GET_JOB, LIST_JOBS], ids=lambda operation: operation.action)
def test_a_body_the_json_parser_cannot_take_is_an_invalid_response(operation: Any, body: bytes) -> None:
    with pytest.raises(VVPApiError) as info:
        parse(operation, body)
    assert info.value.code == "InvalidResponse"
    assert info.value.action == operation.action


@pytest.mark.parametrize(
    ("sent", "read"), [("running", "RUNNING"), ("Cancelling", "CANCELLING"), (" FINISHED ", "FINISHED")]
)
def test_a_job_status_is_read_in_any_case(sent: str, read: str) -> None:
    assert parse(GET_JOB, with_data(job_status(currentJobStatus=sent))).status == read


def error_answer(**fields: Any) -> bytes:
    return json.dumps(
        {"requestId": "R-err", "success": False, "errorCode": "Code", "errorMessage": "m", **fields}
    ).encode()


def gateway_answer(**fields: Any) -> bytes:
    return json.dumps({"RequestId": "R-gw", "Code": "Code", "Message": "m", **fields}).encode()


NOT_TEXT = (5, 1.5, True, [], ["x"], {}, {"nested": "x" * 1000})
# Error answers whose server texts are not strings: (body, the field named).
ERROR_FIELDS_NOT_TEXT = [
    *[(error_answer(**{key: value}), key) for key in ("errorCode", "errorMessage", "requestId") for value in NOT_TEXT],
    *[(gateway_answer(**{key: value}), key) for key in ("Code", "Message", "RequestId") for value in NOT_TEXT],
]


@pytest.mark.parametrize("status", [200, 400, 503])
@pytest.mark.parametrize(("body", "field"), ERROR_FIELDS_NOT_TEXT)
def test_an_error_answer_whose_texts_are_not_strings_is_an_invalid_response(
    status: int, body: bytes, field: str
) -> None:
    with pytest.raises(VVPApiError) as info:
        parse_envelope(status=status, headers={}, body=body, action="GetJob")
    assert info.value.code == "InvalidResponse" and info.value.http_status == status
    assert f"{field} must be a string" in info.value.message
    assert len(str(info.value)) < 300


LONG = 5_000_000
# Error answers with huge texts: every one is cut, whatever its field.
HUGE_TEXTS = [
    error_answer(errorCode="C" * LONG),
    error_answer(errorMessage="M" * LONG),
    error_answer(requestId="R" * LONG),
    error_answer(errorCode="C" * LONG, errorMessage="M" * LONG, requestId="R" * LONG),
    gateway_answer(Code="C" * LONG, Message="M" * LONG, RequestId="R" * LONG),
    with_data([deployment(deploymentId=5)], requestId="R" * LONG),
]


@pytest.mark.parametrize("body", HUGE_TEXTS, ids=range(len(HUGE_TEXTS)))
def test_a_servers_huge_texts_are_cut(body: bytes) -> None:
    with pytest.raises(VVPApiError) as info:
        parse(BY_NAME, body)
    assert len(str(info.value)) < 3 * (MAX_SERVER_TEXT_CHARS + 40) + 200
    assert all(len(text or "") <= MAX_SERVER_TEXT_CHARS + 40 for text in (info.value.code, info.value.request_id))


TOKEN = "STS.Nv/Tok+en=="
SECRET = "Secret-Of-The-Key"
SIGNED = "ACS3-HMAC-SHA256 Credential=AKID,SignedHeaders=host;x-acs-date,Signature=0a1b2c3d"
# The server's texts, each echoing what the request carried.
ECHOES = [
    error_answer(errorMessage=f"token {TOKEN} rejected"),
    error_answer(errorMessage=f"string to sign with {SECRET}", errorCode=f"Bad.{TOKEN}"),
    error_answer(errorMessage=f"Authorization: {SIGNED}"),
    error_answer(errorMessage="x" * 290 + TOKEN),  # the token across the cut
    error_answer(requestId=TOKEN),
    gateway_answer(Message=f"x-acs-security-token={TOKEN}; {SIGNED}", RequestId=SECRET),
    gateway_answer(Code=SIGNED),
    f"<html>{TOKEN} {SIGNED}</html>".encode(),
    json.dumps({"echo": f"{TOKEN} {SECRET}"}).encode(),
]


@pytest.mark.parametrize("status", [200, 400, 502])
@pytest.mark.parametrize("body", ECHOES, ids=range(len(ECHOES)))
def test_an_echoed_secret_token_or_signature_never_reaches_the_error(status: int, body: bytes) -> None:
    with pytest.raises(VVPApiError) as info:
        parse_envelope(status=status, headers={}, body=body, action="GetJob", secrets=(SECRET, TOKEN))
    text = " ".join(str(part) for part in (info.value, info.value.code, info.value.message, info.value.request_id))
    for leak in (TOKEN, TOKEN[:8], SECRET, "Signature=", "Credential=", "0a1b2c3d"):
        assert leak not in text
    assert REDACTED in text


# Texts that shortening cut a secret in: the head or the tail of the secret is left at an edge.
CUT_SECRETS = [
    f"status {'x' * 40}{SECRET[:9]}\u2026",
    f"\u2026{SECRET[-7:]} is no status",
    f"{TOKEN[:6]}",
    f"data[0]: {{'jobId': '{SECRET[:-1]}'}}",
]


@pytest.mark.parametrize("text", CUT_SECRETS)
def test_a_secret_cut_in_two_by_a_shortened_text_is_still_taken_out(text: str) -> None:
    error = VVPApiError(code="InvalidResponse", message=text, request_id=None, http_status=200, action="GetJob")
    clean = str(error.redacted((SECRET, TOKEN)))
    for secret in (SECRET, TOKEN):
        pieces = {secret[:length] for length in range(6, len(secret))} | {
            secret[-length:] for length in range(6, len(secret))
        }
        assert not [piece for piece in pieces if piece in clean]
    assert REDACTED in clean


@pytest.mark.parametrize(
    "value", [1e300, -1, float("nan"), float("inf"), "1e300", "-inf", "nan", 10**400, True, [], 2.6e14, "9" * 5000]
)
def test_parse_epoch_refuses_what_is_no_time_with_a_value_error(value: Any) -> None:
    with pytest.raises(ValueError, match="epoch time"):
        parse_epoch(value)


@pytest.mark.parametrize(
    ("value", "year"), [(0, 1970), ("0", 1970), (99_999_999_999, 5138), (253_402_300_799_999, 9999), (1.7e9, 2023)]
)
def test_parse_epoch_takes_the_whole_range_a_datetime_holds(value: Any, year: int) -> None:
    parsed = parse_epoch(value)
    assert parsed is not None and parsed.year == year


def _sent(*fields: tuple[str, Any, Any]) -> list[dict[str, Any]]:
    return [deployment(deploymentId=id_, createdAt=created, modifiedAt=modified) for id_, created, modified in fields]


NEWEST_FIRST_CASES = [
    (_sent(("old", "100", None), ("new", "200", None)), ["new", "old"]),
    (_sent(("new", "200", None), ("old", "100", None)), ["new", "old"]),
    (_sent(("a", "100", "100"), ("b", "100", "300"), ("c", "100000", "1")), ["c", "b", "a"]),
    (_sent(("ms", 150_000_000_000_000, None), ("s", "200", None)), ["ms", "s"]),
    (_sent(("s", "200", None), ("ms", 150_000_000_000_000, None)), ["ms", "s"]),
    (_sent(("none", None, None), ("some", "1", None)), ["some", "none"]),
    (_sent(("x", "5", "5"), ("y", "5", "5")), ["x", "y"]),  # equally old: the answer's order stands
    (_sent(("y", "5", "5"), ("x", "5", "5")), ["y", "x"]),
]


@pytest.mark.parametrize(("sent", "ids"), NEWEST_FIRST_CASES)
def test_get_deployments_by_name_answers_newest_first_whatever_the_order_sent(sent: Any, ids: list[str]) -> None:
    assert [d.deployment_id for d in parse(BY_NAME, with_data(sent))] == ids


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _paths(child, (*path, key))


_JUNK: list[Callable[[random.Random], Any]] = [
    lambda _: None,
    lambda _: "",
    lambda _: " ",
    lambda rng: rng.choice([True, False]),
    lambda rng: rng.randint(-(2**70), 2**70),
    lambda rng: rng.choice([-1, 0, 1, 2**63, 2**63 - 1, 10**30]),
    lambda rng: rng.uniform(-1e308, 1e308),
    lambda rng: rng.choice([1e300, -1e300, 0.5, 1e-300]),
    lambda rng: rng.choice(["x", "1714058507", "1e400", "nan", "-1", "\n", "任务", "\x00"]),
    lambda _: [],
    lambda _: {},
    lambda rng: [rng.randint(0, 9)],
    lambda rng: {"k": rng.randint(0, 9)},
    lambda rng: _nested(rng.randint(1, 500)),
]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _mutate(document: Any, paths: list[tuple[Any, ...]], rng: random.Random) -> Any:
    """A copy of ``document`` with one to three of its values (at ``paths``) replaced by junk or removed."""
    document = copy.deepcopy(document)
    for path in rng.sample(paths, rng.randint(1, 3)):
        parent = document
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):  # an earlier mutation removed or replaced the path
            continue
        if not isinstance(parent, dict | list):  # an earlier mutation made the parent a string
            continue
        if isinstance(parent, dict) and rng.random() < 0.2:
            del parent[path[-1]]
        else:
            parent[path[-1]] = rng.choice(_JUNK)(rng)
    return document


def _assert_well_typed(result: Any) -> None:
    models = result.items if isinstance(result, Page) else result if isinstance(result, list) else [result]
    for model in models:
        if isinstance(model, Deployment):
            assert isinstance(model.deployment_id, str) and model.deployment_id.strip()
            assert isinstance(model.name, str) and isinstance(model.namespace, str)
            assert all(isinstance(v, str | None) for v in (model.workspace, model.execution_mode))
            assert all(isinstance(t, datetime | None) for t in (model.created_at, model.modified_at))
            if model.job_summary is not None:
                assert isinstance(model.job_summary, JobSummary)
                for state in JOB_SUMMARY_STATES:
                    count = getattr(model.job_summary, state)
                    assert type(count) is int and 0 <= count < 2**63
        else:
            assert isinstance(model, Job)
            assert isinstance(model.job_id, str) and model.job_id.strip()
            assert isinstance(model.deployment_id, str) and model.deployment_id.strip()
            assert isinstance(model.status, str)
            assert all(isinstance(t, datetime | None) for t in (model.start_time, model.end_time))
            if model.failure is not None:
                assert all(isinstance(v, str | None) for v in (model.failure.reason, model.failure.message))
                assert isinstance(model.failure.failed_at, datetime | None)


ENVELOPE_SEEDS = [
    (BY_NAME, SEED),
    (GET_JOB, {"requestId": "R", "success": True, "data": JOB}),
    (LIST_JOBS, {"requestId": "R", "success": True, "data": [JOB, job(jobId="j-2")], "totalSize": 2, "pageIndex": 1}),
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("operation", "document"), ENVELOPE_SEEDS, ids=lambda v: getattr(v, "action", ""))
def test_any_mutation_of_a_real_answer_parses_well_typed_or_is_a_vvp_api_error(
    operation: Any, document: Any, seed: int
) -> None:
    rng = random.Random(seed)
    paths = list(_paths(document))[1:]
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(300):
        mutated = _mutate(document, paths, rng)
        try:
            body = json.dumps(mutated).encode()
        except (ValueError, RecursionError):  # a mutation json itself cannot write
            continue
        try:
            result = parse(operation, body)
        except VVPApiError as error:
            outcomes["refused"] += 1
            # Only a mutated success flag turns the answer into one of the service's errors.
            assert error.code == "InvalidResponse" or mutated.get("success") is not True
        else:
            outcomes["parsed"] += 1
            _assert_well_typed(result)
    assert outcomes["parsed"] and outcomes["refused"]  # the generator reaches both sides


@pytest.mark.parametrize("seed", range(4))
def test_any_byte_level_damage_to_a_real_answer_parses_well_typed_or_is_a_vvp_api_error(seed: int) -> None:
    rng = random.Random(seed)
    body = json.dumps(SEED).encode()
    refused = 0
    for _ in range(400):
        damaged = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(damaged))
            choice = rng.random()
            if choice < 0.4:
                damaged[at] = rng.randrange(256)
            elif choice < 0.7:
                damaged[at:at] = rng.choice([b"[", b"{", b"-", b"e999", b"9" * 30, b"\x00", b'"', b"NaN"])
            else:
                del damaged[at : at + rng.randint(1, 20)]
        try:
            _assert_well_typed(parse(BY_NAME, bytes(damaged)))
        except VVPApiError:
            refused += 1
    assert 0 < refused < 400
