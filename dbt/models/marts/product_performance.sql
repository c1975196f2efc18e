-- One row per product_id over accepted events.
with totals as (
    select
        product_id,
        cast(coalesce({{ pipeline_props.exact_sum("case when quantity > 0 then quantity end") }}, 0) as bigint) as units_sold,
        cast(-coalesce({{ pipeline_props.exact_sum("case when quantity < 0 then quantity end") }}, 0) as bigint) as units_returned,
        {{ pipeline_props.cents_sum('amount_usd_cents') }} as net_revenue_usd
    from {{ ref('int_accepted_events') }}
    group by product_id
)

select
    product_id,
    units_sold,
    units_returned,
    net_revenue_usd,
    {{ pipeline_props.ratio_4('units_returned', 'units_sold') }} as return_rate
from totals
