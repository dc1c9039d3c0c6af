# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.rolling [pillar='{"rolling": {"sls": ["patches"], "restart": true}}']
# A maintenance window, one node at a time: the node goes into maintenance,
# the work is done (the SLS files named in rolling:sls, then a restart of its
# pg_autoctl unit unless rolling:restart is false), it leaves maintenance and
# the formation converges before the next node. Secondaries first; the primary
# last, after a switchover. Refused up front when the formation has not
# converged, when no secondary can take over, or when one standby in
# maintenance would leave fewer than number_sync_standbys.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/orch/cluster.jinja" import monitor_minion, formation, table, primary, hosted, refuse, preflight with context %}
{%- from tplroot ~ "/orch/steps.jinja" import rolling_steps %}
{%- set work_sls = salt['pillar.get']('rolling:sls', []) %}
{%- set work_sls = [work_sls] if work_sls is string else work_sls %}
{%- set restart = salt['pillar.get']('rolling:restart', True) %}
{{- preflight('rolling', {'formation': formation}) }}
{%- set prefix = 'pgfailover-orch-rolling' %}
{%- set chain = {'step': None} %}
{{- rolling_steps(prefix, chain, monitor_minion, formation, table, primary, hosted, work_sls, restart, refuse) }}
