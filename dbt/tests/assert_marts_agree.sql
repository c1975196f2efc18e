-- The marts describe the same accepted events: line counts add up to
-- rows_accepted, rejected_rows has rows_rejected rows, and the three
-- revenue marts have the same net total.
with audit as (
    select rows_accepted, rows_rejected from {{ ref('ingestion_audit') }}
),

totals as (
    select
        (select coalesce({{ pipeline_props.exact_sum("line_count") }}, 0) from {{ ref('daily_sales') }}) as lines,
        (select count(*) from {{ ref('rejected_rows') }}) as rejected,
        (select coalesce({{ pipeline_props.exact_sum("net_revenue_usd", 'numeric(38, 2)') }}, 0) from {{ ref('daily_sales') }}) as daily_net,
        (select coalesce({{ pipeline_props.exact_sum("net_revenue_usd", 'numeric(38, 2)') }}, 0) from {{ ref('customer_summary') }}) as customer_net,
        (select coalesce({{ pipeline_props.exact_sum("net_revenue_usd", 'numeric(38, 2)') }}, 0) from {{ ref('product_performance') }}) as product_net
)

select '{{ pipeline_props.exact_sum("line_count") }} <> rows_accepted' as problem
from totals cross join audit
where totals.lines <> audit.rows_accepted

union all

select 'count(rejected_rows) <> rows_rejected'
from totals cross join audit
where totals.rejected <> audit.rows_rejected

union all

select 'net revenue differs between marts'
from totals
where daily_net <> customer_net or daily_net <> product_net
