# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.replace_node pillar='{"replace_node": {"dead": ["pg3"]}}'
# A dead host's node is dropped from the monitor by force (from the monitor's
# host: the dead one cannot take part), then the nodes the pillar lists that
# the monitor does not know join (list the replacement in the pillar first).
# Refused up front when a node named dead is still the assigned primary (wait
# for the failover) or still healthy (use scale for a live node).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/orch/cluster.jinja" import monitor_minion, formation, registered, pillar_nodes, refuse, preflight with context %}
{%- set dead = salt['pillar.get']('replace_node:dead', []) %}
{%- set dead = [dead] if dead is string else dead %}
{%- if not dead %}
{{-   refuse('replace_node', ['pillar key replace_node:dead must list the dead node(s) by name']) }}
{%- endif %}
{%- set still_listed = dead | select('in', pillar_nodes) | list %}
{%- if still_listed %}
{%-   set names = still_listed | join(', ') %}
{{-   refuse('replace_node', ['node(s) ' ~ names ~ ' still listed under pillar key pgfailover:nodes: replace them there first']) }}
{%- endif %}
{%- set dropping = dead | select('in', registered) | list %}
{%- if dropping %}
{{-   preflight('replace', {'nodes': dropping, 'formation': formation}) }}
{%- endif %}
{%- set prefix = 'pgfailover-orch-replace-node' %}
{%- set chain = {'step': None} %}

{%- for name in dropping %}

{{ prefix }}-drop-{{ name }}:
  salt.function:
    - name: pgfailover.drop_node
    - tgt: {{ monitor_minion }}
    - kwarg:
        name: {{ name }}
        force: True
        formation: {{ formation }}
    - failhard: True
{%-   if chain.step %}
    - require:
      - salt: {{ chain.step }}
{%-   endif %}
{%-   do chain.update({'step': prefix ~ '-drop-' ~ name}) %}
{%- endfor %}
{%- set joining = mapdata.nodes | rejectattr('name', 'in', registered) | list %}
{%- set parallel = False %}
{%- include tplroot ~ '/orch/join.jinja' %}
{%- include tplroot ~ '/orch/haproxy.jinja' %}

{{ prefix }}-formation:
  salt.state:
    - tgt: {{ monitor_minion }}
    - sls:
      - {{ tplroot }}.formation
    - failhard: True
{%- if chain.step %}
    - require:
      - salt: {{ chain.step }}
{%- endif %}
