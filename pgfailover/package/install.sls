# -*- coding: utf-8 -*-
# vim: ft=sls
# PostgreSQL and pg_auto_failover from the distribution, a repository the
# pillar names, or (RHEL family) a vendor RPM file shipped through salt://.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- set repo = mapdata.repo %}

include:
  - {{ tplroot }}.package.source

{%- if grains.os_family == 'Debian' %}

pgfailover-package-install-packages:
  pkg.installed:
    - pkgs: {{ mapdata.packages | json }}
    - install_recommends: False
    - require:
      - sls: {{ tplroot }}.package.source

{%- elif repo.kind == 'rpm_file' %}

pgfailover-package-install-rpm-file:
  file.managed:
    - name: /var/cache/pgfailover/{{ mapdata.rpm_file.source.split('/')[-1] }}
    - source: {{ mapdata.rpm_file.source }}
    - makedirs: True

pgfailover-package-install-packages:
  pkg.installed:
    - sources:
      - {{ mapdata.rpm_file.name }}: /var/cache/pgfailover/{{ mapdata.rpm_file.source.split('/')[-1] }}
    - require:
      - file: pgfailover-package-install-rpm-file

{%- else %}

pgfailover-package-install-packages:
  pkg.installed:
    - pkgs: {{ mapdata.packages | json }}
    - require:
      - sls: {{ tplroot }}.package.source
{%- endif %}

{%- for unit in mapdata.distribution_units %}

pgfailover-package-install-distribution-unit-{{ unit }}-off:
  service.dead:
    - name: {{ unit }}
    - enable: False
    - require:
      - pkg: pgfailover-package-install-packages
{%- endfor %}
