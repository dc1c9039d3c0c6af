# -*- coding: utf-8 -*-
# vim: ft=sls
# The repository host: the repository, pgBackRest's configuration (every node
# of the formation, so backups follow whichever is primary and read from a
# secondary), the nodes' access, the stanza, and the backup timers.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import files_switch %}
{%- from tplroot ~ "/backup/access.jinja" import ssh_access with context %}
{%- set backup = mapdata.backup %}
{%- set peers = {} %}
{%- for node in mapdata.nodes %}
{%-   do peers.setdefault(node.minion, []).append(node.hostname) %}
{%- endfor %}

include:
  - {{ tplroot }}.backup.identity

pgfailover-backup-repository-path:
  file.directory:
    - name: {{ backup.path }}
    - user: {{ mapdata.user }}
    - group: {{ mapdata.group }}
    - mode: '0750'
    - makedirs: True
    - require:
      - pkg: pgfailover-backup-identity-packages

{#- The passphrase (backup:encryption) is read from pillar by the template:
    it is in this file only, never in a diff. #}
pgfailover-backup-repository-config:
  file.managed:
    - name: {{ backup.config_file }}
    - source: {{ files_switch(tplroot, mapdata, 'pgbackrest_repository.conf.jinja') }}
    - template: jinja
    - context:
        backup: {{ backup | json }}
        user: {{ mapdata.user }}
        nodes: {{ mapdata.nodes | json }}
        socket_dir: {{ mapdata.socket_dir }}
    - user: {{ mapdata.user }}
    - group: {{ mapdata.group }}
    - mode: '0640'
    - show_changes: False
    - require:
      - file: pgfailover-backup-identity-config-dir
{{ ssh_access('pgfailover-backup-repository', peers, mapdata) }}

pgfailover-backup-repository-stanza:
  pgfailover_backup.stanza_present:
    - name: {{ backup.stanza }}
    - require:
      - file: pgfailover-backup-repository-path
      - file: pgfailover-backup-repository-config
      - file: pgfailover-backup-repository-authorized-keys
      - file: pgfailover-backup-repository-known-hosts
      - pgfailover_backup: pgfailover-backup-identity-published

{%- for kind, calendar in backup.schedule | dictsort %}
{%-   set unit = 'pgfailover-backup-' ~ kind %}
{%-   if calendar %}

pgfailover-backup-repository-{{ kind }}-units:
  file.managed:
    - names:
      - {{ mapdata.unit_dir }}/{{ unit }}.service:
        - contents: |
            # Managed by Salt (pgfailover)
            [Unit]
            Description=pgBackRest {{ kind }} backup of stanza {{ backup.stanza }} (pgfailover)
            After=network-online.target
            Wants=network-online.target

            [Service]
            Type=oneshot
            User={{ mapdata.user }}
            ExecStart={{ backup.pgbackrest }} --stanza={{ backup.stanza }} --type={{ kind }} backup
      - {{ mapdata.unit_dir }}/{{ unit }}.timer:
        - contents: |
            # Managed by Salt (pgfailover)
            [Unit]
            Description=pgBackRest {{ kind }} backups of stanza {{ backup.stanza }} (pgfailover)

            [Timer]
            OnCalendar={{ calendar }}
            Persistent=true

            [Install]
            WantedBy=timers.target

pgfailover-backup-repository-{{ kind }}-units-loaded:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: pgfailover-backup-repository-{{ kind }}-units

pgfailover-backup-repository-{{ kind }}-timer:
  service.running:
    - name: {{ unit }}.timer
    - enable: True
    - require:
      - pgfailover_backup: pgfailover-backup-repository-stanza
      - module: pgfailover-backup-repository-{{ kind }}-units-loaded
    - watch:
      - file: pgfailover-backup-repository-{{ kind }}-units
{%-   else %}

pgfailover-backup-repository-{{ kind }}-timer:
  service.dead:
    - name: {{ unit }}.timer
    - enable: False

pgfailover-backup-repository-{{ kind }}-units:
  file.absent:
    - names:
      - {{ mapdata.unit_dir }}/{{ unit }}.service
      - {{ mapdata.unit_dir }}/{{ unit }}.timer
    - require:
      - service: pgfailover-backup-repository-{{ kind }}-timer
{%-   endif %}
{%- endfor %}
