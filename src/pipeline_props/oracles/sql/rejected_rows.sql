-- rejected_rows (contract section 5), one row per rejected row.
-- U+0000 is stored as U+FFFD (SPEC section 6: Postgres text cannot hold NUL).
SELECT source_file, record_number,
       replace(event_id, chr(0), chr(65533)) AS event_id,
       reason,
       replace(raw_record, chr(0), chr(65533)) AS raw_record
FROM rejected
ORDER BY ALL NULLS FIRST;
