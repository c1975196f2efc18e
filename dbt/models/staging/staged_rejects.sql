-- Rows the Spark stage rejected (sections 1-2).
select
    cast(file_index as integer) as file_index,
    source_file,
    cast(record_number as bigint) as record_number,
    event_id,
    reason,
    raw_record
from {{ source('staging', 'stg_rejects') }}
