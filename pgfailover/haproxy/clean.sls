# -*- coding: utf-8 -*-
# vim: ft=sls
# HAProxy goes first: clients lose the stable address before any node goes.
# The package is removed with pgfailover:clean:remove_packages (default).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}

{%- if mapdata.is_haproxy %}
{%-   if not (mapdata.is_monitor or mapdata.local_nodes or mapdata.is_backup_repository) %}

{#- HAProxy's host alone: the package source it got goes too. #}
include:
  - {{ tplroot }}.package.source_clean
{%-   endif %}

pgfailover-haproxy-clean-service:
  service.dead:
    - name: haproxy
    - enable: False

{%-   if mapdata.clean.remove_packages %}

pgfailover-haproxy-clean-package:
  pkg.purged:
    - name: {{ mapdata.haproxy_package }}
    - require:
      - service: pgfailover-haproxy-clean-service
{%-   else %}

pgfailover-haproxy-clean-config:
  file.absent:
    - name: {{ mapdata.haproxy_config }}
    - require:
      - service: pgfailover-haproxy-clean-service
{%-   endif %}
{%- endif %}
