"""Without the ``openlineage`` extra, nothing of OpenLineage is imported: the provider, its operators, hooks,
sensors, triggers and emulator load and run a job as a user without the extra would."""

from __future__ import annotations

import email.message
import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).parents[1]
FACET_REPOSITORY_URL = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["flink-vvp"]["repository"]
# A user without the extra: OpenLineage's client and Airflow's OpenLineage provider are not installed, so neither
# their modules can be imported nor their distributions found (Airflow finds providers by their entry points).
# Every module of the package is imported, a job is started and the lineage read; then operator_lineage, which
# needs the extra, is imported last, to show that the blocker blocks.
WITHOUT_THE_EXTRA = """
import importlib, importlib.abc, json, os, pkgutil, sys

BLOCKED = ("openlineage", "airflow.providers.openlineage")
NOT_INSTALLED = {"apache-airflow-providers-openlineage", "openlineage-python", "openlineage-integration-common",
                 "openlineage-sql"}
attempts = []


def hiding(find_distributions):
    def installed(*args, **kwargs):
        for distribution in find_distributions(*args, **kwargs):
            if (distribution.metadata["Name"] or "").lower().replace("_", "-") not in NOT_INSTALLED:
                yield distribution

    return installed


try:  # what Airflow finds distributions with, where installed: it adds a finder of its own
    import importlib_metadata
except ImportError:
    pass
for finder in sys.meta_path:
    if hasattr(finder, "find_distributions"):
        setattr(finder, "find_distributions", hiding(finder.find_distributions))


class WithoutTheExtra(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if any(name == blocked or name.startswith(blocked + ".") for blocked in BLOCKED):
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, WithoutTheExtra())

from tests.conftest import FakeDagRun, FakeTaskInstance, FakeTaskStateStore

import airflow_provider_flink_vvp
from airflow_provider_flink_vvp.get_provider_info import get_provider_info

get_provider_info()
for module in pkgutil.walk_packages(airflow_provider_flink_vvp.__path__, "airflow_provider_flink_vvp."):
    if module.name != "airflow_provider_flink_vvp.operator_lineage":
        importlib.import_module(module.name)

from airflow_provider_flink_vvp.operators.vvp import FlinkVVPStartJobOperator
from airflow_provider_flink_vvp.testing import EmulatorState, VVPEmulator

state = EmulatorState()
state.add_access_key("key", "secret")
state.add_deployment({"deploymentId": "dep", "name": "n", "namespace": "ns", "workspace": "ws", "createdAt": "1",
                      "lineage": {"sources": [{"table": "t", "connector": "kafka"}]}})
with VVPEmulator(state) as emulator:
    os.environ["AIRFLOW_CONN_FLINK_VVP_DEFAULT"] = json.dumps({"conn_type": "flink_vvp", "host": emulator.url,
        "login": "key", "password": "secret", "extra": {"workspace": "ws", "namespace": "ns"}})
    task = FlinkVVPStartJobOperator(task_id="start", deployment_id="dep", wait_for=None)
    from datetime import UTC, datetime, timedelta
    from airflow.sdk.execution_time import context as airflow_context
    # Before Airflow 3.3 (no task state store) the store's NEVER_EXPIRE is supplied as 3.3 defines it.
    airflow_context.NEVER_EXPIRE = getattr(airflow_context, "NEVER_EXPIRE", timedelta.max)
    context = {"ti": FakeTaskInstance(1, 0), "dag_run": FakeDagRun(start_date=datetime.now(UTC)),
               "task_state_store": FakeTaskStateStore()}
    job_id = task.execute(context)
    tables = len(task.hook.get_lineage("dep").tables())
loaded = sorted(name for name in sys.modules if "openlineage" in name)
attempted = list(attempts)
try:
    import airflow_provider_flink_vvp.operator_lineage
    needs_the_extra = None
except ModuleNotFoundError as error:
    needs_the_extra = [error.name, *attempts[len(attempted):]]
print(json.dumps({"attempts": attempted, "loaded": loaded, "job": job_id, "tables": tables,
                  "needs_the_extra": needs_the_extra}))
"""


