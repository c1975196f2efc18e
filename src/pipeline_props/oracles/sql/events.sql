-- Duplicates and amounts (contract sections 3 and 4), over checked.sql's rows.
--
-- versions: every event_id with more than one valid row (most events have
-- one, so the exact comparison runs only on these). All versions are
-- identical when every normalised value has min = max: decimals compare by
-- value (5.0 = 5.00), text as written, event_time as the UTC instant.
CREATE OR REPLACE TEMP TABLE versions AS
WITH repeated AS (
    SELECT event_id FROM checked WHERE reason IS NULL GROUP BY event_id HAVING count(*) > 1
)
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
FROM checked
SEMI JOIN repeated USING (event_id)
WHERE reason IS NULL
GROUP BY event_id;

-- accepted: one row per accepted event (single versions, plus one row for
-- each all-identical event) with its amounts. Exact decimals throughout, no
-- DOUBLE: DuckDB's round() on DECIMAL rounds half away from zero (proved in
-- tests/unit/test_oracle.py). DuckDB keeps a product of two DECIMAL(<=18)
-- in 18 digits and fails on overflow, so the widths are chosen: |q * p| is at
-- most 1e11 (12 integer digits, 5 places fit 18), and the conversion is
-- widened to 20 digits since 1.265e11 with 8 places does not fit 18.
CREATE OR REPLACE TEMP TABLE accepted AS
WITH events AS (
    SELECT order_id, customer_id, product_id, category, region,
           quantity, unit_price, discount, currency, event_us
    FROM checked
    ANTI JOIN versions USING (event_id)
    WHERE reason IS NULL
    UNION ALL
    SELECT order_id, customer_id, product_id, category, region,
           quantity, unit_price, discount, currency, event_us
    FROM versions
    WHERE identical
), lines AS (
    SELECT
        *,
        CAST(round(CAST(quantity AS DECIMAL(6, 0)) * CAST(unit_price AS DECIMAL(9, 2))
                   * (CAST(1 AS DECIMAL(4, 3)) - CAST(discount AS DECIMAL(4, 3))), 2)
             AS DECIMAL(18, 2)) AS line_amount
    FROM events
)
-- Only what the output tables need is kept: copying wide rows of text is
-- the main cost at a million rows.
SELECT
    order_id, customer_id, product_id, category, region, quantity, line_amount,
    CAST(round(CAST(line_amount AS DECIMAL(20, 2)) * {{FX_RATE_OF_CURRENCY}}, 2) AS DECIMAL(18, 2))
        AS amount_usd,
    DATE '1970-01-01' + CAST(event_us // 86400000000 AS INTEGER) AS sale_date
FROM lines;

-- rejected: every rejected row, conflicting duplicates included, with its
-- file name and raw record text.
CREATE OR REPLACE TEMP TABLE rejected AS
WITH reasons AS (
    SELECT file_index, record_number,
           CASE WHEN reason <> {{MALFORMED_ROW}} THEN nullif(event_id, '') END AS event_id,
           reason
    FROM checked
    WHERE reason IS NOT NULL
    UNION ALL
    SELECT c.file_index, c.record_number, c.event_id, {{CONFLICTING_DUPLICATE}} AS reason
    FROM checked AS c
    JOIN versions AS v USING (event_id)
    WHERE c.reason IS NULL AND NOT v.identical
)
SELECT f.source_file, x.record_number, x.event_id, x.reason, r.raw AS raw_record
FROM reasons AS x
JOIN records AS r USING (file_index, record_number)
JOIN files AS f USING (file_index);
