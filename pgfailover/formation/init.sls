# -*- coding: utf-8 -*-
# vim: ft=sls
# On the monitor: each formation of the pillar has converged with every node
# the pillar lists for it, then its number_sync_standbys and the failover
# profile's monitor settings are set (aggressive timings only once the
# formations are stable, and after the nodes' own timeouts), then a final
# check per formation that fails loudly with the state table.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import conn_args %}
{%- set conn = dict(mapdata.conn, pgdata=mapdata.monitor.pgdata) %}
{#- The top-level formation keeps its state IDs (pgfailover-formation-init-*). #}
{%- set first_name = mapdata.formations[0].name %}
{%- for formation in mapdata.formations %}
{%-   set prefix = 'pgfailover-formation-init' ~ ('' if formation.name == first_name else '-' ~ formation.name) %}

{{ prefix }}-converged:
  pgfailover.converged:
    - name: {{ formation.name }}
    - timeout: 300
    - expect_nodes: {{ formation.nodes | length }}
{{- conn_args(conn) }}
    - require_in:
      - pgfailover: pgfailover-formation-init-failover-profile

{{ prefix }}-settings:
  pgfailover.formation_present:
    - name: {{ formation.name }}
    - dbname: {{ formation.dbname }}
{%-   if formation.number_sync_standbys is not none %}
    - number_sync_standbys: {{ formation.number_sync_standbys }}
{%-   endif %}
{{- conn_args(conn) }}
    - require:
      - pgfailover: {{ prefix }}-converged
{%- endfor %}

pgfailover-formation-init-failover-profile:
  pgfailover.monitor_settings:
    - name: {{ mapdata.failover.profile }}
    - settings: {{ mapdata.failover_monitor | json }}
{{- conn_args(conn) }}
{%- for formation in mapdata.formations %}
{%-   set prefix = 'pgfailover-formation-init' ~ ('' if formation.name == first_name else '-' ~ formation.name) %}

{{ prefix }}-final-check:
  pgfailover.converged:
    - name: {{ formation.name }}
    - timeout: 120
    - expect_nodes: {{ formation.nodes | length }}
{{- conn_args(conn) }}
    - require:
      - pgfailover: {{ prefix }}-settings
      - pgfailover: pgfailover-formation-init-failover-profile
{%- endfor %}
