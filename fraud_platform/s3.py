"""S3 access shared by the pipelines: a client from the settings and a readiness check."""

from __future__ import annotations

import logging
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from fraud_platform.errors import StackNotReadyError
from fraud_platform.settings import S3Settings

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)


def arrow_filesystem(
    s3: S3Settings | None = None, endpoint_override: str | None = None
) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem for the project's bucket (endpoint and keys from settings).

    Args:
        endpoint_override: An endpoint URL to use instead of the settings' (a Feast file
            source's ``s3_endpoint_override``).
    """
    import pyarrow.fs as pafs

    s3 = s3 or S3Settings()
    kwargs: dict[str, Any] = {"region": s3.region}
    endpoint = endpoint_override or s3.endpoint_url
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    if s3.access_key_id and s3.secret_access_key:
        kwargs["access_key"] = s3.access_key_id
        kwargs["secret_key"] = s3.secret_access_key.get_secret_value()
    return pafs.S3FileSystem(**kwargs)


def s3_client(settings: S3Settings | None = None) -> S3Client:
    """A boto3 S3 client using path-style addressing, which MinIO and SeaweedFS need."""
    import boto3
    from botocore.config import Config

    settings = settings or S3Settings()
    config = Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
    )
    return boto3.client("s3", config=config, **settings.client_kwargs())


def check_s3_ready(settings: S3Settings | None = None) -> dict[str, Any]:
    """Check that the store answers its health endpoint and that the bucket exists.

    Returns:
        ``{"endpoint", "status", "bucket"}`` for the run's metadata.

    Raises:
        StackNotReadyError: naming the endpoint or the bucket that is not ready.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    settings = settings or S3Settings()
    endpoint = settings.endpoint_url or f"https://s3.{settings.region}.amazonaws.com"
    status = 200
    if settings.endpoint_url and settings.healthcheck_path:
        url = settings.endpoint_url.rstrip("/") + settings.healthcheck_path
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our endpoint)
                status = response.status
        except OSError as exc:
            raise StackNotReadyError(f"S3 store at {endpoint} is unreachable: {exc}") from exc
        if status != 200:
            raise StackNotReadyError(f"S3 store at {endpoint} health check returned {status}")
    try:
        s3_client(settings).head_bucket(Bucket=settings.bucket)
    except (ClientError, BotoCoreError) as exc:
        raise StackNotReadyError(
            f"S3 bucket {settings.bucket!r} at {endpoint} is not available: {exc}"
        ) from exc
    log.info("S3 ready: %s -> %d", endpoint, status)
    return {"endpoint": endpoint, "status": status, "bucket": settings.bucket}


def list_keys(prefix: str, settings: S3Settings | None = None) -> list[str]:
    """Every object key under ``prefix`` in the project's bucket."""
    settings = settings or S3Settings()
    client = s3_client(settings)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=settings.bucket, Prefix=prefix
    ):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def delete_keys(keys: list[str], settings: S3Settings | None = None) -> int:
    """Delete objects of the project's bucket, a thousand per request; returns how many."""
    settings = settings or S3Settings()
    client = s3_client(settings)
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        client.delete_objects(Bucket=settings.bucket, Delete={"Objects": batch, "Quiet": True})
    return len(keys)


def delete_prefix(prefix: str, settings: S3Settings | None = None) -> int:
    """Delete every object under ``prefix`` (a folder: end it with ``/``)."""
    return delete_keys(list_keys(prefix, settings), settings)
