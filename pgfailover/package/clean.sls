# -*- coding: utf-8 -*-
# vim: ft=sls
# Packages go last, after the instances are dropped and their units removed;
# kept when pgfailover:clean:remove_packages is False.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ "/map.jinja" import mapdata with context %}


include:
  - {{ tplroot }}.config.clean

{%- if mapdata.clean.remove_packages %}

pgfailover-package-clean-packages:
  pkg.removed:
    - pkgs: {{ mapdata.packages | json }}
    - require:
      - sls: {{ tplroot }}.config.clean
{%- endif %}

pgfailover-package-clean-apt-source:
  file.absent:
    - name: /etc/apt/sources.list.d/pgfailover.list
    - require:
      - sls: {{ tplroot }}.config.clean
