# -*- coding: utf-8 -*-
# vim: ft=sls
# The host's role comes from the cluster described in pillar: the monitor's
# minion gets the monitor, each node's minion gets its node(s) and their
# health endpoints, the minions haproxy:minions lists get HAProxy, and with a
# backup section, the nodes' hosts and backup:minion get pgBackRest, and with
# a metrics section, the monitor's and the nodes' hosts get their exporters.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}

{%- set postgres_host = mapdata.is_monitor or mapdata.local_nodes %}
{%- set backup_host = mapdata.backup.enabled and (mapdata.local_nodes or mapdata.is_backup_repository) %}
{%- if postgres_host or mapdata.is_haproxy or backup_host %}
include:
{%-   if postgres_host %}
  - .package
  - .config
{%-   endif %}
{%-   if mapdata.is_monitor %}
  - .monitor
{%-   endif %}
{%-   if mapdata.local_nodes %}
  - .node
{%-   endif %}
{%-   if mapdata.local_nodes and mapdata.health.enabled %}
  - .health
{%-   endif %}
{%-   if mapdata.is_haproxy %}
  - .haproxy
{%-   endif %}
{%-   if backup_host %}
  - .backup
{%-   endif %}
{%-   if postgres_host and mapdata.metrics.enabled %}
  - .metrics
{%-   endif %}
{%- endif %}
