{#-
  Hints for the Postgres planner, nothing on the other adapters. Measured on
  1M staged rows (docs/architecture.md, "End to end, 1M rows").
-#}

{#-
  A CTE that a model reads twice: Postgres materializes such a CTE into a
  tuple store (the whole staged row, 1M rows: 0.4 s of int_duplicate_events'
  1.1 s) unless it is marked not materialized; inlined, each reference is a
  plain scan of the staging table.
-#}
{% macro inline_cte() -%}
    {{ return(adapter.dispatch('inline_cte', 'pipeline_props')()) }}
{%- endmacro %}

{% macro default__inline_cte() -%}
{%- endmacro %}

{% macro postgres__inline_cte() -%}
    not materialized
{%- endmacro %}

{#-
  Statistics for a table that later models join: a table just built has
  none, and Postgres guessed int_duplicate_events (a few rows) large enough
  to hash the 1M staged rows instead (int_accepted_events 3.6 s, 1.4 s after
  ANALYZE). A post-hook of the form the compiled runners render
  ("{{ this }}" only), added at parse time on Postgres alone.
-#}
{% macro analyze_after_build() -%}
    {%- if target.type == 'postgres' -%}
        {{ config(post_hook=['analyze {{ this }}']) }}
    {%- endif -%}
{%- endmacro %}
