-- The rows the output tables read, after facts.sql and versions.sql.

-- accepted: one row per accepted event: every valid row but the copies and
-- the conflicting versions. The region stays a code here; the output queries
-- name it after grouping. A view: each output query reads only its columns
-- of facts (copying a million rows of text into a table cost more).
-- Two branches, so that only the candidates (a few percent) are looked up in
-- versions: in one WHERE with OR, every valid row was probed.
CREATE OR REPLACE TEMP VIEW accepted AS
SELECT order_id, customer_id, product_id, category, region_code, quantity, amount_usd, sale_date
FROM facts
WHERE reason IS NULL AND NOT candidate
UNION ALL
SELECT order_id, customer_id, product_id, category, region_code, quantity, amount_usd, sale_date
FROM facts
WHERE candidate AND rid IN (SELECT rid FROM versions WHERE verdict = 'kept');

-- rejected: every rejected row, conflicting duplicates included, with its
-- file name and raw record text.
CREATE OR REPLACE TEMP TABLE rejected AS
WITH reasons AS (
    SELECT file_index, record_number, event_id, raw, reason
    FROM facts
    WHERE reason IS NOT NULL
    UNION ALL
    SELECT file_index, record_number, event_id, raw, {{CONFLICTING_DUPLICATE}}
    FROM facts
    WHERE candidate AND rid IN (SELECT rid FROM versions WHERE verdict = 'conflict')
)
SELECT
    s.source_file, x.record_number,
    CASE WHEN x.reason <> {{MALFORMED_ROW}} THEN nullif(x.event_id, '') END AS event_id,
    x.reason, x.raw AS raw_record
FROM reasons AS x
JOIN files AS s USING (file_index);
