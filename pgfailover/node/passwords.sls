# -*- coding: utf-8 -*-
# vim: ft=sls
# The pillar's passwords of this host's nodes' roles, set on the primary and
# nothing else (no .pgpass): the first step of pgfailover.orch.rotate_passwords.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}
{%- from tplroot ~ "/node/roles.jinja" import password_roles with context %}

{%- for node in mapdata.local_nodes %}
{%-   set formation = mapdata.formations | selectattr('name', 'equalto', node.formation) | first %}
{{- password_roles(formation.app, node.dbname, dict(mapdata.conn, pgdata=node.pgdata, formation=node.formation),
                   'pgfailover-node-passwords-' ~ node.name, app_password_pillar=formation.password_pillar) }}
{%- endfor %}
