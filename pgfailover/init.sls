# -*- coding: utf-8 -*-
# vim: ft=sls
# The host's role comes from the cluster described in pillar: the monitor's
# minion gets the monitor, each node's minion gets its node(s).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}

{%- if mapdata.is_monitor or mapdata.local_nodes %}
include:
  - .package
  - .config
{%-   if mapdata.is_monitor %}
  - .monitor
{%-   endif %}
{%-   if mapdata.local_nodes %}
  - .node
{%-   endif %}
{%- endif %}
