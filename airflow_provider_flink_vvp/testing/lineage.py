"""A deployment's lineage in the emulator: the tables it reads and writes, and GetLineageInfo's graph of them.

A state file's deployment may carry ``lineage``::

    {"sources": [{"table": "orders", "connector": "kafka", "catalog": "vvp", "database": "default",
                  "with": {"topic": "orders", "properties.bootstrap.servers": "kafka:9092"}}],
     "sinks": [...]}

which GetLineageInfo answers as the service does: the tables grouped into nodes by catalog, database and
connector, and table-level edges from each source to each sink through the deployment's job (from a source
to the job, or from the job to a sink, when the other side has no table).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from airflow_provider_flink_vvp.api.models import LineageInfo

LINEAGE_SIDES = ("sources", "sinks")
_TABLE_KEYS = ("table", "connector", "catalog", "database", "with")


class LineageError(ValueError):
    """A ``lineage`` the emulator cannot serve; the message names where it is wrong."""


def checked_lineage(lineage: Any) -> dict[str, list[dict[str, Any]]]:
    """``lineage`` as stored: ``sources`` and ``sinks``, each a list of tables; raises LineageError for
    anything else, or for what the API could not send."""
    if not isinstance(lineage, Mapping) or not set(lineage) <= set(LINEAGE_SIDES):
        got = sorted(lineage) if isinstance(lineage, Mapping) else type(lineage).__name__
        raise LineageError(f"lineage must be an object of {' and '.join(LINEAGE_SIDES)}, got {got}")
    checked: dict[str, list[dict[str, Any]]] = {}
    for side in LINEAGE_SIDES:
        tables = lineage.get(side, [])
        if not isinstance(tables, list):
            raise LineageError(f"lineage.{side} must be a list of tables, got {type(tables).__name__}")
        checked[side] = [_checked_table(table, f"lineage.{side}[{index}]") for index, table in enumerate(tables)]
    try:
        LineageInfo.from_api(lineage_view(checked, deployment_id="check", deployment_name="check"))
    except (TypeError, ValueError) as exc:
        raise LineageError(f"lineage is not one GetLineageInfo could answer: {exc}") from None
    return checked


def lineage_view(
    lineage: Mapping[str, list[dict[str, Any]]], *, deployment_id: str, deployment_name: str
) -> dict[str, Any]:
    """GetLineageInfo's ``data`` for a deployment with this stored ``lineage``."""
    nodes: dict[str, dict[str, Any]] = {}
    ends: dict[str, list[str]] = {side: [] for side in LINEAGE_SIDES}
    for side in LINEAGE_SIDES:
        for table in lineage.get(side, []):
            connector = table.get("connector") or table.get("with", {}).get("connector")
            place = (table.get("catalog"), table.get("database"), connector)
            node_id = _stable_id("node", *place)
            node = nodes.setdefault(
                node_id,
                {
                    "id": node_id,
                    "catalogName": place[0],
                    "databaseName": place[1],
                    "connector": connector,
                    "isTemporary": place[0] is None,
                    "tables": [],
                },
            )
            table_id = _stable_id("table", *place, table["table"])
            if all(known["id"] != table_id for known in node["tables"]):
                node["tables"].append(
                    {"id": table_id, "tableName": table["table"], "with": dict(table.get("with", {})), "columns": []}
                )
            ends[side].append(table_id)
    sources, sinks = ends["sources"], ends["sinks"]
    if sources and sinks:
        pairs = [(source, sink) for source in sources for sink in sinks]
    else:
        pairs = [(source, deployment_id) for source in sources] + [(deployment_id, sink) for sink in sinks]
    return {
        "nodes": list(nodes.values()),
        "edges": {
            "tableLineage": [
                {"source": source, "destination": destination, "jobId": deployment_id} for source, destination in pairs
            ],
            "columnLineage": [],
        },
        "jobInfos": [{"id": deployment_id, "properties": {"deploymentName": deployment_name}}],
    }


def _checked_table(table: Any, where: str) -> dict[str, Any]:
    if not isinstance(table, Mapping) or not set(table) <= set(_TABLE_KEYS):
        got = sorted(table) if isinstance(table, Mapping) else type(table).__name__
        raise LineageError(f"{where} must be an object of {', '.join(_TABLE_KEYS)}, got {got}")
    if not isinstance(table.get("table"), str) or not table["table"].strip():
        raise LineageError(f"{where}.table must be a non-empty string, got {table.get('table')!r}")
    for key in ("connector", "catalog", "database"):
        if table.get(key) is not None and not isinstance(table[key], str):
            raise LineageError(f"{where}.{key} must be a string, got {table[key]!r}")
    options = table.get("with", {})
    if not isinstance(options, Mapping) or not all(isinstance(value, str) for value in options.values()):
        raise LineageError(f"{where}.with must be an object of connector options, each a string")
    return {key: dict(value) if key == "with" else value for key, value in table.items()}


def _stable_id(*parts: str | None) -> str:
    """An opaque ID that is the same for the same table (or node) in every deployment, as the service's."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]
