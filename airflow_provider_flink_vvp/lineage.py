"""OpenLineage dataset names of the tables a deployment reads and writes, from its connector options.

Each name follows the OpenLineage naming spec (https://openlineage.io/docs/spec/naming) where the spec
names the store: Kafka ``kafka://{host}:{port}`` and the topic, MySQL ``mysql://{host}:{port}`` and
``{database}.{table}``, PostgreSQL ``postgres://{host}:{port}`` and ``{database}.{schema}.{table}``, and files
by their URI (``s3://{bucket}`` and the object key, ``abfss://{container}@{service}.dfs.core.windows.net`` and
the path, ``hdfs://{host}:{port}`` and the path, ``file`` (or ``file://{host}``) and the path; OSS and other blob
stores as S3). A table the spec has no name for (Hologres, MaxCompute, a catalog table without a path...) is
``flink-vvp://{workspace}`` and ``{namespace}.{catalog}.{database}.{table}``: stable for as long as the table
keeps its place in the workspace. A temporary table exists only in its deployment's SQL, so its name holds the
deployment's ID too: ``{namespace}.{deploymentId}.{catalog}.{database}.{table}``.

Only where a table lives goes into a name: connector options also hold passwords and keys, and none of
them, nor a URL's user, password or parameters, is ever part of a name. A host that is not a plain host name,
an IPv4 address or a bracketed IPv6 address (a key-value host, a percent-encoded one...) names no namespace.

Pure functions: no Airflow, no OpenLineage, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from airflow_provider_flink_vvp.api.models import LineageInfo, LineageNode, LineageTable

FALLBACK_SCHEME = "flink-vvp"
KAFKA_DEFAULT_PORT = 9092
MYSQL_DEFAULT_PORT = 3306
POSTGRES_DEFAULT_PORT = 5432
#: Connectors whose data lives nowhere outside the job: their tables are no datasets.
NO_DATASET_CONNECTORS = frozenset({"datagen", "print", "blackhole"})
#: URI schemes that name a bucket (the authority) and an object key, as the spec's S3 and GCS.
_BLOB_SCHEMES = {"s3": "s3", "s3a": "s3", "s3n": "s3", "gs": "gs", "oss": "oss", "obs": "obs", "cos": "cos"}
#: URI schemes of Azure storage, named ``{scheme}://{container}@{account host}`` and the path.
_AZURE_SCHEMES = {"abfs": "abfss", "abfss": "abfss", "wasb": "wasbs", "wasbs": "wasbs"}
#: A host name of letters, digits, ``-`` and ``_`` in dot-separated labels (an IPv4 address is one too).
_PLAIN_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_JDBC_DEFAULT_PORTS = {"mysql": MYSQL_DEFAULT_PORT, "postgres": POSTGRES_DEFAULT_PORT}
_JDBC_SCHEMES = {"mysql": "mysql", "postgresql": "postgres"}


@dataclass(frozen=True, order=True)
class DatasetName:
    """An OpenLineage dataset's identity: the namespace (its data source) and the name within it."""

    namespace: str
    name: str


