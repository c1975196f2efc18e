with staged as (
    select namespace, count(*) as rows_read from {{ source('staging', 'stg_records') }} group by namespace
), accepted as (
    select namespace, count(*) as rows_accepted, sum(copies - 1) as rows_duplicate
    from {{ ref('event_versions') }} where versions = 1 group by namespace
), rejected as (
    select namespace, count(*) as rows_rejected,
           {% for reason in ['MALFORMED_ROW', 'MISSING_FIELD', 'INVALID_FORMAT', 'OUT_OF_RANGE',
                             'UNKNOWN_CODE', 'CONFLICTING_DUPLICATE'] %}
           count(*) filter (where reason = '{{ reason }}') as rejected_{{ reason | lower }}{{ "," if not loop.last }}
           {% endfor %}
    from {{ ref('rejected_rows') }} group by namespace
)
select d.namespace,
       coalesce(rows_read, 0) as rows_read, coalesce(rows_accepted, 0) as rows_accepted,
       coalesce(rows_duplicate, 0) as rows_duplicate, coalesce(rows_rejected, 0) as rows_rejected,
       coalesce(rejected_malformed_row, 0) as rejected_malformed_row,
       coalesce(rejected_missing_field, 0) as rejected_missing_field,
       coalesce(rejected_invalid_format, 0) as rejected_invalid_format,
       coalesce(rejected_out_of_range, 0) as rejected_out_of_range,
       coalesce(rejected_unknown_code, 0) as rejected_unknown_code,
       coalesce(rejected_conflicting_duplicate, 0) as rejected_conflicting_duplicate
from {{ source('staging', 'datasets') }} d
left join staged using (namespace) left join accepted using (namespace) left join rejected using (namespace)
