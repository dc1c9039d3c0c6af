# -*- coding: utf-8 -*-
# vim: ft=sls
# The monitor's unit goes after this host's nodes; its PGDATA only with
# pgfailover:clean:remove_data.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- set monitor = mapdata.monitor %}

include:
  - {{ tplroot }}.node.clean

{%- if mapdata.is_monitor %}

pgfailover-monitor-clean-service:
  service.dead:
    - name: {{ monitor.unit }}
    - enable: False
{%-   if mapdata.local_nodes %}
    - require:
      - sls: {{ tplroot }}.node.clean
{%-   endif %}

pgfailover-monitor-clean-unit:
  file.absent:
    - name: {{ mapdata.unit_dir }}/{{ monitor.unit }}.service
    - require:
      - service: pgfailover-monitor-clean-service
{%-   if mapdata.clean.remove_data is sameas true %}

pgfailover-monitor-clean-data:
  file.absent:
    - name: {{ monitor.pgdata }}
    - require:
      - service: pgfailover-monitor-clean-service
{%-   endif %}
{%- endif %}
