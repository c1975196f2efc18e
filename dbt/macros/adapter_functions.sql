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
    {#- The remainder is taken off before dividing, so the quotient is a whole
        number: exact NUMBER division on Snowflake. The emulator divides in
        DOUBLE (docs/snowflake.md, "division"): round() brings that back to the
        exact whole number for quotients below 2^51. -#}
    cast(round((({{ numerator }}) - mod({{ numerator }}, {{ denominator }})) / ({{ denominator }}), 0) as bigint)
{%- endmacro %}

{#-
  sum() of an exact number. The emulator wraps an aggregate's argument in
  TRY_CAST(... AS DOUBLE) unless it is a cast already (docs/snowflake.md,
  "SUM"), so on Snowflake the argument is cast to its exact type first;
  Postgres and DuckDB get plain sum(), their SQL unchanged.
-#}
{% macro exact_sum(expression, type='numeric(38, 0)') -%}
    {{ return(adapter.dispatch('exact_sum', 'pipeline_props')(expression, type)) }}
{%- endmacro %}

{% macro default__exact_sum(expression, type) -%}
    sum({{ expression }})
{%- endmacro %}

{% macro snowflake__exact_sum(expression, type) -%}
    sum(cast({{ expression }} as {{ type }}))
{%- endmacro %}
