# -*- coding: utf-8 -*-
# vim: ft=sls
# A node's host: pgBackRest's configuration (the repository host to push WAL
# to, restore from, and be backed up by), and the repository host's access.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import files_switch %}
{%- from tplroot ~ "/backup/access.jinja" import ssh_access with context %}
{%- set backup = mapdata.backup %}

include:
  - {{ tplroot }}.backup.identity

pgfailover-backup-node-config:
  file.managed:
    - name: {{ backup.config_file }}
    - source: {{ files_switch(tplroot, mapdata, 'pgbackrest_node.conf.jinja') }}
    - template: jinja
    - context:
        backup: {{ backup | json }}
        user: {{ mapdata.user }}
        node: {{ mapdata.local_nodes[0] | json }}
        socket_dir: {{ mapdata.socket_dir }}
    - user: {{ mapdata.user }}
    - group: {{ mapdata.group }}
    - mode: '0640'
    - require:
      - file: pgfailover-backup-identity-config-dir
{{ ssh_access('pgfailover-backup-node', {backup.minion: [backup.hostname]}, mapdata) }}
