# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.rotate_passwords
# After pgfailover:passwords changed in the pillar: every role and every
# .pgpass follows, in an order that never leaves a node both unreachable by
# the monitor's health checks and unable to report to the monitor (the two
# together are what the monitor takes for a dead node), and never breaks an
# established replication connection:
#   1. on the primary's host, the roles' new passwords (replicator, health
#      checks, application); standbys get them by replication. Until step 2
#      the monitor's health checks fail (its .pgpass still has the old
#      password); the keepers go on reporting.
#   2. on the monitor's host, its .pgpass (health checks work again), then
#      autoctl_node's new password. Until step 3 the keepers cannot report;
#      the health checks go on passing.
#   3. on every node's host, .pgpass: the keepers report again, and new
#      replication connections use the new password (established ones were
#      never asked again).
#   4. the formation has converged.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/orch/cluster.jinja" import monitor_minion, node_minions, pillar_nodes, primary, formation, refuse with context %}
{%- if not primary or primary not in pillar_nodes %}
{{-   refuse('password rotation', ['the monitor names no primary the pillar lists (' ~ (primary or 'none') ~ '): rotate once the formation has one']) }}
{%- endif %}

pgfailover-orch-rotate-passwords-roles-on-primary:
  salt.state:
    - tgt: {{ pillar_nodes[primary].minion }}
    - sls:
      - {{ tplroot }}.node.passwords
    - failhard: True

pgfailover-orch-rotate-passwords-monitor:
  salt.state:
    - tgt: {{ monitor_minion }}
    - sls:
      - {{ tplroot }}.config
      - {{ tplroot }}.monitor
    - failhard: True
    - require:
      - salt: pgfailover-orch-rotate-passwords-roles-on-primary

pgfailover-orch-rotate-passwords-nodes:
  salt.state:
    - tgt: {{ node_minions | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.config
    - failhard: True
    - require:
      - salt: pgfailover-orch-rotate-passwords-monitor

pgfailover-orch-rotate-passwords-converged:
  salt.function:
    - name: pgfailover.wait_converged
    - tgt: {{ monitor_minion }}
    - kwarg:
        formation: {{ formation }}
        timeout: 120
    - failhard: True
    - require:
      - salt: pgfailover-orch-rotate-passwords-nodes
