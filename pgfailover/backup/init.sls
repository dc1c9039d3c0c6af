# -*- coding: utf-8 -*-
# vim: ft=sls
# Backups with pgBackRest when the pillar has a backup section: on every
# node's host and on the repository host, their SSH identity; on node hosts,
# pgBackRest's configuration and the repository host's access; on the
# repository host, the repository, the nodes' access, the stanza and the
# backup timers. pgfailover.orch applies these in that order.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}

{%- if mapdata.backup.enabled and (mapdata.local_nodes or mapdata.is_backup_repository) %}
include:
  - {{ tplroot }}.backup.identity
{%-   if mapdata.local_nodes %}
  - {{ tplroot }}.backup.node
{%-   endif %}
{%-   if mapdata.is_backup_repository %}
  - {{ tplroot }}.backup.repository
{%-   endif %}
{%- endif %}
