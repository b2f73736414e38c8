"""No secret leaves a call: not the AccessKey secret, the STS token or the Authorization header, whatever fails.

Every record of the root, httpx, httpcore, urllib3 and requests loggers at DEBUG is read, and every
error raised with the whole chain of its causes, as a traceback would print them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_provider_flink_vvp.api import Credentials
from airflow_provider_flink_vvp.api.errors import VVPConfigurationError
from airflow_provider_flink_vvp.api.operations import get_deployments_by_name
from airflow_provider_flink_vvp.testing import EmulatorState, Fault, FaultKind, ManualClock, VVPEmulator
from tests.client_harness import PATHS, answer, call, loopback, refused_url, self_signed_tls, settings, with_credentials

SEED = json.loads((Path(__file__).parent / "data" / "GetDeploymentsByName.response.json").read_text())["data"][0]
READ = get_deployments_by_name(namespace=SEED["namespace"], workspace=SEED["workspace"], deployment_name=SEED["name"])
KEY_ID = "secrets-key"
SECRET = "Secret-Of-The-AccessKey-1f9a"
TOKEN = "Sts-Token-Never-Shown-77c2"
LOGGERS = ("", "httpx", "httpcore", "urllib3", "requests", "airflow_provider_flink_vvp")
# The parts of the Authorization header's value: neither may show.
AUTHORIZATION_MARKS = ("Credential=", "Signature=")


@pytest.fixture
def emulator() -> Iterator[VVPEmulator]:
    state = EmulatorState(clock=ManualClock())
    state.add_access_key(KEY_ID, SECRET)
    state.add_deployment(copy.deepcopy(SEED))
    with VVPEmulator(state) as running:
        yield running


@contextlib.contextmanager
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every record of the listed loggers at DEBUG into ``caplog``, whether they propagate or not."""
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        if logger.name != "root":
            logger.addHandler(caplog.handler)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
            logger.removeHandler(caplog.handler)


def _leaks(texts: list[str], records: list[logging.LogRecord]) -> list[str]:
    """The texts, and the records' messages and tracebacks, that show a secret."""
    for record in records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
    return [text for text in texts for secret in (SECRET, TOKEN, *AUTHORIZATION_MARKS) if secret in text]


Setup = Callable[[VVPEmulator], tuple[str, Credentials]]
GOOD = Credentials(KEY_ID, SECRET, TOKEN)


def _faulted(*faults: Fault) -> Setup:
    def setup(emulator: VVPEmulator) -> tuple[str, Credentials]:
        emulator.inject(*faults)
        return emulator.url, GOOD

    return setup


FAILURES: dict[str, Setup] = {
    "success": _faulted(),
    "refused": lambda emulator: (refused_url(), GOOD),
    "dropped": _faulted(*[Fault(FaultKind.DROP)] * 3),
    "reset": _faulted(*[Fault(FaultKind.RESET)] * 3),
    "short-body": _faulted(*[Fault(FaultKind.SHORT_BODY)] * 3),
    "bad-gzip": _faulted(*[Fault(FaultKind.BAD_GZIP)] * 3),
    "timeout": _faulted(*[Fault(FaultKind.LATENCY, latency_ms=800)] * 3),
    "drip": _faulted(*[Fault(FaultKind.DRIP, latency_ms=100)] * 3),
    "5xx": _faulted(*[Fault(FaultKind.UNAVAILABLE)] * 3),
    "throttled": _faulted(*[Fault(FaultKind.THROTTLE, retry_after_ms=1)] * 3),
    "429": _faulted(*[Fault(FaultKind.TOO_MANY_REQUESTS, retry_after_ms=1)] * 3),
    "wrong-secret": lambda emulator: (emulator.url, Credentials(KEY_ID, SECRET + "-wrong", TOKEN)),
    "tls-plain-port": lambda emulator: (emulator.url.replace("http://", "https://"), GOOD),
    "key-id-newline": lambda emulator: (emulator.url, Credentials(KEY_ID + "\nX: 1", SECRET, TOKEN)),
    "token-crlf": lambda emulator: (emulator.url, Credentials(KEY_ID, SECRET, TOKEN + "\r\nX: 1")),
    "token-not-latin-1": lambda emulator: (emulator.url, Credentials(KEY_ID, SECRET, TOKEN + "€")),
}


