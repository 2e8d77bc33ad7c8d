"""Batch sources: the silver feature tables the feature pipeline publishes on S3.

Paths are resolved when `feast apply` runs, from the same settings the pipeline writes with
(``S3Settings().uri("silver", table)``), so the registry points at the bucket and prefix of
the environment that applied it. The S3 endpoint override is only set where there is one
(MinIO or SeaweedFS locally and in compose); on AWS it stays empty.
"""

from feast import FileSource
from feast.data_format import ParquetFormat

from fraud_platform import layout
from fraud_platform.settings import S3Settings

_s3 = S3Settings()
_endpoint = _s3.endpoint_url or None


def _table_source(
    table: str, description: str, field_mapping: dict[str, str] | None = None
) -> FileSource:
    return FileSource(
        name=f"{table}_source",
        path=_s3.uri(layout.SILVER, table),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
        # Reruns of the pipeline for the same day write rows with a later `created`:
        # Feast keeps the latest `created` among rows with the same event time.
        created_timestamp_column="created",
        field_mapping=field_mapping,
        s3_endpoint_override=_endpoint,
        description=description,
    )


card_transaction_source = _table_source(
    layout.CARD_TRANSACTION_FEATURES,
    "Per card, one row per transaction instant: window statistics after that instant.",
)

card_profile_source = _table_source(
    layout.CARD_PROFILE_FEATURES,
    "Per card, one row at its issue date: credit limit, home location, issue time.",
)

MERCHANT_WINDOWS = ("1d", "7d", "30d")

merchant_risk_source = _table_source(
    layout.MERCHANT_RISK_FEATURES,
    "Per merchant, one row per transaction instant: volume and label-delayed fraud rate.",
    # Card and merchant tables both have txn_count_7d and txn_count_30d. Prefixing the
    # merchant features makes every name in the feature service unique, so it is read with
    # plain names (full_feature_names=False): Feast 0.67 drops the outputs of python-mode
    # on-demand views from get_online_features when full_feature_names=True.
    field_mapping={
        f"{stat}_{window}": f"merchant_{stat}_{window}"
        for window in MERCHANT_WINDOWS
        for stat in ("txn_count", "fraud_count", "fraud_rate")
    },
)
