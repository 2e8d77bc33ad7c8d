"""Where each table lives on S3: one bucket, prefixes by zone (see docs/feature-pipeline.md).

The zones are the contract between the pipelines: the feature pipeline writes them, the
Feast repo's sources and the training and inference pipelines read them by these paths.
"""

from __future__ import annotations

from fraud_platform.settings import S3Settings

LANDING = "landing"
BRONZE = "bronze"
QUARANTINE = "quarantine"
SILVER = "silver"
STAGING = "_staging"
"""Runs write here first; the leading underscore hides it from Spark and Arrow readers."""
VALIDATION = "validation"

# Tables of the bronze zone.
TRANSACTIONS = "transactions"
LABELS = "labels"
CARDS = "cards"
MERCHANTS = "merchants"
TRANSACTION_FIELDS = (
    "transaction_id",
    "card_id",
    "merchant_id",
    "amount",
    "currency",
    "merchant_category",
    "channel",
    "latitude",
    "longitude",
    "event_timestamp",
)
"""The columns of a bronze transaction: what ingestion keeps of a landed one and what the
training and scoring sets read."""

# Feature tables of the silver zone, one per Feast feature view.
CARD_TRANSACTION_FEATURES = "card_transaction_features"
CARD_PROFILE_FEATURES = "card_profile_features"
MERCHANT_RISK_FEATURES = "merchant_risk_features"


def table_key(s3: S3Settings, zone: str, table: str) -> str:
    """The S3 key prefix of a published table."""
    return s3.key(zone, table)


def table_uri(s3: S3Settings, zone: str, table: str, scheme: str = "s3a") -> str:
    """The URI of a published table, in Spark's (``s3a``) or everyone else's (``s3``) scheme."""
    uri = s3.s3a_uri(zone, table)
    return uri if scheme == "s3a" else "s3" + uri[3:]


def staging_key(s3: S3Settings, zone: str, table: str, run_id: str) -> str:
    """Where one run writes a table before it is published."""
    return s3.key(zone, STAGING, table, run_id)
