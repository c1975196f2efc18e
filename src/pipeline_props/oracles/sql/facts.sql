-- Validated rows, amounts (contract section 4) and the first step of duplicate
-- detection (section 3), over checked.sql's rows.
--
-- facts: one compact row per record, in records' order, so the two pair up
-- by POSITIONAL JOIN (records is an Arrow table of string views, which DuckDB
-- must never filter itself: pyarrow cannot filter string views). For valid
-- rows: a hash of the event id, the region as its position in the contract's
-- list, the quantity, the amount in USD and the sale date. Text stays in
-- records: storing a million rows of it costs more than all the checks.
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
        CASE WHEN reason IS NULL THEN
            CAST(round(CAST(CAST(quantity AS DECIMAL(6, 0)) * CAST(unit_price AS DECIMAL(9, 2)) AS DECIMAL(14, 2))
                       * (CAST(1 AS DECIMAL(4, 3)) - CAST(discount AS DECIMAL(4, 3))), 2)
                 AS DECIMAL(18, 2))
        END AS line_amount
    FROM checked_rows('records')
)
SELECT
    rid, reason,
    CASE WHEN reason IS NULL THEN hash(event_id) END AS event_hash,
    CAST(region_code AS UTINYINT) AS region_code,
    quantity,
    CASE WHEN abs(line_amount) < 1000000000
         THEN CAST(round(CAST(line_amount AS DECIMAL(11, 2)) * {{FX_RATE_OF_CURRENCY}}, 2) AS DECIMAL(18, 2))
         ELSE CAST(round(CAST(line_amount AS DECIMAL(20, 2)) * {{FX_RATE_OF_CURRENCY}}, 2) AS DECIMAL(18, 2))
    END AS amount_usd,
    DATE '1970-01-01' + CAST(event_us // 86400000000 AS INTEGER) AS sale_date,
    -- set below for the versions of a repeated event: kept, copy or conflict
    CAST(NULL AS VARCHAR) AS verdict
FROM lines;

-- Everything below pairs facts with records by position: check it holds.
SELECT error('oracle bug: facts is not in the order of records')
FROM records AS r POSITIONAL JOIN facts AS f
WHERE r.rid IS DISTINCT FROM f.rid
LIMIT 1;

-- candidates: every valid row whose event id may repeat (its hash does; most
-- events have one row, so the exact comparison in versions.sql runs only on
-- these). This statement comes last: its count of updated rows is the
-- script's result, and versions.sql is skipped when it is 0.
UPDATE facts SET verdict = 'candidate'
WHERE reason IS NULL
  AND event_hash IN (SELECT event_hash FROM facts WHERE reason IS NULL GROUP BY event_hash HAVING count(*) > 1);
