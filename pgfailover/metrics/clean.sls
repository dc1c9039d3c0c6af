# -*- coding: utf-8 -*-
# vim: ft=sls
# The exporters go before their instances: Prometheus sees them down first.
# Their units and configuration files go (also after the metrics section
# left the pillar); the exporter's package with pgfailover:clean:remove_packages
# (default) while the pillar has a metrics section (the formula installed it).
# The metrics role stays with the data.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- set metrics = mapdata.metrics %}
{%- set monitor_ids = ['monitor'] if mapdata.is_monitor and not mapdata.clean_formation else [] %}
{%- set ids = monitor_ids + mapdata.clean_nodes | map(attribute='name') | map('regex_replace', '^', 'node-') | list %}

{%- for id in ids %}
{%-   set prefix = 'pgfailover-metrics-clean-' ~ id %}

{{ prefix }}-release:
  service.dead:
    - name: pgfailover-metrics-release-{{ id }}
    - enable: False

{{ prefix }}-service:
  service.dead:
    - name: pgfailover-metrics-{{ id }}
    - enable: False

{{ prefix }}-files:
  file.absent:
    - names:
      - {{ mapdata.unit_dir }}/pgfailover-metrics-{{ id }}.service
      - {{ mapdata.unit_dir }}/pgfailover-metrics-release-{{ id }}.service
      - {{ metrics.config_dir }}/queries-{{ id }}.yaml
      - {{ metrics.config_dir }}/web-{{ id }}.yaml
    - require:
      - service: {{ prefix }}-service
      - service: {{ prefix }}-release
    - require_in:
      - pgfailover: pgfailover-metrics-clean-config-dir
{%- endfor %}

{%- if ids and not mapdata.clean_formation %}

pgfailover-metrics-clean-release-script:
  file.absent:
    - name: {{ mapdata.metrics_release }}
    - require:
{%-   for id in ids %}
      - service: pgfailover-metrics-clean-{{ id }}-release
{%-   endfor %}
{%- endif %}

pgfailover-metrics-clean-config-dir:
  pgfailover.empty_directory_absent:
    - name: {{ metrics.config_dir }}
{#- The package stays while only one formation's exporters go (clean:formation). #}
{%- if metrics.enabled and mapdata.clean.remove_packages and ids and not mapdata.clean_formation %}

pgfailover-metrics-clean-package:
  pkg.purged:
    - name: {{ mapdata.metrics_package }}
    - require:
{%-   for id in ids %}
      - service: pgfailover-metrics-clean-{{ id }}-service
{%-   endfor %}
{%- endif %}
