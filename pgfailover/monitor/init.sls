# -*- coding: utf-8 -*-
# vim: ft=sls
# The pg_auto_failover monitor: created, run by its own unit, answering, and
# its autoctl_node role protected by the pillar's password.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
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
{%- for key, value in mapdata.conn.items() %}
    - {{ key }}: {{ value }}
{%- endfor %}
    - require:
      - sls: {{ tplroot }}.package
      - sls: {{ tplroot }}.config

{%- set instance = 'monitor' %}
{%- set pgdata = monitor.pgdata %}
{%- set settings = mapdata.postgresql.settings %}
{%- set unit = monitor.unit %}
{%- set present = 'pgfailover-monitor-init-present' %}
{%- set prefix = 'pgfailover-monitor-init' %}
{%- include tplroot ~ '/files/instance.jinja' %}

pgfailover-monitor-init-ready:
  pgfailover.monitor_ready:
    - name: {{ monitor.pgdata }}
{%- for key, value in mapdata.conn.items() %}
    - {{ key }}: {{ value }}
{%- endfor %}
    - require:
      - service: pgfailover-monitor-init-service
      - pgfailover: pgfailover-monitor-init-settings-applied


pgfailover-monitor-init-autoctl-node-password:
  pgfailover.role_present:
    - name: autoctl_node
    - password_pillar: pgfailover:passwords:autoctl_node
{%-   for key, value in conn.items() %}
    - {{ key }}: {{ value }}
{%-   endfor %}
    - require:
      - pgfailover: pgfailover-monitor-init-ready

{#- A longer primary_demote_timeout is always safe: it goes first, before the
    nodes' timeouts change; shorter values wait for the formation step. #}

pgfailover-monitor-init-demote-timeout-raised-first:
  pgfailover.monitor_settings:
    - name: primary_demote_timeout
    - settings:
        primary_demote_timeout: {{ mapdata.failover_monitor.primary_demote_timeout }}
    - increase_only: True
{%- for key, value in conn.items() %}
    - {{ key }}: {{ value }}
{%- endfor %}
    - require:
      - pgfailover: pgfailover-monitor-init-ready
