# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.backup [pillar='{"backup_now": {"type": "full"}}']
# A backup now, on the repository host: incr by default (pgBackRest takes a
# full one when none exists), or the type asked (full, diff, incr). It reads
# from a secondary when backup:from_standby is set. Returns the backup as
# pgfailover_backup.info lists it.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- set request = salt['pillar.get']('backup_now', {}) %}
{%- set problems = [] %}
{%- if not mapdata.backup.enabled %}
{%-   do problems.append('the pillar has no pgfailover:backup section: backups are not set up') %}
{%- endif %}
{%- if request is not mapping or request.keys() | reject('in', ['type']) | list %}
{%-   do problems.append('pillar backup_now must be a mapping with at most the key type') %}
{%- elif request.get('type', 'incr') not in ['full', 'diff', 'incr'] %}
{%-   do problems.append('pillar backup_now:type is ' ~ request.type ~ '; allowed: full, diff, incr') %}
{%- endif %}
{%- if problems %}
{{-   raise('pgfailover: backup refused, nothing was changed: ' ~ problems | join('; ')) }}
{%- endif %}

pgfailover-orch-backup-now:
  salt.function:
    - name: pgfailover_backup.backup
    - tgt: {{ mapdata.backup.minion }}
    - kwarg:
        type: {{ request.get('type', 'incr') }}
    - failhard: True
