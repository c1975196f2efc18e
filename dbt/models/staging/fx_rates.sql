-- Fixed rates to USD (contract section 4), from var('fx_rates_to_usd').
{{ pipeline_props.fx_rates_relation() }}
