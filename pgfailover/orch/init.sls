# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch
# Bare hosts to a converged cluster in one step per host after the sync: the
# monitor's host installs and creates the monitor while each node's host
# installs and creates its node(s) (with the health endpoint when HAProxy is
# used). The node SLS orders them: the first node of the pillar waits for the
# monitor and becomes the primary, the others wait until a primary accepts
# the replicator. Then formation settings, and HAProxy on the hosts that run
# it. A re-run on a converged cluster changes nothing and never demotes or
# re-creates anything.
{%- set tplroot = tpldir.split('/')[0] %}
{#- map.jinja validates the pillar: a bad one stops here, before any host changes. #}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- set cluster = salt['pillar.get']('pgfailover', {}) %}
{%- set monitor_minion = cluster.get('monitor', {}).get('minion') %}
{%- set node_minions = [] %}
{%- for node in cluster.get('nodes', []) %}
{%-   if node.get('minion', node.name) not in node_minions %}
{%-     do node_minions.append(node.get('minion', node.name)) %}
{%-   endif %}
{%- endfor %}
{%- set postgres_hosts = ([monitor_minion] + node_minions) | unique | list %}
{%- set everyone = (postgres_hosts + mapdata.haproxy.minions) | unique | list %}
{#- Each node's SLS also starts its health endpoint when HAProxy needs it. #}
{%- set node_sls = [tplroot ~ '.node'] + ([tplroot ~ '.health'] if mapdata.health.enabled else []) %}
{#- A host runs one state job at a time: the monitor's host also creates its
    own nodes, in its one step. #}
{%- set monitor_sls = [tplroot ~ '.package', tplroot ~ '.config', tplroot ~ '.monitor']
                      + (node_sls if monitor_minion in node_minions else []) %}
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
{%- include tplroot ~ '/orch/haproxy.jinja' %}
