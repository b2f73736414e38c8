"""OpenLineage dataset names of Flink tables, connector by connector, with the odd inputs each meets."""

from __future__ import annotations

import pytest

from airflow_provider_flink_vvp.api.models import LineageInfo
from airflow_provider_flink_vvp.lineage import (
    DatasetName,
    TableSite,
    dataset_names,
    deployment_datasets,
    jdbc_dataset,
    kafka_namespace,
    path_dataset,
)

SITE = TableSite(workspace="ws-1", namespace="ns-1", catalog="vvp", database="ods")
SECRET = "pa55-w0rd"


@pytest.mark.parametrize(
    ("servers", "namespace"),
    [
        ("kafka-1:9092", "kafka://kafka-1:9092"),
        ("kafka-1:9092,kafka-2:9092,kafka-3:9092", "kafka://kafka-1:9092"),
        (" kafka-1:9093 , kafka-2:9093", "kafka://kafka-1:9093"),
        (",kafka-2:9092", "kafka://kafka-2:9092"),
        ("KAFKA-1.Example.COM:9092", "kafka://kafka-1.example.com:9092"),
        ("SASL_SSL://broker:9094", "kafka://broker:9094"),
        ("broker", "kafka://broker:9092"),
        ("broker:", "kafka://broker:9092"),
        ("broker:notaport", "kafka://broker:9092"),
        ("[2001:db8::1]:9092", "kafka://[2001:db8::1]:9092"),
        ("alice:secret@broker:9092", "kafka://broker:9092"),
        ("", None),
        (" , ", None),
        (":9092", None),
    ],
)
def test_kafka_namespace_is_the_first_bootstrap_server_host_and_port(servers: str, namespace: str | None) -> None:
    assert kafka_namespace(servers) == namespace


@pytest.mark.parametrize(
    ("url", "table_name", "dataset"),
    [
        ("jdbc:mysql://db:3306/shop", "orders", DatasetName("mysql://db:3306", "shop.orders")),
        (
            "jdbc:mysql://DB.example.com:3307/shop?useSSL=false&password=" + SECRET,
            "orders",
            DatasetName("mysql://db.example.com:3307", "shop.orders"),
        ),
        ("jdbc:mysql://db/shop", "orders", DatasetName("mysql://db:3306", "shop.orders")),
        ("jdbc:mysql://primary:3306,replica:3306/shop", "orders", DatasetName("mysql://primary:3306", "shop.orders")),
        ("jdbc:mysql://bob:" + SECRET + "@db:3306/shop", "orders", DatasetName("mysql://db:3306", "shop.orders")),
        ("JDBC:MySQL://db:3306/Shop", "Orders", DatasetName("mysql://db:3306", "Shop.Orders")),
        ("Jdbc:PostgreSQL://PG:5432/App", "Orders", DatasetName("postgres://pg:5432", "App.public.Orders")),
        ("mysql://db:3306/shop", "orders", DatasetName("mysql://db:3306", "shop.orders")),
        ("jdbc:postgresql://pg:5432/app", "orders", DatasetName("postgres://pg:5432", "app.public.orders")),
        (
            "jdbc:postgresql://pg/app?sslmode=require",
            "sales.orders",
            DatasetName("postgres://pg:5432", "app.sales.orders"),
        ),
        ("jdbc:postgresql://pg:6543/app;user=x", "orders", DatasetName("postgres://pg:6543", "app.public.orders")),
        ("jdbc:oracle:thin:@host:1521:orcl", "orders", None),
        ("jdbc:mysql://db:3306/", "orders", None),
        ("jdbc:mysql:///shop", "orders", None),
        ("jdbc:mysql://db:3306/shop", "", None),
        ("", "orders", None),
    ],
)
def test_a_jdbc_table_is_named_by_its_database_kind_first_host_database_and_table(
    url: str, table_name: str, dataset: DatasetName | None
) -> None:
    assert jdbc_dataset(url, table_name) == dataset


