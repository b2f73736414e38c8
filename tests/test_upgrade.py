"""The upgrade operator's arguments and its reading of a job's restarts, without a server."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_flink_vvp.api.models import Job
from airflow_provider_flink_vvp.operators.upgrade import FlinkVVPUpgradeJobOperator
from airflow_provider_flink_vvp.stability import flink_restarts


def job(status: dict[str, Any]) -> Job:
    return Job.from_api({"jobId": "job-1", "deploymentId": "dep-1", "status": status})


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"currentJobStatus": "RUNNING", "running": {"observedFlinkJobRestarts": 0}}, 0),
        ({"currentJobStatus": "RUNNING", "running": {"observedFlinkJobRestarts": 7}}, 7),
        ({"currentJobStatus": "RUNNING", "running": {"observedFlinkJobRestarts": 3.0}}, 3),
        ({"currentJobStatus": "RUNNING", "running": {"observedFlinkJobStatus": "RUNNING"}}, None),
        ({"currentJobStatus": "RUNNING", "running": {"observedFlinkJobRestarts": "2"}}, None),
        ({"currentJobStatus": "RUNNING", "running": {"observedFlinkJobRestarts": True}}, None),
        ({"currentJobStatus": "RUNNING", "running": None}, None),
        ({"currentJobStatus": "STARTING"}, None),
    ],
)
def test_restarts_are_read_only_from_a_number_the_job_reports(status: dict[str, Any], expected: int | None) -> None:
    assert flink_restarts(job(status)) == expected


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"savepoint_strategy": "drain"}, "savepoint_strategy must be one of 'stop_with_savepoint'"),
        ({"savepoint_strategy": "STOP_WITH_SAVEPOINT"}, "got 'STOP_WITH_SAVEPOINT'"),
        ({"stable_for": 0}, "stable_for must be a positive, finite duration"),
        ({"stable_for": "10m"}, "stable_for must be seconds (a number) or a timedelta, got '10m'"),
        ({"timeout": -1}, "timeout must be a positive, finite duration"),
        ({"poll_interval": timedelta(0)}, "poll_interval must be a positive, finite duration"),
        ({"deployment_id": "dep-1"}, "Pass exactly one of deployment_name"),
        ({"jar_uri": "oss://bucket/job.jar"}, "pass one kind"),
        ({"sql_script": "  "}, "sql_script must be a non-empty string"),
        ({"stable_for": 300, "timeout": 300}, "stable_for (300 s) must be shorter than timeout (300 s)"),
        (
            {"stable_for": timedelta(hours=2), "timeout": timedelta(hours=1)},
            "stable_for (7200 s) must be shorter than timeout (3600 s)",
        ),
        ({"stable_for": timedelta(days=2)}, "stable_for (172800 s) must be shorter than timeout (86400 s)"),
    ],
)
def test_bad_arguments_are_refused_naming_the_parameter_and_the_value(arguments: dict[str, Any], error: str) -> None:
    given = {"task_id": "upgrade", "deployment_name": "orders", "sql_script": "SELECT 1", **arguments}
    with pytest.raises(ValueError, match=re.escape(error)):
        FlinkVVPUpgradeJobOperator(**given)


def test_the_defaults() -> None:
    task = FlinkVVPUpgradeJobOperator(task_id="upgrade", deployment_name="orders", sql_script="SELECT 1")
    assert (task.savepoint_strategy, task.stable_for, task.rollback, task.poll_interval) == (
        "stop_with_savepoint",
        60.0,
        True,
        5.0,
    )
    assert "sql_script" in task.template_fields and "deployment_name" in task.template_fields
