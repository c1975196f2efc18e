-- One row per accepted event (every staged event except extra copies and
-- conflicting versions) with its sale_date and amount_usd in whole cents
-- (contract section 4; see macros/money.sql).
-- Incremental mode: the events arrived since the watermark are recomputed
-- (an identical copy changes nothing, a conflicting version takes the
-- accepted one back: a tombstone replaces it).
{{ pipeline_props.incremental_config('event_id', tombstones=true) }}
with {% if is_incremental() -%}
arrived as (
    {{ pipeline_props.arrived_event_ids() }}
),

{% endif -%}
events as (
    select * from {{ ref('staged_events') }}
    {%- if is_incremental() %}
    where event_id in (select event_id from arrived)
    {%- endif %}
),

repeated as (
    select * from {{ ref('int_duplicate_events') }}
),

fx_rates as (
    select * from {{ ref('fx_rates') }}
),

accepted as (
    select events.*
    from events
    left join repeated
        on repeated.file_index = events.file_index
        and repeated.record_number = events.record_number
    where repeated.event_status is null or repeated.event_status = 'accepted'
),

priced as (
    select
        accepted.event_id,
        accepted.order_id,
        accepted.customer_id,
        accepted.product_id,
        accepted.category,
        accepted.region,
        accepted.quantity,
        {{ pipeline_props.utc_date('accepted.event_time') }} as sale_date,
        {{ pipeline_props.line_amount_cents('accepted.quantity', 'accepted.unit_price', 'accepted.discount') }}
            as line_amount_cents,
        fx_rates.rate
    from accepted
    -- left join: an unknown currency gives a NULL amount, which the
    -- not_null_columns tests report, instead of a silently missing line
    left join fx_rates on fx_rates.currency = accepted.currency
)

select
    event_id,
    order_id,
    customer_id,
    product_id,
    category,
    region,
    quantity,
    sale_date,
    {{ pipeline_props.amount_usd_cents('line_amount_cents', 'rate') }} as amount_usd_cents
    {{- pipeline_props.run_columns() }}
from priced
{%- if is_incremental() %}

union all

{{ pipeline_props.tombstones('arrived', ['event_id'], 'priced',
    ['order_id', 'customer_id', 'product_id', 'category', 'region', 'quantity', 'sale_date',
     'amount_usd_cents']) }}
{%- endif %}
