# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.switchover [pillar='{"switchover": {"to": "pg2"}}']
# A planned switchover (or, with `to`, the promotion of that node), once the
# formation has converged; waits until it has converged again and reports the
# old and the new primary. Refused up front when no healthy secondary with a
# candidate priority above 0 can take over.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/orch/cluster.jinja" import monitor_minion, formation, preflight with context %}
{%- set to = salt['pillar.get']('switchover:to') or None %}
{{- preflight('switchover', {'target': to, 'formation': formation}) }}

pgfailover-orch-switchover-perform:
  salt.function:
    - name: pgfailover.{{ 'promote' if to else 'switchover' }}
    - tgt: {{ monitor_minion }}
{%- if to %}
    - arg:
      - {{ to }}
{%- endif %}
    - kwarg:
        formation: {{ formation }}
        timeout: 120
    - failhard: True
