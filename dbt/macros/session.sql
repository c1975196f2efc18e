{#-
  Pre-hook of every model: settings for the model's own transaction. On
  Postgres the default work_mem (4MB) makes the 1M-row hash aggregates and
  sorts spill to disk; SET LOCAL ends with the transaction. Nothing elsewhere.
-#}
{% macro session_settings() -%}
    {{ return(adapter.dispatch('session_settings', 'pipeline_props')()) }}
{%- endmacro %}

{% macro default__session_settings() -%}
{%- endmacro %}

{% macro postgres__session_settings() -%}
    set local work_mem = '{{ var("postgres_work_mem", "256MB") }}'
{%- endmacro %}
