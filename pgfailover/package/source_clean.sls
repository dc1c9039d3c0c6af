# -*- coding: utf-8 -*-
# vim: ft=sls
# What package.source added, removed: for a host that ran it without
# PostgreSQL (HAProxy's or the backup repository's host alone); a host with
# PostgreSQL leaves it to package.clean.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}

{%- if grains.os_family == 'Debian' %}

pgfailover-package-source-clean-files:
  file.absent:
    - names:
      - /etc/apt/sources.list.d/pgfailover.list
      - /etc/postgresql-common/createcluster.d/pgfailover.conf
{%- elif mapdata.repo.kind == 'url' %}

pgfailover-package-source-clean-yum:
  pkgrepo.absent:
    - name: pgfailover
{%- else %}

pgfailover-package-source-clean-none:
  test.nop:
    - name: packages came from the vendor RPM file
{%- endif %}
