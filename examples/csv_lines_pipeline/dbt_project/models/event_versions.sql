-- Contract section 3: valid rows with one event_id are versions of one event.
select namespace, event_id,
       count(*) as copies,
       count(distinct (order_id, customer_id, product_id, category, region, channel,
                       quantity, unit_price, discount, currency, event_time)) as versions
from {{ source('staging', 'stg_records') }}
where reason is null
group by namespace, event_id
