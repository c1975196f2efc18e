-- Validated rows, amounts (contract section 4) and the first step of duplicate
-- detection (section 3), over checked.sql's rows.
--
-- repeated: the hashes of event ids written more than once in well-formed
-- records. Most events have one row, so the exact comparison of versions
-- (versions.sql) runs only on the rows whose hash repeats (the candidates).
-- A collision only adds candidates; it never decides a verdict.
CREATE OR REPLACE TEMP TABLE repeated AS
SELECT hash(event_id) AS event_hash
FROM records
WHERE NOT malformed
GROUP BY ALL
HAVING count(*) > 1;

-- facts: one compact row per record, in one parallel pass over records (no
-- join back to records later: records is an Arrow table of string views,
-- which DuckDB must never filter itself, as pyarrow cannot filter string
-- views, and scanning it again costs more than these columns). Text is kept
-- only where a later step reads it: the four grouping texts of valid rows,
-- the event id and raw text of rejected rows and candidates, and the other
-- normalised values of candidates.
--
-- Amounts use exact decimals throughout, no DOUBLE: DuckDB's round() on
-- DECIMAL rounds half away from zero (proved in tests/unit/test_oracle.py).
-- DuckDB types a product of decimals with the sum of their precisions, fails
-- on overflow, and computes in 128 bits (several times slower) past 18
-- digits, so the widths are chosen to stay within 18 where the values allow:
-- |q * p| is at most 1e11 (12 integer digits and 2 places), times 1 - d with
-- 3 places is DECIMAL(18, 5). The conversion to USD needs more than 18
-- digits only for a line amount of 1e9 or more, which takes the wide path.
CREATE OR REPLACE TEMP TABLE facts AS
WITH lines AS (
    SELECT
        *,
        reason IS NULL AND hash(event_id) IN (SELECT event_hash FROM repeated) AS candidate,
        CASE WHEN reason IS NULL THEN
            CAST(round(CAST(CAST(quantity AS DECIMAL(6, 0)) * CAST(unit_price AS DECIMAL(9, 2)) AS DECIMAL(14, 2))
                       * (CAST(1 AS DECIMAL(4, 3)) - CAST(discount AS DECIMAL(4, 3))), 2)
                 AS DECIMAL(18, 2))
        END AS line_amount
    FROM checked_rows('records')
)
SELECT
    rid, file_index, record_number, reason, candidate,
    CAST(region_code AS UTINYINT) AS region_code,
    quantity,
    CASE WHEN abs(line_amount) < 1000000000
         THEN CAST(round(CAST(line_amount AS DECIMAL(11, 2)) * {{FX_RATE_OF_CURRENCY}}, 2) AS DECIMAL(18, 2))
         ELSE CAST(round(CAST(line_amount AS DECIMAL(20, 2)) * {{FX_RATE_OF_CURRENCY}}, 2) AS DECIMAL(18, 2))
    END AS amount_usd,
    DATE '1970-01-01' + CAST(event_us // 86400000000 AS INTEGER) AS sale_date,
    CASE WHEN reason IS NULL THEN order_id END AS order_id,
    CASE WHEN reason IS NULL THEN customer_id END AS customer_id,
    CASE WHEN reason IS NULL THEN product_id END AS product_id,
    CASE WHEN reason IS NULL THEN category END AS category,
    CASE WHEN reason IS NOT NULL OR candidate THEN event_id END AS event_id,
    CASE WHEN reason IS NOT NULL OR candidate THEN raw END AS raw,
    CASE WHEN candidate THEN channel END AS channel,
    CASE WHEN candidate THEN unit_price END AS unit_price,
    CASE WHEN candidate THEN discount END AS discount,
    CASE WHEN candidate THEN currency END AS currency,
    CASE WHEN candidate THEN event_us END AS event_us
FROM lines;
