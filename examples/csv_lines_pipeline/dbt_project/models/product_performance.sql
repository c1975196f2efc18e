with sums as (
    select namespace, product_id,
           coalesce(sum(quantity) filter (where quantity > 0), 0) as units_sold,
           coalesce(-sum(quantity) filter (where quantity < 0), 0) as units_returned,
           sum(amount_usd) as net_revenue_usd
    from {{ ref('accepted_events') }}
    group by namespace, product_id
)
select sums.*,
       case when units_sold = 0 then null else round(units_returned::numeric / units_sold, 4) end as return_rate
from sums
