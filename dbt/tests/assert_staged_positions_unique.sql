-- A staged row's identity (file_index, record_number) is in stg_events or in
-- stg_rejects, never in both (each table has it as primary key).
select e.file_index, e.record_number
from {{ source('staging', 'stg_events') }} as e
inner join {{ source('staging', 'stg_rejects') }} as r
    on r.file_index = e.file_index and r.record_number = e.record_number
