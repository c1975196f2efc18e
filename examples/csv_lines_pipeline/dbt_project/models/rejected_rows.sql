select namespace, source_file, record_number, event_id, reason, raw_record
from {{ source('staging', 'stg_records') }}
where reason is not null
union all
select r.namespace, r.source_file, r.record_number, r.event_id, 'CONFLICTING_DUPLICATE', r.raw_record
from {{ source('staging', 'stg_records') }} r
join {{ ref('event_versions') }} v using (namespace, event_id)
where r.reason is null and v.versions > 1
