"""The diagnostics of a failed job against the emulator: what is shown, cut, redacted, and what is skipped."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_flink_vvp import diagnostics
from airflow_provider_flink_vvp.api.responses import MAX_SERVER_TEXT_CHARS
from airflow_provider_flink_vvp.diagnostics import FailureDiagnostics
from airflow_provider_flink_vvp.hooks.vvp import FlinkVVPHook
from airflow_provider_flink_vvp.testing import Fault, FaultKind, VVPEmulator
from tests.conftest import VVP_ACCESS_KEY_SECRET, AddDeployment


class Recorder:
    """A logger that keeps what it was given, formatted."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []

    def info(self, msg: str, /, *args: object) -> None:
        self.lines.append((logging.INFO, msg % args))

    def warning(self, msg: str, /, *args: object) -> None:
        self.lines.append((logging.WARNING, msg % args))

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def diagnose(deployment_id: str, job_id: str | None) -> Recorder:
    recorder = Recorder()
    hook = FlinkVVPHook(timeout=diagnostics.CALL_TIMEOUT_SECONDS, retry_limit=1)
    FailureDiagnostics(hook, recorder, deployment_id, job_id, None, None).log_all()
    return recorder


@pytest.fixture
def failed(vvp_emulator: VVPEmulator, add_deployment: AddDeployment) -> str:
    deployment_id = add_deployment("orders")
    vvp_emulator.add_job(
        {"jobId": f"job-{deployment_id}", "deploymentId": deployment_id, "startTime": 5}, timeline=[["FAILED", None]]
    )
    return deployment_id


HOSTILE_LOGS = [
    # (start log, what must not be shown, what must be)
    (f"connecting as {VVP_ACCESS_KEY_SECRET} now", VVP_ACCESS_KEY_SECRET, "connecting as <redacted> now"),
    ("Authorization: ACS3-HMAC-SHA256 Signature=deadbeefcafe", "deadbeefcafe", "ACS3-HMAC-SHA256 <redacted>\n"),
    ("x" * 5000, "x" * (MAX_SERVER_TEXT_CHARS + 1), f"{'x' * MAX_SERVER_TEXT_CHARS}... (5000 characters)"),
    # A carriage return ends a line (as it would on a terminal), an escape sequence is made harmless.
    ("forged\rINFO the job is healthy\x1b[2K", "\x1b", "    forged\n    INFO the job is healthy?[2K\n"),
    ("\n".join(f"line {n}" for n in range(1, 501)), "line 450\n", "line 451\n"),
    # Redacted before it is cut: no head of the secret is left at the cut.
    (f"{'y' * 299}{VVP_ACCESS_KEY_SECRET}", VVP_ACCESS_KEY_SECRET[:8], f"{'y' * 299}<... (309 characters)"),
]


@pytest.mark.parametrize(("log", "hidden", "shown"), HOSTILE_LOGS, ids=range(len(HOSTILE_LOGS)))
def test_the_start_log_tail_is_cut_made_printable_and_redacted(
    vvp_emulator: VVPEmulator, failed: str, log: str, hidden: str, shown: str
) -> None:
    vvp_emulator.state.set_start_log(failed, log)
    text = diagnose(failed, f"job-{failed}").text + "\n"
    assert hidden not in text and shown in text


def test_a_long_log_shows_its_last_50_lines_within_the_section_bound(vvp_emulator: VVPEmulator, failed: str) -> None:
    vvp_emulator.state.set_start_log(failed, "\n".join(f"{n:04d} " + "z" * 290 for n in range(1, 1001)))
    recorder = diagnose(failed, f"job-{failed}")
    [section] = [line for _, line in recorder.lines if line.startswith("JobManager start log")]
    assert "1000 " in section and "0951 " not in section
    assert len(section) <= diagnostics.MAX_SECTION_CHARS + 200
    assert "earlier lines not shown" in section


def test_without_a_job_id_the_deployment_s_newest_failed_job_is_diagnosed(
    vvp_emulator: VVPEmulator, failed: str
) -> None:
    vvp_emulator.add_job(
        {"jobId": "newer-failure", "deploymentId": failed, "startTime": 9}, timeline=[["FAILED", None]]
    )
    vvp_emulator.add_job({"jobId": "running", "deploymentId": failed, "startTime": 10}, timeline=[["RUNNING", None]])
    assert f"Diagnosis of job newer-failure of deployment {failed}" in diagnose(failed, None).text


@pytest.mark.parametrize("status", ["RUNNING", "CANCELLED", "FINISHED"])
def test_a_job_that_did_not_fail_is_not_diagnosed(vvp_emulator: VVPEmulator, failed: str, status: str) -> None:
    vvp_emulator.state.set_job_timeline(f"job-{failed}", [[status, None]])
    before = vvp_emulator.request_counts().get("GetJobDiagnosis", 0)
    assert diagnose(failed, f"job-{failed}").lines == []
    assert vvp_emulator.request_counts().get("GetJobDiagnosis", 0) == before


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (Fault(FaultKind.UNAVAILABLE, action="GetJob"), "GetJob unavailable, skipped: ServiceUnavailable"),
        (
            Fault(FaultKind.DROP, action="GetJob"),
            "GetJob unavailable, skipped: VVPConnectionError: GetJob: the connection to",
        ),
        (
            Fault(FaultKind.LATENCY, action="GetJob", latency_ms=6000),
            "GetJob unavailable, skipped: VVPConnectionError: GetJob: no answer within 5 s",
        ),
    ],
)
def test_a_failed_read_of_the_job_is_one_line_and_ends_the_diagnostics(
    vvp_emulator: VVPEmulator, failed: str, fault: Fault, said: str
) -> None:
    vvp_emulator.inject(fault)
    recorder = diagnose(failed, f"job-{failed}")
    assert [level for level, _ in recorder.lines] == [logging.WARNING]
    assert said in recorder.text


def test_the_budget_ends_the_diagnostics_with_one_line_per_skipped_read(
    vvp_emulator: VVPEmulator, failed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Room for the reads before the slow one on a loaded machine; the slow one outlasts what is left.
    monkeypatch.setattr(diagnostics, "BUDGET_SECONDS", 1.0)
    vvp_emulator.inject(Fault(FaultKind.LATENCY, action="GetJobDiagnosis", latency_ms=1500))
    recorder = diagnose(failed, f"job-{failed}")
    assert recorder.text.count("ran out") == 2  # the start log and the events
    assert "Diagnosis of job" in recorder.text  # the slow read itself still answered within its timeout


def test_an_unreadable_connection_is_one_line(monkeypatch: pytest.MonkeyPatch, vvp_emulator: VVPEmulator) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FLINK_VVP_DEFAULT", '{"conn_type": "flink_vvp", "extra": {"timeout": "soon"}}')
    recorder = diagnose("d", "j")
    assert [level for level, _ in recorder.lines] == [logging.WARNING]
    assert "Diagnostics of the failed job skipped" in recorder.text


def test_events_are_the_newest_first_and_at_most_ten(vvp_emulator: VVPEmulator, failed: str) -> None:
    for n in range(12):
        vvp_emulator.add_job(
            {"jobId": f"old-{n:02d}", "deploymentId": failed, "startTime": 1_700_000_000_000 + n * 1000},
            timeline=[["CANCELLED", None]],
        )
    text = diagnose(failed, f"job-{failed}").text
    [section] = [part for part in text.split("Latest events") if "newest first" in part]
    listed: Any = [line for line in section.splitlines()[1:] if line.startswith("    ")]
    assert len(listed) == diagnostics.EVENT_COUNT
