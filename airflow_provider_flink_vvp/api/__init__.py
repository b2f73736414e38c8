"""The VVP OpenAPI protocol: signing, request builders, response parsing, models and errors.

Nothing in this package imports Airflow or does I/O. Its names load on first use, so a DAG
file that needs only the errors and models does not pay for the signer and the builders.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_flink_vvp.api.errors import (
        DeploymentNotFoundError,
        VVPApiError,
        VVPConfigurationError,
        VVPConnectionError,
        VVPError,
        VVPOutcomeUnknownError,
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

_MODULE_OF = {
    "DeploymentNotFoundError": "errors",
    "VVPApiError": "errors",
    "VVPConfigurationError": "errors",
    "VVPConnectionError": "errors",
    "VVPError": "errors",
    "VVPOutcomeUnknownError": "errors",
    "JOB_STATUSES": "models",
    "JOB_SUMMARY_STATES": "models",
    "TERMINAL_JOB_STATUSES": "models",
    "Deployment": "models",
    "Job": "models",
    "JobFailure": "models",
    "JobSummary": "models",
    "Credentials": "operations",
    "Operation": "operations",
    "PreparedRequest": "operations",
    "Page": "responses",
}

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
    "VVPOutcomeUnknownError",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
