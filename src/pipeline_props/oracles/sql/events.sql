-- The rows the output tables read, after facts.sql and versions.sql.

-- accepted: one row per accepted event: every valid row but the copies and
-- the conflicting versions. The region stays a code here; the output queries
-- name it after grouping. A table: three output queries read it, and reading
-- this one table costs less than pairing records with facts three times.
CREATE OR REPLACE TEMP TABLE accepted AS
SELECT
    r.order_id, r.customer_id, r.product_id, r.category,
    f.region_code, f.quantity, f.amount_usd, f.sale_date
FROM records AS r POSITIONAL JOIN facts AS f
WHERE f.reason IS NULL AND (f.verdict IS NULL OR f.verdict = 'kept');

-- rejected: every rejected row, conflicting duplicates included, with its
-- file name and raw record text.
CREATE OR REPLACE TEMP TABLE rejected AS
WITH reasons AS (
    SELECT
        r.file_index, r.record_number, r.event_id, r.raw,
        coalesce(f.reason, {{CONFLICTING_DUPLICATE}}) AS reason
    FROM records AS r POSITIONAL JOIN facts AS f
    WHERE f.reason IS NOT NULL OR f.verdict = 'conflict'
)
SELECT
    s.source_file, x.record_number,
    CASE WHEN x.reason <> {{MALFORMED_ROW}} THEN nullif(x.event_id, '') END AS event_id,
    x.reason, x.raw AS raw_record
FROM reasons AS x
JOIN files AS s USING (file_index);
