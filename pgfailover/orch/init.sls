# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch
# Bare hosts to a converged cluster in one step per host after the sync: the
# monitor's host installs and creates the monitor while each node's host
# installs and creates its node(s) (with the health endpoint when HAProxy is
# used). The node SLS orders them: the first node of the pillar waits for the
# monitor and becomes the primary, the others wait until a primary accepts
# the replicator. Then formation settings, and HAProxy on the hosts that run
# it. With a backup section: every host's pgBackRest SSH identity in the
# same steps (and on a dedicated repository host), then the nodes' pgBackRest
# configuration, then the repository host's (stanza and timers), which needs
# the nodes' access and a primary. With a metrics section, every PostgreSQL
# host's exporters in its step. A re-run on a converged cluster changes
# nothing and never demotes or re-creates anything.
{%- set tplroot = tpldir.split('/')[0] %}
{#- map.jinja validates the pillar: a bad one stops here, before any host changes. #}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/orch/steps.jinja" import haproxy_step %}
{%- set monitor_minion = mapdata.monitor.minion %}
{#- Every formation's nodes: the formations come up side by side. #}
{%- set node_minions = mapdata.all_nodes | map(attribute='minion') | list | unique %}
{%- set postgres_hosts = ([monitor_minion] + node_minions) | unique | list %}
{%- set everyone = (postgres_hosts + mapdata.haproxy.minions
                   + ([mapdata.backup.minion] if mapdata.backup.enabled else [])) | unique | list %}
{#- Each node's SLS also starts its health endpoint when HAProxy needs it. #}
{%- set backup = mapdata.backup %}
{%- set identity_sls = [tplroot ~ '.backup.identity'] if backup.enabled else [] %}
{%- set metrics_sls = [tplroot ~ '.metrics'] if mapdata.metrics.enabled else [] %}
{%- set node_sls = [tplroot ~ '.node'] + ([tplroot ~ '.health'] if mapdata.health.enabled else []) + identity_sls + metrics_sls %}
{#- A host runs one state job at a time: the monitor's host also creates its
    own nodes, in its one step. #}
{%- set monitor_sls = ([tplroot ~ '.package', tplroot ~ '.config', tplroot ~ '.monitor']
                      + (node_sls if monitor_minion in node_minions else [])
                      + (identity_sls if backup.minion == monitor_minion else []) + metrics_sls) | unique | list %}
{%- set repository_alone = backup.enabled and backup.minion not in postgres_hosts %}
{%- set node_hosts = node_minions | reject('equalto', monitor_minion) | list %}

pgfailover-orch-init-sync:
  salt.state:
    - tgt: {{ everyone | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.sync
    # Even in a dry run (test=True): the other steps render with these modules.
    # Syncing fills the minion's module cache and changes nothing on the host.
    - test: False
    - failhard: True

pgfailover-orch-init-monitor:
  salt.state:
    - tgt: {{ monitor_minion }}
    - sls: {{ monitor_sls | json }}
    - failhard: True
    - parallel: True
    - require:
      - salt: pgfailover-orch-init-sync
{%- if node_hosts %}

pgfailover-orch-init-nodes:
  salt.state:
    - tgt: {{ node_hosts | join(',') }}
    - tgt_type: list
    - sls: {{ ([tplroot ~ '.package', tplroot ~ '.config'] + node_sls) | json }}
    - failhard: True
    - parallel: True
    - require:
      - salt: pgfailover-orch-init-sync
    - require_in:
      - salt: pgfailover-orch-init-formation
{%- endif %}

{%- if repository_alone %}

pgfailover-orch-init-backup-repository-identity:
  salt.state:
    - tgt: {{ backup.minion }}
    - sls: {{ identity_sls | json }}
    - failhard: True
    - parallel: True
    - require:
      - salt: pgfailover-orch-init-sync
{%- endif %}
{%- if backup.enabled %}

{#- The nodes' side first: the repository host connects to them to create
    the stanza; then the repository host's side. #}
pgfailover-orch-init-backup-nodes:
  salt.state:
    - tgt: {{ node_minions | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.backup.node
    - failhard: True
    - require:
      - salt: pgfailover-orch-init-monitor
{%-   if node_hosts %}
      - salt: pgfailover-orch-init-nodes
{%-   endif %}
{%-   if repository_alone %}
      - salt: pgfailover-orch-init-backup-repository-identity
{%-   endif %}

pgfailover-orch-init-backup-repository:
  salt.state:
    - tgt: {{ backup.minion }}
    - sls:
      - {{ tplroot }}.backup.repository
    - failhard: True
    - require:
      - salt: pgfailover-orch-init-backup-nodes
    - require_in:
      - salt: pgfailover-orch-init-formation
{%- endif %}

pgfailover-orch-init-formation:
  salt.state:
    - tgt: {{ monitor_minion }}
    - sls:
      - {{ tplroot }}.formation
    - failhard: True
    - require:
      - salt: pgfailover-orch-init-monitor
{#- HAProxy last, once the formation has converged (the same step as scale's). #}
{%- set prefix = 'pgfailover-orch-init' %}
{%- set chain = {'step': 'pgfailover-orch-init-formation'} %}
{{- haproxy_step(tplroot, mapdata, prefix, chain) }}
