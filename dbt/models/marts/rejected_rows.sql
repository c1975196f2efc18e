-- One row per rejected row: the Spark stage's rejects and every version of a
-- conflicting event (each with its own position and raw record).
-- file_index is an extra column: (file_index, record_number) identifies a row.
with conflicting as (
    select file_index, record_number
    from {{ ref('int_duplicate_events') }}
    where event_status = 'conflicting_duplicate'
)

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
    events.source_file,
    events.record_number,
    events.event_id,
    cast('CONFLICTING_DUPLICATE' as {{ dbt.type_string() }}) as reason,
    events.raw_record,
    events.file_index
from {{ ref('staged_events') }} as events
inner join conflicting
    on conflicting.file_index = events.file_index
    and conflicting.record_number = events.record_number
