-- One row per accepted event with the amounts of contract section 4.
with accepted as (
    select * from {{ ref('int_event_versions') }}
    where event_status = 'accepted'
),

fx_rates as (
    select * from {{ ref('fx_rates') }}
),

priced as (
    select
        accepted.event_id,
        accepted.order_id,
        accepted.customer_id,
        accepted.product_id,
        accepted.category,
        accepted.region,
        accepted.channel,
        accepted.quantity,
        accepted.currency,
        {{ pipeline_props.utc_date('accepted.event_time') }} as sale_date,
        {{ pipeline_props.line_amount('accepted.quantity', 'accepted.unit_price', 'accepted.discount') }}
            as line_amount,
        fx_rates.rate
    from accepted
    -- left join: an unknown currency gives a NULL amount, which the not_null
    -- tests report, instead of a silently missing line
    left join fx_rates on fx_rates.currency = accepted.currency
)

select
    event_id,
    order_id,
    customer_id,
    product_id,
    category,
    region,
    channel,
    quantity,
    currency,
    sale_date,
    line_amount,
    {{ pipeline_props.amount_usd('line_amount', 'rate') }} as amount_usd
from priced
