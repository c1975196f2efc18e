"""The business contract (../shared/SPEC.md, restated in docs/SPEC.md) as constants.

Constants only: no logic lives here, so the pipeline and the oracle can both
import it without sharing an implementation of any rule.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

CONTRACT_VERSION: Final = 1

#: The twelve required input columns, in the contract's order (section 2).
COLUMNS: Final[tuple[str, ...]] = (
    "event_id",
    "order_id",
    "customer_id",
    "product_id",
    "category",
    "region",
    "channel",
    "quantity",
    "unit_price",
    "discount",
    "currency",
    "event_time",
)

#: Columns whose empty value is allowed (missing discount means 0).
OPTIONAL_COLUMNS: Final[frozenset[str]] = frozenset({"discount"})

REGIONS: Final[tuple[str, ...]] = ("NA", "EMEA", "APAC", "LATAM")
CHANNELS: Final[tuple[str, ...]] = ("online", "store", "partner")
CURRENCIES: Final[tuple[str, ...]] = ("USD", "EUR", "GBP", "JPY", "CAD")

#: Fixed conversion rates to USD (section 4).
FX_RATES_TO_USD: Final[dict[str, Decimal]] = {
    "USD": Decimal("1.000000"),
    "EUR": Decimal("1.085000"),
    "GBP": Decimal("1.265000"),
    "JPY": Decimal("0.006700"),
    "CAD": Decimal("0.738000"),
}

# Ranges (section 2).
QUANTITY_MIN: Final = -100_000
QUANTITY_MAX: Final = 100_000
UNIT_PRICE_MIN: Final = Decimal("0")
UNIT_PRICE_MAX: Final = Decimal("1000000.00")
DISCOUNT_MIN: Final = Decimal("0")
DISCOUNT_MAX: Final = Decimal("1")
YEAR_MIN: Final = 2000
YEAR_MAX: Final = 2099
MAX_OFFSET_MINUTES: Final = 14 * 60
ID_MAX_CODE_POINTS: Final = 64

# Reason codes (sections 1-3), in the order of ingestion_audit's columns.
MALFORMED_ROW: Final = "MALFORMED_ROW"
MISSING_FIELD: Final = "MISSING_FIELD"
INVALID_FORMAT: Final = "INVALID_FORMAT"
OUT_OF_RANGE: Final = "OUT_OF_RANGE"
UNKNOWN_CODE: Final = "UNKNOWN_CODE"
CONFLICTING_DUPLICATE: Final = "CONFLICTING_DUPLICATE"
REASONS: Final[tuple[str, ...]] = (
    MALFORMED_ROW,
    MISSING_FIELD,
    INVALID_FORMAT,
    OUT_OF_RANGE,
    UNKNOWN_CODE,
    CONFLICTING_DUPLICATE,
)

# Output tables (section 5): name -> ordered columns. The key columns identify
# a row; rejected_rows has no natural key (the same position can repeat when a
# file is ingested twice), so it is compared as a multiset.
DAILY_SALES: Final = "daily_sales"
CUSTOMER_SUMMARY: Final = "customer_summary"
PRODUCT_PERFORMANCE: Final = "product_performance"
REJECTED_ROWS: Final = "rejected_rows"
INGESTION_AUDIT: Final = "ingestion_audit"

OUTPUT_TABLES: Final[dict[str, tuple[str, ...]]] = {
    DAILY_SALES: (
        "sale_date",
        "region",
        "category",
        "gross_revenue_usd",
        "returns_usd",
        "net_revenue_usd",
        "units_sold",
        "units_returned",
        "order_count",
        "line_count",
    ),
    CUSTOMER_SUMMARY: (
        "customer_id",
        "first_purchase_date",
        "last_purchase_date",
        "order_count",
        "net_revenue_usd",
    ),
    PRODUCT_PERFORMANCE: (
        "product_id",
        "units_sold",
        "units_returned",
        "net_revenue_usd",
        "return_rate",
    ),
    REJECTED_ROWS: (
        "source_file",
        "record_number",
        "event_id",
        "reason",
        "raw_record",
    ),
    INGESTION_AUDIT: (
        "rows_read",
        "rows_accepted",
        "rows_duplicate",
        "rows_rejected",
        "rejected_malformed_row",
        "rejected_missing_field",
        "rejected_invalid_format",
        "rejected_out_of_range",
        "rejected_unknown_code",
        "rejected_conflicting_duplicate",
    ),
}

OUTPUT_KEYS: Final[dict[str, tuple[str, ...]]] = {
    DAILY_SALES: ("sale_date", "region", "category"),
    CUSTOMER_SUMMARY: ("customer_id",),
    PRODUCT_PERFORMANCE: ("product_id",),
    REJECTED_ROWS: ("source_file", "record_number"),
    INGESTION_AUDIT: (),
}

#: Column kinds used to normalise values before comparison and in CSV exports.
MONEY_COLUMNS: Final[frozenset[str]] = frozenset(
    {"gross_revenue_usd", "returns_usd", "net_revenue_usd"}
)
DATE_COLUMNS: Final[frozenset[str]] = frozenset(
    {"sale_date", "first_purchase_date", "last_purchase_date"}
)
RATE_COLUMNS: Final[frozenset[str]] = frozenset({"return_rate"})
