# -*- coding: utf-8 -*-
# vim: ft=sls
# Uninstall (the playbook's `make uninstall`): HAProxy and the health
# endpoints first, then nodes dropped from the monitor, then the monitor, the service user's files, the packages. Data
# directories stay unless pgfailover:clean:remove_data is true.
include:
  - .haproxy.clean
  - .health.clean
  - .node.clean
  - .monitor.clean
  - .config.clean
  - .package.clean
