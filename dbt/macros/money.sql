{#-
  Contract section 4, exact on every adapter and without floating point.

  Amounts are carried as whole cents in bigint: the line amount with integer
  arithmetic only, then one exact decimal multiplication by the rate. Sums of
  cents are exact (Postgres sums bigint into numeric, DuckDB into HUGEINT) and
  are turned into numeric(38,2) at the end. This is several times cheaper on
  Postgres than numeric arithmetic on every row, and on DuckDB it keeps
  DOUBLE (integer '/', decimal '/') and DECIMAL(18) overflow out of the path.

  Bounds (contract section 2): |quantity| <= 1e5, unit_price <= 1e6 (1e8
  cents), discount in thousandths <= 1000, so |quantity * cents * (1000 -
  thousandths)| <= 1e16 < 2^63; a line is at most 1e13 cents.
-#}

{#- round(quantity * unit_price * (1 - discount), 2) in cents, half away from zero. -#}
{% macro line_amount_cents(quantity, unit_price, discount) -%}
    {%- set scaled -%}
        (cast({{ quantity }} as bigint)
         * cast({{ unit_price }} * 100 as bigint)
         * (1000 - cast({{ discount }} * 1000 as bigint)))
    {%- endset -%}
    {{ pipeline_props.round_div_half_away(scaled, 1000) }}
{%- endmacro %}

{#- round(line_amount * rate, 2) in cents: exact decimal product, half away from zero. -#}
{% macro amount_usd_cents(line_cents, rate) -%}
    cast(round(cast({{ line_cents }} as numeric(38, 0)) * cast({{ rate }} as numeric(38, 6)), 0) as bigint)
{%- endmacro %}

{#-
  round(numerator / divisor) for a bigint numerator of any sign and a positive
  even integer constant divisor, half away from zero, in integer arithmetic.
-#}
{% macro round_div_half_away(numerator, divisor) -%}
    (case when {{ numerator }} < 0
        then -{{ pipeline_props.int_div("-" ~ numerator ~ " + " ~ (divisor // 2), divisor) }}
        else {{ pipeline_props.int_div(numerator ~ " + " ~ (divisor // 2), divisor) }}
    end)
{%- endmacro %}

{#- A sum of whole cents as money numeric(38,2), 0 when there is nothing to add. -#}
{% macro cents_sum(expression) -%}
    {{ pipeline_props.cents(pipeline_props.exact_sum(expression)) }}
{%- endmacro %}

{#- Whole cents (an exact number, NULL for none) as money numeric(38,2). -#}
{% macro cents(expression) -%}
    cast(cast(coalesce({{ expression }}, 0) as numeric(38, 0)) * 0.01 as numeric(38, 2))
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
