"""Apache Airflow provider for Alibaba Cloud Realtime Compute for Apache Flink (VVP OpenAPI)."""

__version__ = "0.1.0"
