# -*- coding: utf-8 -*-
# vim: ft=sls
# The formula's packages at the newest version their repository offers (same
# PostgreSQL major version: the package names carry it). Used by
# pgfailover.orch.upgrade, which restarts the monitor and then the nodes in
# the order pg_auto_failover requires; applied alone it restarts nothing.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}

include:
  - {{ tplroot }}.package.install

pgfailover-package-upgrade-latest:
  pkg.latest:
    - pkgs: {{ mapdata.packages | json }}
    - refresh: True
    - require:
      - sls: {{ tplroot }}.package.install
