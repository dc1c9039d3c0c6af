# -*- coding: utf-8 -*-
# vim: ft=sls
# Prometheus metrics of this host's instances (the monitor, the nodes): one
# postgres_exporter per instance, run by the formula's own unit as the
# package's unprivileged user, connecting over the local socket as the
# metrics role (pg_monitor; on the monitor, read access to its node and
# formation tables), with the formula's queries. The package's own unit is
# stopped: it would take the default port.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import conn_args, files_switch %}
{%- set metrics = mapdata.metrics %}
{%- set instances = [] %}
{%- if mapdata.is_monitor %}
{%-   do instances.append({'name': 'monitor', 'port': mapdata.monitor.port, 'pgdata': mapdata.monitor.pgdata,
                           'unit': mapdata.monitor.unit, 'metrics_port': mapdata.monitor.metrics_port, 'id': 'monitor',
                           'dbname': 'pg_auto_failover', 'monitor': True, 'sls': tplroot ~ '.monitor',
                           'formation': mapdata.formation}) %}
{%- endif %}
{%- for node in mapdata.local_nodes %}
{%-   do instances.append({'name': node.name, 'port': node.port, 'pgdata': node.pgdata, 'unit': node.unit,
                           'metrics_port': node.metrics_port, 'id': 'node-' ~ node.name, 'dbname': 'postgres', 'monitor': False,
                           'sls': tplroot ~ '.node', 'formation': node.formation}) %}
{%- endfor %}

{%- if metrics.enabled and instances %}

include:
{%-   for sls in instances | map(attribute='sls') | list | unique %}
  - {{ sls }}
{%-   endfor %}

pgfailover-metrics-init-package:
  pkg.installed:
    - name: {{ mapdata.metrics_package }}
    - install_recommends: False

pgfailover-metrics-init-package-unit-stopped:
  service.dead:
    - name: {{ mapdata.metrics_package_unit }}
    - enable: False
    - require:
      - pkg: pgfailover-metrics-init-package

# Run by each instance's release service: ends the exporter's sessions while
# a smart shutdown waits for them (see the file).
pgfailover-metrics-init-release-script:
  file.managed:
    - name: {{ mapdata.metrics_release }}
    - source: {{ files_switch(tplroot, mapdata, 'metrics/release.sh') }}
    - mode: '0755'
    - makedirs: True

pgfailover-metrics-init-config-dir:
  file.directory:
    - name: {{ metrics.config_dir }}
    - makedirs: True
    - mode: '0755'

{%-   for instance in instances %}
{%-     set prefix = 'pgfailover-metrics-init-' ~ instance.id %}
{%-     set unit = 'pgfailover-metrics-' ~ instance.id %}
{%-     set release = 'pgfailover-metrics-release-' ~ instance.id %}
{%-     set queries = metrics.config_dir ~ '/queries-' ~ instance.id ~ '.yaml' %}
{%-     set web_config = metrics.config_dir ~ '/web-' ~ instance.id ~ '.yaml' if metrics.web_config else None %}

{{ prefix }}-role:
  pgfailover.monitoring_role_present:
    - name: {{ metrics.dbuser }}
    - connection_limit: {{ metrics.connection_limit }}
    - read_formation: {{ instance.monitor }}
    - pgdata: {{ instance.pgdata }}
{{- conn_args(mapdata.conn) }}
    - require:
      - sls: {{ instance.sls }}

{{ prefix }}-queries:
  file.managed:
    - name: {{ queries }}
    - source: {{ files_switch(tplroot, mapdata, 'metrics/queries.yaml.jinja') }}
    - template: jinja
    - mode: '0644'
    - context:
        instance: {{ instance.name }}
        formation: {{ instance.formation }}
        monitor: {{ instance.monitor }}
    - require:
      - file: pgfailover-metrics-init-config-dir
{%-     if web_config %}

{{ prefix }}-web-config:
  file.serialize:
    - name: {{ web_config }}
    - serializer: yaml
    - dataset: {{ metrics.web_config | json }}
    - user: root
    - group: {{ mapdata.metrics_os_user }}
    - mode: '0640'
    - require:
      - pkg: pgfailover-metrics-init-package
      - file: pgfailover-metrics-init-config-dir
{%-     endif %}

{{ prefix }}-unit:
  file.managed:
    - name: {{ mapdata.unit_dir }}/{{ unit }}.service
    - source: {{ files_switch(tplroot, mapdata, 'metrics/exporter.service.jinja') }}
    - template: jinja
    - context:
        instance: {{ instance.name }}
        instance_unit: {{ instance.unit }}
        user: {{ mapdata.metrics_os_user }}
        socket_dir: {{ mapdata.socket_dir }}
        pgport: {{ instance.port }}
        dbuser: {{ metrics.dbuser }}
        dbname: {{ instance.dbname }}
        exporter: {{ mapdata.metrics_exporter }}
        bind: {{ metrics.bind }}
        port: {{ instance.metrics_port }}
        queries: {{ queries }}
        web_config: {{ web_config | json }}

{{ prefix }}-service:
  service.running:
    - name: {{ unit }}
    - enable: True
    - require:
      - service: pgfailover-metrics-init-package-unit-stopped
      - pgfailover: {{ prefix }}-role
    - watch:
      - file: {{ prefix }}-queries
      - file: {{ prefix }}-unit
{%-     if web_config %}
      - file: {{ prefix }}-web-config
{%-     endif %}

{{ prefix }}-release-unit:
  file.managed:
    - name: {{ mapdata.unit_dir }}/{{ release }}.service
    - source: {{ files_switch(tplroot, mapdata, 'metrics/release.service.jinja') }}
    - template: jinja
    - context:
        instance: {{ instance.name }}
        pgdata: {{ instance.pgdata }}
        user: {{ mapdata.user }}
        release: {{ mapdata.metrics_release }}
        dbuser: {{ metrics.dbuser }}

# Before the exporter: its sessions never hold this instance's shutdown.
{{ prefix }}-release:
  service.running:
    - name: {{ release }}
    - enable: True
    - watch:
      - file: pgfailover-metrics-init-release-script
      - file: {{ prefix }}-release-unit
    - require_in:
      - service: {{ prefix }}-service
{%-   endfor %}
{%- endif %}
