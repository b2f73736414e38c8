"""The VVP OpenAPI protocol: signing, request builders, response parsing, models and errors.

Nothing in this package imports Airflow or does I/O.
"""

from airflow_provider_flink_vvp.api.errors import (
    DeploymentNotFoundError,
    VVPApiError,
    VVPConfigurationError,
    VVPConnectionError,
    VVPError,
)
from airflow_provider_flink_vvp.api.models import (
    JOB_STATUSES,
    JOB_SUMMARY_STATES,
    TERMINAL_JOB_STATUSES,
    Deployment,
    Job,
    JobFailure,
    JobSummary,
)
from airflow_provider_flink_vvp.api.operations import Credentials, Operation, PreparedRequest
from airflow_provider_flink_vvp.api.responses import Page

__all__ = [
    "JOB_STATUSES",
    "JOB_SUMMARY_STATES",
    "TERMINAL_JOB_STATUSES",
    "Credentials",
    "Deployment",
    "DeploymentNotFoundError",
    "Job",
    "JobFailure",
    "JobSummary",
    "Operation",
    "Page",
    "PreparedRequest",
    "VVPApiError",
    "VVPConfigurationError",
    "VVPConnectionError",
    "VVPError",
]
