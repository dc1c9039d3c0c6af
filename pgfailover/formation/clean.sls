# -*- coding: utf-8 -*-
# vim: ft=sls
# On the monitor, with pgfailover:clean:formation (pgfailover.orch.drop_formation):
# that formation is dropped, once its nodes have left. Without it nothing
# happens here: the formations go with the monitor (pgfailover.monitor.clean).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import conn_args %}
{%- if mapdata.is_monitor and mapdata.clean_formation %}

pgfailover-formation-clean-dropped:
  pgfailover.formation_absent:
    - name: {{ mapdata.clean_formation }}
{{- conn_args(dict(mapdata.conn, pgdata=mapdata.monitor.pgdata)) }}
{%- endif %}
