# -*- coding: utf-8 -*-
# vim: ft=sls
# The service user's directories, its .pgpass, and the pgfailover grain that
# the execution module reads its defaults from.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import files_switch %}

include:
  - {{ tplroot }}.package

pgfailover-config-runtime-dir:
  file.directory:
    - name: {{ mapdata.runtime_dir }}
    - user: {{ mapdata.user }}
    - group: {{ mapdata.group }}
    - mode: '0700'
    - require:
      - sls: {{ tplroot }}.package

pgfailover-config-runtime-dir-at-boot:
  file.managed:
    - name: /etc/tmpfiles.d/pgfailover.conf
    - contents: |
        # Managed by Salt (pgfailover): pg_autoctl's pid and lock files.
        d {{ mapdata.runtime_dir }} 0700 {{ mapdata.user }} {{ mapdata.group }} -

pgfailover-config-data-root:
  file.directory:
    - name: {{ mapdata.data_root }}
    - user: {{ mapdata.user }}
    - group: {{ mapdata.group }}
    - mode: '0700'
    - makedirs: True
    - require:
      - sls: {{ tplroot }}.package

# Run before every start of a pg_auto_failover unit: removes a postmaster.pid
# left by a power cut whose PID now belongs to another process (see the file).
pgfailover-config-pidfile-guard:
  file.managed:
    - name: {{ mapdata.pidfile_guard }}
    - source: {{ files_switch(tplroot, mapdata, 'pidfile_guard.sh') }}
    - mode: '0755'
    - makedirs: True

# Passwords for pg_autoctl's internal roles, read from pillar by the template:
# never on a command line, never shown in a diff.
pgfailover-config-pgpass:
  file.managed:
    - name: {{ mapdata.home }}/.pgpass
    - source: {{ files_switch(tplroot, mapdata, 'pgpass.jinja') }}
    - template: jinja
    - context:
        monitor_hostname: {{ mapdata.monitor.hostname }}
        monitor_port: {{ mapdata.monitor.port }}
    - user: {{ mapdata.user }}
    - group: {{ mapdata.group }}
    - mode: '0600'
    - show_changes: False
    - require:
      - sls: {{ tplroot }}.package

{%- if mapdata.ssl.mode == 'ca' %}
{%-   set served = ([mapdata.monitor.hostname] if mapdata.is_monitor else [])
                   + mapdata.local_nodes | map(attribute='hostname') | list %}

{#- Before pg_autoctl is given the files: a clear refusal, naming the file. #}
pgfailover-config-certificates:
  pgfailover.certificates_valid:
    - name: {{ grains.id }}
    - ca_file: {{ mapdata.ssl.ca_file }}
    - server_cert: {{ mapdata.ssl.server_cert }}
    - server_key: {{ mapdata.ssl.server_key }}
    - hostnames: {{ served | json }}
    - user: {{ mapdata.user }}
    - require:
      - sls: {{ tplroot }}.package

{#- libpq's default root certificate for the service user: every connection
    pg_autoctl and PostgreSQL make as that user (to the monitor, replication,
    pg_rewind, the monitor's health checks, the formula's waits) verifies the
    server against the pillar's CA with sslmode verify-full. A link, so a
    renewed CA file is used as soon as it is in place. #}
pgfailover-config-root-certificate:
  file.symlink:
    - name: {{ mapdata.home }}/.postgresql/root.crt
    - target: {{ mapdata.ssl.ca_file }}
    - makedirs: True
    - user: {{ mapdata.user }}
    - group: {{ mapdata.group }}
    - require:
      - pgfailover: pgfailover-config-certificates
{%- endif %}

pgfailover-config-grain:
  grains.present:
    - name: pgfailover
    - force: True
    - value:
        role: {{ ((['monitor'] if mapdata.is_monitor else []) + (['node'] if mapdata.local_nodes else [])) | json }}
        formation: {{ mapdata.local_nodes[0].formation if mapdata.local_nodes else mapdata.formation }}
        name: {{ (mapdata.local_nodes | map(attribute='name') | list | first) if mapdata.local_nodes else 'monitor' }}
        pgdata: {{ mapdata.local_nodes[0].pgdata if mapdata.local_nodes else mapdata.monitor.pgdata }}
        monitor_pgdata: {{ mapdata.monitor.pgdata if mapdata.is_monitor else '' }}
        user: {{ mapdata.user }}
        home: {{ mapdata.home }}
        runtime_dir: {{ mapdata.runtime_dir }}
        pg_autoctl: {{ mapdata.pg_autoctl }}
        bindir: {{ mapdata.bindir }}
