-- One row per (sale_date, region, category) over accepted events.
-- The sums are taken per group straight from the lines (about 12k groups: a
-- cheap hash, and parallel on Postgres), and order_count from the group's
-- distinct orders, which hashes only the four key columns. Aggregating per
-- order first (1M groups, each with five sums) and then per group took 2.5 s
-- against 1.6 s on 1M rows; count(distinct order_id) sorts.
{{ pipeline_props.incremental_config(['sale_date', 'region', 'category'], tombstones=true) }}
{%- set lines -%}
    {{ ref('int_accepted_events') }} as accepted
    {%- if is_incremental() %}
    where {{ pipeline_props.same_key('touched', 'accepted', ['sale_date', 'region', 'category']) }}
    {%- endif %}
{%- endset %}
with {% if is_incremental() -%}
touched as (
    {{ pipeline_props.touched_keys(['sale_date', 'region', 'category']) }}
),

{% endif -%}
by_group as (
    select
        sale_date,
        region,
        category,
        {{ pipeline_props.exact_sum("case when quantity > 0 then amount_usd_cents end") }} as gross_cents,
        {{ pipeline_props.exact_sum("case when quantity < 0 then amount_usd_cents end") }} as returns_signed_cents,
        {{ pipeline_props.exact_sum("case when quantity > 0 then quantity end") }} as units_sold,
        {{ pipeline_props.exact_sum("case when quantity < 0 then quantity end") }} as units_returned_signed,
        count(*) as line_count
    from {{ lines }}
    group by sale_date, region, category
),

orders as (
    select sale_date, region, category, count(*) as order_count
    from (select distinct sale_date, region, category, order_id from {{ lines }}) as distinct_orders
    group by sale_date, region, category
)

select
    by_group.sale_date,
    by_group.region,
    by_group.category,
    {{ pipeline_props.cents('gross_cents') }} as gross_revenue_usd,
    {{ pipeline_props.cents('-returns_signed_cents') }} as returns_usd,
    {{ pipeline_props.cents('coalesce(gross_cents, 0) + coalesce(returns_signed_cents, 0)') }}
        as net_revenue_usd,
    cast(coalesce(units_sold, 0) as bigint) as units_sold,
    cast(-coalesce(units_returned_signed, 0) as bigint) as units_returned,
    cast(orders.order_count as bigint) as order_count,
    cast(line_count as bigint) as line_count
    {{- pipeline_props.run_columns() }}
from by_group
inner join orders
    on orders.sale_date = by_group.sale_date
    and orders.region = by_group.region
    and orders.category = by_group.category
{%- if is_incremental() %}

union all

{{ pipeline_props.tombstones('touched', ['sale_date', 'region', 'category'], 'by_group',
    ['gross_revenue_usd', 'returns_usd', 'net_revenue_usd', 'units_sold', 'units_returned', 'order_count', 'line_count']) }}
{%- endif %}
