# -*- coding: utf-8 -*-
# vim: ft=sls
# Where packages come from: Debian's no-main-cluster rule, and the apt source
# or yum repository the pillar names (repo:kind url). Shared by the
# PostgreSQL packages and the backup packages (a repository host without
# PostgreSQL needs the same source).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- set repo = mapdata.repo %}

{%- if grains.os_family == 'Debian' %}

pgfailover-package-source-no-main-cluster:
  file.managed:
    - name: /etc/postgresql-common/createcluster.d/pgfailover.conf
    - makedirs: True
    - contents: |
        # Managed by Salt (pgfailover): pg_auto_failover creates the instances here.
        create_main_cluster = false

{%-   if repo.kind == 'url' %}

{%-     set apt_line = ['deb', '[trusted=yes]' if repo.get('trusted') else '', repo.url,
                        repo.get('suite', './')] + repo.get('components', []) %}

pgfailover-package-source-apt:
  pkgrepo.managed:
    - name: {{ apt_line | select | join(' ') | yaml_dquote }}
    - file: /etc/apt/sources.list.d/pgfailover.list
    - clean_file: True
{%-     if repo.get('trusted') %}
    - trusted: True
{%-     endif %}
    - refresh: True
{%-   endif %}

{%- elif repo.kind == 'url' %}

pgfailover-package-source-yum:
  pkgrepo.managed:
    - name: pgfailover
    - humanname: PostgreSQL packages for pgfailover
    - baseurl: {{ repo.url }}
    - gpgcheck: {{ 1 if repo.get('gpgkey') else 0 }}
{%-   if repo.get('gpgkey') %}
    - gpgkey: {{ repo.gpgkey }}
{%-   endif %}
{%- else %}

{#- rpm_file: the vendor RPM carries its own packages; nothing to add. #}
pgfailover-package-source-none:
  test.nop:
    - name: packages from the vendor RPM file
{%- endif %}
