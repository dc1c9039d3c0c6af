# -*- coding: utf-8 -*-
# vim: ft=sls
# This host's PostgreSQL node(s): registered with the monitor, run by their
# own unit, ready; on the primary, the internal and application roles with
# the pillar's passwords; application pg_hba rules on every node.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/libmacros.jinja" import conn_args, instance_states %}
{%- from tplroot ~ "/node/roles.jinja" import password_roles with context %}

include:
  - {{ tplroot }}.package
  - {{ tplroot }}.config

{%- for node in mapdata.local_nodes %}
{%-   set formation = mapdata.formations | selectattr('name', 'equalto', node.formation) | first %}
{%-   set app = formation.app %}
{%-   set conn = dict(mapdata.conn, pgdata=node.pgdata, formation=node.formation) %}
{%-   set prefix = 'pgfailover-node-init-' ~ node.name %}

{#- The first node of its formation in the pillar starts a bare formation as
    its primary; the others are created once a primary accepts the
    replicator. So all nodes can run at once (one orchestration step, or
    highstate everywhere), every formation side by side. #}
{{ prefix }}-ready-to-join:
  pgfailover.ready_to_join:
    - name: {{ node.name }}
    - first_node: {{ formation.nodes[0].name }}
    - monitor_uri: {{ mapdata.monitor_uri }}
    - sslmode: {{ mapdata.sslmode }}
{%-   if mapdata.ssl.mode == 'ca' %}
    - sslrootcert: {{ mapdata.ssl.ca_file }}
{%-   endif %}
{{- conn_args(conn) }}
    - require:
      - sls: {{ tplroot }}.package
      - sls: {{ tplroot }}.config

{{ prefix }}-present:
  pgfailover.node_present:
    - name: {{ node.name }}
    - hostname: {{ node.hostname }}
    - port: {{ node.port }}
    - dbname: {{ node.dbname }}
    - auth: {{ mapdata.auth }}
    - ssl: {{ mapdata.ssl_arg | json }}
    - candidate_priority: {{ node.candidate_priority }}
    - replication_quorum: {{ node.replication_quorum }}
    - monitor_uri: {{ mapdata.monitor_uri }}
{{- conn_args(conn) }}
    - require:
      - pgfailover: {{ prefix }}-ready-to-join

{{ instance_states(tplroot, mapdata, 'node ' ~ node.name, node.pgdata, node.unit, node.settings,
                   prefix ~ '-present', prefix) }}

{{ prefix }}-ready:
  pgfailover.node_ready:
    - name: {{ node.name }}
    - timeout: 300
{{- conn_args(conn) }}
    - require:
      - service: {{ prefix }}-service
      - pgfailover: {{ prefix }}-settings-applied

{{ prefix }}-network-partition-timeout:
  pgfailover.config_value:
    - name: timeout.network_partition_timeout
    - value: {{ mapdata.network_partition_timeout }}
{{- conn_args(conn) }}
    - require:
      - pgfailover: {{ prefix }}-ready

{{-   password_roles(app, node.dbname, conn, prefix, after=prefix ~ '-ready', app_password_pillar=formation.password_pillar) }}
{%-   set host_type = 'host' if mapdata.ssl.mode == 'none' else 'hostssl' %}
{#- Names in double quotes: pg_hba.conf then takes them literally (keyword
    replication excepted, which must stay bare). #}
{%-   set databases = ['replication', '"' ~ node.dbname ~ '"'] + (['"postgres"'] if node.dbname != 'postgres' else []) %}

{#- The replicator's access from every node of the pillar, written before any
    standby joins. pg_autoctl adds its own replication and dbname rules only
    once the primary's keeper has seen a new standby: with four standbys
    joining at once, one base backup came first and was refused ("no
    pg_hba.conf entry ... pgautofailover_replicator, database appdb"). And
    pg_autoctl 2.0 runs pg_rewind against database postgres, which it never
    lets the replicator into: without that rule an old primary cannot rewind
    and falls back to a full pg_basebackup (seen on the lab, where that
    fallback also wedged the keeper after a power cut). #}
{{ prefix }}-replicator-hba:
  file.blockreplace:
    - name: {{ node.pgdata }}/pg_hba.conf
    # A dry run on a host not built yet: no pg_hba.conf to edit yet.
    - onlyif:
      - fun: file.file_exists
        path: {{ node.pgdata }}/pg_hba.conf
    - marker_start: "# BEGIN pgfailover replicator access (managed by Salt)"
    - marker_end: "# END pgfailover replicator access"
    - append_if_not_found: True
    - content: |
{%-   for other in formation.nodes %}
{%-     for database in databases %}
        {{ host_type }} {{ database }} pgautofailover_replicator {{ other.hostname }} {{ mapdata.auth }}
{%-     endfor %}
{%-   endfor %}
    - require:
      - pgfailover: {{ prefix }}-ready

{{ prefix }}-replicator-hba-reload:
  pgfailover.reloaded:
    - name: pg_hba.conf (replicator access)
{{- conn_args(conn) }}
    - onchanges:
      - file: {{ prefix }}-replicator-hba

{%-   if app.get('owner') %}

{{ prefix }}-app-hba:
  file.blockreplace:
    - name: {{ node.pgdata }}/pg_hba.conf
    # A dry run on a host not built yet: no pg_hba.conf to edit yet.
    - onlyif:
      - fun: file.file_exists
        path: {{ node.pgdata }}/pg_hba.conf
    - marker_start: "# BEGIN pgfailover application access (managed by Salt)"
    - marker_end: "# END pgfailover application access"
    - append_if_not_found: True
    - content: |
{%-     for cidr in app.get('cidrs', []) %}
        {{ host_type }} "{{ node.dbname }}" "{{ app.owner }}" {{ cidr }} scram-sha-256
{%-     endfor %}
    - require:
      - pgfailover: {{ prefix }}-ready

{{ prefix }}-app-hba-reload:
  pgfailover.reloaded:
    - name: pg_hba.conf (application access)
{{- conn_args(conn) }}
    - onchanges:
      - file: {{ prefix }}-app-hba
{%-   endif %}
{%- endfor %}
