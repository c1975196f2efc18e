{#- Adapter-specific pieces, chosen with adapter.dispatch. -#}

{#- The calendar date of a timestamptz instant in UTC, whatever the session time zone. -#}
{% macro utc_date(column) -%}
    {{ return(adapter.dispatch('utc_date', 'pipeline_props')(column)) }}
{%- endmacro %}

{% macro default__utc_date(column) -%}
    cast(({{ column }} at time zone 'UTC') as date)
{%- endmacro %}

{% macro postgres__utc_date(column) -%}
    cast(({{ column }} at time zone 'UTC') as date)
{%- endmacro %}

{% macro duckdb__utc_date(column) -%}
    {#- epoch_us is the instant itself: no dependence on ICU or the TimeZone setting. -#}
    cast(make_timestamp(epoch_us({{ column }})) as date)
{%- endmacro %}

{% macro snowflake__utc_date(column) -%}
    cast(convert_timezone('UTC', {{ column }}) as date)
{%- endmacro %}

{#- Integer division of non-negative integers, truncating. -#}
{% macro int_div(numerator, denominator) -%}
    {{ return(adapter.dispatch('int_div', 'pipeline_props')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__int_div(numerator, denominator) -%}
    (({{ numerator }}) / ({{ denominator }}))
{%- endmacro %}

{% macro duckdb__int_div(numerator, denominator) -%}
    {#- '/' on integers is DOUBLE division in DuckDB; '//' stays integer. -#}
    (({{ numerator }}) // ({{ denominator }}))
{%- endmacro %}

{% macro snowflake__int_div(numerator, denominator) -%}
    {#- exact: the remainder is taken off before dividing. -#}
    cast((({{ numerator }}) - mod({{ numerator }}, {{ denominator }})) / ({{ denominator }}) as bigint)
{%- endmacro %}
