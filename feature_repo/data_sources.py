"""Batch sources: the silver feature tables the feature pipeline publishes on S3.

Paths are resolved when `feast apply` runs, from the same settings the pipeline writes with
(``S3Settings().uri("silver", table)``), so the registry points at the bucket and prefix of
the environment that applied it. The S3 endpoint override is only set where there is one
(MinIO or SeaweedFS locally and in compose); on AWS it stays empty.
"""

from feast import FileSource, PushSource
from feast.data_format import ParquetFormat

from fraud_platform import layout
from fraud_platform.settings import S3Settings
from fraud_platform.windows import MERCHANT_WINDOWS

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
    "Per card, one row per transaction instant t, at t - 1 µs: the state before it.",
)

card_profile_source = _table_source(
    layout.CARD_PROFILE_FEATURES,
    "Per card, one row at its issue date: credit limit, home location, issue time.",
)


merchant_risk_source = _table_source(
    layout.MERCHANT_RISK_FEATURES,
    "Per merchant, one row per transaction instant t, at t - 1 µs: volume and known frauds "
    "before it.",
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

# The event-fed views. Online, their values are not rows: every transaction and label
# updates the card's and merchant's event state in Redis and the windows are computed at
# the transaction's instant (docs/features.md, "Serving"). Feast's push API writes rows as
# they are and does not aggregate, so events go through the scoring API's endpoints; the
# push sources declare what the views are fed by, and their batch sources are the offline
# tables training, backfill and repair read.
card_transaction_push = PushSource(
    name="card_transaction_push",
    batch_source=card_transaction_source,
    description="Card transactions, applied to the card's event state as they are scored "
    "or pushed (POST /v1/events/transactions).",
)

merchant_risk_push = PushSource(
    name="merchant_risk_push",
    batch_source=merchant_risk_source,
    description="Merchant transactions and fraud labels, applied to the merchant's event "
    "state (POST /v1/labels for labels, from their label time).",
)