def test_without_the_extra_nothing_of_openlineage_is_imported_as_the_provider_loads_and_runs() -> None:
    ran = subprocess.run(  # noqa: S603 - this interpreter, this file's code
        [sys.executable, "-c", WITHOUT_THE_EXTRA],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout.strip().splitlines()[-1])

    assert (report["attempts"], report["loaded"]) == ([], [])
    assert report["job"] and report["tables"] == 1
    # The one module that needs the extra does import it: the blocker blocks.
    missing, *tried = report["needs_the_extra"]
    assert missing == "airflow.providers.openlineage" and missing in tried


def test_the_extra_is_in_the_test_extra_and_the_facet_names_the_project_s_repository() -> None:
    from airflow_provider_flink_vvp.operator_lineage import producer, source_repository

    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]

    [requirement] = extras["openlineage"]
    assert requirement in extras["test"]
    assert project["tool"]["flink-vvp"]["repository"] == source_repository()
    assert producer().startswith(source_repository())


def test_the_run_facet_s_schema_is_in_the_repository_and_lists_its_fields() -> None:
    import attr

    from airflow_provider_flink_vvp.operator_lineage import RUN_FACET_NAME, FlinkVVPJobRunFacet, run_facet_schema_url

    path, _, pointer = run_facet_schema_url().removeprefix(f"{FACET_REPOSITORY_URL}/blob/main/").partition("#")
    schema = json.loads((REPOSITORY / path).read_text())
    definition = schema["$defs"][pointer.rpartition("/")[2]]["allOf"][1]

    fields = {field.name for field in attr.fields(FlinkVVPJobRunFacet) if not field.name.startswith("_")}
    assert set(definition["properties"]) == fields
    assert set(definition["required"]) == {
        field.name for field in attr.fields(FlinkVVPJobRunFacet) if field.default is attr.NOTHING
    }
    assert schema["properties"] == {RUN_FACET_NAME: {"$ref": f"#{pointer}"}}


SOURCE = "https://git.example/flink-vvp"


def metadata_of(*fields: tuple[str, str]) -> email.message.Message:
    message = email.message.Message()
    for name, value in fields:
        message[name] = value
    return message


@pytest.mark.parametrize(
    ("metadata", "repository"),
    [
        (metadata_of(("Project-URL", "Docs, https://docs.example"), ("Project-URL", f"Source, {SOURCE}")), SOURCE),
        (metadata_of(("Home-page", f"{SOURCE}/"), ("Project-URL", "Docs, https://docs.example")), SOURCE),
        (metadata_of(("Project-URL", "Docs, https://docs.example"), ("Project-URL", f"Source, {SOURCE}/")), SOURCE),
        (metadata_of(("Project-URL", "Docs, https://docs.example")), "https://docs.example"),
        (
            metadata_of(("Project-URL", "Source, "), ("Project-URL", "no comma")),
            "https://pypi.org/project/airflow-provider-flink-vvp",
        ),
        (metadata_of(("Name", "airflow-provider-flink-vvp")), "https://pypi.org/project/airflow-provider-flink-vvp"),
        (
            importlib.metadata.PackageNotFoundError("airflow-provider-flink-vvp"),
            "https://pypi.org/project/airflow-provider-flink-vvp",
        ),
    ],
)
def test_the_facet_s_repository_falls_back_on_what_the_metadata_has_and_never_raises(
    monkeypatch: pytest.MonkeyPatch, metadata: email.message.Message | Exception, repository: str
) -> None:
    from airflow_provider_flink_vvp import operator_lineage

    def installed(distribution: str) -> email.message.Message:
        assert distribution == "airflow-provider-flink-vvp"
        if isinstance(metadata, Exception):
            raise metadata
        return metadata

    monkeypatch.setattr(importlib.metadata, "metadata", installed)
    operator_lineage.source_repository.cache_clear()
    try:
        assert operator_lineage.source_repository() == repository
        assert operator_lineage.producer().startswith(f"{repository}/tree/")
        assert operator_lineage.run_facet_schema_url().startswith(f"{repository}/blob/main/")
    finally:
        operator_lineage.source_repository.cache_clear()
