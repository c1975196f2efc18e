-- ingestion_audit (contract section 5), one row per dataset (also when empty).
SELECT
    (SELECT count(*) FROM records) AS rows_read,
    (SELECT count(*) FROM accepted) AS rows_accepted,
    (SELECT coalesce(sum(copies - 1), 0) FROM versions WHERE identical) AS rows_duplicate,
    (SELECT count(*) FROM rejected) AS rows_rejected,
    (SELECT count(*) FROM rejected WHERE reason = {{MALFORMED_ROW}}) AS rejected_malformed_row,
    (SELECT count(*) FROM rejected WHERE reason = {{MISSING_FIELD}}) AS rejected_missing_field,
    (SELECT count(*) FROM rejected WHERE reason = {{INVALID_FORMAT}}) AS rejected_invalid_format,
    (SELECT count(*) FROM rejected WHERE reason = {{OUT_OF_RANGE}}) AS rejected_out_of_range,
    (SELECT count(*) FROM rejected WHERE reason = {{UNKNOWN_CODE}}) AS rejected_unknown_code,
    (SELECT count(*) FROM rejected WHERE reason = {{CONFLICTING_DUPLICATE}})
        AS rejected_conflicting_duplicate;
