# -*- coding: utf-8 -*-
# vim: ft=sls
# The parameters map.jinja resolved for this minion (defaults < OS family <
# lookup < pillar, then the minion's roles), written to a file as
# template-formula's _mapdata does: for checking what a host will get
# (salt HOST state.apply pgfailover._mapdata). No secret is in it: map.jinja
# keeps the passwords out of mapdata.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}

pgfailover-mapdata-dump:
  file.serialize:
    - name: /tmp/salt_mapdata_dump.yaml
    - serializer: yaml
    - mode: '0600'
    - dataset: {{ {'values': mapdata} | json }}
