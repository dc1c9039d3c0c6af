# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.replace_monitor
# Move the formation to the monitor the pillar now names (pgfailover:monitor),
# online, the documented way: the new monitor is built, then each node is
# detached from the old monitor by force and registered with the new one,
# the primary first, then the secondaries; PostgreSQL keeps serving all along.
# Which node is primary is read from each node's own state file, so this works
# with the old monitor dead. Refused up front unless exactly one node reports
# itself primary. The nodes then get the pillar's candidate priorities and
# replication quorum back (the new monitor registers them with its defaults).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/orch/cluster.jinja" import monitor_minion, everyone, refuse with context %}
{%- set primaries = [] %}
{%- set silent = [] %}
{%- for node in mapdata.nodes %}
{%-   set answer = salt['saltutil.cmd'](node.minion, 'pgfailover.state', kwarg={'local': True, 'pgdata': node.pgdata}, timeout=30).get(node.minion, {}) %}
{%-   if answer.get('retcode', 1) != 0 or answer.ret is not mapping %}
{%-     do silent.append(node.name) %}
{%-   elif answer.ret.writable %}
{%-     do primaries.append(node) %}
{%-   endif %}
{%- endfor %}
{%- if silent %}
{{-   refuse('replace_monitor', ['node(s) ' ~ silent | join(', ') ~ ' did not report their local state: every node listed must be up']) }}
{%- endif %}
{%- if primaries | length != 1 %}
{%-   set names = primaries | map(attribute='name') | join(', ') %}
{{-   refuse('replace_monitor', [(primaries | length) ~ ' node(s) report themselves primary (' ~ names ~ '), expected exactly one']) }}
{%- endif %}
{%- set primary = primaries[0] %}
{%- set prefix = 'pgfailover-orch-replace-monitor' %}

{{ prefix }}-sync:
  salt.state:
    - tgt: {{ everyone | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.sync
    # Even in a dry run (test=True): the other steps render with these modules.
    # Syncing fills the minion's module cache and changes nothing on the host.
    - test: False
    - failhard: True

{{ prefix }}-prepare:
  salt.state:
    - tgt: {{ everyone | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.package
      - {{ tplroot }}.config
    - failhard: True
    - require:
      - salt: {{ prefix }}-sync

{{ prefix }}-new-monitor:
  salt.state:
    - tgt: {{ monitor_minion }}
    - sls:
      - {{ tplroot }}.monitor
    - failhard: True
    - require:
      - salt: {{ prefix }}-prepare

{%- set previous = {'step': prefix ~ '-new-monitor'} %}
{%- for node in [primary] + (mapdata.nodes | rejectattr('name', 'equalto', primary.name) | list) %}

{{ prefix }}-attach-{{ node.name }}:
  salt.function:
    - name: pgfailover.attach_monitor
    - tgt: {{ node.minion }}
    - arg:
      - {{ mapdata.monitor_uri }}
    - kwarg:
        pgdata: {{ node.pgdata }}
        timeout: 180
    - failhard: True
    - require:
      - salt: {{ previous.step }}
{%-   do previous.update({'step': prefix ~ '-attach-' ~ node.name}) %}
{%- endfor %}

{{ prefix }}-formation:
  salt.state:
    - tgt: {{ monitor_minion }}
    - sls:
      - {{ tplroot }}.formation
    - failhard: True
    - require:
      - salt: {{ previous.step }}
{#- Re-registered nodes get the monitor's defaults (candidate priority 50,
    in the replication quorum), whatever they had before (pg_auto_failover
    issue #1049): the node states bring back the pillar's, one host at a time
    once the formation has converged (the monitor refuses a priority change
    while the primary applies another one: "current state ... is
    apply_settings"). #}
{%- set node_minions = mapdata.nodes | map(attribute='minion') | list | unique %}

{{ prefix }}-converged:
  salt.function:
    - name: pgfailover.wait_converged
    - tgt: {{ monitor_minion }}
    - kwarg:
        timeout: 180
    - failhard: True
    - require:
      - salt: {{ prefix }}-formation
{%- set previous = {'step': prefix ~ '-converged'} %}
{%- for minion in node_minions %}

{{ prefix }}-node-properties-{{ minion }}:
  salt.state:
    - tgt: {{ minion }}
    - sls:
      - {{ tplroot }}.node
    - failhard: True
    - require:
      - salt: {{ previous.step }}
{%-   do previous.update({'step': prefix ~ '-node-properties-' ~ minion}) %}
{%- endfor %}
