# -*- coding: utf-8 -*-
# vim: ft=sls
# Backups off: the repository host's timers and configuration, every host's
# pgBackRest configuration, the SSH access the formula gave (its blocks in
# authorized_keys and known_hosts, the forced command) and its entry in the
# Salt mine; pgBackRest itself when clean:remove_packages (SSH stays: it may
# be how the host is administered). The repository stays unless
# clean:remove_data is true. The service user's key pair stays.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- set backup = mapdata.backup %}
{%- set ssh_dir = mapdata.home ~ '/.ssh' %}

{%- if backup.enabled and (mapdata.local_nodes or mapdata.is_backup_repository) %}
{%-   if not (mapdata.is_monitor or mapdata.local_nodes or mapdata.is_haproxy) %}

{#- The repository's host alone: the package source it got goes too. #}
include:
  - {{ tplroot }}.package.source_clean
{%-   endif %}
{%-   if mapdata.is_backup_repository %}
{%-     for kind in ['full', 'diff'] %}

pgfailover-backup-clean-{{ kind }}-timer:
  service.dead:
    - name: pgfailover-backup-{{ kind }}.timer
    - enable: False

pgfailover-backup-clean-{{ kind }}-units:
  file.absent:
    - names:
      - {{ mapdata.unit_dir }}/pgfailover-backup-{{ kind }}.service
      - {{ mapdata.unit_dir }}/pgfailover-backup-{{ kind }}.timer
    - require:
      - service: pgfailover-backup-clean-{{ kind }}-timer
    - require_in:
      - file: pgfailover-backup-clean-config
{%-     endfor %}
{%-     if mapdata.clean.remove_data %}

pgfailover-backup-clean-repository:
  file.absent:
    - name: {{ backup.path }}
    - require:
      - file: pgfailover-backup-clean-config
{%-     endif %}
{%-   endif %}

pgfailover-backup-clean-config:
  file.absent:
    - name: {{ backup.config_file }}

{%-   for file, marker in [('authorized_keys', 'access'), ('known_hosts', 'hosts')] %}

pgfailover-backup-clean-{{ file | replace('_', '-') }}:
  file.replace:
    - name: {{ ssh_dir }}/{{ file }}
    - pattern: '(?ms)^# BEGIN pgfailover pgBackRest {{ marker }} \(managed by Salt\)$.*?^# END pgfailover pgBackRest {{ marker }}\n'
    - repl: ''
    - backup: False
    - ignore_if_missing: True
{%-   endfor %}

pgfailover-backup-clean-ssh-command:
  file.absent:
    - name: {{ backup.ssh_command }}

pgfailover-backup-clean-grain:
  grains.absent:
    - name: pgfailover_backup
    - destructive: True

pgfailover-backup-clean-mine:
  module.run:
    - mine.delete:
      - fun: pgfailover_backup.identity
    - onchanges:
      - grains: pgfailover-backup-clean-grain
{%-   if mapdata.clean.remove_packages %}

pgfailover-backup-clean-package:
  pkg.removed:
    - name: pgbackrest
    - require:
      - file: pgfailover-backup-clean-config
{%-   endif %}
{%- endif %}
