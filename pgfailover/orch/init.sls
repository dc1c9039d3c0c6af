# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch
# Bare hosts to a converged cluster: packages on the nodes' hosts while the
# monitor's host installs and creates the monitor, then the primary, the
# secondaries in parallel (each with its health endpoint when HAProxy is
# used), formation settings, HAProxy on the hosts that run it.
# A re-run on a converged cluster changes nothing and never demotes or
# re-creates anything: the primary step targets the node that is primary now.
{%- set tplroot = tpldir.split('/')[0] %}
{#- map.jinja validates the pillar: a bad one stops here, before any host changes. #}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- set cluster = salt['pillar.get']('pgfailover', {}) %}
{%- set monitor_minion = cluster.get('monitor', {}).get('minion') %}
{%- set node_minions = [] %}
{%- set minion_of = {} %}
{%- for node in cluster.get('nodes', []) %}
{%-   do minion_of.update({node.name: node.get('minion', node.name)}) %}
{%-   if node.get('minion', node.name) not in node_minions %}
{%-     do node_minions.append(node.get('minion', node.name)) %}
{%-   endif %}
{%- endfor %}
{%- set postgres_hosts = ([monitor_minion] + node_minions) | unique | list %}
{%- set everyone = (postgres_hosts + mapdata.haproxy.minions) | unique | list %}
{#- Hosts with nodes but not the monitor (that one gets its packages in the monitor's step). #}
{%- set node_hosts = node_minions | reject('equalto', monitor_minion) | list %}
{#- Each node's step also starts its health endpoint when HAProxy needs it. #}
{%- set node_sls = [tplroot ~ '.node'] + ([tplroot ~ '.health'] if mapdata.health.enabled else []) %}

{#- The node that is primary now (re-run), else the first node listed. #}
{%- set answer = salt['saltutil.cmd'](monitor_minion, 'pgfailover.primary', timeout=15)
                  if monitor_minion else {} %}
{%- set current = (answer.get(monitor_minion, {}) or {}).get('ret') %}
{%- if current is mapping and current.get('nodename') in minion_of %}
{%-   set primary_minion = minion_of[current.nodename] %}
{%- else %}
{%-   set primary_minion = node_minions[0] if node_minions else None %}
{%- endif %}
{%- set secondary_minions = node_minions | reject('equalto', primary_minion) | list %}

pgfailover-orch-init-sync:
  salt.state:
    - tgt: {{ everyone | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.sync
    - failhard: True

{#- The monitor's host creates the monitor in the same run as its packages,
    beside the nodes' hosts installing theirs: one step less on the way to
    the primary. #}
pgfailover-orch-init-monitor:
  salt.state:
    - tgt: {{ monitor_minion }}
    - sls:
      - {{ tplroot }}.package
      - {{ tplroot }}.config
      - {{ tplroot }}.monitor
    - failhard: True
    - parallel: True
    - require:
      - salt: pgfailover-orch-init-sync
{%- if node_hosts %}

pgfailover-orch-init-packages:
  salt.state:
    - tgt: {{ node_hosts | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.package
      - {{ tplroot }}.config
    - failhard: True
    - parallel: True
    - require:
      - salt: pgfailover-orch-init-sync
    - require_in:
      - salt: pgfailover-orch-init-primary
{%- endif %}

pgfailover-orch-init-primary:
  salt.state:
    - tgt: {{ primary_minion }}
    - sls: {{ node_sls | json }}
    - failhard: True
    - require:
      - salt: pgfailover-orch-init-monitor

{%- if secondary_minions %}

pgfailover-orch-init-secondaries:
  salt.state:
    - tgt: {{ secondary_minions | join(',') }}
    - tgt_type: list
    - sls: {{ node_sls | json }}
    - failhard: True
    - require:
      - salt: pgfailover-orch-init-primary
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
      - salt: pgfailover-orch-init-primary
{#- HAProxy last, once the formation has converged (the same step as scale's). #}
{%- set prefix = 'pgfailover-orch-init' %}
{%- set chain = {'step': 'pgfailover-orch-init-formation'} %}
{%- include tplroot ~ '/orch/haproxy.jinja' %}
