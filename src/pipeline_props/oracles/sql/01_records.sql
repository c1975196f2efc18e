-- Every counted record of the dataset, one row each (contract section 1).
-- Inputs (registered by duckdb_oracle.py):
--   fast_lines(file_index, record_number, raw): records of quote-free files,
--     which are plain lines; their fields are the comma-separated parts.
--   slow_records(file_index, record_number, raw, problem, parts): records cut
--     by splitter.py; parts is NULL and problem set for a malformed record.
--   file_columns(file_index, source_file, ncols, p_<column>...): per file, the
--     header's field count and the 1-based position of each contract column.
-- Output: records, with the twelve contract fields unquoted and trimmed of
-- spaces and tabs, all NULL when the record is malformed.
CREATE OR REPLACE TEMP TABLE records AS
WITH cut AS (
    SELECT file_index, record_number, raw, CAST(NULL AS VARCHAR) AS problem,
           string_split(raw, ',') AS parts
    FROM fast_lines
    UNION ALL
    SELECT file_index, record_number, raw, problem, parts
    FROM slow_records
), marked AS (
    SELECT c.file_index, f.source_file, c.record_number, c.raw, c.parts,
           (c.problem IS NOT NULL OR c.parts IS NULL OR len(c.parts) <> f.ncols) AS malformed,
           f.p_event_id, f.p_order_id, f.p_customer_id, f.p_product_id, f.p_category,
           f.p_region, f.p_channel, f.p_quantity, f.p_unit_price, f.p_discount,
           f.p_currency, f.p_event_time
    FROM cut AS c
    JOIN file_columns AS f USING (file_index)
)
SELECT
    file_index, source_file, record_number, raw, malformed,
    CASE WHEN NOT malformed THEN trim(parts[p_event_id], {{TRIM}}) END AS event_id,
    CASE WHEN NOT malformed THEN trim(parts[p_order_id], {{TRIM}}) END AS order_id,
    CASE WHEN NOT malformed THEN trim(parts[p_customer_id], {{TRIM}}) END AS customer_id,
    CASE WHEN NOT malformed THEN trim(parts[p_product_id], {{TRIM}}) END AS product_id,
    CASE WHEN NOT malformed THEN trim(parts[p_category], {{TRIM}}) END AS category,
    CASE WHEN NOT malformed THEN trim(parts[p_region], {{TRIM}}) END AS region,
    CASE WHEN NOT malformed THEN trim(parts[p_channel], {{TRIM}}) END AS channel,
    CASE WHEN NOT malformed THEN trim(parts[p_quantity], {{TRIM}}) END AS quantity,
    CASE WHEN NOT malformed THEN trim(parts[p_unit_price], {{TRIM}}) END AS unit_price,
    CASE WHEN NOT malformed THEN trim(parts[p_discount], {{TRIM}}) END AS discount,
    CASE WHEN NOT malformed THEN trim(parts[p_currency], {{TRIM}}) END AS currency,
    CASE WHEN NOT malformed THEN trim(parts[p_event_time], {{TRIM}}) END AS event_time
FROM marked;
