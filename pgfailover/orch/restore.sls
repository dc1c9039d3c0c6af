# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.restore pillar='{"restore": {"target_time": "2026-12-01 10:15:00+00"}}'
#   (or {"restore": {"target_name": "before-migration"}}, or {"restore": {"latest": true}})
# The whole formation back to a point in time, from pgBackRest's repository:
#  0. the primary's current WAL is archived (when there is a primary);
#  1. every node's service stops (secondaries first, the primary last) and its
#     data directory and pg_autoctl files are moved aside, never deleted
#     (<path>.before-restore-<UTC time>);
#  2. the monitor drops the nodes;
#  3. the pillar's first node is restored and recovered to the target, where
#     it is promoted (a new timeline; it keeps the cluster's identifier);
#  4. pgfailover.orch registers it as the formation's primary from that data
#     directory and clones the others from it;
#  5. the formation has converged.
# Refused before anything changes: no backup section, a bad target, the
# repository unreadable, no backup, a target time in the future or before the
# end of the oldest backup. The monitor keeps running: its database holds
# only the formation's live state, which the nodes register anew.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/orch/cluster.jinja" import monitor_minion, formation, registered, primary, refuse with context %}
{%- set backup = mapdata.backup %}
{%- set request = salt['pillar.get']('restore', {}) %}
{%- set targets = ['target_time', 'target_name', 'latest'] %}
{%- if not backup.enabled %}
{{-   refuse('restore', ['the pillar has no pgfailover:backup section: there is no repository']) }}
{%- endif %}
{%- if request is not mapping or request.keys() | reject('in', targets) | list or request | length != 1 %}
{{-   refuse('restore', ['pillar restore must be a mapping with exactly one of target_time, target_name, latest']) }}
{%- endif %}
{%- set answer = salt['saltutil.cmd'](backup.minion, 'pgfailover_backup.restore_refusals', kwarg=request, timeout=60).get(backup.minion, {}) %}
{%- if answer.get('retcode', 1) != 0 %}
{{-   refuse('restore', ['the repository host ' ~ backup.minion ~ ' could not check it: ' ~ (answer.get('ret') or 'no answer')]) }}
{%- elif answer.ret %}
{{-   refuse('restore', answer.ret) }}
{%- endif %}
{%- set first = mapdata.nodes[0] %}
{#- Secondaries first: the primary stops last, so no standby is promoted meanwhile. #}
{%- set stop_order = mapdata.nodes | rejectattr('name', 'equalto', primary) | list
                     + mapdata.nodes | selectattr('name', 'equalto', primary) | list %}
{%- set chain = {'step': None} %}
{%- if primary %}

{#- The WAL the primary is writing holds the latest commits: switched and
    archived now, so a target after them can be reached. #}
pgfailover-orch-restore-archive-current-wal:
  salt.function:
    - name: pgfailover_backup.check
    - tgt: {{ mapdata.nodes | selectattr('name', 'equalto', primary) | map(attribute='minion') | first }}
    - failhard: True
{%-   do chain.update({'step': 'pgfailover-orch-restore-archive-current-wal'}) %}
{%- endif %}
{%- for node in stop_order %}

pgfailover-orch-restore-set-aside-{{ node.name }}:
  salt.function:
    - name: pgfailover_backup.set_aside
    - tgt: {{ node.minion }}
    - arg:
      - {{ node.pgdata }}
      - {{ node.unit }}
    - failhard: True
{%-   if chain.step %}
    - require:
      - salt: {{ chain.step }}
{%-   endif %}
{%-   do chain.update({'step': 'pgfailover-orch-restore-set-aside-' ~ node.name}) %}
{%- endfor %}
{%- for name in registered %}

pgfailover-orch-restore-drop-{{ name }}:
  salt.function:
    - name: pgfailover.drop_node
    - tgt: {{ monitor_minion }}
    - kwarg:
        name: {{ name }}
        force: True
        formation: {{ formation }}
    - failhard: True
    - require:
      - salt: {{ chain.step }}
{%-   do chain.update({'step': 'pgfailover-orch-restore-drop-' ~ name}) %}
{%- endfor %}

pgfailover-orch-restore-first-node:
  salt.function:
    - name: pgfailover_backup.restore
    - tgt: {{ first.minion }}
    - arg:
      - {{ first.pgdata }}
    - kwarg:
        port: {{ first.port }}
{%- for key, value in request.items() %}
        {{ key }}: {{ value | json }}
{%- endfor %}
    - timeout: 86400
    - failhard: True
    - require:
      - salt: {{ chain.step }}
    {#- pgfailover.orch's steps (included below) come after it. #}
    - require_in:
      - salt: pgfailover-orch-init-sync
{% include tplroot ~ '/orch/init.sls' %}

pgfailover-orch-restore-converged:
  salt.function:
    - name: pgfailover.wait_converged
    - tgt: {{ monitor_minion }}
    - kwarg:
        timeout: 600
        expect_nodes: {{ mapdata.nodes | length }}
    - failhard: True
    - require:
      - salt: pgfailover-orch-init-formation
