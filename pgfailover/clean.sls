# -*- coding: utf-8 -*-
# vim: ft=sls
# Uninstall (the playbook's `make uninstall`): nodes dropped from the monitor
# first, then the monitor, the service user's files, the packages. Data
# directories stay unless pgfailover:clean:remove_data is true.
include:
  - .node.clean
  - .monitor.clean
  - .config.clean
  - .package.clean
