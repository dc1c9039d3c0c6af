# -*- coding: utf-8 -*-
# vim: ft=sls
# HAProxy from the distribution on the hosts pgfailover:haproxy:minions names,
# for each formation: a read-write port that only routes to the node whose
# health endpoint says it is the writable primary, a read-only port over
# healthy secondaries (the primary as backup when none is); and an optional
# stats page.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import files_switch %}

{%- if mapdata.is_haproxy %}

{#- A host of its own gets its packages from the same source as the others
    (a site whose hosts only see the pillar's repository). #}
include:
  - {{ tplroot }}.package.source

pgfailover-haproxy-init-package:
  pkg.installed:
    - name: {{ mapdata.haproxy_package }}
    - require:
      - sls: {{ tplroot }}.package.source

pgfailover-haproxy-init-config:
  file.managed:
    - name: {{ mapdata.haproxy_config }}
    - source: {{ files_switch(tplroot, mapdata, 'haproxy.cfg.jinja') }}
    - template: jinja
    - context:
        haproxy: {{ mapdata.haproxy | json }}
        formations: {{ mapdata.formations | json }}
    - check_cmd: haproxy -c -f
    - require:
      - pkg: pgfailover-haproxy-init-package

pgfailover-haproxy-init-service:
  service.running:
    - name: haproxy
    - enable: True
    - reload: True
    - watch:
      - file: pgfailover-haproxy-init-config
{%- endif %}
