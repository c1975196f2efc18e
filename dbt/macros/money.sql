{#-
  Contract section 4. Every operand is cast to a 38-digit decimal first:
  exact on every adapter, and on DuckDB it keeps DOUBLE out of the money path
  and avoids DuckDB's narrow DECIMAL(18) products (which overflow with an
  error on large lines). round() on numeric/DECIMAL rounds half away from
  zero on Postgres, DuckDB and Snowflake.
-#}
{% macro line_amount(quantity, unit_price, discount) -%}
    cast(round(cast({{ quantity }} as numeric(38, 0))
               * cast({{ unit_price }} as numeric(38, 2))
               * (1 - cast({{ discount }} as numeric(38, 3))), 2) as numeric(38, 2))
{%- endmacro %}

{% macro amount_usd(line_amount, rate) -%}
    cast(round(cast({{ line_amount }} as numeric(38, 2))
               * cast({{ rate }} as numeric(38, 6)), 2) as numeric(38, 2))
{%- endmacro %}

{#- A sum of 2-place money values, 0 when there is nothing to add. -#}
{% macro money_sum(expression) -%}
    cast(coalesce(sum({{ expression }}), 0) as numeric(38, 2))
{%- endmacro %}

{#-
  round(numerator / denominator, 4), half away from zero, for integers
  numerator >= 0 and denominator > 0, in integer arithmetic only (DuckDB's
  decimal division is DOUBLE; Postgres' numeric division keeps ~16
  significant digits, which can fake a tie): floor((2 * 10^4 * n + d) / (2 d))
  is the rounded value in units of 0.0001. NULL when denominator is 0.
-#}
{% macro ratio_4(numerator, denominator) -%}
    {#- the outer cast keeps the type numeric(38,4) on Postgres (CASE drops it) -#}
    cast(case when {{ denominator }} = 0 then null else
        cast({{ pipeline_props.int_div(
            "20000 * cast(" ~ numerator ~ " as bigint) + cast(" ~ denominator ~ " as bigint)",
            "2 * cast(" ~ denominator ~ " as bigint)") }} as numeric(38, 0)) * 0.0001
    end as numeric(38, 4))
{%- endmacro %}
