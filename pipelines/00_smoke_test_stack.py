"""
### Smoke test of the stack

Run first on a new deployment, and whenever something looks wrong: it checks that the S3
store answers its health endpoint and that the project's bucket exists, and that the Redis
online store answers `PING`. Each task logs one line (`S3 ready: <endpoint> -> 200`,
`Redis ping ok: <host>:<port>`) and fails with an error naming the service otherwise.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from fraud_platform.dag_defaults import default_args


@dag(
    dag_id="00_smoke_test_stack",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["smoke", "stack"],
    default_args=default_args(
        execution_timeout=timedelta(minutes=5), retries=1, retry_delay=timedelta(seconds=5)
    ),
    doc_md=__doc__,
)
def smoke_test_stack() -> None:
    @task
    def s3_ready() -> dict:
        from fraud_platform.s3 import check_s3_ready

        return check_s3_ready()

    @task
    def redis_ping() -> dict:
        from fraud_platform.redis_client import check_redis_ready

        return check_redis_ready()

    s3_ready()
    redis_ping()


smoke_test_stack()
