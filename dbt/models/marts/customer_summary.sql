-- One row per customer_id over accepted events (aggregated per order first,
-- so order_count is a plain count; see daily_sales).
{{ pipeline_props.incremental_config('customer_id', tombstones=true) }}
with {% if is_incremental() -%}
touched as (
    {{ pipeline_props.touched_keys(['customer_id']) }}
),

{% endif -%}
by_order as (
    select
        customer_id,
        min(sale_date) as first_date,
        max(sale_date) as last_date,
        {{ pipeline_props.exact_sum("amount_usd_cents") }} as amount_cents
    from {{ ref('int_accepted_events') }}
    {%- if is_incremental() %} as accepted
    where {{ pipeline_props.same_key('touched', 'accepted', ['customer_id']) }}
    {%- endif %}
    group by customer_id, order_id
)

select
    customer_id,
    min(first_date) as first_purchase_date,
    max(last_date) as last_purchase_date,
    cast(count(*) as bigint) as order_count,
    {{ pipeline_props.cents_sum('amount_cents') }} as net_revenue_usd
    {{- pipeline_props.run_columns() }}
from by_order
group by customer_id
{%- if is_incremental() %}

union all

{{ pipeline_props.tombstones('touched', ['customer_id'], 'by_order',
    ['first_purchase_date', 'last_purchase_date', 'order_count', 'net_revenue_usd']) }}
{%- endif %}
