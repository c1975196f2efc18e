select namespace, customer_id, min(sale_date) as first_purchase_date, max(sale_date) as last_purchase_date,
       count(distinct order_id) as order_count, sum(amount_usd) as net_revenue_usd
from {{ ref('accepted_events') }}
group by namespace, customer_id
