"""Great-circle distance as a Spark expression."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: Column, lon1: Column, lat2: Column, lon2: Column) -> Column:
    """Distance in km between two points in degrees; null if any coordinate is null."""
    from pyspark.sql import functions as F

    dlat = F.radians(lat2 - lat1)
    dlon = F.radians(lon2 - lon1)
    cos_product = F.cos(F.radians(lat1)) * F.cos(F.radians(lat2))
    a = F.sin(dlat / 2) ** 2 + cos_product * F.sin(dlon / 2) ** 2
    # least() skips nulls, so the null case is handled explicitly.
    arc = F.asin(F.least(F.lit(1.0), F.sqrt(a)))
    return F.when(a.isNotNull(), F.lit(2 * EARTH_RADIUS_KM) * arc)
