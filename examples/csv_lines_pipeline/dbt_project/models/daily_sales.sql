select namespace, sale_date, region, category,
       coalesce(sum(amount_usd) filter (where quantity > 0), 0) as gross_revenue_usd,
       coalesce(-sum(amount_usd) filter (where quantity < 0), 0) as returns_usd,
       sum(amount_usd) as net_revenue_usd,
       coalesce(sum(quantity) filter (where quantity > 0), 0) as units_sold,
       coalesce(-sum(quantity) filter (where quantity < 0), 0) as units_returned,
       count(distinct order_id) as order_count,
       count(*) as line_count
from {{ ref('accepted_events') }}
group by namespace, sale_date, region, category