def _texts_of(error: BaseException | None) -> list[str]:
    """The error's str and repr, and its whole traceback with every cause and context, as printed."""
    if error is None:
        return []
    texts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return texts


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("failure", FAILURES)
def test_no_secret_in_any_log_record_or_error(
    emulator: VVPEmulator, caplog: pytest.LogCaptureFixture, path: str, failure: str
) -> None:
    error: BaseException | None
    with debug_logs(caplog):
        try:
            url, credentials = FAILURES[failure](emulator)
        except VVPConfigurationError as refused:  # refused when built, before any library sees them
            assert failure.startswith(("key-id", "token"))
            error = refused
        else:
            error = call(path, with_credentials(url, credentials, timeout=0.5), READ).error
            assert any(record.name.startswith(("urllib3", "httpcore")) for record in caplog.records)
    assert (error is None) is (failure == "success")
    assert _leaks(_texts_of(error), caplog.records) == []


def test_no_secret_when_a_tls_certificate_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with loopback([answer(200, b"{}")], tls=self_signed_tls(tmp_path)) as server:
        for path in PATHS:
            with debug_logs(caplog):
                outcome = call(path, settings(server.url, credentials=GOOD, retry_limit=1), READ)
            assert outcome.error is not None and "TLS handshake" in str(outcome.error)
            assert len(server.requests) == 0
            assert _leaks(_texts_of(outcome.error), caplog.records) == []


SIGNED = f"ACS3-HMAC-SHA256 Credential={KEY_ID},SignedHeaders=host;x-acs-date,Signature=9f8e7d6c5b4a"


def _envelope(status: int, document: object) -> bytes:
    return answer(status, json.dumps(document).encode(), "Content-Type: application/json")


# Answers of a server that echoes what the request carried, anywhere it can: error texts, the body, the data.
ECHOING_ANSWERS = {
    "error-message": _envelope(
        400, {"requestId": "R", "success": False, "errorCode": "X", "errorMessage": f"{TOKEN} / {SECRET} / {SIGNED}"}
    ),
    "error-code-and-request-id": _envelope(
        400, {"requestId": TOKEN, "success": False, "errorCode": SECRET, "errorMessage": "m"}
    ),
    "gateway": _envelope(403, {"Code": "Forbidden", "Message": f"x-acs-security-token={TOKEN}", "RequestId": SECRET}),
    "html-5xx": answer(502, f"<html>{SIGNED} {TOKEN}</html>".encode(), "Content-Type: text/html"),
    "data-field": _envelope(200, {"requestId": "R", "success": True, "data": [{"deploymentId": [TOKEN, SECRET]}]}),
    "long-message": _envelope(
        400, {"requestId": "R", "success": False, "errorCode": "X", "errorMessage": "x" * 295 + TOKEN + SECRET}
    ),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("echo", ECHOING_ANSWERS)
def test_no_secret_a_server_echoes_reaches_an_error_or_a_log(
    caplog: pytest.LogCaptureFixture, path: str, echo: str
) -> None:
    with loopback([ECHOING_ANSWERS[echo]]) as server, debug_logs(caplog):
        outcome = call(path, settings(server.url, credentials=GOOD, retry_limit=2, timeout=2), READ, fake_sleep=True)
    assert outcome.error is not None
    texts = _texts_of(outcome.error)
    assert _leaks(texts, caplog.records) == []
    assert not any(part in text for text in texts for part in (TOKEN[:10], SECRET[:10]))
