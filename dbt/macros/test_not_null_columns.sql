{#-
  Generic test: none of `columns` is NULL. One query per model instead of one
  not_null test per column (each test node costs parse and run time).
-#}
{% test not_null_columns(model, columns) %}
select *
from {{ model }}
where {% for column in columns -%}
    {{ column }} is null{{ " or " if not loop.last }}
{%- endfor %}
{% endtest %}
