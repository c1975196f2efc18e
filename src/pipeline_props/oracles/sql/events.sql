-- Duplicates and amounts (contract sections 3 and 4).
-- valid: the valid rows, normalised; event_time as the UTC instant in
-- microseconds since 1970-01-01 (days from the civil date by integer
-- arithmetic, so no timestamp parser is involved).
CREATE OR REPLACE TEMP TABLE valid AS
WITH shifted AS (
    SELECT *, t_year - CASE WHEN t_month <= 2 THEN 1 ELSE 0 END AS cy
    FROM checked
    WHERE reason IS NULL
), civil AS (
    -- days_from_civil (proleptic Gregorian); cy >= 1999 here, so // is floor
    SELECT *,
        cy // 400 AS era,
        cy - (cy // 400) * 400 AS yoe,
        (153 * (t_month + CASE WHEN t_month > 2 THEN -3 ELSE 9 END) + 2) // 5 + t_day - 1 AS doy
    FROM shifted
)
SELECT
    file_index, record_number, event_id, order_id, customer_id, product_id, category,
    region, channel, quantity, unit_price, discount, currency,
    (CAST(era AS BIGINT) * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468) * 86400000000
        + (CAST(t_hour AS BIGINT) * 3600 + t_minute * 60 + t_second
           - t_sign * (t_off_hour * 3600 + t_off_minute * 60)) * 1000000
        + t_micros AS event_us
FROM civil;

-- versions: one row per event_id over valid rows. All versions identical when
-- every normalised value has min = max (decimals compare by value, so 5.0 and
-- 5.00 are equal; text compares as written).
CREATE OR REPLACE TEMP TABLE versions AS
SELECT
    event_id,
    count(*) AS copies,
    (min(order_id) = max(order_id) AND min(customer_id) = max(customer_id)
     AND min(product_id) = max(product_id) AND min(category) = max(category)
     AND min(region) = max(region) AND min(channel) = max(channel)
     AND min(quantity) = max(quantity) AND min(unit_price) = max(unit_price)
     AND min(discount) = max(discount) AND min(currency) = max(currency)
     AND min(event_us) = max(event_us)) AS identical,
    min(order_id) AS order_id, min(customer_id) AS customer_id,
    min(product_id) AS product_id, min(category) AS category,
    min(region) AS region, min(channel) AS channel, min(quantity) AS quantity,
    min(unit_price) AS unit_price, min(discount) AS discount,
    min(currency) AS currency, min(event_us) AS event_us
FROM valid
GROUP BY event_id;

-- accepted: one row per accepted event with its amounts. Exact decimals all
-- the way (no DOUBLE): DuckDB's round() on DECIMAL rounds half away from zero
-- (tested in tests/unit/test_oracle.py). The casts keep every product inside
-- DuckDB's DECIMAL(18) fast path only where the bound is proven: |q * p| is at
-- most 1e11, so the line has at most 12 integer digits; the conversion is
-- widened to 20 digits because 1e11 * 1.265 with 8 places does not fit 18.
CREATE OR REPLACE TEMP TABLE accepted AS
WITH lines AS (
    SELECT v.*, fx.rate,
        CAST(round(CAST(v.quantity AS DECIMAL(6, 0)) * CAST(v.unit_price AS DECIMAL(9, 2))
                   * (CAST(1 AS DECIMAL(4, 3)) - CAST(v.discount AS DECIMAL(4, 3))), 2)
             AS DECIMAL(18, 2)) AS line_amount
    FROM versions AS v
    JOIN fx USING (currency)
    WHERE v.identical
)
SELECT
    event_id, order_id, customer_id, product_id, category, region, channel,
    quantity, unit_price, discount, currency, line_amount,
    CAST(round(CAST(line_amount AS DECIMAL(20, 2)) * rate, 2) AS DECIMAL(18, 2)) AS amount_usd,
    DATE '1970-01-01' + CAST(event_us // 86400000000 AS INTEGER) AS sale_date
FROM lines;

-- rejected: every rejected row, conflicting duplicates included.
CREATE OR REPLACE TEMP TABLE rejected AS
SELECT source_file, record_number,
       CASE WHEN reason <> {{MALFORMED_ROW}} THEN nullif(event_id, '') END AS event_id,
       reason, raw AS raw_record
FROM checked
WHERE reason IS NOT NULL
UNION ALL
SELECT c.source_file, c.record_number, c.event_id, {{CONFLICTING_DUPLICATE}} AS reason,
       c.raw AS raw_record
FROM checked AS c
JOIN versions AS v USING (event_id)
WHERE c.reason IS NULL AND NOT v.identical;
