-- Contract section 3, for the events staged more than once (every other
-- event is accepted as is). Versions of an event are the staged rows sharing
-- its event_id. When all are equal on the twelve normalised values (numbers
-- by value, event_time as an instant; raw text and position do not count),
-- the copy at the smallest (file_index, record_number) is 'accepted' and the
-- others are 'duplicate' (all copies are equal, so the choice changes no
-- value). Otherwise every version is 'conflicting_duplicate'.
-- Nothing depends on arrival order. Only positions are kept: this table is
-- small, and the wide rows stay in the staging table.
-- Incremental mode: the verdict of every version of the events arrived since
-- the watermark, recomputed from all their staged versions (a repeated event
-- stays repeated, so rows are only added or updated).
{{ pipeline_props.incremental_config(['file_index', 'record_number']) }}
{{ pipeline_props.analyze_after_build() }}
with events as {{ pipeline_props.inline_cte() }} (
    select * from {{ ref('staged_events') }}
    {%- if is_incremental() %}
    where event_id in ({{ pipeline_props.arrived_event_ids() }})
    {%- endif %}
),

repeated as (
    select event_id
    from events
    group by event_id
    having count(*) > 1
),

copies as (
    select events.*
    from events
    where event_id in (select event_id from repeated)
),

versions as (
    select event_id, count(*) as version_count
    from (
        select distinct
            event_id, order_id, customer_id, product_id, category, region, channel,
            quantity, unit_price, discount, currency, event_time
        from copies
    ) as distinct_versions
    group by event_id
)

select
    copies.file_index,
    copies.record_number,
    copies.event_id,
    case
        when versions.version_count > 1 then 'conflicting_duplicate'
        when row_number() over (
            partition by copies.event_id
            order by copies.file_index, copies.record_number
        ) = 1 then 'accepted'
        else 'duplicate'
    end as event_status
    {{- pipeline_props.run_columns() }}
from copies
inner join versions on versions.event_id = copies.event_id
