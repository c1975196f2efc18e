-- One row per accepted event, with its amounts (contract section 4; numeric rounds half away from zero).
with kept as (
    select distinct on (r.namespace, r.event_id) r.*
    from {{ source('staging', 'stg_records') }} r
    join {{ ref('event_versions') }} v using (namespace, event_id)
    where r.reason is null and v.versions = 1
    order by r.namespace, r.event_id, r.file_index, r.record_number
), priced as (
    select kept.*, round(quantity * unit_price * (1 - discount), 2) as line_amount,
           case currency when 'USD' then 1.000000 when 'EUR' then 1.085000 when 'GBP' then 1.265000
                         when 'JPY' then 0.006700 when 'CAD' then 0.738000 end as rate
    from kept
)
select priced.*, round(line_amount * rate, 2) as amount_usd,
       (event_time at time zone 'UTC')::date as sale_date
from priced
