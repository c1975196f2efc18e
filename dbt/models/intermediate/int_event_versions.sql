-- Contract section 3 on every valid row: versions of an event are the rows
-- sharing its event_id. All versions equal on the twelve normalised values
-- (numbers by value, event_time as an instant; raw text and position do not
-- count): the copy at the smallest (file_index, record_number) is accepted
-- and the others are duplicates (all copies are equal, so the choice changes
-- no value). Otherwise every version is a CONFLICTING_DUPLICATE.
-- Nothing depends on arrival order.
with events as (
    select * from {{ ref('staged_events') }}
),

ranked as (
    select
        events.*,
        dense_rank() over (
            partition by event_id
            order by order_id, customer_id, product_id, category, region, channel,
                     quantity, unit_price, discount, currency, event_time
        ) as version_number,
        row_number() over (
            partition by event_id
            order by file_index, record_number
        ) as copy_number
    from events
),

counted as (
    select
        ranked.*,
        max(version_number) over (partition by event_id) as version_count
    from ranked
)

select
    file_index,
    source_file,
    record_number,
    event_id,
    order_id,
    customer_id,
    product_id,
    category,
    region,
    channel,
    quantity,
    unit_price,
    discount,
    currency,
    event_time,
    raw_record,
    case
        when version_count > 1 then 'conflicting_duplicate'
        when copy_number = 1 then 'accepted'
        else 'duplicate'
    end as event_status
from counted