@pytest.mark.parametrize(
    ("path", "dataset"),
    [
        ("s3://bucket/warehouse/orders", DatasetName("s3://bucket", "warehouse/orders")),
        ("s3a://bucket/warehouse/orders/", DatasetName("s3://bucket", "warehouse/orders")),
        ("S3N://Bucket/x", DatasetName("s3://bucket", "x")),
        ("oss://lake/paimon/ods.db/orders", DatasetName("oss://lake", "paimon/ods.db/orders")),
        ("gs://bucket/a/b.csv", DatasetName("gs://bucket", "a/b.csv")),
        ("oss://lake", DatasetName("oss://lake", "/")),
        ("oss://AKID:" + SECRET + "@lake/t", DatasetName("oss://lake", "t")),
        ("oss://lake/t?versionId=3#part", DatasetName("oss://lake", "t")),
        ("hdfs://namenode:8020/user/hive/orders", DatasetName("hdfs://namenode:8020", "/user/hive/orders")),
        ("hdfs://NameNode/user/orders/", DatasetName("hdfs://namenode", "/user/orders")),
        ("hdfs://namenode:port/x", DatasetName("hdfs://namenode", "/x")),
        ("file:///tmp/out", DatasetName("file", "/tmp/out")),
        ("file://localhost/tmp/out", DatasetName("file", "/tmp/out")),
        ("file://NAS-1/exports/out/", DatasetName("file://nas-1", "/exports/out")),
        ("file://10.0.0.7/exports/out", DatasetName("file://10.0.0.7", "/exports/out")),
        (
            "abfss://lake@acct.dfs.core.windows.net/raw/orders",
            DatasetName("abfss://lake@acct.dfs.core.windows.net", "raw/orders"),
        ),
        (
            "abfs://lake@Acct.dfs.core.windows.net/raw/",
            DatasetName("abfss://lake@acct.dfs.core.windows.net", "raw"),
        ),
        (
            "wasbs://box@acct.blob.core.windows.net/a/b.csv",
            DatasetName("wasbs://box@acct.blob.core.windows.net", "a/b.csv"),
        ),
        ("wasb://box@acct.blob.core.windows.net", DatasetName("wasbs://box@acct.blob.core.windows.net", "/")),
        ("abfss://acct.dfs.core.windows.net/raw", None),
        ("hdfs://[2001:db8::1]:8020/x", DatasetName("hdfs://[2001:db8::1]:8020", "/x")),
        ("hdfs://[nn/x", None),
        ("s3://[bucket/x", None),
        ("file://[host/x", None),
        ("/tmp/out/", DatasetName("file", "/tmp/out")),
        ("relative/dir", None),
        ("oss:///no-bucket", None),
        ("  ", None),
    ],
)
def test_a_path_is_named_by_the_spec_for_its_store(path: str, dataset: DatasetName | None) -> None:
    assert path_dataset(path) == dataset


# Credentials where a host is expected, in every form a connector option may carry them.
LEAKY_HOSTS = [
    f"address=(host=db)(port=3306)(user=u)(password={SECRET})",
    f"(password={SECRET},host=db)",
    f"(host=db,password={SECRET})",
    f"db%3A{SECRET}",
    f"u%3A{SECRET}%40db",
    f"db;password={SECRET}",
    f"[db:{SECRET}]",
    f"db password={SECRET}",
]
# Credentials in a URL's user part, which is dropped: the host behind it names the namespace.
USER_PARTS = [f"u:{SECRET}@", f"u:{SECRET}/x@", f"u:{SECRET}@x@", f"u:{SECRET},h0@", "u@"]


@pytest.mark.parametrize("host", LEAKY_HOSTS)
def test_a_host_that_is_no_plain_host_names_no_namespace(host: str) -> None:
    named = [
        jdbc_dataset(f"jdbc:mysql://{host}/shop", "orders"),
        jdbc_dataset(f"jdbc:postgresql://{host}:5432/app", "orders"),
        jdbc_dataset(f"jdbc:mysql://{host},replica:3306/shop", "orders"),
        path_dataset(f"hdfs://{host}/x"),
        path_dataset(f"oss://{host}/x"),
        path_dataset(f"file://{host}/x"),
        path_dataset(f"abfss://lake@{host}/x"),
    ]
    kafka = kafka_namespace(f"{host}:9092")
    tables = dataset_names("mysql-cdc", {"hostname": host, "database-name": "shop"}, "orders", SITE)

    assert named == [None] * len(named) and kafka is None
    assert tables == [DatasetName("flink-vvp://ws-1", "ns-1.vvp.ods.orders")]


