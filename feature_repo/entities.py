"""The entities features are keyed by: a payment card and a merchant."""

from feast import Entity, ValueType

card = Entity(
    name="card",
    join_keys=["card_id"],
    value_type=ValueType.STRING,
    description="A payment card (PAN token), the unit a fraud decision is made for.",
)

merchant = Entity(
    name="merchant",
    join_keys=["merchant_id"],
    value_type=ValueType.STRING,
    description="The merchant (acceptor) a transaction is made at.",
)
