"""OpenLineage dataset names of the tables a deployment reads and writes, from its connector options.

Each name follows the OpenLineage naming spec (https://openlineage.io/docs/spec/naming) where the spec
names the store: Kafka ``kafka://{host}:{port}`` and the topic, MySQL ``mysql://{host}:{port}`` and
``{database}.{table}``, PostgreSQL ``postgres://{host}:{port}`` and ``{database}.{schema}.{table}``, and files
by their URI (``s3://{bucket}`` and the object key, ``hdfs://{host}:{port}`` and the path, ``file`` and the
path; OSS and other blob stores as S3). A table the spec has no name for (Hologres, MaxCompute, a catalog
table without a path...) is ``flink-vvp://{workspace}`` and ``{namespace}.{catalog}.{database}.{table}``:
stable for as long as the table keeps its place in the workspace.

Only where a table lives goes into a name: connector options also hold passwords and keys, and none of
them, nor a URL's user, password or parameters, is ever part of a name.

Pure functions: no Airflow, no OpenLineage, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from airflow_provider_flink_vvp.api.models import LineageInfo, LineageNode, LineageTable

FALLBACK_SCHEME = "flink-vvp"
KAFKA_DEFAULT_PORT = 9092
MYSQL_DEFAULT_PORT = 3306
POSTGRES_DEFAULT_PORT = 5432
#: Connectors whose data lives nowhere outside the job: their tables are no datasets.
NO_DATASET_CONNECTORS = frozenset({"datagen", "print", "blackhole"})
#: URI schemes that name a bucket (the authority) and an object key, as the spec's S3 and GCS.
_BLOB_SCHEMES = {"s3": "s3", "s3a": "s3", "s3n": "s3", "gs": "gs", "oss": "oss", "obs": "obs", "cos": "cos"}
_JDBC_DEFAULT_PORTS = {"mysql": MYSQL_DEFAULT_PORT, "postgres": POSTGRES_DEFAULT_PORT}
_JDBC_SCHEMES = {"mysql": "mysql", "postgresql": "postgres"}


@dataclass(frozen=True, order=True)
class DatasetName:
    """An OpenLineage dataset's identity: the namespace (its data source) and the name within it."""

    namespace: str
    name: str


@dataclass(frozen=True)
class TableSite:
    """Where a Flink table sits: the workspace and namespace of the deployment, its catalog and database."""

    workspace: str
    namespace: str
    catalog: str | None = None
    database: str | None = None


def dataset_names(connector: str | None, options: Mapping[str, str], table: str, site: TableSite) -> list[DatasetName]:
    """The datasets a table is, by its connector and options (``with``): one per Kafka topic listed, none for
    a connector with no data store (datagen, print, blackhole), else one.

    :param connector: the connector's name, any case (``options['connector']`` wins when set).
    :param options: the table's connector options.
    :param table: the table's name in its Flink catalog.
    :param site: where the table sits, for the ``flink-vvp://`` name of a table the spec has no name for.
    """
    kind = (options.get("connector") or connector or "").strip().lower()
    if kind in NO_DATASET_CONNECTORS:
        return []
    named = _named_by_spec(kind, options, table, site)
    return named if named else [fallback_name(table, site)]


def fallback_name(table: str, site: TableSite) -> DatasetName:
    """``flink-vvp://{workspace}`` and ``{namespace}.{catalog}.{database}.{table}`` (missing parts left out)."""
    parts = (site.namespace, site.catalog, site.database, table)
    return DatasetName(f"{FALLBACK_SCHEME}://{site.workspace}", ".".join(part for part in parts if part))


def kafka_namespace(bootstrap_servers: str) -> str | None:
    """``kafka://{host}:{port}`` of the first bootstrap server (``PLAINTEXT://`` and the like dropped, the host
    lowercased, port 9092 when none is given); None when there is no host."""
    for server in bootstrap_servers.split(","):
        server = server.strip()
        if server:
            authority = _host_port(server.rpartition("://")[2], KAFKA_DEFAULT_PORT)
            return f"kafka://{authority}" if authority else None
    return None


def path_dataset(path: str) -> DatasetName | None:
    """A file or directory by its URI: blob stores ``{scheme}://{bucket}`` and the object key, HDFS
    ``hdfs://{host}:{port}`` and the path, local ``file`` and the path. None for what is no such URI."""
    path = path.strip()
    if not path:
        return None
    parts = urlsplit(path)
    scheme = parts.scheme.lower()
    if scheme in ("", "file"):
        local = parts.path if scheme else path
        return DatasetName("file", local.rstrip("/") or "/") if local.startswith("/") else None
    host = parts.hostname or ""
    if not host:
        return None
    if scheme in _BLOB_SCHEMES:
        return DatasetName(f"{_BLOB_SCHEMES[scheme]}://{host}", parts.path.strip("/") or "/")
    try:
        port = parts.port
    except ValueError:  # a port that is no number
        port = None
    authority = f"{host}:{port}" if port else host
    return DatasetName(f"{scheme}://{authority}", parts.path.rstrip("/") or "/")


