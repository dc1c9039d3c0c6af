# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.replace_node pillar='{"replace_node": {"dead": ["pg3"]}}'
# salt-run state.orchestrate pgfailover.orch.replace_node pillar='{"replace_node": {"rebuild": ["pg2"]}}'
# A dead host's node is dropped from the monitor by force (from the monitor's
# host: the dead one cannot take part), then the nodes the pillar lists that
# the monitor does not know join (list the replacement in the pillar first).
# Refused up front when a node named dead is still the assigned primary (wait
# for the failover) or still healthy (use scale for a live node).
# A node to rebuild (its host is up, its node is wedged or broken; still listed
# in the pillar) is dropped by force too, its data directory and pg_autoctl
# files are moved aside on its host (never deleted), and it is cloned again.
# Refused when it is the assigned primary (switch over first).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/orch/cluster.jinja" import monitor_minion, formation, registered, pillar_nodes, refuse, preflight with context %}
{%- from tplroot ~ "/orch/steps.jinja" import join_steps, haproxy_step %}
{%- set dead = salt['pillar.get']('replace_node:dead', []) %}
{%- set dead = [dead] if dead is string else dead %}
{%- set rebuild = salt['pillar.get']('replace_node:rebuild', []) %}
{%- set rebuild = [rebuild] if rebuild is string else rebuild %}
{%- if not dead and not rebuild %}
{{-   refuse('replace_node', ['pillar key replace_node:dead must list the dead node(s) by name, or replace_node:rebuild the node(s) to clone again']) }}
{%- endif %}
{%- set still_listed = dead | select('in', pillar_nodes) | list %}
{%- if still_listed %}
{%-   set names = still_listed | join(', ') %}
{{-   refuse('replace_node', ['node(s) ' ~ names ~ ' still listed under pillar key pgfailover:nodes: replace them there first']) }}
{%- endif %}
{%- set not_listed = rebuild | reject('in', pillar_nodes) | list %}
{%- if not_listed %}
{%-   set names = not_listed | join(', ') %}
{{-   refuse('replace_node', ['node(s) ' ~ names ~ ' under pillar key replace_node:rebuild are not listed under pgfailover:nodes']) }}
{%- endif %}
{%- set dropping = dead | select('in', registered) | list %}
{%- if dropping %}
{{-   preflight('replace', {'nodes': dropping, 'formation': formation}) }}
{%- endif %}
{%- set rebuilding = rebuild | select('in', registered) | list %}
{%- if rebuilding %}
{{-   preflight('rebuild', {'nodes': rebuilding, 'formation': formation}) }}
{%- endif %}
{%- set prefix = 'pgfailover-orch-replace-node' %}
{%- set chain = {'step': None} %}
{%- set rebuild_minions = [] %}
{%- for name in rebuild %}{% do rebuild_minions.append(pillar_nodes[name].minion) %}{% endfor %}
{%- set rebuild_minions = rebuild_minions | unique | list %}
{%- if rebuild_minions %}

{#- The formula's modules on the hosts to rebuild first: set_aside is one of them. #}
{{ prefix }}-rebuild-sync:
  salt.state:
    - tgt: {{ rebuild_minions | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.sync
    - test: False
    - failhard: True
{%-   do chain.update({'step': prefix ~ '-rebuild-sync'}) %}
{%- endif %}

{%- for name in dropping + rebuilding %}

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
{%- for name in rebuild %}
{%-   set node = pillar_nodes[name] %}

{{ prefix }}-set-aside-{{ name }}:
  salt.function:
    - name: pgfailover_backup.set_aside
    - tgt: {{ node.minion }}
    - arg:
      - {{ node.pgdata }}
      - {{ node.unit }}
    - kwarg:
        label: before-rebuild
        home: {{ mapdata.home }}
    - failhard: True
{%-   if chain.step %}
    - require:
      - salt: {{ chain.step }}
{%-   endif %}
{%-   do chain.update({'step': prefix ~ '-set-aside-' ~ name}) %}
{%- endfor %}
{%- set joining = mapdata.nodes | rejectattr('name', 'in', registered | reject('in', rebuild) | list) | list %}
{#- The rebuilt nodes' hosts have the modules already (the first step). #}
{{- join_steps(tplroot, mapdata, prefix, chain, joining, synced=rebuild_minions) }}
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
