# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.scale [pillar='{"scale": {"parallel": true, "remove_data": false}}']
# The formation follows the pillar's node list: listed nodes that the monitor
# does not know join (one host at a time, or all at once with scale:parallel),
# registered nodes the pillar no longer lists leave with a clean drop, their
# units stopped and their data kept unless scale:remove_data is true. Then
# the formation's settings and a final convergence check. Refused up front
# when a removal takes the primary or leaves too few standbys for
# number_sync_standbys.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/orch/cluster.jinja" import monitor_minion, formation, registered, pillar_nodes, hosted, everyone, refuse, preflight with context %}
{%- from tplroot ~ "/orch/steps.jinja" import join_steps, haproxy_step %}
{%- set parallel = salt['pillar.get']('scale:parallel', False) %}
{%- set remove_data = salt['pillar.get']('scale:remove_data', False) is sameas true %}
{%- set joining = mapdata.nodes | rejectattr('name', 'in', registered) | list %}
{%- set leaving = registered | reject('in', pillar_nodes) | list %}
{%- if not registered %}
{{-   refuse('scale', ['the monitor lists no node: build the cluster with pgfailover.orch first']) }}
{%- endif %}
{%- if leaving %}
{{-   preflight('remove', {'nodes': leaving, 'sync_standbys': mapdata.number_sync_standbys, 'formation': formation}) }}
{%-   set unknown = leaving | reject('in', hosted) | list %}
{%-   if unknown %}
{%-     set names = unknown | join(', ') %}
{{-     refuse('scale', ['no minion carries the pgfailover grain of node(s) ' ~ names ~ ': if their host is gone, use pgfailover.orch.replace_node']) }}
{%-   endif %}
{%- endif %}
{%- set prefix = 'pgfailover-orch-scale' %}
{%- set chain = {'step': None} %}
{{- join_steps(tplroot, mapdata, prefix, chain, joining, parallel=parallel) }}

{%- for name in leaving %}
{%-   set host = hosted[name] %}
{%-   set step = prefix ~ '-leave-' ~ name %}
{#-   The leaving node alone (sync standbys unset: one node has none to count). #}
{%-   set clean_pillar = {'pgfailover': {'nodes': [{'name': name, 'minion': host.minion, 'pgdata': host.pgdata}],
                                         'number_sync_standbys': None,
                                         'clean': {'remove_data': remove_data, 'remove_packages': False} } } %}

{{ step }}:
  salt.state:
    - tgt: {{ host.minion }}
    - sls:
      - {{ tplroot }}.health.clean
      - {{ tplroot }}.node.clean
{%-   if host.minion not in everyone %}
      - {{ tplroot }}.config.clean
{%-   endif %}
    - pillar: {{ clean_pillar | json }}
    - failhard: True
{%-   if chain.step %}
    - require:
      - salt: {{ chain.step }}
{%-   endif %}
{%-   do chain.update({'step': step}) %}
{%- endfor %}

{{- haproxy_step(tplroot, mapdata, prefix, chain) }}

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
