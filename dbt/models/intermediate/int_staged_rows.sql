-- Incremental mode only (var pp_incremental): every staged row once, valid or
-- rejected, with the run that first saw it (pp_run) and the keys of the marts
-- it can touch. The other models find what arrived since their own watermark
-- here (macros/incremental.sql). Staging keeps no batch number per row, so a
-- new run registers the rows it has not seen (anti-join on the position).
{{ config(enabled=pipeline_props.incremental_mode()) }}
{{ pipeline_props.incremental_config(['file_index', 'record_number']) }}
with staged as (
    select
        file_index,
        record_number,
        event_id,
        cast(null as {{ dbt.type_string() }}) as reason,
        {{ pipeline_props.utc_date('event_time') }} as sale_date,
        region,
        category,
        customer_id,
        product_id
    from {{ ref('staged_events') }}

    union all

    select
        file_index,
        record_number,
        event_id,
        reason,
        cast(null as date) as sale_date,
        cast(null as {{ dbt.type_string() }}) as region,
        cast(null as {{ dbt.type_string() }}) as category,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as product_id
    from {{ ref('staged_rejects') }}
)

select
    staged.*,
{%- if is_incremental() %}
    cast((select coalesce(max(pp_run), 0) + 1 from {{ this }}) as bigint) as pp_run
from staged
where not exists (
    select 1 from {{ this }} as seen
    where seen.file_index = staged.file_index and seen.record_number = staged.record_number
)
{%- else %}
    cast(1 as bigint) as pp_run
from staged
{%- endif %}
