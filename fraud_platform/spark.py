"""The one place where a SparkSession is built, from the environment.

Local mode by default; a cluster when ``SPARK_MASTER`` names one (``spark://host:port``),
with executors sized by ``SPARK_EXECUTOR_MEMORY`` and ``SPARK_EXECUTOR_CORES``: the same
code either way, the switch is configuration. ``s3a://`` is wired to the same endpoint and
credentials as boto3 (the standard AWS variables), with path-style access so that MinIO and
SeaweedFS work as well as AWS S3.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from fraud_platform.errors import StackNotReadyError
from fraud_platform.settings import S3Settings, SparkSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def s3a_jars(settings: SparkSettings) -> list[str]:
    """The jar files that give Spark the ``s3a://`` file system.

    Raises:
        StackNotReadyError: when ``make install`` has not fetched them yet.
    """
    jars = sorted(str(p) for p in settings.jars_dir.glob("*.jar"))
    if not any("hadoop-aws" in j for j in jars):
        raise StackNotReadyError(
            f"hadoop-aws jars are missing from {settings.jars_dir}; run "
            "'scripts/fetch-spark-jars.sh' (part of 'make install') or set SPARK_JARS_DIR"
        )
    return jars


def s3a_conf(s3: S3Settings) -> dict[str, str]:
    """Hadoop options for ``s3a://`` derived from the S3 settings."""
    conf = {
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.endpoint.region": s3.region,
        # Hadoop's file committer: writes under _temporary and renames on commit. Tables
        # are written to a run's staging prefix and published by copy (``publish``).
        "spark.hadoop.fs.s3a.committer.name": "file",
        # The classic input stream: the analytics stream (Hadoop 3.5's default) caches
        # footers by path and serves stale bytes after a partition's object is replaced.
        "spark.hadoop.fs.s3a.input.stream.type": "classic",
    }
    if s3.endpoint_url:
        conf["spark.hadoop.fs.s3a.endpoint"] = s3.endpoint_url
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
            s3.endpoint_url.startswith("https")
        ).lower()
    if s3.access_key_id and s3.secret_access_key:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        )
        conf["spark.hadoop.fs.s3a.access.key"] = s3.access_key_id
        conf["spark.hadoop.fs.s3a.secret.key"] = s3.secret_access_key.get_secret_value()
    return conf


def executor_conf(spark: SparkSettings) -> dict[str, str]:
    """The executors' size on a cluster, where set; Spark's defaults otherwise."""
    conf = {}
    if spark.executor_memory:
        conf["spark.executor.memory"] = spark.executor_memory
    if spark.executor_cores:
        conf["spark.executor.cores"] = str(spark.executor_cores)
    return conf


def build_spark_session(
    app_name: str,
    spark: SparkSettings | None = None,
    s3: S3Settings | None = None,
) -> SparkSession:
    """Build (or reuse) the SparkSession for ``app_name`` configured from the environment."""
    from pyspark.sql import SparkSession

    spark = spark or SparkSettings()
    s3 = s3 or S3Settings()
    # The JVM reads these at launch; they must be set before the gateway starts.
    os.environ.setdefault("SPARK_LOCAL_IP", spark.local_ip)
    jars = s3a_jars(spark)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(spark.master)
        .config("spark.driver.memory", spark.driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(spark.shuffle_partitions))
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        # Standard Parquet timestamps (not INT96), read as UTC instants by Arrow and Feast.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if spark.master.startswith("local"):
        # Python workers (the feature windows' Polars kernels) run this interpreter and its
        # packages. A cluster's executors run their own python3 with the same packages
        # (docker/: the project's image).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # On the driver's class path directly: no copy of the 600 MB SDK bundle per session.
        builder = (
            builder.config("spark.driver.extraClassPath", os.pathsep.join(jars))
            .config("spark.driver.host", spark.local_ip)
            .config("spark.driver.bindAddress", spark.local_ip)
        )
    else:
        builder = builder.config("spark.jars", ",".join(jars))
        for key, value in executor_conf(spark).items():
            builder = builder.config(key, value)
    for key, value in s3a_conf(s3).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
