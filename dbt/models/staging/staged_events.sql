-- Valid rows from the Spark stage, typed as the contract needs them.
select
    cast(file_index as integer) as file_index,
    source_file,
    cast(record_number as bigint) as record_number,
    event_id,
    order_id,
    customer_id,
    product_id,
    category,
    region,
    channel,
    cast(quantity as integer) as quantity,
    cast(unit_price as numeric(11, 2)) as unit_price,
    cast(discount as numeric(4, 3)) as discount,
    currency,
    event_time,
    raw_record
from {{ source('staging', 'stg_events') }}
