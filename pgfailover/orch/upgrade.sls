# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.upgrade
# pg_auto_failover (and PostgreSQL minor) upgrade in the order upstream
# requires: the packages on every host first, then the monitor restarts (it
# updates its extension), then each node restarts in a rolling maintenance
# window (secondaries, then the primary after a switchover). Ends by checking
# that the monitor's extension is the version every pg_autoctl expects.
# Refused up front like rolling.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/orch/cluster.jinja" import monitor_minion, formation, table, primary, hosted, everyone, refuse, preflight with context %}
{%- from tplroot ~ "/orch/steps.jinja" import rolling_steps %}
{{- preflight('rolling', {'formation': formation}) }}
{%- set prefix = 'pgfailover-orch-upgrade' %}

{{ prefix }}-sync:
  salt.state:
    - tgt: {{ everyone | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.sync
    # Even in a dry run (test=True): the other steps render with these modules.
    # Syncing fills the minion's module cache and changes nothing on the host.
    - test: False
    - failhard: True

{{ prefix }}-packages:
  salt.state:
    - tgt: {{ everyone | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.package.upgrade
    - failhard: True
    - require:
      - salt: {{ prefix }}-sync

{{ prefix }}-monitor-restart:
  salt.function:
    - name: service.restart
    - tgt: {{ monitor_minion }}
    - arg:
      - {{ mapdata.monitor.unit }}
    - failhard: True
    - require:
      - salt: {{ prefix }}-packages

{{ prefix }}-monitor-ready:
  salt.function:
    - name: pgfailover.wait_monitor
    - tgt: {{ monitor_minion }}
    - kwarg:
        timeout: 120
    - failhard: True
    - require:
      - salt: {{ prefix }}-monitor-restart

{%- set chain = {'step': prefix ~ '-monitor-ready'} %}
{{- rolling_steps(prefix, chain, monitor_minion, formation, table, primary, hosted, [], True, refuse) }}

{{ prefix }}-versions:
  salt.function:
    - name: pgfailover.version
    - tgt: {{ everyone | join(',') }}
    - tgt_type: list
    - failhard: True
    - require:
      - salt: {{ chain.step }}

{{ prefix }}-monitor-extension-current:
  salt.function:
    - name: pgfailover.monitor_extension
    - tgt: {{ monitor_minion }}
    - failhard: True
    - require:
      - salt: {{ prefix }}-versions
    - kwarg:
        require_current: True
