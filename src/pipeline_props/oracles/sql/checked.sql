-- Validation (contract section 2 with SPEC section 6): every record with its
-- reason (NULL when valid) and, for valid rows, its normalised values.
-- Input: records(file_index, record_number, raw, malformed, <the twelve
-- contract columns>), registered by duckdb_oracle.py: the fields unquoted and
-- trimmed of spaces and tabs, all NULL when the record is malformed.
-- Columns are checked in contract order; within a column: missing, then
-- format, then range or code list. Numbers are only cast after their regular
-- expression matched, so no cast leniency can accept what the pattern refuses.
-- ASCII-only case folding: DuckDB's upper()/lower() follow Unicode (upper('ſ')
-- is 'S'), so they are applied only to pure ASCII values (as many bytes as
-- code points); any other value folds to '' and is not a known code.
CREATE OR REPLACE TEMP TABLE checked AS
WITH formats AS (
    SELECT
        *,
        CASE WHEN strlen(region) = length(region) THEN upper(region) ELSE '' END AS region_norm,
        CASE WHEN strlen(channel) = length(channel) THEN lower(channel) ELSE '' END AS channel_norm,
        CASE WHEN strlen(currency) = length(currency) THEN upper(currency) ELSE '' END AS currency_norm,
        regexp_full_match(quantity, '[+-]?[0-9]{1,9}') AS quantity_ok,
        regexp_full_match(unit_price, '[+-]?[0-9]{1,9}(\.[0-9]{1,2})?') AS unit_price_ok,
        regexp_full_match(discount, '[+-]?[0-9]{1,3}(\.[0-9]{1,3})?') AS discount_ok,
        regexp_full_match(
            event_time,
            '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})'
        ) AS event_time_ok
    FROM records
), numbers AS (
    -- Positions below are fixed once the event_time pattern matched (ASCII).
    SELECT
        *,
        CASE WHEN quantity_ok THEN TRY_CAST(quantity AS INTEGER) END AS q,
        CASE WHEN unit_price_ok THEN TRY_CAST(unit_price AS DECIMAL(11, 2)) END AS p,
        CASE WHEN discount = '' THEN CAST(0 AS DECIMAL(6, 3))
             WHEN discount_ok THEN TRY_CAST(discount AS DECIMAL(6, 3)) END AS d,
        CASE WHEN event_time_ok THEN TRY_CAST(substr(event_time, 1, 4) AS INTEGER) END AS t_year,
        CASE WHEN event_time_ok THEN TRY_CAST(substr(event_time, 6, 2) AS INTEGER) END AS t_month,
        CASE WHEN event_time_ok THEN TRY_CAST(substr(event_time, 9, 2) AS INTEGER) END AS t_day,
        CASE WHEN event_time_ok THEN TRY_CAST(substr(event_time, 12, 2) AS INTEGER) END AS t_hour,
        CASE WHEN event_time_ok THEN TRY_CAST(substr(event_time, 15, 2) AS INTEGER) END AS t_minute,
        CASE WHEN event_time_ok THEN TRY_CAST(substr(event_time, 18, 2) AS INTEGER) END AS t_second,
        -- '.' plus 1-6 digits sits between the seconds and the 1- or 6-byte zone
        CASE WHEN event_time_ok THEN
            CASE WHEN substr(event_time, 20, 1) = '.'
                 THEN TRY_CAST(rpad(substr(event_time, 21,
                          length(event_time) - 20 - (CASE WHEN suffix(event_time, 'Z') THEN 1 ELSE 6 END)),
                          6, '0') AS INTEGER)
                 ELSE 0 END
        END AS t_micros,
        CASE WHEN NOT event_time_ok THEN NULL
             WHEN suffix(event_time, 'Z') THEN 0
             WHEN substr(right(event_time, 6), 1, 1) = '-' THEN -1
             ELSE 1 END AS t_sign,
        CASE WHEN event_time_ok AND NOT suffix(event_time, 'Z')
             THEN TRY_CAST(substr(right(event_time, 5), 1, 2) AS INTEGER) ELSE 0 END AS t_off_hour,
        CASE WHEN event_time_ok AND NOT suffix(event_time, 'Z')
             THEN TRY_CAST(right(event_time, 2) AS INTEGER) ELSE 0 END AS t_off_minute
    FROM formats
), calendar AS (
    SELECT
        *,
        event_time_ok
        AND t_month BETWEEN 1 AND 12
        AND t_day BETWEEN 1 AND (
            CASE WHEN t_month = 2 THEN
                     CASE WHEN (t_year % 4 = 0 AND t_year % 100 <> 0) OR t_year % 400 = 0
                          THEN 29 ELSE 28 END
                 WHEN t_month IN (4, 6, 9, 11) THEN 30
                 ELSE 31 END)
        AND t_hour <= 23 AND t_minute <= 59 AND t_second <= 59
        AND t_off_minute <= 59
        AND t_off_hour * 60 + t_off_minute <= {{MAX_OFFSET_MINUTES}} AS event_time_real
    FROM numbers
), reasons AS (
    SELECT
        *,
    CASE
        WHEN malformed THEN {{MALFORMED_ROW}}

        WHEN event_id = '' THEN {{MISSING_FIELD}}
        WHEN NOT regexp_full_match(event_id, '[A-Za-z0-9_.:-]{1,{{ID_MAX}}}') THEN {{INVALID_FORMAT}}

        WHEN order_id = '' THEN {{MISSING_FIELD}}
        WHEN length(order_id) > {{ID_MAX}} OR regexp_matches(order_id, '[[:cntrl:]]') THEN {{INVALID_FORMAT}}
        WHEN customer_id = '' THEN {{MISSING_FIELD}}
        WHEN length(customer_id) > {{ID_MAX}} OR regexp_matches(customer_id, '[[:cntrl:]]') THEN {{INVALID_FORMAT}}
        WHEN product_id = '' THEN {{MISSING_FIELD}}
        WHEN length(product_id) > {{ID_MAX}} OR regexp_matches(product_id, '[[:cntrl:]]') THEN {{INVALID_FORMAT}}
        WHEN category = '' THEN {{MISSING_FIELD}}
        WHEN length(category) > {{ID_MAX}} OR regexp_matches(category, '[[:cntrl:]]') THEN {{INVALID_FORMAT}}

        WHEN region = '' THEN {{MISSING_FIELD}}
        WHEN region_norm NOT IN ({{REGIONS}}) THEN {{UNKNOWN_CODE}}
        WHEN channel = '' THEN {{MISSING_FIELD}}
        WHEN channel_norm NOT IN ({{CHANNELS}}) THEN {{UNKNOWN_CODE}}

        WHEN quantity = '' THEN {{MISSING_FIELD}}
        WHEN NOT quantity_ok THEN {{INVALID_FORMAT}}
        WHEN q = 0 OR q < {{QUANTITY_MIN}} OR q > {{QUANTITY_MAX}} THEN {{OUT_OF_RANGE}}

        WHEN unit_price = '' THEN {{MISSING_FIELD}}
        WHEN NOT unit_price_ok THEN {{INVALID_FORMAT}}
        WHEN p < {{UNIT_PRICE_MIN}} OR p > {{UNIT_PRICE_MAX}} THEN {{OUT_OF_RANGE}}

        WHEN discount <> '' AND NOT discount_ok THEN {{INVALID_FORMAT}}
        WHEN d < {{DISCOUNT_MIN}} OR d > {{DISCOUNT_MAX}} THEN {{OUT_OF_RANGE}}

        WHEN currency = '' THEN {{MISSING_FIELD}}
        WHEN currency_norm NOT IN ({{CURRENCIES}}) THEN {{UNKNOWN_CODE}}

        WHEN event_time = '' THEN {{MISSING_FIELD}}
        WHEN NOT event_time_real THEN {{INVALID_FORMAT}}
        WHEN t_year < {{YEAR_MIN}} OR t_year > {{YEAR_MAX}} THEN {{OUT_OF_RANGE}}
    END AS reason
    FROM calendar
), civil AS (
    -- days_from_civil (proleptic Gregorian) for the UTC instant; only used
    -- for valid rows, whose year is 2000-2099, so // (truncating) is floor.
    SELECT
        *,
        t_year - CASE WHEN t_month <= 2 THEN 1 ELSE 0 END AS cy,
        (153 * (t_month + CASE WHEN t_month > 2 THEN -3 ELSE 9 END) + 2) // 5 + t_day - 1 AS doy
    FROM reasons
)
SELECT
    file_index, record_number, reason,
    event_id, order_id, customer_id, product_id, category,
    region_norm AS region, channel_norm AS channel, q AS quantity, p AS unit_price,
    d AS discount, currency_norm AS currency,
    -- event_time as the UTC instant, in microseconds since 1970-01-01
    CASE WHEN reason IS NULL THEN
        (CAST(cy // 400 AS BIGINT) * 146097 + (cy % 400) * 365 + (cy % 400) // 4 - (cy % 400) // 100
         + doy - 719468) * 86400000000
        + (CAST(t_hour AS BIGINT) * 3600 + t_minute * 60 + t_second
           - t_sign * (t_off_hour * 3600 + t_off_minute * 60)) * 1000000
        + t_micros
    END AS event_us
FROM civil;
