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
from airflow_provider_flink_vvp.api.models import JOB_SUMMARY_STATES, Deployment, JobSummary
from airflow_provider_flink_vvp.api.operations import Credentials, Operation, PreparedRequest

__all__ = [
    "JOB_SUMMARY_STATES",
    "Credentials",
    "Deployment",
    "DeploymentNotFoundError",
    "JobSummary",
    "Operation",
    "PreparedRequest",
    "VVPApiError",
    "VVPConfigurationError",
    "VVPConnectionError",
    "VVPError",
]
