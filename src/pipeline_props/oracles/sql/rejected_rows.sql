-- rejected_rows (contract section 5), one row per rejected row.
SELECT source_file, record_number, event_id, reason, raw_record
FROM rejected
ORDER BY ALL NULLS FIRST;
