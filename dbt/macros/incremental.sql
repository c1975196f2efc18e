{#-
  The incremental mode of the project (var pp_incremental, default false;
  docs/architecture.md, "Incremental marts"). Off, every model renders exactly
  the full-refresh SQL and none of these macros adds anything.

  On: int_staged_rows registers every staged row once, with the number of the
  run that first saw it (pp_run). Every other model is incremental with a
  unique key; its rows carry pp_run, the run it was applied up to, so its
  watermark, max(pp_run), commits in the same transaction as its rows (a run
  killed between two models leaves each model whole, and the rerun applies to
  each exactly the runs it misses). A model recomputes the keys that the event
  ids arrived since its watermark can touch (every staged version of those
  events, whatever batch it came in), from all staged data; a key with nothing
  left gets a tombstone row, which the strategy writes over the old row and
  the post-hook deletes.
-#}

{% macro incremental_mode() -%}
    {{ return(var('pp_incremental', false) in (true, 'true', 'True', 'TRUE', 1, '1')) }}
{%- endmacro %}

{#- Postgres: delete+insert; DuckDB and Snowflake: merge. -#}
{% macro incremental_strategy() -%}
    {{ return('delete+insert' if target.type == 'postgres' else 'merge') }}
{%- endmacro %}

{#-
  The model's config in incremental mode (nothing in full mode). Logged
  tables: an unlogged table is emptied by a Postgres crash, and with it the
  state the next run builds on.
-#}
{% macro incremental_config(unique_key, tombstones=false) -%}
    {%- if pipeline_props.incremental_mode() -%}
        {{ config(materialized='incremental', unique_key=unique_key, unlogged=false,
                  incremental_strategy=pipeline_props.incremental_strategy(),
                  post_hook=(["delete from {{ this }} where pp_tombstone"] if tombstones else [])) }}
        {#- Snowflake: merge's default temporary view lives in the model's schema, which the emulator
            refuses (docs/snowflake.md, E9); a transient table is valid on both and dropped after the merge. -#}
        {%- if target.type == 'snowflake' -%}
            {{ config(tmp_relation_type='transient') }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The run being applied: the newest run registered in int_staged_rows. -#}
{% macro current_run() -%}
    (select coalesce(max(pp_run), 0) from {{ ref('int_staged_rows') }})
{%- endmacro %}

{#- This model's watermark: every run up to it is applied to its rows. -#}
{% macro applied_run() -%}
    (select coalesce(max(pp_run), 0) from {{ this }})
{%- endmacro %}

{#- Event ids of the valid rows registered after this model's watermark. -#}
{% macro arrived_event_ids() -%}
    select distinct event_id
    from {{ ref('int_staged_rows') }}
    where reason is null and pp_run > {{ pipeline_props.applied_run() }}
{%- endmacro %}

{#- The values of `columns` over every staged version of the arrived events: the keys they can touch. -#}
{% macro touched_keys(columns) -%}
    select distinct {{ columns | join(', ') }}
    from {{ ref('int_staged_rows') }}
    where reason is null
        and event_id in ({{ pipeline_props.arrived_event_ids() }})
{%- endmacro %}

{#- `alias` has a row of `relation` with the same `columns`. -#}
{% macro same_key(relation, alias, columns) -%}
    exists (select 1 from {{ relation }} as pp_k where
    {%- for column in columns %} pp_k.{{ column }} = {{ alias }}.{{ column }}{{ " and" if not loop.last }}{% endfor %})
{%- endmacro %}

{#- The two hidden columns of every incremental model's row (nothing in full mode). -#}
{% macro run_columns() -%}
    {%- if pipeline_props.incremental_mode() -%}
    ,
    cast(false as boolean) as pp_tombstone,
    cast({{ pipeline_props.current_run() }} as bigint) as pp_run
    {%- endif -%}
{%- endmacro %}

{#-
  Tombstones: a row per touched key (`keys`, a CTE) that `built` (a CTE) no
  longer has, NULL in the `values` columns. (The UNION drops the typmod of
  numeric(38,2) columns in the temporary relation; the insert into the model's
  table casts back, so on_schema_change keeps dbt's default, ignore.)
-#}
{% macro tombstones(keys, key_columns, built, values) -%}
    select
    {%- for column in key_columns %}
        {{ keys }}.{{ column }},
    {%- endfor %}
    {%- for column in values %}
        null as {{ column }},
    {%- endfor %}
        cast(true as boolean) as pp_tombstone,
        cast({{ pipeline_props.current_run() }} as bigint) as pp_run
    from {{ keys }}
    where not {{ pipeline_props.same_key(built, keys, key_columns) }}
{%- endmacro %}

{#-
  Snowflake's merge strategy: dbt-snowflake's own MERGE (default__get_merge_sql,
  as snowflake__get_merge_sql writes it for a unique key) in its explicit
  begin .. commit, with the tombstones' delete inside that transaction.
  dbt-snowflake runs post-hooks after the commit, so without it a run killed
  between the two would leave tombstone rows visible; the post-hook then finds
  nothing. Models without tombstones (no pp_tombstone column) get dbt's merge as is.
-#}
{% macro snowflake__get_incremental_merge_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set dml = default__get_merge_sql(target, arg_dict['temp_relation'], arg_dict['unique_key'],
                                         arg_dict['dest_columns'], arg_dict['incremental_predicates']) -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='name') | map('lower') | list -%}
    {%- if pipeline_props.incremental_mode() and arg_dict['unique_key'] and 'pp_tombstone' in columns -%}
        {%- set dml = dml ~ ";\n    delete from " ~ target ~ " where pp_tombstone" -%}
    {%- endif -%}
    {{ return(snowflake_dml_explicit_transaction(dml)) }}
{%- endmacro %}
