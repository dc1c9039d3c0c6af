# -*- coding: utf-8 -*-
# vim: ft=sls
# PostgreSQL and pg_auto_failover from the distribution, a repository the
# pillar names, or (RHEL family) a vendor RPM file shipped through salt://.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- set repo = mapdata.repo %}

{%- if grains.os_family == 'Debian' %}

pgfailover-package-install-no-main-cluster:
  file.managed:
    - name: /etc/postgresql-common/createcluster.d/pgfailover.conf
    - makedirs: True
    - contents: |
        # Managed by Salt (pgfailover): pg_auto_failover creates the instances here.
        create_main_cluster = false

{%-   if repo.kind == 'url' %}

pgfailover-package-install-apt-source:
  file.managed:
    - name: /etc/apt/sources.list.d/pgfailover.list
    - contents: |
        # Managed by Salt (pgfailover)
        deb {{ '[trusted=yes] ' if repo.get('trusted') else '' }}{{ repo.url }} {{ repo.get('suite', './') }} {{ repo.get('components', []) | join(' ') }}

pgfailover-package-install-apt-update:
  cmd.run:
    - name: apt-get update -q -o Dir::Etc::sourcelist=sources.list.d/pgfailover.list -o Dir::Etc::sourceparts=-
    - onchanges:
      - file: pgfailover-package-install-apt-source
    - require_in:
      - pkg: pgfailover-package-install-packages
{%-   endif %}

pgfailover-package-install-packages:
  pkg.installed:
    - pkgs: {{ mapdata.packages | json }}
    - install_recommends: False
    - require:
      - file: pgfailover-package-install-no-main-cluster

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
{%-   if repo.kind == 'url' %}

pgfailover-package-install-yum-repo:
  pkgrepo.managed:
    - name: pgfailover
    - humanname: PostgreSQL packages for pgfailover
    - baseurl: {{ repo.url }}
    - gpgcheck: {{ 1 if repo.get('gpgkey') else 0 }}
{%-     if repo.get('gpgkey') %}
    - gpgkey: {{ repo.gpgkey }}
{%-     endif %}
    - require_in:
      - pkg: pgfailover-package-install-packages
{%-   endif %}

pgfailover-package-install-packages:
  pkg.installed:
    - pkgs: {{ mapdata.packages | json }}
{%- endif %}

{%- for unit in mapdata.distribution_units %}

pgfailover-package-install-distribution-unit-{{ unit }}-off:
  service.dead:
    - name: {{ unit }}
    - enable: False
    - require:
      - pkg: pgfailover-package-install-packages
{%- endfor %}
