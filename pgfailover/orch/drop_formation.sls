# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.drop_formation pillar='{"drop_formation": "billing"}'
# A formation of pgfailover:formations leaves the monitor: its nodes' hosts
# drop its nodes one host at a time, its primary's host last (exporters,
# health endpoints, then the nodes, their units; data directories stay unless
# pgfailover:clean:remove_data is true), then the monitor drops the
# formation. Other formations on the same hosts and monitor are left alone.
# Remove the formation from the pillar afterwards. Refused, before anything
# changes, for the top-level formation (it goes with pgfailover.orch.clean)
# and for a name the pillar does not list.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/pillar.jinja" import cluster with context %}
{%- set name = salt['pillar.get']('drop_formation') %}
{%- set listed = mapdata.formations[1:] | map(attribute='name') | list %}
{%- if name not in listed %}
{%-   set allowed = 'a formation of pgfailover:formations (' ~ (listed | join(', ') or 'none') ~ '); the top-level formation '
                    ~ mapdata.formation ~ ' goes with pgfailover.orch.clean' %}
{{-   raise('pgfailover: drop_formation refused, nothing was changed: pillar key drop_formation is '
            ~ (name or 'not set') ~ '; allowed: ' ~ allowed) }}
{%- endif %}
{%- set formation = mapdata.formations | selectattr('name', 'equalto', name) | first %}
{%- set monitor_minion = mapdata.monitor.minion %}
{%- set minions = formation.nodes | map(attribute='minion') | list | unique %}
{#- Its primary's host goes last (without an answer: its first node's host). #}
{%- set answer = salt['saltutil.cmd'](monitor_minion, 'pgfailover.primary', kwarg={'formation': name}, timeout=15) %}
{%- set current = (answer.get(monitor_minion, {}) or {}).get('ret') %}
{%- set primary = (formation.nodes | selectattr('name', 'equalto', current.nodename) | first) if current is mapping else none %}
{%- set last = primary.minion if primary else minions[0] %}
{%- set ordered = (minions | reject('equalto', last) | list) + [last] %}
{%- set clean = dict(cluster.get('clean') or {}, formation=name, allow_last_standby=True) %}
{%- set clean_pillar = {'pgfailover': {'clean': clean} } %}
{%- set sls = ([tplroot ~ '.metrics.clean'] if mapdata.metrics.enabled else [])
              + ([tplroot ~ '.health.clean'] if mapdata.health.enabled else []) + [tplroot ~ '.node.clean'] %}
{%- set previous = {'step': None} %}
{%- for minion in ordered %}

pgfailover-orch-drop-formation-{{ name }}-{{ minion }}:
  salt.state:
    - tgt: {{ minion }}
    - sls: {{ sls | json }}
    - pillar: {{ clean_pillar | json }}
    - failhard: True
{%-   if previous.step %}
    - require:
      - salt: {{ previous.step }}
{%-   endif %}
{%-   do previous.update({'step': 'pgfailover-orch-drop-formation-' ~ name ~ '-' ~ minion}) %}
{%- endfor %}

pgfailover-orch-drop-formation-{{ name }}-monitor:
  salt.state:
    - tgt: {{ monitor_minion }}
    - sls:
      - {{ tplroot }}.formation.clean
    - pillar: {{ clean_pillar | json }}
    - failhard: True
    - require:
      - salt: {{ previous.step }}
