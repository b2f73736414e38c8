"""A scale-up before a sales peak: more parallelism for a streaming deployment, and back afterwards.

Uses the ``flink_vvp_default`` connection (AccessKey, workspace and namespace). The deployment name is a DAG
param. The update logs a diff of what changes and pushes the spec it replaced (``previous_spec``), which the
last task puts back. A running job keeps its parallelism until it is restarted
(FlinkVVPUpgradeJobOperator restarts it from a savepoint).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, XComArg

from airflow_provider_flink_vvp.operators.deployment import FlinkVVPUpdateDeploymentOperator

with DAG(
    dag_id="example_flink_vvp_scale_up",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"deployment_name": Param("clickstream", type="string", description="The deployment to scale")},
    tags=["example", "flink"],
):
    # [START howto_operator_flink_vvp_update_deployment]
    scale_up = FlinkVVPUpdateDeploymentOperator(
        task_id="scale_up",
        deployment_name="{{ params.deployment_name }}",
        parallelism=8,
    )
    # [END howto_operator_flink_vvp_update_deployment]

    # After the peak: the spec the update replaced, as it was.
    scale_back = FlinkVVPUpdateDeploymentOperator(
        task_id="scale_back",
        deployment_name="{{ params.deployment_name }}",
        spec=XComArg(scale_up, key="previous_spec"),
    )

    scale_up >> scale_back