@dataclass(frozen=True)
class TableSite:
    """Where a Flink table sits: the workspace and namespace of the deployment, its catalog and database, and
    for a temporary table (one of a deployment's SQL alone) the deployment's ID."""

    workspace: str
    namespace: str
    catalog: str | None = None
    database: str | None = None
    deployment_id: str | None = None


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
    """``flink-vvp://{workspace}`` and ``{namespace}.{deployment_id}.{catalog}.{database}.{table}`` (missing parts
    left out: the deployment's ID is there for a temporary table only)."""
    parts = (site.namespace, site.deployment_id, site.catalog, site.database, table)
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
    """A file or directory by its URI: blob stores ``{scheme}://{bucket}`` and the object key, Azure
    ``{scheme}://{container}@{account host}`` and the path, HDFS ``hdfs://{host}:{port}`` and the path, local
    ``file`` (a remote host's ``file://{host}``) and the path. None for what is no such URI."""
    path = path.strip()
    if not path:
        return None
    try:
        parts = urlsplit(path)
    except ValueError:  # an unclosed ``[`` of an IPv6 host
        return None
    scheme = parts.scheme.lower()
    if not scheme:
        return DatasetName("file", path.rstrip("/") or "/") if path.startswith("/") else None
    hostname = parts.hostname or ""
    host = _plain_host(f"[{hostname}]" if ":" in hostname else hostname)  # urlsplit drops an IPv6 host's []
    if scheme == "file":
        local = parts.path.rstrip("/") or "/"
        if not parts.netloc or host == "localhost":
            return DatasetName("file", local) if local.startswith("/") else None
        return DatasetName(f"file://{host}", local) if host else None
    if not host:
        return None
    if scheme in _BLOB_SCHEMES:
        return DatasetName(f"{_BLOB_SCHEMES[scheme]}://{host}", _object_key(parts))
    if scheme in _AZURE_SCHEMES:
        # The container is the URL's user part; a URL with a password there is no container's.
        if not parts.username or parts.password is not None or not _PLAIN_HOST.fullmatch(parts.username.lower()):
            return None
        return DatasetName(f"{_AZURE_SCHEMES[scheme]}://{parts.username}@{host}", _object_key(parts))
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
    # The hosts end at the first ``/`` after the last ``@``: a password may hold a ``/``.
    rest = rest.split("?", 1)[0]
    hosts_end = rest.find("/", rest.rfind("@") + 1)
    if hosts_end < 0:
        return None
    hosts, database = rest[:hosts_end].rpartition("@")[2], rest[hosts_end + 1 :].split(";", 1)[0]
    first = _host_port(hosts.split(",", 1)[0], _JDBC_DEFAULT_PORTS[kind])
    if not first or not database:
        return None
    return _database_dataset(kind, first, database, None, table_name)


def deployment_datasets(
    info: LineageInfo, *, workspace: str, namespace: str, deployment_id: str, job_id: str | None = None
) -> tuple[list[DatasetName], list[DatasetName]]:
    """The datasets a deployment reads and writes, sorted and each once, from GetLineageInfo's graph of it
    (one hop each way).

    Edges name tables by their IDs, and the job by its own: the source table of an edge is an input, the
    destination table an output, whether the edge goes table to table or through the job. An edge of another
    job is left out.

    :param info: GetLineageInfo's answer for the deployment.
    :param workspace: the deployment's workspace, for tables the spec has no name for.
    :param namespace: the deployment's namespace, likewise.
    :param deployment_id: the deployment's ID: its edges' job, and part of its temporary tables' names.
    :param job_id: the ID of the deployment's job that ran, when known: its edges' job too.
    """
    # An edge's jobId is "the job instance ID" in the SDK, while the lineage is asked for by the deployment's
    # ID as the JOB (and the service answers with that ID): either names this deployment.
    own = {deployment_id, job_id}
    tables = info.tables()
    inputs: set[DatasetName] = set()
    outputs: set[DatasetName] = set()
    for relation in info.relations:
        if relation.job_id is not None and relation.job_id not in own:
            continue
        for end, found in ((relation.source, inputs), (relation.destination, outputs)):
            if end in tables:
                found.update(_table_datasets(*tables[end], workspace, namespace, deployment_id))
    return sorted(inputs), sorted(outputs)


def _table_datasets(
    node: LineageNode, table: LineageTable, workspace: str, namespace: str, deployment_id: str
) -> list[DatasetName]:
    site = TableSite(
        workspace=workspace,
        namespace=namespace,
        catalog=node.catalog,
        database=node.database,
        deployment_id=deployment_id if node.is_temporary else None,
    )
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
    IPv6 host keeps its brackets. None when there is no host, or it is none of a plain host name, an IPv4
    address or a bracketed IPv6 address (so nothing else of the authority reaches a name)."""
    authority = authority.strip().rpartition("@")[2]
    if authority.startswith("["):
        host, _, rest = authority.partition("]")
        host, port = f"{host}]", rest.removeprefix(":")
    else:
        host, _, port = authority.partition(":")
    plain = _plain_host(host)
    if not plain:
        return None
    port = port.strip()
    return f"{plain}:{port if port.isdigit() else default_port}"


def _plain_host(host: str) -> str | None:
    """The host lowercased when it is a plain host name, an IPv4 address or a bracketed IPv6 address."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
        return host
    return host if _PLAIN_HOST.fullmatch(host) else None


def _object_key(parts: SplitResult) -> str:
    return parts.path.strip("/") or "/"


def _listed(dataset: DatasetName | None) -> list[DatasetName]:
    return [dataset] if dataset else []
