# -*- coding: utf-8 -*-
# vim: ft=sls
# The service user's formula-managed files and the grain, after the instances.
# pg_autoctl's own configuration (~/.config/pg_autoctl) goes only with
# pgfailover:clean:remove_data: it describes data that is kept otherwise.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}

{#- Only the components that have states on this host can be required. #}
{%- set before = (['monitor'] if mapdata.is_monitor else []) + (['node'] if mapdata.local_nodes else []) %}

include:
  - {{ tplroot }}.monitor.clean

{%- for path in [mapdata.home ~ '/.pgpass', '/etc/tmpfiles.d/pgfailover.conf', mapdata.runtime_dir,
                 mapdata.pidfile_guard]
              + ([mapdata.home ~ '/.postgresql/root.crt'] if mapdata.ssl.mode == 'ca' else [])
              + ([mapdata.home ~ '/.config/pg_autoctl', mapdata.home ~ '/.local/share/pg_autoctl']
                 if mapdata.clean.remove_data is sameas true else []) %}

pgfailover-config-clean-{{ path }}:
  file.absent:
    - name: {{ path }}
{%-   if before %}
    - require:
{%-     for component in before %}
      - sls: {{ tplroot }}.{{ component }}.clean
{%-     endfor %}
{%-   endif %}
{%- endfor %}

{%- set guard_dir = salt['file.dirname'](mapdata.pidfile_guard) %}

pgfailover-config-clean-pidfile-guard-dir:
  pgfailover.empty_directory_absent:
    - name: {{ guard_dir }}
    - require:
      - file: pgfailover-config-clean-{{ mapdata.pidfile_guard }}

pgfailover-config-clean-grain:
  grains.absent:
    - name: pgfailover
    - destructive: True
    - force: True
{%- if before %}
    - require:
{%-   for component in before %}
      - sls: {{ tplroot }}.{{ component }}.clean
{%-   endfor %}
{%- endif %}