@pytest.mark.parametrize("user", USER_PARTS)
@pytest.mark.parametrize(
    ("url", "dataset"),
    [
        ("jdbc:mysql://{user}db:3306/shop?user=u&password=p", DatasetName("mysql://db:3306", "shop.orders")),
        ("jdbc:mysql://{user}db/shop", DatasetName("mysql://db:3306", "shop.orders")),
        ("jdbc:postgresql://{user}pg/app", DatasetName("postgres://pg:5432", "app.public.orders")),
        ("jdbc:mysql://{user}h1:3306,u2:" + SECRET + "@h2:3306/shop", DatasetName("mysql://h2:3306", "shop.orders")),
        ("jdbc:mysql://{user}h1,h2:3307/shop", DatasetName("mysql://h1:3306", "shop.orders")),
        ("jdbc:mysql://{user}[2001:db8::1]:3306/shop", DatasetName("mysql://[2001:db8::1]:3306", "shop.orders")),
    ],
)
def test_a_jdbc_url_s_credentials_stay_out_of_its_name(user: str, url: str, dataset: DatasetName) -> None:
    named = jdbc_dataset(url.format(user=user), "orders")

    assert named == dataset
    assert SECRET not in f"{named}"


@pytest.mark.parametrize("user", [user.replace("/", "") for user in USER_PARTS])
@pytest.mark.parametrize(
    ("path", "dataset"),
    [
        ("oss://{user}lake/t", DatasetName("oss://lake", "t")),
        ("hdfs://{user}nn:8020/t", DatasetName("hdfs://nn:8020", "/t")),
        ("file://{user}nas/t", DatasetName("file://nas", "/t")),
    ],
)
def test_a_path_s_credentials_stay_out_of_its_name(user: str, path: str, dataset: DatasetName) -> None:
    named = path_dataset(path.format(user=user))

    assert named == dataset
    assert SECRET not in f"{named}"


@pytest.mark.parametrize("user", [f"lake:{SECRET}@", f":{SECRET}@", f"{SECRET}%40lake@"])
def test_an_azure_url_with_a_password_names_no_container(user: str) -> None:
    assert path_dataset(f"abfss://{user}acct.dfs.core.windows.net/x") is None


KAFKA = {"connector": "kafka", "topic": "orders", "properties.bootstrap.servers": "k1:9092,k2:9092"}


