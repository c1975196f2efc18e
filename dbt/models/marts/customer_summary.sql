-- One row per customer_id over accepted events.
select
    customer_id,
    min(sale_date) as first_purchase_date,
    max(sale_date) as last_purchase_date,
    cast(count(distinct order_id) as bigint) as order_count,
    {{ pipeline_props.money_sum('amount_usd') }} as net_revenue_usd
from {{ ref('int_accepted_events') }}
group by customer_id
