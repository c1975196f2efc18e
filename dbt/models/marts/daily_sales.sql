-- One row per (sale_date, region, category) over accepted events.
with events as (
    select * from {{ ref('int_accepted_events') }}
),

totals as (
    select
        sale_date,
        region,
        category,
        {{ pipeline_props.money_sum('case when quantity > 0 then amount_usd end') }} as gross_revenue_usd,
        -{{ pipeline_props.money_sum('case when quantity < 0 then amount_usd end') }} as returns_usd,
        coalesce(sum(case when quantity > 0 then quantity end), 0) as units_sold,
        -coalesce(sum(case when quantity < 0 then quantity end), 0) as units_returned,
        count(distinct order_id) as order_count,
        count(*) as line_count
    from events
    group by sale_date, region, category
)

select
    sale_date,
    region,
    category,
    cast(gross_revenue_usd as numeric(38, 2)) as gross_revenue_usd,
    cast(returns_usd as numeric(38, 2)) as returns_usd,
    cast(gross_revenue_usd - returns_usd as numeric(38, 2)) as net_revenue_usd,
    cast(units_sold as bigint) as units_sold,
    cast(units_returned as bigint) as units_returned,
    cast(order_count as bigint) as order_count,
    cast(line_count as bigint) as line_count
from totals
