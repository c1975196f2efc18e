{#- The rates of var('fx_rates_to_usd') as a relation (currency, rate). -#}
{% macro fx_rates_relation() -%}
    {%- set rates = var('fx_rates_to_usd') -%}
    select currency, cast(rate as numeric(38, 6)) as rate
    from (values
    {%- for code, rate in rates.items() | sort %}
        ('{{ code }}', '{{ rate }}'){{ "," if not loop.last }}
    {%- endfor %}
    ) as fx (currency, rate)
{%- endmacro %}
