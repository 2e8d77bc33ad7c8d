"""Unit tests run without any service: no Redis, no S3 server, no stack.

The feature functions are Spark transformations, so their tests get a local SparkSession:
a JVM beside this process (Java, installed by ``make install``), not a service; the tests
give it in-memory frames only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from fraud_platform.spark import build_spark_session

    logging.getLogger("py4j").setLevel(logging.WARNING)
    session = build_spark_session("unit-tests")
    yield session
    session.stop()
