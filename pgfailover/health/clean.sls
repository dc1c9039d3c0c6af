# -*- coding: utf-8 -*-
# vim: ft=sls
# The health endpoints go before their nodes: HAProxy sees them down first.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- set health = mapdata.health %}

{%- for node in mapdata.clean_nodes %}
{%-   set prefix = 'pgfailover-health-clean-' ~ node.name %}

{{ prefix }}-service:
  service.dead:
    - name: {{ node.health_unit }}
    - enable: False
{%-   if not mapdata.clean_formation %}
    - require_in:
      - file: pgfailover-health-clean-program
{%-   endif %}

{{ prefix }}-unit:
  file.absent:
    - name: {{ mapdata.unit_dir }}/{{ node.health_unit }}.service
    - require:
      - service: {{ prefix }}-service

{{ prefix }}-config:
  file.absent:
    - name: {{ health.config_dir }}/health-{{ node.name }}.json
    - require:
      - service: {{ prefix }}-service
{%-   if not mapdata.clean_formation %}
    - require_in:
      - pgfailover: pgfailover-health-clean-empty-dir-1
{%-   endif %}
{%- endfor %}
{#- What the host's nodes share stays while only one formation leaves. #}
{%- if not mapdata.clean_formation %}

pgfailover-health-clean-program:
  file.absent:
    - name: {{ health.program }}

# Only the files above are the formula's: their directories go when empty
# (no shell: the paths never reach one).
{%- for dir in [health.config_dir, salt['file.dirname'](health.program)] %}

pgfailover-health-clean-empty-dir-{{ loop.index }}:
  pgfailover.empty_directory_absent:
    - name: {{ dir }}
    - require:
      - file: pgfailover-health-clean-program
{%- endfor %}
{%- endif %}
