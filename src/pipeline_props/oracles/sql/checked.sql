-- Validation (contract section 2 with SPEC section 6): every record with its
-- reason (NULL when valid) and, for valid rows, its normalised values.
-- Input: records(rid, file_index, record_number, raw, malformed, control,
-- <the twelve contract columns>), registered by duckdb_oracle.py: the fields
-- unquoted and trimmed of spaces and tabs, all NULL when the record is
-- malformed; control is False only when the record has no control character.
--
-- A table macro over a records-shaped table, not a table: events.sql keeps
-- only the few compact columns it needs from checked_rows('records') (storing
-- a million rows of text costs more than all the checks), and gets the full
-- normalised values again, from checked_rows('candidates'), only for the rows
-- whose event id may repeat.
--
-- Columns are checked in contract order; within a column: missing, then
-- format, then range or code list. Numbers are only cast after their regular
-- expression matched, so no cast leniency can accept what the pattern refuses.
-- ASCII-only case folding: DuckDB's upper()/lower() follow Unicode (upper('ſ')
-- is 'S'), so they are applied only to pure ASCII values (as many bytes as
-- code points); any other value folds to '' and is not a known code.
-- A text of at most 64 bytes has at most 64 code points: length() (which
-- counts them) runs only on longer ones.
CREATE OR REPLACE TEMP MACRO checked_rows(source) AS TABLE
WITH formats AS (
    SELECT
        *,
        regexp_full_match(quantity, '[+-]?[0-9]{1,9}') AS quantity_ok,
        regexp_full_match(unit_price, '[+-]?[0-9]{1,9}(\.[0-9]{1,2})?') AS unit_price_ok,
        regexp_full_match(discount, '[+-]?[0-9]{1,3}(\.[0-9]{1,3})?') AS discount_ok,
        regexp_full_match(
            event_time,
            '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})'
        ) AS event_time_ok
    FROM query_table(source)
), numbers AS (
    -- Once the event_time pattern matched, the value is ASCII: 19 bytes of
    -- local date and time, then '.' and 1-6 digits or nothing, then 'Z' or a
    -- 6-byte offset. The local part is cast as a TIMESTAMP, which accepts
    -- exactly the real dates and times of that shape except 24:00:00 (which
    -- it rolls over to the next day, so it is refused here first); a unit test
    -- checks this for every month, day, hour, minute and second spelling.
    SELECT
        *,
        -- a code's position in the contract's list (1-based), 0 when unknown;
        -- the value as written is looked up first: coalesce folds the case
        -- only of the rows that missed (most codes are written as listed)
        coalesce(list_position([{{REGIONS}}], region),
                 list_position([{{REGIONS}}], CASE WHEN strlen(region) = length(region) THEN upper(region) END),
                 0) AS region_code,
        coalesce(list_position([{{CHANNELS}}], channel),
                 list_position([{{CHANNELS}}], CASE WHEN strlen(channel) = length(channel) THEN lower(channel) END),
                 0) AS channel_code,
        coalesce(list_position([{{CURRENCIES}}], currency),
                 list_position([{{CURRENCIES}}], CASE WHEN strlen(currency) = length(currency) THEN upper(currency) END),
                 0) AS currency_code,
        CASE WHEN quantity_ok THEN TRY_CAST(quantity AS INTEGER) END AS q,
        CASE WHEN unit_price_ok THEN TRY_CAST(unit_price AS DECIMAL(11, 2)) END AS p,
        CASE WHEN discount = '' THEN CAST(0 AS DECIMAL(6, 3))
             WHEN discount_ok THEN TRY_CAST(discount AS DECIMAL(6, 3)) END AS d,
        CASE WHEN event_time_ok AND substr(event_time, 12, 2) <> '24'
             THEN TRY_CAST(substr(event_time, 1, 19) AS TIMESTAMP) END AS t_local,
        CASE WHEN event_time_ok THEN suffix(event_time, 'Z') END AS t_utc,
        CASE WHEN event_time_ok THEN strlen(event_time) END AS t_len
    FROM formats
), zones AS (
    SELECT
        *,
        CASE WHEN t_utc THEN 0
             ELSE TRY_CAST(substr(event_time, t_len - 4, 2) AS INTEGER) END AS t_off_hour,
        CASE WHEN t_utc THEN 0
             ELSE TRY_CAST(substr(event_time, t_len - 1, 2) AS INTEGER) END AS t_off_minute,
        CASE WHEN t_utc THEN 0
             WHEN substr(event_time, t_len - 5, 1) = '-' THEN -1
             ELSE 1 END AS t_sign,
        -- the fraction's digits: after the 20th byte ('.'), before the zone
        t_len - 20 - CASE WHEN t_utc THEN 1 ELSE 6 END AS t_digits
    FROM numbers
), reasons AS (
    SELECT
        *,
    CASE
        WHEN malformed THEN {{MALFORMED_ROW}}

        WHEN event_id = '' THEN {{MISSING_FIELD}}
        WHEN NOT regexp_full_match(event_id, '[A-Za-z0-9_.:-]{1,{{ID_MAX}}}') THEN {{INVALID_FORMAT}}

        -- a record without control characters (the common case) skips their search
        WHEN order_id = '' THEN {{MISSING_FIELD}}
        WHEN (strlen(order_id) > {{ID_MAX}} AND length(order_id) > {{ID_MAX}}) OR (control AND regexp_matches(order_id, '[[:cntrl:]]')) THEN {{INVALID_FORMAT}}
        WHEN customer_id = '' THEN {{MISSING_FIELD}}
        WHEN (strlen(customer_id) > {{ID_MAX}} AND length(customer_id) > {{ID_MAX}}) OR (control AND regexp_matches(customer_id, '[[:cntrl:]]')) THEN {{INVALID_FORMAT}}
        WHEN product_id = '' THEN {{MISSING_FIELD}}
        WHEN (strlen(product_id) > {{ID_MAX}} AND length(product_id) > {{ID_MAX}}) OR (control AND regexp_matches(product_id, '[[:cntrl:]]')) THEN {{INVALID_FORMAT}}
        WHEN category = '' THEN {{MISSING_FIELD}}
        WHEN (strlen(category) > {{ID_MAX}} AND length(category) > {{ID_MAX}}) OR (control AND regexp_matches(category, '[[:cntrl:]]')) THEN {{INVALID_FORMAT}}

        WHEN region = '' THEN {{MISSING_FIELD}}
        WHEN region_code = 0 THEN {{UNKNOWN_CODE}}
        WHEN channel = '' THEN {{MISSING_FIELD}}
        WHEN channel_code = 0 THEN {{UNKNOWN_CODE}}

        WHEN quantity = '' THEN {{MISSING_FIELD}}
        WHEN NOT quantity_ok THEN {{INVALID_FORMAT}}
        WHEN q = 0 OR q < {{QUANTITY_MIN}} OR q > {{QUANTITY_MAX}} THEN {{OUT_OF_RANGE}}

        WHEN unit_price = '' THEN {{MISSING_FIELD}}
        WHEN NOT unit_price_ok THEN {{INVALID_FORMAT}}
        WHEN p < {{UNIT_PRICE_MIN}} OR p > {{UNIT_PRICE_MAX}} THEN {{OUT_OF_RANGE}}

        WHEN discount <> '' AND NOT discount_ok THEN {{INVALID_FORMAT}}
        WHEN d < {{DISCOUNT_MIN}} OR d > {{DISCOUNT_MAX}} THEN {{OUT_OF_RANGE}}

        WHEN currency = '' THEN {{MISSING_FIELD}}
        WHEN currency_code = 0 THEN {{UNKNOWN_CODE}}

        WHEN event_time = '' THEN {{MISSING_FIELD}}
        WHEN NOT event_time_ok OR t_local IS NULL OR t_off_minute > 59
             OR t_off_hour * 60 + t_off_minute > {{MAX_OFFSET_MINUTES}} THEN {{INVALID_FORMAT}}
        WHEN year(t_local) < {{YEAR_MIN}} OR year(t_local) > {{YEAR_MAX}} THEN {{OUT_OF_RANGE}}
    END AS reason
    FROM zones
)
SELECT
    rid, file_index, record_number, raw, reason,
    event_id, order_id, customer_id, product_id, category,
    CASE WHEN region_code > 0 THEN [{{REGIONS}}][region_code]
         WHEN strlen(region) = length(region) THEN upper(region) ELSE '' END AS region,
    CASE WHEN channel_code > 0 THEN [{{CHANNELS}}][channel_code]
         WHEN strlen(channel) = length(channel) THEN lower(channel) ELSE '' END AS channel,
    q AS quantity, p AS unit_price, d AS discount,
    CASE WHEN currency_code > 0 THEN [{{CURRENCIES}}][currency_code]
         WHEN strlen(currency) = length(currency) THEN upper(currency) ELSE '' END AS currency,
    region_code, channel_code, currency_code,
    -- event_time as the UTC instant, in microseconds since 1970-01-01
    CASE WHEN reason IS NULL THEN
        epoch_us(t_local)
        + CASE WHEN t_digits > 0
               THEN CAST(rpad(substr(event_time, 21, t_digits), 6, '0') AS INTEGER) ELSE 0 END
        - t_sign * (t_off_hour * 60 + t_off_minute) * CAST(60000000 AS BIGINT)
    END AS event_us
FROM reasons;

-- checked: every record's verdict, for callers that read it (tests); the
-- oracle itself reads checked_rows.
CREATE OR REPLACE TEMP VIEW checked AS SELECT * FROM checked_rows('records');