@pytest.mark.parametrize(
    ("connector", "options", "table", "datasets"),
    [
        (None, KAFKA, "orders_src", [DatasetName("kafka://k1:9092", "orders")]),
        ("Kafka", {**KAFKA, "connector": ""}, "t", [DatasetName("kafka://k1:9092", "orders")]),
        (
            "upsert-kafka",
            {**KAFKA, "connector": "upsert-kafka", "topic": "a; b;"},
            "t",
            [DatasetName("kafka://k1:9092", "a"), DatasetName("kafka://k1:9092", "b")],
        ),
        (
            "kafka",
            {**KAFKA, "properties.bootstrap.servers": ""},
            "t",
            [DatasetName("flink-vvp://ws-1", "ns-1.vvp.ods.t")],
        ),
        (
            "kafka",
            {"connector": "kafka", "topic-pattern": "orders-.*", "properties.bootstrap.servers": "k1:9092"},
            "t",
            [DatasetName("flink-vvp://ws-1", "ns-1.vvp.ods.t")],
        ),
        (
            "mysql-cdc",
            {
                "hostname": "RDS.example.com",
                "port": "3306",
                "database-name": "shop",
                "table-name": "orders",
                "password": SECRET,
            },
            "t",
            [DatasetName("mysql://rds.example.com:3306", "shop.orders")],
        ),
        ("MySQL", {"hostname": "db", "table-name": "orders"}, "t", [DatasetName("mysql://db:3306", "ods.orders")]),
        (
            "mysql",
            {"hostname": "db", "database-name": "shop"},
            "orders_t",
            [DatasetName("mysql://db:3306", "shop.orders_t")],
        ),
        (
            "mysql-cdc",
            {"port": "3306", "database-name": "shop", "table-name": "o"},
            "o",
            [DatasetName("flink-vvp://ws-1", "ns-1.vvp.ods.o")],
        ),
        (
            "postgres-cdc",
            {"hostname": "pg", "port": "5433", "database-name": "app", "schema-name": "sales", "table-name": "orders"},
            "t",
            [DatasetName("postgres://pg:5433", "app.sales.orders")],
        ),
        (
            "postgres-cdc",
            {"hostname": "pg", "database-name": "app", "table-name": "orders"},
            "t",
            [DatasetName("postgres://pg:5432", "app.public.orders")],
        ),
        (
            "jdbc",
            {"url": "jdbc:mysql://db:3306/shop?password=" + SECRET, "table-name": "orders"},
            "t",
            [DatasetName("mysql://db:3306", "shop.orders")],
        ),
        (
            "jdbc",
            {"url": "jdbc:sqlserver://db:1433;databaseName=x", "table-name": "orders"},
            "t",
            [DatasetName("flink-vvp://ws-1", "ns-1.vvp.ods.t")],
        ),
        ("filesystem", {"path": "oss://lake/out/", "format": "parquet"}, "t", [DatasetName("oss://lake", "out")]),
        ("paimon", {"path": "s3://bucket/wh/ods.db/orders"}, "t", [DatasetName("s3://bucket", "wh/ods.db/orders")]),
        ("paimon", {"warehouse": "oss://lake/paimon/"}, "orders", [DatasetName("oss://lake", "paimon/ods.db/orders")]),
        ("paimon", {}, "orders", [DatasetName("flink-vvp://ws-1", "ns-1.vvp.ods.orders")]),
        (
            "hologres",
            {"endpoint": "hg:80", "dbname": "db", "tablename": "public.t", "password": SECRET},
            "t",
            [DatasetName("flink-vvp://ws-1", "ns-1.vvp.ods.t")],
        ),
        (
            "odps",
            {"project": "p", "tablename": "t", "accessKey": SECRET},
            "t",
            [DatasetName("flink-vvp://ws-1", "ns-1.vvp.ods.t")],
        ),
        (None, {}, "t", [DatasetName("flink-vvp://ws-1", "ns-1.vvp.ods.t")]),
        ("datagen", {}, "t", []),
        ("print", {"connector": "PRINT"}, "t", []),
        ("blackhole", {}, "t", []),
    ],
)
def test_a_table_is_named_by_its_connector_options(
    connector: str | None, options: dict[str, str], table: str, datasets: list[DatasetName]
) -> None:
    named = dataset_names(connector, options, table, SITE)

    assert named == datasets
    assert not any(SECRET in dataset.namespace or SECRET in dataset.name for dataset in named)


@pytest.mark.parametrize(
    ("site", "name"),
    [
        (TableSite(workspace="ws", namespace="ns"), "ns.t"),
        (TableSite(workspace="ws", namespace="ns", catalog="default_catalog"), "ns.default_catalog.t"),
        (TableSite(workspace="ws", namespace="ns", database="db"), "ns.db.t"),
    ],
)
def test_a_table_without_a_spec_name_is_named_in_its_workspace_by_its_place(site: TableSite, name: str) -> None:
    assert dataset_names("hologres", {}, "t", site) == [DatasetName("flink-vvp://ws", name)]


def lineage(relations: list[dict[str, str]]) -> LineageInfo:
    return LineageInfo.from_api(
        {
            "nodes": [
                {
                    "id": "n1",
                    "catalogName": "vvp",
                    "databaseName": "ods",
                    "connector": "kafka",
                    "tables": [
                        {"id": "t-src", "tableName": "src", "with": {**KAFKA, "topic": "in"}},
                        {"id": "t-src2", "tableName": "src2", "with": {**KAFKA, "topic": "in2"}},
                    ],
                },
                {
                    "id": "n2",
                    "catalogName": "vvp",
                    "databaseName": "dws",
                    "connector": "jdbc",
                    "tables": [
                        {
                            "id": "t-sink",
                            "tableName": "sink",
                            "with": {"url": "jdbc:mysql://db/dws", "table-name": "out"},
                        }
                    ],
                },
            ],
            "edges": {"tableLineage": relations},
            "jobInfos": [{"id": "dep-1"}],
        }
    )


IN, IN2, OUT = (
    DatasetName("kafka://k1:9092", "in"),
    DatasetName("kafka://k1:9092", "in2"),
    DatasetName("mysql://db:3306", "dws.out"),
)


