# -*- coding: utf-8 -*-
# vim: ft=sls
# salt-run state.orchestrate pgfailover.orch.renew_certificates
# With ssl mode ca, after the new certificate and key files are in place on
# every host (same paths as the pillar's ssl keys, by the operator or Salt's
# x509 states): every host's files are checked first (a problem refuses the
# renewal before anything reloads), then each instance reloads its
# configuration, one at a time, monitor first. PostgreSQL reads
# ssl_cert_file and ssl_key_file again on a reload: new connections get the
# new certificate, established ones (replication, clients) go on.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- if mapdata.ssl.mode != 'ca' %}
{{-   raise('pgfailover.orch.renew_certificates: pillar key pgfailover:ssl:mode is ' ~ mapdata.ssl.mode
          ~ '; renewal is for mode ca (self-signed certificates are pg_autoctl\'s own)') }}
{%- endif %}
{%- set instances = [(mapdata.monitor.minion, mapdata.monitor.pgdata, 'monitor')] %}
{%- set hosts = [mapdata.monitor.minion] %}
{%- for node in mapdata.nodes %}
{%-   do instances.append((node.minion, node.pgdata, node.name)) %}
{%-   if node.minion not in hosts %}{% do hosts.append(node.minion) %}{% endif %}
{%- endfor %}

pgfailover-orch-renew-certificates-checked:
  salt.state:
    - tgt: {{ hosts | join(',') }}
    - tgt_type: list
    - sls:
      - {{ tplroot }}.config
    - failhard: True
{%- set previous = {'step': 'pgfailover-orch-renew-certificates-checked'} %}
{%- for minion, pgdata, instance in instances %}

pgfailover-orch-renew-certificates-reload-{{ instance }}:
  salt.function:
    - name: pgfailover.reload_postgres
    - tgt: {{ minion }}
    - kwarg:
        pgdata: {{ pgdata }}
    - failhard: True
    - require:
      - salt: {{ previous.step }}
{%-   do previous.update({'step': 'pgfailover-orch-renew-certificates-reload-' ~ instance}) %}
{%- endfor %}
