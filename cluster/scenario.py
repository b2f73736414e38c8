"""What the cluster run sets up and expects: deployments, tasks, and how each task must end.

The emulator's state file and the DAG's ``scenario.json`` are both made here, so the two never
disagree. Deployments:

- ``watched-0`` .. ``watched-9`` (STREAMING), each with a job held in STARTING, watched by 5 deferrable
  and 2 reschedule-mode job-summary sensors (target ``running``, failure ``failed``); at the end the jobs
  of :data:`FAILING` fail and the others run;
- ``batch-0`` .. ``batch-4`` (BATCH) and ``stream-0`` .. ``stream-4`` (STREAMING), without jobs: one
  start-job operator each (streaming ones with ``if_running="attach"``); the jobs they start stay
  STARTING until the end moves them to FINISHED (batch) or RUNNING (streaming);
- 5 by-name operators on ``watched-0`` .. ``watched-4``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

DAG_ID = "cluster_scenario"
WORKSPACE = "c1a2b3c4d5e6f"
NAMESPACE = "cluster-namespace"
WATCHED = [f"watched-{index}" for index in range(10)]
FAILING = {"watched-8", "watched-9"}
BATCH = [f"batch-{index}" for index in range(5)]
STREAMING = [f"stream-{index}" for index in range(5)]
DEFERRABLE_PER_DEPLOYMENT = 5
RESCHEDULE_PER_DEPLOYMENT = 2
BY_NAME = WATCHED[:5]
# Seconds between a trigger's looks, and between a reschedule-mode sensor's pokes (each poke starts a
# task process on a worker: what this machine's two cores can carry for 20 sensors).
POLL_INTERVAL = 5
POKE_INTERVAL = 20
# Long enough that a started job waits for the scenario's end to move on.
HELD_SECONDS = 3600.0


@dataclass(frozen=True)
class Task:
    """One task of the scenario DAG and the state it must end in."""

    task_id: str
    kind: str  # deferrable, reschedule, start or by_name
    deployment_name: str
    expected: str
    if_running: str = "attach"

    def as_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "kind": self.kind,
            "deployment_name": self.deployment_name,
            "if_running": self.if_running,
        }


@dataclass(frozen=True)
class Credentials:
    """A fresh AccessKey and STS token per run: the run checks that neither reaches a log."""

    access_key_id: str
    secret: str
    security_token: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls(f"LTAI{secrets.token_hex(8)}", secrets.token_urlsafe(24), f"STS.{secrets.token_urlsafe(32)}")


def tasks() -> list[Task]:
    found: list[Task] = []
    for name in WATCHED:
        expected = "failed" if name in FAILING else "success"
        found += [
            Task(f"deferrable_{name}_{i}", "deferrable", name, expected) for i in range(DEFERRABLE_PER_DEPLOYMENT)
        ]
        found += [
            Task(f"reschedule_{name}_{i}", "reschedule", name, expected) for i in range(RESCHEDULE_PER_DEPLOYMENT)
        ]
    found += [Task(f"start_{name}", "start", name, "success", if_running="fail") for name in BATCH]
    found += [Task(f"start_{name}", "start", name, "success", if_running="attach") for name in STREAMING]
    found += [Task(f"by_name_{name}", "by_name", name, "success") for name in BY_NAME]
    return found


def dag_document() -> dict[str, Any]:
    """``scenario.json`` beside the DAG file."""
    return {
        "dag_id": DAG_ID,
        "poll_interval": POLL_INTERVAL,
        "poke_interval": POKE_INTERVAL,
        "tasks": [task.as_json() for task in tasks()],
    }


def deployment_ids() -> dict[str, str]:
    """Each deployment's ID, by name."""
    return {
        name: f"0000c1a2-{index:04d}-4000-8000-{index:012d}" for index, name in enumerate(WATCHED + BATCH + STREAMING)
    }


def initial_job_id(deployment_name: str) -> str:
    return f"held-{deployment_ids()[deployment_name]}"


def state_document(credentials: Credentials) -> dict[str, Any]:
    """The emulator's state file: the access key, the deployments, and a job held STARTING per watched one."""
    ids = deployment_ids()
    deployments = [
        {
            "deploymentId": ids[name],
            "name": name,
            "namespace": NAMESPACE,
            "workspace": WORKSPACE,
            "executionMode": "BATCH" if name in BATCH else "STREAMING",
            "engineVersion": "vvr-8.0.11-flink-1.17",
            "createdAt": "1767225600",
            "modifiedAt": "1767225600",
        }
        for name in WATCHED + BATCH + STREAMING
    ]
    jobs = [
        {
            "jobId": initial_job_id(name),
            "deploymentId": ids[name],
            "deploymentName": name,
            "namespace": NAMESPACE,
            "workspace": WORKSPACE,
            "executionMode": "STREAMING",
            "startTime": 1767225600000,
            "status": {},
            "timeline": [["STARTING", None]],
        }
        for name in WATCHED
    ]
    return {
        "access_keys": {credentials.access_key_id: credentials.secret},
        "deployments": deployments,
        "jobs": jobs,
    }
