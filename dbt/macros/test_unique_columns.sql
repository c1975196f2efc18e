{#- Generic test: no two rows share the values of `columns` (dbt_utils-free). -#}
{% test unique_columns(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
