# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.clean
# Uninstall the whole cluster without losing data by surprise: secondaries
# leave first, one at a time, then the primary, then the monitor's host;
# HAProxy's hosts and a dedicated backup repository host before all of them.
# Data directories stay unless pgfailover:clean:remove_data is true.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/pillar.jinja' import cluster with context %}
{%- set monitor_minion = cluster.get('monitor', {}).get('minion') %}
{%- set minion_of = {} %}
{#- Every formation's nodes: the top-level one's (pgfailover:nodes) and those
    of pgfailover:formations. #}
{%- set formations = {cluster.get('formation', 'default'): cluster.get('nodes', [])} %}
{%- for name, formation in (cluster.get('formations') or {}).items() %}
{%-   do formations.update({name: formation.get('nodes', [])}) %}
{%- endfor %}
{%- for nodes in formations.values() %}
{%-   for node in nodes %}
{%-     do minion_of.update({node.name: node.get('minion', node.name)}) %}
{%-   endfor %}
{%- endfor %}
{%- set node_minions = minion_of.values() | list | unique %}
{#- Each formation's primary's host leaves after the other hosts. Without an
    answer (no monitor left, or no primary during a failover) the
    formation's first pillar node's host does: every host is cleaned once,
    and a primary met earlier refuses to be dropped. #}
{%- set last_minions = [] %}
{%- for name, nodes in formations.items() %}
{%-   set answer = salt['saltutil.cmd'](monitor_minion, 'pgfailover.primary', kwarg={'formation': name}, timeout=15)
                    if monitor_minion else {} %}
{%-   set current = (answer.get(monitor_minion, {}) or {}).get('ret') %}
{%-   set fallback = (nodes[0].get('minion', nodes[0].name)) if nodes else None %}
{%-   set primary_minion = (minion_of.get(current.nodename) if current is mapping else None) or fallback %}
{%-   if primary_minion and primary_minion not in last_minions %}{% do last_minions.append(primary_minion) %}{% endif %}
{%- endfor %}
{%- set secondary_minions = node_minions | reject('in', last_minions) | list %}
{#- An orchestrate-time override of pgfailover:clean (pillar=...) reaches the
    hosts; every node leaves, so the last standby may too. #}
{%- set clean_pillar = {'pgfailover': {'clean': dict(cluster.get('clean', {}), allow_last_standby=True) } } %}

{%- set backup_minion = (cluster.get('backup') or {}).get('minion') %}
{%- if backup_minion and backup_minion != monitor_minion %}

{#- The backup timers stop first: no backup starts while nodes leave. The
    repository stays unless clean:remove_data is true. #}
pgfailover-orch-clean-backup-repository:
  salt.state:
    - tgt: {{ backup_minion }}
    - sls:
      - {{ tplroot }}.backup.clean
    - pillar: {{ clean_pillar | json }}
    - failhard: True
{%- endif %}

{%- set haproxy_minions = (cluster.get('haproxy') or {}).get('minions') or [] %}
{%- if haproxy_minions %}

{#- HAProxy first: clients lose the stable address before any node goes. #}
pgfailover-orch-clean-haproxy:
  salt.state:
    - tgt: {{ haproxy_minions | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.haproxy.clean
    - pillar: {{ clean_pillar | json }}
    - failhard: True
{%- endif %}

{#- One secondary at a time: two drops at once raced in the monitor once on
    the lab ("failed to ensure that the local node ... has been removed"). #}
{%- set previous = {'step': None} %}
{%- for minion in secondary_minions %}

pgfailover-orch-clean-secondary-{{ minion }}:
  salt.state:
    - tgt: {{ minion }}
    - sls:
      - {{ tplroot }}.clean
    - pillar: {{ clean_pillar | json }}
    - failhard: True
{%-   if previous.step or haproxy_minions %}
    - require:
      - salt: {{ previous.step or 'pgfailover-orch-clean-haproxy' }}
{%-   endif %}
    - require_in:
      - salt: pgfailover-orch-clean-primary
{%-   do previous.update({'step': 'pgfailover-orch-clean-secondary-' ~ minion}) %}
{%- endfor %}

{#- Then the primaries' hosts, one at a time (the top-level formation's first). #}
{%- for minion in last_minions %}
{%-   set step = 'pgfailover-orch-clean-primary' ~ ('' if loop.first else '-' ~ minion) %}

{{ step }}:
  salt.state:
    - tgt: {{ minion }}
    - sls:
      - {{ tplroot }}.clean
    - pillar: {{ clean_pillar | json }}
    - failhard: True
{%-   if not loop.first %}
    - require:
      - salt: {{ previous.step }}
{%-   elif haproxy_minions %}
    - require:
      - salt: pgfailover-orch-clean-haproxy
{%-   endif %}
{%-   do previous.update({'step': step}) %}
{%- endfor %}

pgfailover-orch-clean-monitor:
  salt.state:
    - tgt: {{ monitor_minion }}
    - sls:
      - {{ tplroot }}.clean
    - pillar: {{ clean_pillar | json }}
    - failhard: True
    - require:
      - salt: {{ previous.step }}
