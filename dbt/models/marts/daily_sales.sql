-- One row per (sale_date, region, category) over accepted events.
-- Two-level aggregation: per order first (one hash pass, and order_count is
-- then a plain count) instead of count(distinct order_id), which sorts.
{{ pipeline_props.incremental_config(['sale_date', 'region', 'category'], tombstones=true) }}
with {% if is_incremental() -%}
touched as (
    {{ pipeline_props.touched_keys(['sale_date', 'region', 'category']) }}
),

{% endif -%}
by_order as (
    select
        sale_date,
        region,
        category,
        {{ pipeline_props.exact_sum("case when quantity > 0 then amount_usd_cents end") }} as gross_cents,
        {{ pipeline_props.exact_sum("case when quantity < 0 then amount_usd_cents end") }} as returns_signed_cents,
        {{ pipeline_props.exact_sum("case when quantity > 0 then quantity end") }} as units_sold,
        {{ pipeline_props.exact_sum("case when quantity < 0 then quantity end") }} as units_returned_signed,
        count(*) as line_count
    from {{ ref('int_accepted_events') }}
    {%- if is_incremental() %} as accepted
    where {{ pipeline_props.same_key('touched', 'accepted', ['sale_date', 'region', 'category']) }}
    {%- endif %}
    group by sale_date, region, category, order_id
)

select
    sale_date,
    region,
    category,
    {{ pipeline_props.cents_sum('gross_cents') }} as gross_revenue_usd,
    {{ pipeline_props.cents_sum('-returns_signed_cents') }} as returns_usd,
    {{ pipeline_props.cents_sum('coalesce(gross_cents, 0) + coalesce(returns_signed_cents, 0)') }}
        as net_revenue_usd,
    cast(coalesce({{ pipeline_props.exact_sum("units_sold") }}, 0) as bigint) as units_sold,
    cast(-coalesce({{ pipeline_props.exact_sum("units_returned_signed") }}, 0) as bigint) as units_returned,
    cast(count(*) as bigint) as order_count,
    cast({{ pipeline_props.exact_sum("line_count") }} as bigint) as line_count
    {{- pipeline_props.run_columns() }}
from by_order
group by sale_date, region, category
{%- if is_incremental() %}

union all

{{ pipeline_props.tombstones('touched', ['sale_date', 'region', 'category'], 'by_order',
    ['gross_revenue_usd', 'returns_usd', 'net_revenue_usd', 'units_sold', 'units_returned', 'order_count', 'line_count']) }}
{%- endif %}
