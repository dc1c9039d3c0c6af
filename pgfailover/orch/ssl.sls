# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.ssl
# A running formation's SSL changed to what pillar key pgfailover:ssl says,
# online (no instance restarts): none to self-signed or ca, self-signed to
# ca and back, other certificate files. Every instance gets `pg_autoctl
# enable ssl` twice, monitor first: servers first when clients grow stricter
# (their new certificates while every instance keeps connecting with the
# weakest sslmode in use), clients first when they grow laxer; then the new
# certificates and sslmode everywhere (pgfailover_ssl.plan). Each step returns
# once PostgreSQL serves it and a standby's replication uses it. Then
# pgfailover.orch's own steps bring the formula's pg_hba.conf rules (host or
# hostssl) and everything else in line. With ssl mode ca, every host's files
# are checked first. Refused before anything changes: an instance that does
# not answer, and turning SSL off (pg_autoctl's own rules stay hostssl).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/orch/cluster.jinja" import monitor_minion, refuse with context %}
{%- set instances = [{'name': 'monitor', 'minion': monitor_minion, 'pgdata': mapdata.monitor.pgdata}] %}
{%- for node in mapdata.nodes %}
{%-   do instances.append({'name': node.name, 'minion': node.minion, 'pgdata': node.pgdata}) %}
{%- endfor %}
{%- set current = {} %}
{%- set problems = [] %}
{%- for instance in instances %}
{%-   set answer = salt['saltutil.cmd'](instance.minion, 'pgfailover.config_get', kwarg={'pgdata': instance.pgdata}, timeout=30).get(instance.minion, {}) %}
{%-   if answer.get('retcode', 1) != 0 or answer.get('ret') is not mapping %}
{%-     do problems.append(instance.name ~ ' on ' ~ instance.minion ~ ' did not give its configuration: ' ~ (answer.get('ret') or 'no answer')) %}
{%-   else %}
{%-     do current.update({instance.name: answer.ret.get('ssl', {})}) %}
{%-   endif %}
{%- endfor %}
{%- if problems %}
{{-   refuse('the SSL change', problems) }}
{%- endif %}
{%- set plan = salt['pgfailover_ssl.plan'](current, mapdata.ssl_arg) %}
{%- if plan.problems %}
{{-   refuse('the SSL change', plan.problems) }}
{%- endif %}
{%- set previous = {'step': None} %}
{%- if plan.rounds and mapdata.ssl.mode == 'ca' %}

pgfailover-orch-ssl-certificates-checked:
  salt.state:
    - tgt: {{ instances | map(attribute='minion') | list | unique | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.config
    - failhard: True
{%-   do previous.update({'step': 'pgfailover-orch-ssl-certificates-checked'}) %}
{%- endif %}
{%- for round in plan.rounds %}
{%-   set number = loop.index %}
{%-   for instance in instances if instance.name in round %}
{%-     set step = 'pgfailover-orch-ssl-round-' ~ number ~ '-' ~ instance.name %}

{{ step }}:
  salt.function:
    - name: pgfailover.enable_ssl
    - tgt: {{ instance.minion }}
    - kwarg:
        ssl: {{ round[instance.name].ssl | json }}
        ssl_mode: {{ round[instance.name].ssl_mode }}
        pgdata: {{ instance.pgdata }}
    - failhard: True
{%-     if previous.step %}
    - require:
      - salt: {{ previous.step }}
{%-     endif %}
{%-     do previous.update({'step': step}) %}
{%-   endfor %}
{%- endfor %}
{%- if previous.step %}
    {#- pgfailover.orch's steps (included below) come after the last one. #}
    - require_in:
      - salt: pgfailover-orch-init-sync
{%- endif %}
{% include tplroot ~ '/orch/init.sls' %}
