-- One row per rejected row: the Spark stage's rejects and every version of a
-- conflicting event (each with its own position and raw record).
-- file_index is an extra column: (file_index, record_number) identifies a row.
select
    source_file,
    record_number,
    event_id,
    reason,
    raw_record,
    file_index
from {{ ref('staged_rejects') }}

union all

select
    source_file,
    record_number,
    event_id,
    cast('CONFLICTING_DUPLICATE' as {{ dbt.type_string() }}) as reason,
    raw_record,
    file_index
from {{ ref('int_event_versions') }}
where event_status = 'conflicting_duplicate'
