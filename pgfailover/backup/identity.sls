# -*- coding: utf-8 -*-
# vim: ft=sls
# pgBackRest and SSH on this host, and its identity for the other hosts of the
# formation: the service user's own key pair (the private key never leaves
# this host) and the host key, published in the Salt mine. Keys rather than
# pgBackRest's TLS server: no CA to run and no extra daemon on every host; the
# keys only ever run pgBackRest (see files/pgbackrest_ssh.sh.jinja).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import files_switch %}
{%- set backup = mapdata.backup %}
{%- set ssh_dir = mapdata.home ~ '/.ssh' %}

include:
  - {{ tplroot }}.package.source

pgfailover-backup-identity-packages:
  pkg.installed:
    - pkgs: {{ mapdata.backup_packages | json }}
{%- if grains.os_family == 'Debian' %}
    - install_recommends: False
{%- endif %}
    - require:
      - sls: {{ tplroot }}.package.source

pgfailover-backup-identity-sshd:
  service.running:
    - name: {{ mapdata.ssh_service }}
    - enable: True
    - require:
      - pkg: pgfailover-backup-identity-packages

pgfailover-backup-identity-ssh-dir:
  file.directory:
    - name: {{ ssh_dir }}
    - user: {{ mapdata.user }}
    - group: {{ mapdata.group }}
    - mode: '0700'
    - require:
      - pkg: pgfailover-backup-identity-packages

pgfailover-backup-identity-key:
  cmd.run:
    - name: ssh-keygen -q -t ed25519 -N '' -C '{{ mapdata.user }}@{{ grains.id }} (pgfailover backups)' -f {{ ssh_dir }}/id_ed25519
    - runas: {{ mapdata.user }}
    - creates: {{ ssh_dir }}/id_ed25519
    - require:
      - file: pgfailover-backup-identity-ssh-dir

{#- The only command the other hosts' keys may run here. #}
pgfailover-backup-identity-ssh-command:
  file.managed:
    - name: {{ backup.ssh_command }}
    - source: {{ files_switch(tplroot, mapdata, 'pgbackrest_ssh.sh.jinja') }}
    - template: jinja
    - context:
        pgbackrest: {{ backup.pgbackrest }}
    - mode: '0755'
    - makedirs: True

pgfailover-backup-identity-config-dir:
  file.directory:
    - name: {{ salt['file.dirname'](backup.config_file) }}
    - mode: '0755'
    - require:
      - pkg: pgfailover-backup-identity-packages

pgfailover-backup-identity-log-dir:
  file.directory:
    - name: {{ backup.log_path }}
    - user: {{ mapdata.user }}
    - group: {{ mapdata.group }}
    - mode: '0750'
    - require:
      - pkg: pgfailover-backup-identity-packages

{#- What the pgfailover_backup execution module reads its defaults from. #}
pgfailover-backup-identity-grain:
  grains.present:
    - name: pgfailover_backup
    - force: True
    - value:
        user: {{ mapdata.user }}
        home: {{ mapdata.home }}
        stanza: {{ backup.stanza }}
        pgbackrest: {{ backup.pgbackrest }}
        bindir: {{ mapdata.bindir }}
        socket_dir: {{ mapdata.socket_dir }}
        runtime_dir: {{ mapdata.runtime_dir }}

pgfailover-backup-identity-published:
  pgfailover_backup.identity_published:
    - name: pgBackRest SSH identity of {{ grains.id }}
    - require:
      - cmd: pgfailover-backup-identity-key
      - service: pgfailover-backup-identity-sshd
      - grains: pgfailover-backup-identity-grain
