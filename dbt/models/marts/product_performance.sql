-- One row per product_id over accepted events.
{{ pipeline_props.incremental_config('product_id', tombstones=true) }}
with {% if is_incremental() -%}
touched as (
    {{ pipeline_props.touched_keys(['product_id']) }}
),

{% endif -%}
totals as (
    select
        product_id,
        cast(coalesce({{ pipeline_props.exact_sum("case when quantity > 0 then quantity end") }}, 0) as bigint) as units_sold,
        cast(-coalesce({{ pipeline_props.exact_sum("case when quantity < 0 then quantity end") }}, 0) as bigint) as units_returned,
        {{ pipeline_props.cents_sum('amount_usd_cents') }} as net_revenue_usd
    from {{ ref('int_accepted_events') }}
    {%- if is_incremental() %} as accepted
    where {{ pipeline_props.same_key('touched', 'accepted', ['product_id']) }}
    {%- endif %}
    group by product_id
)

select
    product_id,
    units_sold,
    units_returned,
    net_revenue_usd,
    {{ pipeline_props.ratio_4('units_returned', 'units_sold') }} as return_rate
    {{- pipeline_props.run_columns() }}
from totals
{%- if is_incremental() %}

union all

{{ pipeline_props.tombstones('touched', ['product_id'], 'totals',
    ['units_sold', 'units_returned', 'net_revenue_usd', 'return_rate']) }}
{%- endif %}
