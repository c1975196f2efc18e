-- ingestion_audit has exactly one row, rows_read = rows_accepted +
-- rows_duplicate + rows_rejected, the per-reason counts add up to
-- rows_rejected, and rows_read is the number of staged rows.
-- Returns the offending rows (none when all hold).
with audit as (
    select * from {{ ref('ingestion_audit') }}
),

staged as (
    select
        (select count(*) from {{ source('staging', 'stg_events') }})
        + (select count(*) from {{ source('staging', 'stg_rejects') }}) as staged_rows,
        (select count(*) from audit) as audit_rows
)

select 'audit row count' as problem, audit_rows as got, 1 as expected
from staged
where audit_rows <> 1

union all

select 'rows_read <> accepted + duplicate + rejected', rows_read,
       rows_accepted + rows_duplicate + rows_rejected
from audit
where rows_read <> rows_accepted + rows_duplicate + rows_rejected

union all

select 'rows_rejected <> sum of reason counts', rows_rejected,
       rejected_malformed_row + rejected_missing_field + rejected_invalid_format
       + rejected_out_of_range + rejected_unknown_code + rejected_conflicting_duplicate
from audit
where rows_rejected <> rejected_malformed_row + rejected_missing_field + rejected_invalid_format
       + rejected_out_of_range + rejected_unknown_code + rejected_conflicting_duplicate

union all

select 'rows_read <> staged rows', audit.rows_read, staged.staged_rows
from audit
cross join staged
where audit.rows_read <> staged.staged_rows
