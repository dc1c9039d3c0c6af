# -*- coding: utf-8 -*-
# vim: ft=sls
# The health endpoint HAProxy checks on each of this host's nodes: one small
# HTTP service per node (/primary, /replica), with its own unit, reading the
# keeper's state file and the local PostgreSQL; it never asks the monitor.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import conn_args, files_switch %}
{%- set health = mapdata.health %}

include:
  - {{ tplroot }}.node

pgfailover-health-init-packages:
  pkg.installed:
    - pkgs: {{ mapdata.health_packages | json }}
    - install_recommends: False
    - require:
      - sls: {{ tplroot }}.node

pgfailover-health-init-program:
  file.managed:
    - name: {{ health.program }}
    - source: {{ files_switch(tplroot, mapdata, 'pgfailover_health.py') }}
    - makedirs: True
    - mode: '0755'

{%- for node in mapdata.local_nodes %}
{%-   set prefix = 'pgfailover-health-init-' ~ node.name %}

{#- The endpoint asks PostgreSQL as this role, never as the superuser: it
    listens without authentication. Created on the primary, replicated. #}
{{ prefix }}-role:
  pgfailover.monitoring_role_present:
    - name: {{ health.dbuser }}
    - connection_limit: {{ health.connection_limit }}
    - pgdata: {{ node.pgdata }}
{{- conn_args(mapdata.conn) }}
    - require:
      - sls: {{ tplroot }}.node

{{ prefix }}-config:
  file.serialize:
    - name: {{ health.config_dir }}/health-{{ node.name }}.json
    - makedirs: True
    - serializer: json
    - mode: '0644'
    - dataset:
        node: {{ node.name }}
        bind: {{ health.bind }}
        port: {{ node.health_port }}
        socket_dir: {{ mapdata.socket_dir }}
        pgport: {{ node.port }}
        dbuser: {{ health.dbuser }}
        workers: {{ health.workers }}
        {#- HAProxy's hosts get workers of their own (a flood cannot delay its checks). #}
        reserved_sources: {{ (health.reserved_sources if health.reserved_sources is not none else mapdata.haproxy.minions) | json }}
        reserved_workers: {{ health.reserved_workers }}
        cache_ms: {{ health.cache_ms }}
        state_file: {{ mapdata.home }}/.local/share/pg_autoctl{{ node.pgdata }}/pg_autoctl.state
        replica_max_lag_bytes: {{ health.replica_max_lag_bytes }}
        replica_max_silence: {{ health.replica_max_silence }}
        isolation_timeout: {{ node.isolation_timeout }}

{{ prefix }}-unit:
  file.managed:
    - name: {{ mapdata.unit_dir }}/{{ node.health_unit }}.service
    - source: {{ files_switch(tplroot, mapdata, 'health.service.jinja') }}
    - template: jinja
    - context:
        node: {{ node.name }}
        node_unit: {{ node.unit }}
        program: {{ health.program }}
        config: {{ health.config_dir }}/health-{{ node.name }}.json
        user: {{ mapdata.user }}
        group: {{ mapdata.group }}

{{ prefix }}-service:
  service.running:
    - name: {{ node.health_unit }}
    - enable: True
    - require:
      - pkg: pgfailover-health-init-packages
      - pgfailover: {{ prefix }}-role
    - watch:
      - file: pgfailover-health-init-program
      - file: {{ prefix }}-config
      - file: {{ prefix }}-unit
{%- endfor %}