def jdbc_dataset(url: str, table_name: str) -> DatasetName | None:
    """A table of a MySQL or PostgreSQL JDBC URL (its first host, no user, password or parameters); a
    PostgreSQL ``table-name`` without a schema is in ``public``. None for other databases."""
    scheme, _, rest = url.strip().partition("://")
    kind = _JDBC_SCHEMES.get(scheme.lower().removeprefix("jdbc:"))
    if kind is None or not table_name.strip():
        return None
    authority, _, path = rest.partition("/")
    database = path.split("?", 1)[0].split(";", 1)[0]
    first = _host_port(authority.rpartition("@")[2].split(",", 1)[0], _JDBC_DEFAULT_PORTS[kind])
    if not first or not database:
        return None
    return _database_dataset(kind, first, database, None, table_name)


def deployment_datasets(
    info: LineageInfo, *, workspace: str, namespace: str
) -> tuple[list[DatasetName], list[DatasetName]]:
    """The datasets a deployment reads and writes, sorted and each once, from GetLineageInfo's graph of it
    (one hop each way: every edge is the deployment's).

    Edges name tables by their IDs, and the job by its own: the source table of an edge is an input, the
    destination table an output, whether the edge goes table to table or through the job.

    :param info: GetLineageInfo's answer for the deployment.
    :param workspace: the deployment's workspace, for tables the spec has no name for.
    :param namespace: the deployment's namespace, likewise.
    """
    tables = info.tables()
    inputs: set[DatasetName] = set()
    outputs: set[DatasetName] = set()
    for relation in info.relations:
        for end, found in ((relation.source, inputs), (relation.destination, outputs)):
            if end in tables:
                found.update(_table_datasets(*tables[end], workspace, namespace))
    return sorted(inputs), sorted(outputs)


def _table_datasets(node: LineageNode, table: LineageTable, workspace: str, namespace: str) -> list[DatasetName]:
    site = TableSite(workspace=workspace, namespace=namespace, catalog=node.catalog, database=node.database)
    return dataset_names(node.connector, table.options, table.name, site)


def _named_by_spec(kind: str, options: Mapping[str, str], table: str, site: TableSite) -> list[DatasetName]:
    if kind in ("kafka", "upsert-kafka"):
        namespace = kafka_namespace(options.get("properties.bootstrap.servers", ""))
        topics = [topic.strip() for topic in options.get("topic", "").split(";") if topic.strip()]
        return [DatasetName(namespace, topic) for topic in topics] if namespace else []
    if kind in ("mysql", "mysql-cdc"):
        return _listed(_host_dataset("mysql", options, site.database, None, table))
    if kind in ("postgres", "postgres-cdc", "postgresql"):
        return _listed(_host_dataset("postgres", options, site.database, options.get("schema-name"), table))
    if kind == "jdbc":
        return _listed(jdbc_dataset(options.get("url", ""), options.get("table-name", "")))
    if kind in ("filesystem", "paimon", "hudi"):
        path = options.get("path") or _paimon_table_path(options, site, table)
        return _listed(path_dataset(path) if path else None)
    return []


def _host_dataset(
    kind: str, options: Mapping[str, str], database: str | None, schema: str | None, table: str
) -> DatasetName | None:
    """A MySQL or PostgreSQL table of the CDC and database connectors' ``hostname``, ``port``,
    ``database-name`` (else the catalog's database) and ``table-name`` (else the Flink table's name)."""
    authority = _host_port(f"{options.get('hostname', '')}:{options.get('port', '')}", _JDBC_DEFAULT_PORTS[kind])
    database = options.get("database-name") or database
    if not authority or not database:
        return None
    return _database_dataset(kind, authority, database, schema, options.get("table-name") or table)


def _database_dataset(kind: str, authority: str, database: str, schema: str | None, table_name: str) -> DatasetName:
    table_name = table_name.strip()
    if kind == "postgres":
        schema_name, _, table = table_name.rpartition(".")
        return DatasetName(f"postgres://{authority}", f"{database}.{schema or schema_name or 'public'}.{table}")
    return DatasetName(f"mysql://{authority}", f"{database}.{table_name}")


def _paimon_table_path(options: Mapping[str, str], site: TableSite, table: str) -> str | None:
    """A Paimon catalog table's directory: ``{warehouse}/{database}.db/{table}``."""
    warehouse = options.get("warehouse", "").rstrip("/")
    return f"{warehouse}/{site.database}.db/{table}" if warehouse and site.database else None


def _host_port(authority: str, default_port: int) -> str | None:
    """``host:port`` with the host lowercased and ``default_port`` when none (or no number) is given; an
    IPv6 host keeps its brackets. None when there is no host."""
    authority = authority.strip().rpartition("@")[2]
    if authority.startswith("["):
        host, _, rest = authority.partition("]")
        host, port = f"{host}]", rest.removeprefix(":")
    else:
        host, _, port = authority.partition(":")
    host = host.strip().lower()
    if not host or host == "[]":
        return None
    port = port.strip()
    return f"{host}:{port if port.isdigit() else default_port}"


def _listed(dataset: DatasetName | None) -> list[DatasetName]:
    return [dataset] if dataset else []
