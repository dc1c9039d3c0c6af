# -*- coding: utf-8 -*-
# vim: ft=sls
# On the monitor: the formation has converged with every node the pillar
# lists, then its number_sync_standbys and the failover profile's monitor
# settings are set (aggressive timings only once the formation is stable, and
# after the nodes' own timeouts), then a final check that fails loudly with
# the state table.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import conn_args %}
{%- set conn = dict(mapdata.conn, pgdata=mapdata.monitor.pgdata) %}

pgfailover-formation-init-converged:
  pgfailover.converged:
    - name: {{ mapdata.formation }}
    - timeout: 300
    - expect_nodes: {{ mapdata.nodes | length }}
{{- conn_args(conn) }}

pgfailover-formation-init-settings:
  pgfailover.formation_present:
    - name: {{ mapdata.formation }}
    - dbname: {{ mapdata.dbname }}
{%- if mapdata.number_sync_standbys is not none %}
    - number_sync_standbys: {{ mapdata.number_sync_standbys }}
{%- endif %}
{{- conn_args(conn) }}
    - require:
      - pgfailover: pgfailover-formation-init-converged

pgfailover-formation-init-failover-profile:
  pgfailover.monitor_settings:
    - name: {{ mapdata.failover.profile }}
    - settings: {{ mapdata.failover_monitor | json }}
{{- conn_args(conn) }}
    - require:
      - pgfailover: pgfailover-formation-init-converged

pgfailover-formation-init-final-check:
  pgfailover.converged:
    - name: {{ mapdata.formation }}
    - timeout: 120
    - expect_nodes: {{ mapdata.nodes | length }}
{{- conn_args(conn) }}
    - require:
      - pgfailover: pgfailover-formation-init-settings
      - pgfailover: pgfailover-formation-init-failover-profile
