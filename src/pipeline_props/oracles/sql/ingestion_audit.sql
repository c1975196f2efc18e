-- ingestion_audit (contract section 5), one row per dataset (also when empty).
-- One scan per table (ten scalar subqueries cost ~0.1 s of planning each run).
SELECT
    rd.n AS rows_read,
    ac.n AS rows_accepted,
    dup.n AS rows_duplicate,
    rj.total AS rows_rejected,
    rj.malformed_row AS rejected_malformed_row,
    rj.missing_field AS rejected_missing_field,
    rj.invalid_format AS rejected_invalid_format,
    rj.out_of_range AS rejected_out_of_range,
    rj.unknown_code AS rejected_unknown_code,
    rj.conflicting_duplicate AS rejected_conflicting_duplicate
FROM (SELECT count(*) AS n FROM records) AS rd,
     (SELECT count(*) AS n FROM accepted) AS ac,
     (SELECT count(*) AS n FROM versions WHERE verdict = 'copy') AS dup,
     (SELECT
          count(*) AS total,
          count(*) FILTER (WHERE reason = {{MALFORMED_ROW}}) AS malformed_row,
          count(*) FILTER (WHERE reason = {{MISSING_FIELD}}) AS missing_field,
          count(*) FILTER (WHERE reason = {{INVALID_FORMAT}}) AS invalid_format,
          count(*) FILTER (WHERE reason = {{OUT_OF_RANGE}}) AS out_of_range,
          count(*) FILTER (WHERE reason = {{UNKNOWN_CODE}}) AS unknown_code,
          count(*) FILTER (WHERE reason = {{CONFLICTING_DUPLICATE}}) AS conflicting_duplicate
      FROM rejected) AS rj;