@pytest.mark.parametrize(
    ("relations", "inputs", "outputs"),
    [
        ([{"source": "t-src", "destination": "t-sink", "jobId": "dep-1"}], [IN], [OUT]),
        (
            [
                {"source": "t-src2", "destination": "t-sink", "jobId": "dep-1"},
                {"source": "t-src", "destination": "t-sink", "jobId": "dep-1"},
            ],
            [IN, IN2],
            [OUT],
        ),
        ([{"source": "t-src", "destination": "dep-1"}, {"source": "dep-1", "destination": "t-sink"}], [IN], [OUT]),
        ([{"source": "t-src", "destination": "dep-1"}], [IN], []),
        ([{"source": "dep-1", "destination": "t-sink"}], [], [OUT]),
        ([{"source": "unknown", "destination": "other"}], [], []),
        ([], [], []),
    ],
)
def test_the_deployment_reads_the_sources_and_writes_the_destinations_of_its_edges(
    relations: list[dict[str, str]], inputs: list[DatasetName], outputs: list[DatasetName]
) -> None:
    assert deployment_datasets(lineage(relations), workspace="ws", namespace="ns", deployment_id="dep-1") == (
        inputs,
        outputs,
    )


@pytest.mark.parametrize(
    ("job_id", "relations", "inputs", "outputs"),
    [
        # An edge of another job is not this deployment's.
        (None, [{"source": "t-src", "destination": "t-sink", "jobId": "dep-2"}], [], []),
        (
            None,
            [
                {"source": "t-src", "destination": "dep-1", "jobId": "dep-1"},
                {"source": "t-src2", "destination": "dep-2", "jobId": "dep-2"},
                {"source": "dep-2", "destination": "t-sink", "jobId": "dep-2"},
            ],
            [IN],
            [],
        ),
        # The job that ran names the deployment's edges too.
        ("job-7", [{"source": "t-src", "destination": "t-sink", "jobId": "job-7"}], [IN], [OUT]),
        ("job-7", [{"source": "t-src", "destination": "t-sink", "jobId": "job-8"}], [], []),
        (None, [{"source": "t-src", "destination": "t-sink", "jobId": "job-7"}], [], []),
        (None, [{"source": "t-src", "destination": "t-sink"}], [IN], [OUT]),
    ],
)
def test_only_the_deployment_s_own_edges_are_its_lineage(
    job_id: str | None, relations: list[dict[str, str]], inputs: list[DatasetName], outputs: list[DatasetName]
) -> None:
    info = lineage(relations)

    assert deployment_datasets(info, workspace="ws", namespace="ns", deployment_id="dep-1", job_id=job_id) == (
        inputs,
        outputs,
    )


def temporary_table(*, temporary: bool | None) -> LineageInfo:
    return LineageInfo.from_api(
        {
            "nodes": [
                {
                    "catalogName": "vvp",
                    "databaseName": "default",
                    "connector": "hologres",
                    "isTemporary": temporary,
                    "tables": [{"id": "t", "tableName": "sink"}],
                },
                {
                    "isTemporary": temporary,
                    "connector": "kafka",
                    "tables": [{"id": "k", "tableName": "k", "with": KAFKA}],
                },
            ],
            "edges": {"tableLineage": [{"source": "k", "destination": "t"}]},
        }
    )


@pytest.mark.parametrize(
    ("temporary", "sink_names"),
    [
        (True, ["ns.dep-1.vvp.default.sink", "ns.dep-2.vvp.default.sink"]),
        (False, ["ns.vvp.default.sink", "ns.vvp.default.sink"]),
        (None, ["ns.vvp.default.sink", "ns.vvp.default.sink"]),
    ],
)
def test_a_temporary_table_without_a_spec_name_is_its_deployment_s_alone(
    temporary: bool | None, sink_names: list[str]
) -> None:
    named = [
        deployment_datasets(temporary_table(temporary=temporary), workspace="ws", namespace="ns", deployment_id=dep)
        for dep in ("dep-1", "dep-2")
    ]

    assert [outputs for _, outputs in named] == [[DatasetName("flink-vvp://ws", name)] for name in sink_names]
    # A table the spec names is the same table whichever deployment declares it.
    assert [inputs for inputs, _ in named] == [[DatasetName("kafka://k1:9092", "orders")]] * 2
