"""Spark reads and writes s3a:// on the real local S3 server."""

from __future__ import annotations

import pytest

from fraud_platform.s3 import s3_client
from fraud_platform.settings import S3Settings

pytestmark = pytest.mark.integration


def test_parquet_round_trip_over_s3a(spark, stack_env: dict[str, str]) -> None:
    settings = S3Settings()
    path = settings.s3a_uri("tmp", "spark-round-trip")
    frame = spark.range(1_000).selectExpr("id", "id % 7 AS bucket", "id * 2 AS doubled")
    frame.write.mode("overwrite").partitionBy("bucket").parquet(path)

    back = spark.read.parquet(path)
    assert back.count() == 1_000
    assert back.selectExpr("sum(doubled)").first()[0] == 999_000
    assert sorted(r.bucket for r in back.select("bucket").distinct().collect()) == list(range(7))

    # The files really are on the S3 server, under this run's prefix.
    listed = s3_client(settings).list_objects_v2(
        Bucket=settings.bucket, Prefix=settings.key("tmp", "spark-round-trip") + "/"
    )
    assert any(obj["Key"].endswith(".parquet") for obj in listed["Contents"])
