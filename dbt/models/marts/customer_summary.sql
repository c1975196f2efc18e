-- One row per customer_id over accepted events: dates and revenue straight
-- from the lines, order_count from the customer's distinct orders (as in
-- daily_sales: cheaper than aggregating per order first).
{{ pipeline_props.incremental_config('customer_id', tombstones=true) }}
{%- set lines -%}
    {{ ref('int_accepted_events') }} as accepted
    {%- if is_incremental() %}
    where {{ pipeline_props.same_key('touched', 'accepted', ['customer_id']) }}
    {%- endif %}
{%- endset %}
with {% if is_incremental() -%}
touched as (
    {{ pipeline_props.touched_keys(['customer_id']) }}
),

{% endif -%}
by_customer as (
    select
        customer_id,
        min(sale_date) as first_purchase_date,
        max(sale_date) as last_purchase_date,
        {{ pipeline_props.exact_sum("amount_usd_cents") }} as amount_cents
    from {{ lines }}
    group by customer_id
),

orders as (
    select customer_id, count(*) as order_count
    from (select distinct customer_id, order_id from {{ lines }}) as distinct_orders
    group by customer_id
)

select
    by_customer.customer_id,
    first_purchase_date,
    last_purchase_date,
    cast(orders.order_count as bigint) as order_count,
    {{ pipeline_props.cents('amount_cents') }} as net_revenue_usd
    {{- pipeline_props.run_columns() }}
from by_customer
inner join orders on orders.customer_id = by_customer.customer_id
{%- if is_incremental() %}

union all

{{ pipeline_props.tombstones('touched', ['customer_id'], 'by_customer',
    ['first_purchase_date', 'last_purchase_date', 'order_count', 'net_revenue_usd']) }}
{%- endif %}
