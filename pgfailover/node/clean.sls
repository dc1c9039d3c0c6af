# -*- coding: utf-8 -*-
# vim: ft=sls
# This host's nodes (with pgfailover:clean:formation, that formation's only)
# leave their formation (refused for a primary that still has secondaries:
# switch over first), then their units go. PGDATA is removed only with
# pgfailover:clean:remove_data.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import conn_args %}
{%- set remove_data = mapdata.clean.remove_data is sameas true %}

{%- for node in mapdata.clean_nodes %}
{%-   set prefix = 'pgfailover-node-clean-' ~ node.name %}

{{ prefix }}-dropped:
  pgfailover.node_absent:
    - name: {{ node.name }}
    - destroy: {{ remove_data }}
    - allow_last_standby: {{ mapdata.clean.get('allow_last_standby', False) is sameas true }}
    - pgdata: {{ node.pgdata }}
    - formation: {{ node.formation }}
{{- conn_args(mapdata.conn) }}

# A dropped keeper exits and Restart=always brings it back two seconds later;
# service.dead sees that pause as "already dead" and would not stop the unit,
# so the unit is stopped explicitly while it is still enabled.
{{ prefix }}-service-stop:
  module.run:
    - service.stop:
      - name: {{ node.unit }}
    - onlyif:
      - fun: service.enabled
        name: {{ node.unit }}
    - require:
      - pgfailover: {{ prefix }}-dropped

{{ prefix }}-service:
  service.dead:
    - name: {{ node.unit }}
    - enable: False
    - require:
      - module: {{ prefix }}-service-stop

{{ prefix }}-unit:
  file.absent:
    - name: {{ mapdata.unit_dir }}/{{ node.unit }}.service
    - require:
      - service: {{ prefix }}-service
{%-   if remove_data %}

{{ prefix }}-data:
  file.absent:
    - name: {{ node.pgdata }}
    - require:
      - service: {{ prefix }}-service
{%-   endif %}
{%- endfor %}
