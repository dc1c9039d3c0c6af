# -*- coding: utf-8 -*-
# vim: ft=sls
# The pg_auto_failover monitor: created, run by its own unit, answering, its
# autoctl_node role protected by the pillar's password, and the pillar's
# formations created.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import conn_args, instance_states %}
{%- set monitor = mapdata.monitor %}
{%- set conn = dict(mapdata.conn, pgdata=monitor.pgdata) %}

include:
  - {{ tplroot }}.package
  - {{ tplroot }}.config

pgfailover-monitor-init-present:
  pgfailover.monitor_present:
    - name: {{ monitor.pgdata }}
    - hostname: {{ monitor.hostname }}
    - port: {{ monitor.port }}
    - auth: {{ mapdata.auth }}
    - ssl: {{ mapdata.ssl_arg | json }}
{{- conn_args(mapdata.conn) }}
    - require:
      - sls: {{ tplroot }}.package
      - sls: {{ tplroot }}.config

{{ instance_states(tplroot, mapdata, 'monitor', monitor.pgdata, monitor.unit, mapdata.postgresql.settings,
                   'pgfailover-monitor-init-present', 'pgfailover-monitor-init') }}

pgfailover-monitor-init-ready:
  pgfailover.monitor_ready:
    - name: {{ monitor.pgdata }}
{{- conn_args(mapdata.conn) }}
    - require:
      - service: pgfailover-monitor-init-service
      - pgfailover: pgfailover-monitor-init-settings-applied


pgfailover-monitor-init-autoctl-node-password:
  pgfailover.role_present:
    - name: autoctl_node
    - password_pillar: pgfailover:passwords:autoctl_node
{{- conn_args(conn) }}
    - require:
      - pgfailover: pgfailover-monitor-init-ready

{#- The pillar's formations other than pg_auto_failover's own `default`: a
    node can only register in a formation that exists, so they are created
    with the monitor (their first node waits for them, ready_to_join). #}
{%- for formation in mapdata.formations if formation.name != 'default' %}

pgfailover-monitor-init-formation-{{ formation.name }}:
  pgfailover.formation_present:
    - name: {{ formation.name }}
    - dbname: {{ formation.dbname }}
{{- conn_args(conn) }}
    - require:
      - pgfailover: pgfailover-monitor-init-ready
{%- endfor %}

{#- A longer primary_demote_timeout is always safe: it goes first, before the
    nodes' timeouts change; shorter values wait for the formation step. #}

pgfailover-monitor-init-demote-timeout-raised-first:
  pgfailover.monitor_settings:
    - name: primary_demote_timeout
    - settings:
        primary_demote_timeout: {{ mapdata.failover_monitor.primary_demote_timeout }}
    - increase_only: True
{{- conn_args(conn) }}
    - require:
      - pgfailover: pgfailover-monitor-init-ready
