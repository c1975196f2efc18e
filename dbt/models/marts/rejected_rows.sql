-- One row per rejected row: the Spark stage's rejects and every version of a
-- conflicting event (each with its own position and raw record).
-- file_index is an extra column: (file_index, record_number) identifies a row.
-- Incremental mode: the rejected rows of every event id group that rows
-- arrived in since the watermark are emitted again and merged on the
-- position (a group is an event id; the rows with no readable event id form
-- one group, as GROUP BY has it). Rows are only added: a version that
-- conflicts once conflicts for good.
{{ pipeline_props.incremental_config(['file_index', 'record_number']) }}
with {% if is_incremental() -%}
arrived as (
    select distinct event_id
    from {{ ref('int_staged_rows') }}
    where pp_run > {{ pipeline_props.applied_run() }}
),

{% endif -%}
conflicting as (
    select file_index, record_number
    from {{ ref('int_duplicate_events') }}
    where event_status = 'conflicting_duplicate'
    {%- if is_incremental() %}
        and event_id in (select event_id from arrived)
    {%- endif %}
)

select
    source_file,
    record_number,
    event_id,
    reason,
    raw_record,
    file_index
    {{- pipeline_props.run_columns() }}
from {{ ref('staged_rejects') }}
{%- if is_incremental() %} as rejects
where exists (select 1 from arrived where arrived.event_id is not distinct from rejects.event_id)
{%- endif %}

union all

select
    events.source_file,
    events.record_number,
    events.event_id,
    cast('CONFLICTING_DUPLICATE' as {{ dbt.type_string() }}) as reason,
    events.raw_record,
    events.file_index
    {{- pipeline_props.run_columns() }}
from {{ ref('staged_events') }} as events
inner join conflicting
    on conflicting.file_index = events.file_index
    and conflicting.record_number = events.record_number
