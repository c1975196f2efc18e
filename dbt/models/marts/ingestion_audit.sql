-- Exactly one row per dataset (aggregates without GROUP BY), all counts 0
-- for an empty one. rows_read counts every staged row, valid or rejected;
-- rows_accepted is counted on the accepted events themselves, so the
-- conservation test (tests/assert_audit_conservation.sql) checks the split.
with staged as (
    select count(*) as rows_valid from {{ ref('staged_events') }}
),

accepted as (
    select count(*) as rows_accepted from {{ ref('int_accepted_events') }}
),

repeated as (
    select
        count(case when event_status = 'duplicate' then 1 end) as rows_duplicate,
        count(case when event_status = 'conflicting_duplicate' then 1 end) as rows_conflicting
    from {{ ref('int_duplicate_events') }}
),

rejects as (
    select
        count(*) as rows_rejected_staged,
        count(case when reason = 'MALFORMED_ROW' then 1 end) as rejected_malformed_row,
        count(case when reason = 'MISSING_FIELD' then 1 end) as rejected_missing_field,
        count(case when reason = 'INVALID_FORMAT' then 1 end) as rejected_invalid_format,
        count(case when reason = 'OUT_OF_RANGE' then 1 end) as rejected_out_of_range,
        count(case when reason = 'UNKNOWN_CODE' then 1 end) as rejected_unknown_code,
        count(case when reason = 'CONFLICTING_DUPLICATE' then 1 end) as rejected_conflicting_staged
    from {{ ref('staged_rejects') }}
)

select
    cast(rows_valid + rows_rejected_staged as bigint) as rows_read,
    cast(rows_accepted as bigint) as rows_accepted,
    cast(rows_duplicate as bigint) as rows_duplicate,
    cast(rows_rejected_staged + rows_conflicting as bigint) as rows_rejected,
    cast(rejected_malformed_row as bigint) as rejected_malformed_row,
    cast(rejected_missing_field as bigint) as rejected_missing_field,
    cast(rejected_invalid_format as bigint) as rejected_invalid_format,
    cast(rejected_out_of_range as bigint) as rejected_out_of_range,
    cast(rejected_unknown_code as bigint) as rejected_unknown_code,
    cast(rejected_conflicting_staged + rows_conflicting as bigint) as rejected_conflicting_duplicate
from staged
cross join accepted
cross join repeated
cross join rejects
